"""OmniTransformer behaviour: joint attention across modalities, per-token noise, masks, positions in seconds."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from omni import LatentStream, OmniTransformer
from omni.ops import AttentionBackend, register_backend
from tests.helpers import TINY_TRANSFORMER, randomize


def streams(batch=1, seed=0, video_t=500.0, audio_t=500.0, audio_start=0.0):
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(batch, 4, 3, 4, 4, generator=g)
    audio = torch.randn(batch, 2, 10, 4, generator=g)  # 2 channels x 4 mel bins = audio_in_channels 8
    return [
        LatentStream("video", video, torch.full((batch,), video_t), frame_seconds=0.25),
        LatentStream(
            "audio", audio, torch.full((batch,), audio_t), start_seconds=audio_start, frame_seconds=0.04
        ),
    ]


def text(batch=1):
    return torch.randn(batch, 5, 16, generator=torch.Generator().manual_seed(9))


def run(model, s, txt=None, **kw):
    with torch.no_grad():
        return model(s, text(s[0].latents.shape[0]) if txt is None else txt, **kw)


def test_outputs_match_every_stream_shape(tiny_transformer):
    image = LatentStream("image", torch.randn(1, 4, 1, 4, 4), torch.full((1,), 0.0), start_seconds=-1.0)
    s = [*streams(), image]
    out = run(tiny_transformer, s)
    assert [o.shape for o in out] == [x.latents.shape for x in s]


def test_fresh_model_starts_at_zero_output():
    """adaLN-zero: an untrained model predicts exactly zero velocity."""
    model = OmniTransformer(**TINY_TRANSFORMER).eval()
    assert all(torch.count_nonzero(o) == 0 for o in run(model, streams()))


def test_fresh_model_passes_the_caption_on_at_its_own_scale():
    """The text projection is not shrunk at initialisation, so cross-attention can read the caption from
    the first steps (a N(0, 0.02) projection passed it on at a twentieth of its scale)."""
    model = OmniTransformer(**TINY_TRANSFORMER)
    caption = text()
    with torch.no_grad():
        projected = model.text_embedder(caption)
    ratio = projected.pow(2).mean().sqrt() / caption.pow(2).mean().sqrt()
    assert ratio > 0.3, f"the text projection scales the caption by {ratio:.3f}"


def test_audio_sees_video_and_video_sees_audio(tiny_transformer):
    base = run(tiny_transformer, streams())
    changed_video = streams()
    changed_video[0] = LatentStream("video", changed_video[0].latents + 1.0, changed_video[0].timesteps)
    changed_audio = streams()
    changed_audio[1] = LatentStream(
        "audio", changed_audio[1].latents + 1.0, changed_audio[1].timesteps, frame_seconds=0.04
    )
    assert not torch.allclose(run(tiny_transformer, changed_video)[1], base[1])
    assert not torch.allclose(run(tiny_transformer, changed_audio)[0], base[0])


def test_masked_tokens_influence_nothing(tiny_transformer):
    """A token mask removes a condition: its values must not reach any other token."""
    mask = torch.ones(1, 10, dtype=torch.bool)
    mask[:, 5:] = False
    s1, s2 = streams(), streams()
    s1[1] = LatentStream("audio", s1[1].latents, s1[1].timesteps, frame_seconds=0.04, token_mask=mask)
    noisy = s2[1].latents.clone()
    noisy[:, :, 5:] += 3.0
    s2[1] = LatentStream("audio", noisy, s2[1].timesteps, frame_seconds=0.04, token_mask=mask)
    a, b = run(tiny_transformer, s1), run(tiny_transformer, s2)
    assert torch.allclose(a[0], b[0], atol=1e-6)
    assert torch.allclose(a[1][:, :, :5], b[1][:, :, :5], atol=1e-6)


def test_per_frame_timesteps_change_only_what_they_should(tiny_transformer):
    s = streams()
    t = torch.tensor([[0.0, 500.0, 500.0]])  # first latent frame clean, as in image-to-video
    clean_first = [LatentStream("video", s[0].latents, t), s[1]]
    assert not torch.allclose(run(tiny_transformer, clean_first)[0], run(tiny_transformer, s)[0])


def test_only_relative_time_matters(tiny_transformer):
    """Positions are seconds on one clock: shifting every stream together changes nothing, shifting audio does."""

    def shifted(video_start, audio_start):
        s = streams()
        return [
            LatentStream(
                "video", s[0].latents, s[0].timesteps, start_seconds=video_start, frame_seconds=0.25
            ),
            LatentStream(
                "audio", s[1].latents, s[1].timesteps, start_seconds=audio_start, frame_seconds=0.04
            ),
        ]

    base = run(tiny_transformer, shifted(0.0, 0.0))
    together = run(tiny_transformer, shifted(3.0, 3.0))
    audio_late = run(tiny_transformer, shifted(0.0, 0.5))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(base, together))
    assert not torch.allclose(base[0], audio_late[0], atol=1e-4)


def test_image_tokens_carry_a_modality_flag(tiny_transformer):
    latents = torch.randn(1, 4, 1, 4, 4)
    as_video = run(tiny_transformer, [LatentStream("video", latents, torch.full((1,), 300.0))])[0]
    as_image = run(tiny_transformer, [LatentStream("image", latents, torch.full((1,), 300.0))])[0]
    assert not torch.allclose(as_video, as_image)


def test_batch_rows_are_independent(tiny_transformer):
    both = run(tiny_transformer, streams(batch=2))
    first = run(
        tiny_transformer,
        [
            LatentStream(s.modality, s.latents[:1], s.timesteps[:1], s.start_seconds, s.frame_seconds)
            for s in streams(batch=2)
        ],
    )
    assert all(torch.allclose(a[:1], b, atol=1e-5) for a, b in zip(both, first))


def test_gradient_checkpointing_gives_the_same_gradients(tiny_transformer):
    def grads(checkpointing):
        tiny_transformer.zero_grad()
        if checkpointing:
            tiny_transformer.enable_gradient_checkpointing()
        else:
            tiny_transformer.disable_gradient_checkpointing()
        loss = sum(o.square().mean() for o in tiny_transformer(streams(), text()))
        loss.backward()
        return [p.grad.clone() for p in tiny_transformer.parameters() if p.grad is not None]

    plain, checkpointed = grads(False), grads(True)
    assert len(plain) == len(checkpointed) > 0
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed))


def test_save_and_load_round_trip(tiny_transformer, tmp_path):
    tiny_transformer.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = OmniTransformer.from_pretrained(tmp_path).eval()
    assert all(torch.equal(a, b) for a, b in zip(run(tiny_transformer, streams()), run(loaded, streams())))


def _without_cross_attention(model):
    with torch.no_grad():
        for block in model.blocks:
            for layer in block.experts.values():
                layer.attn2.to_out[0].weight.zero_()
                layer.attn2.to_out[0].bias.zero_()
    return model


def test_pooled_text_carries_the_caption_without_cross_attention():
    """With cross-attention silenced, only the pooled-text path lets the caption change the prediction."""
    other = text() + 1.0
    plain = _without_cross_attention(randomize(OmniTransformer(**TINY_TRANSFORMER)).eval())
    assert torch.equal(run(plain, streams())[0], run(plain, streams(), other)[0])
    pooled = OmniTransformer(**TINY_TRANSFORMER, pooled_text=True)
    pooled = _without_cross_attention(randomize(pooled)).eval()
    assert not torch.allclose(run(pooled, streams())[0], run(pooled, streams(), other)[0])
    # padding tokens do not count: a caption padded with junk under a False mask is the same caption
    mask = torch.tensor([[True, True, True, False, False]])
    padded = text().clone()
    padded[:, 3:] = 5.0
    assert torch.allclose(
        run(pooled, streams(), text(), text_mask=mask)[0], run(pooled, streams(), padded, text_mask=mask)[0]
    )


def test_pooled_text_added_to_a_trained_model_changes_nothing_until_trained(tiny_transformer):
    pooled = OmniTransformer(**TINY_TRANSFORMER, pooled_text=True).eval()
    missing, unexpected = pooled.load_state_dict(tiny_transformer.state_dict(), strict=False)
    assert unexpected == [] and sorted(missing) == sorted(
        f"experts.{e}.text_pool.{p}" for e in ("video", "audio") for p in ("weight", "bias")
    )
    assert all(torch.equal(a, b) for a, b in zip(run(pooled, streams()), run(tiny_transformer, streams())))


def test_sample_prediction_returns_the_velocity_of_its_x0():
    """A sample-predicting head's output x_0 comes back as (x_t - x_0) / sigma, per token's own noise level,
    with sigma clamped so clean condition tokens stay finite."""
    velocity_head = randomize(OmniTransformer(**TINY_TRANSFORMER)).eval()
    sample_head = OmniTransformer(**TINY_TRANSFORMER, prediction="sample").eval()
    sample_head.load_state_dict(velocity_head.state_dict())
    video_t = torch.tensor([[1000.0, 300.0, 0.0]])  # per latent frame: pure noise, mid, clean condition
    s = streams()
    s[0] = LatentStream("video", s[0].latents, video_t, frame_seconds=0.25)
    x0_video, x0_audio = run(velocity_head, s)  # the same head read as x_0
    v_video, v_audio = run(sample_head, s)
    sigma = torch.tensor([1.0, 0.3, 0.05]).view(1, 1, 3, 1, 1)
    assert torch.allclose(v_video, (s[0].latents - x0_video) / sigma, atol=1e-5)
    assert torch.allclose(v_audio, (s[1].latents - x0_audio) / 0.5, atol=1e-5)
    # per-token noise levels (a retake's or a trajectory's region) reach each token's own latent pixels
    token_t = torch.zeros(1, 3, 2, 2)
    token_t[0, 1, 0, 1] = 800.0
    s[0] = LatentStream("video", s[0].latents, token_t, frame_seconds=0.25)
    sigma = torch.full((1, 1, 3, 4, 4), 0.05)
    sigma[..., 1, 0:2, 2:4] = 0.8
    assert torch.allclose(
        run(sample_head, s)[0], (s[0].latents - run(velocity_head, s)[0]) / sigma, atol=1e-5
    )
    # an untrained sample head predicts x_0 = 0: one Euler step from pure noise to sigma 0 lands on 0
    fresh = OmniTransformer(**TINY_TRANSFORMER, prediction="sample").eval()
    noise = streams(video_t=1000.0)
    assert torch.allclose(noise[0].latents - run(fresh, noise)[0], torch.zeros(()), atol=1e-6)
    with pytest.raises(ValueError, match="prediction 'epsilon' is not supported"):
        OmniTransformer(**TINY_TRANSFORMER, prediction="epsilon")


def test_preconditioned_prediction_passes_x_t_through_at_low_noise():
    """The preconditioned head's x_0 is c_skip x_t + c_out F: the velocity it returns is that x_0's, per token's
    own noise level, finite at sigma 0 (clean condition tokens), and an untrained head (F = 0) returns x_t
    itself as x_0 at low noise and 0 (the data mean) at pure noise."""
    velocity_head = randomize(OmniTransformer(**TINY_TRANSFORMER)).eval()
    head = OmniTransformer(**TINY_TRANSFORMER, prediction="preconditioned").eval()
    head.load_state_dict(velocity_head.state_dict())
    video_t = torch.tensor([[1000.0, 300.0, 0.0]])  # per latent frame: pure noise, mid, clean condition
    s = streams()
    s[0] = LatentStream("video", s[0].latents, video_t, frame_seconds=0.25)
    f_video, _ = run(velocity_head, s)  # the same network's raw output F
    v_video, _ = run(head, s)
    sigma = torch.tensor([1.0, 0.3, 0.0]).view(1, 1, 3, 1, 1)
    d = (1 - sigma) ** 2 + sigma**2
    x0 = (1 - sigma) / d * s[0].latents + sigma / d.sqrt() * f_video
    # the flow path's velocity of that x_0: x_t = (1 - sigma) x_0 + sigma noise, v = noise - x_0
    expected = (s[0].latents[:, :, :2] - x0[:, :, :2]) / sigma[:, :, :2]
    assert torch.allclose(v_video[:, :, :2], expected, atol=1e-4)
    assert torch.isfinite(v_video).all()
    fresh = OmniTransformer(**TINY_TRANSFORMER, prediction="preconditioned").eval()  # zero output head
    v_fresh, _ = run(fresh, s)
    x0_fresh = s[0].latents - sigma * v_fresh  # x_0 = x_t - sigma v on the flow path
    assert torch.allclose(x0_fresh[:, :, 0], torch.zeros(()), atol=1e-5)
    assert torch.allclose(x0_fresh[:, :, 2], s[0].latents[:, :, 2], atol=1e-6)


def _matmul_attention(q, k, v, key_padding_mask, rope):
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / q.shape[-1] ** 0.5
    return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v)


def test_video_head_hidden_adds_a_gelu_layer_to_the_video_head_only():
    """A nonlinear video output head: same output shapes, a GELU layer before the video projection, the audio
    head unchanged, and the reported FLOPs still agree with torch's counter."""
    model = randomize(OmniTransformer(**TINY_TRANSFORMER, video_head_hidden=128)).eval()
    assert model.experts["video"].head_mlp[0].weight.shape == (128, model.hidden_size)
    assert model.experts["video"].proj_out.in_features == 128
    assert not hasattr(model.experts["audio"], "head_mlp")
    s = streams()
    out = run(model, s)
    assert [o.shape for o in out] == [x.latents.shape for x in s]
    assert all(torch.isfinite(o).all() for o in out)
    assert_reported_flops_match_counted(model, s)


def test_video_head_conv_starts_as_a_no_op_and_draws_across_token_borders(tiny_transformer):
    """The convolutional head changes nothing until trained; trained, one token's output reaches into its
    neighbours' pixels (a linear head cannot), and the reported FLOPs count its convolutions."""
    model = OmniTransformer(**TINY_TRANSFORMER, video_head_conv=8).eval()
    missing, _ = model.load_state_dict(tiny_transformer.state_dict(), strict=False)
    assert all(k.startswith("experts.video.head_conv.") for k in missing) and missing
    assert all(torch.equal(a, b) for a, b in zip(run(model, streams()), run(tiny_transformer, streams())))
    randomize(model.experts["video"].head_conv)
    head = model.experts["video"].head_conv
    latents = torch.zeros(1, 4, 1, 8, 8)
    latents[..., 1, 1] = 1.0  # one value inside one 1x1 "token"
    with torch.no_grad():
        change = model._refine(head, latents) - latents - model._refine(head, torch.zeros_like(latents))
    assert change[..., 0, 0].abs().sum() > 0 and change[..., 5, 5].abs().sum() == 0  # two 3x3 convs reach 2
    assert_reported_flops_match_counted(model, streams())


def test_video_head_features_let_a_token_draw_into_its_neighbours():
    """The head's feature map is read by the convolutions only: the model starts as the same no-op; trained,
    what one token means to draw changes its neighbour's pixels; FLOPs count the feature projection."""
    model = OmniTransformer(**TINY_TRANSFORMER, video_head_conv=8, video_head_features=3).eval()
    io, s = model.experts["video"], streams()
    before = run(model, s)
    randomize(io.head_features)  # untrained, the zero last convolution hides whatever the features say
    assert all(torch.equal(a, b) for a, b in zip(before, run(model, s)))
    randomize(io.head_conv)  # trained, the features reach the video output, and only it
    drawn = run(model, s)
    randomize(io.head_features, seed=1)
    changed = [not torch.equal(a, b) for a, b in zip(drawn, run(model, s))]
    assert changed == [x.modality != "audio" for x in s]
    randomize(io.head_conv)
    latents, features = torch.zeros(1, 4, 1, 8, 8), torch.zeros(1, 3, 1, 8, 8)
    features[..., 1, 1] = 1.0  # what the token at (1, 1) meant to draw, at one latent position
    with torch.no_grad():
        change = model._refine(io.head_conv, latents, features) - model._refine(
            io.head_conv, latents, 0 * features
        )
    assert change[..., 0, 2].abs().sum() > 0 and change[..., 5, 5].abs().sum() == 0
    assert_reported_flops_match_counted(model, s)


def test_video_head_features_need_the_convolutions():
    with pytest.raises(ValueError, match=r"video_head_features \(4\) feed the head's convolutions"):
        OmniTransformer(**TINY_TRANSFORMER, video_head_features=4)


def test_self_condition_reads_the_estimate_from_zero_and_is_refused_by_a_model_without_it(tiny_transformer):
    """Added to a trained model it changes nothing until trained (zero embedding, no bias: no estimate reads
    as zeros); trained, every stream's estimate reaches the outputs; a model without it names the fix."""
    from dataclasses import replace

    model = OmniTransformer(**TINY_TRANSFORMER, self_condition=True).eval()
    missing, unexpected = model.load_state_dict(tiny_transformer.state_dict(), strict=False)
    assert unexpected == [] and sorted(missing) == [
        f"experts.{e}.self_condition_embedding.weight" for e in ("audio", "video")
    ]
    s = streams()
    drafted = [replace(x, self_condition=torch.randn_like(x.latents)) for x in s]
    base = run(tiny_transformer, s)
    assert all(torch.equal(a, b) for a, b in zip(base, run(model, drafted)))
    for io in model.experts.values():
        randomize(io.self_condition_embedding)
    assert all(torch.equal(a, b) for a, b in zip(base, run(model, s)))  # None: as zeros
    zeros = [replace(x, self_condition=torch.zeros_like(x.latents)) for x in s]
    assert all(torch.equal(a, b) for a, b in zip(base, run(model, zeros)))
    assert all(not torch.equal(a, b) for a, b in zip(base, run(model, drafted)))
    assert_reported_flops_match_counted(model, drafted)
    with pytest.raises(ValueError, match="does not self-condition"):
        run(tiny_transformer, drafted)
    with pytest.raises(ValueError, match="self-condition estimate must be shaped like its latents"):
        replace(s[0], self_condition=torch.zeros(1, 4, 1, 4, 4))


def test_a_streams_sample_estimate_inverts_the_flow_step():
    """x_t = (1 - sigma) x_0 + sigma noise with velocity noise - x_0 gives back x_0, and a clean token (sigma 0)
    is its own estimate whatever the velocity."""
    g = torch.Generator().manual_seed(3)
    x0, noise = torch.randn(2, 4, 2, 4, 4, generator=g), torch.randn(2, 4, 2, 4, 4, generator=g)
    sigma = torch.tensor([0.3, 0.9]).view(2, 1, 1, 1, 1)
    xt = (1 - sigma) * x0 + sigma * noise
    stream = LatentStream("video", xt, torch.tensor([300.0, 900.0]))
    assert torch.allclose(stream.sample_estimate(noise - x0, (1, 2, 2)), x0, atol=1e-5)
    clean = LatentStream("video", x0, torch.tensor([[0.0, 500.0], [0.0, 500.0]]))
    assert torch.equal(clean.sample_estimate(torch.randn_like(x0), (1, 2, 2))[:, :, 0], x0[:, :, 0])


def assert_reported_flops_match_counted(model, s) -> None:
    """FLOPs the model reports (for MFU) agree with torch's counter within 2%; attention runs as matmuls so
    the counter sees it."""
    register_backend(AttentionBackend("matmul_for_test", _matmul_attention, supports_key_padding_mask=False))
    model.set_attention_backend("matmul_for_test")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(s, text())
    reported = model.forward_flops(s, text_len=5)
    assert abs(reported - counter.get_total_flops()) / counter.get_total_flops() < 0.02


def test_reported_flops_match_counted_flops(tiny_transformer):
    assert_reported_flops_match_counted(tiny_transformer, streams())


def test_bad_streams_are_named():
    with pytest.raises(ValueError, match="unknown modality 'smell'"):
        LatentStream("smell", torch.zeros(1, 4, 1, 4, 4), torch.zeros(1))
    with pytest.raises(ValueError, match=r"audio latents must be \(B, C, T, M\)"):
        LatentStream("audio", torch.zeros(1, 4, 1, 4, 4), torch.zeros(1))
    model = OmniTransformer(**TINY_TRANSFORMER)
    with pytest.raises(ValueError, match="not divisible by patch size"):
        model([LatentStream("video", torch.zeros(1, 4, 1, 5, 4), torch.zeros(1))], text())


@pytest.mark.parametrize("mask_text_padding", [True, False])
def test_text_padding_is_skipped_or_attended_as_the_config_says(mask_text_padding):
    """omni's models skip padded text positions; a converted Wan reads its zero padding, as Wan was trained."""
    model = randomize(OmniTransformer(**TINY_TRANSFORMER, mask_text_padding=mask_text_padding)).eval()
    states = torch.zeros(1, 8, 16)
    states[:, :3] = text()[:, :3]
    long = torch.cat([states, torch.zeros(1, 4, 16)], dim=1)  # the same caption with more zero padding
    a = run(model, streams(), states, text_mask=(torch.arange(8) < 3)[None])
    b = run(model, streams(), long, text_mask=(torch.arange(12) < 3)[None])
    differs = max((x - y).abs().max().item() for x, y in zip(a, b))
    assert (differs <= 1e-5) == mask_text_padding


def test_inference_writes_the_experts_projections_in_place_with_the_same_result(tiny_transformer):
    """Without autograd the experts write their q/k/v rows into joint buffers instead of concatenating them."""
    s = streams(batch=2)
    s = [s[0], LatentStream("audio", s[1].latents, torch.tensor([500.0, 20.0]), frame_seconds=0.04)]
    txt = text(2)
    with torch.no_grad():
        in_place = tiny_transformer(s, txt)
    concatenated = tiny_transformer(s, txt)  # with autograd: the concatenating path
    for a, b in zip(in_place, concatenated):
        assert torch.allclose(a, b, atol=1e-6, rtol=0), (a - b).abs().max()


def _without_attention(model):
    """The model with every block's self-attention output at zero: tokens meet only through other paths."""
    for block in model.blocks:
        for layer in block.experts.values():
            torch.nn.init.zeros_(layer.attn1.to_out[0].weight)
            torch.nn.init.zeros_(layer.attn1.to_out[0].bias)
    return model


def test_token_conv_starts_as_a_no_op_and_hands_a_frame_to_the_next(tiny_transformer):
    """Added to a trained model, the token convolution changes nothing until trained; trained, a token sees
    the token of the frame before (and audio the token before) without any attention, and the reported FLOPs
    count it."""
    model = OmniTransformer(**TINY_TRANSFORMER, token_conv=3).eval()
    missing, _ = model.load_state_dict(tiny_transformer.state_dict(), strict=False)
    assert missing and all(".token_conv." in k for k in missing)
    assert all(torch.equal(a, b) for a, b in zip(run(model, streams()), run(tiny_transformer, streams())))

    plain = _without_attention(randomize(OmniTransformer(**TINY_TRANSFORMER).eval()))
    mixed = _without_attention(randomize(OmniTransformer(**TINY_TRANSFORMER, token_conv=3).eval()))
    video_only = OmniTransformer(**TINY_TRANSFORMER, token_conv=3, token_conv_experts=["video"]).eval()
    video_only = _without_attention(randomize(video_only))
    expected = {plain: [False, False], mixed: [True, True], video_only: [True, False]}
    for model in (plain, mixed, video_only):
        s = streams()
        video = s[0].latents.clone()
        video[:, :, 0] += 3.0  # only the first latent frame
        audio = s[1].latents.clone()
        audio[:, :, 0] += 3.0  # only the first audio token
        changed = [
            LatentStream("video", video, s[0].timesteps, frame_seconds=0.25),
            LatentStream("audio", audio, s[1].timesteps, frame_seconds=0.04),
        ]
        before, after = run(model, s), run(model, changed)
        reached = [not torch.allclose(b[:, :, 1], a[:, :, 1]) for b, a in zip(before, after)]
        assert reached == expected[model]
    assert_reported_flops_match_counted(mixed, streams())
    assert_reported_flops_match_counted(video_only, streams())


def test_token_conv_does_not_leak_masked_tokens():
    """A dropped condition (tokens out of attention) stays invisible to its neighbours through the
    convolution too."""
    model = randomize(OmniTransformer(**TINY_TRANSFORMER, token_conv=3)).eval()
    mask = torch.ones(1, 3, 2, 2, dtype=torch.bool)
    mask[:, 0] = False  # the first latent frame dropped, as an unconditional image-to-video row has it
    s = streams()
    video = s[0].latents.clone()
    video[:, :, 0] += 3.0
    t = torch.full((1, 3, 2, 2), 500.0)
    a = run(model, [LatentStream("video", s[0].latents, t, frame_seconds=0.25, token_mask=mask), s[1]])
    b = run(model, [LatentStream("video", video, t, frame_seconds=0.25, token_mask=mask), s[1]])
    assert torch.allclose(a[0][:, :, 1:], b[0][:, :, 1:], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)


@pytest.mark.parametrize("kernel", [1, 2, -3, True, 3.0])
def test_token_conv_takes_an_odd_kernel(kernel):
    with pytest.raises(ValueError, match=r"token_conv must be 0 \(none\) or an odd kernel size >= 3"):
        OmniTransformer(**TINY_TRANSFORMER, token_conv=kernel)


@pytest.mark.parametrize("experts", ["video", ["video", "text"]])
def test_token_conv_experts_names_experts(experts):
    with pytest.raises(
        ValueError, match=r"token_conv_experts must be a list of experts from \['video', 'audio'\]"
    ):
        OmniTransformer(**TINY_TRANSFORMER, token_conv=3, token_conv_experts=experts)


def test_sequence_parallelism_refuses_token_conv():
    from omni.train.sequence_parallel import apply_sequence_parallel

    model = OmniTransformer(**TINY_TRANSFORMER, token_conv=3)
    with pytest.raises(ValueError, match="cannot run a model with token_conv=3"):
        apply_sequence_parallel(model, group=None)


def _changed_at_start(s, video_frame=None, audio_token=None):
    """The streams with one video latent frame or one audio token shifted by 3."""
    video, audio = s[0].latents.clone(), s[1].latents.clone()
    if video_frame is not None:
        video[:, :, video_frame] += 3.0
    if audio_token is not None:
        audio[:, :, audio_token] += 3.0
    return [
        LatentStream("video", video, s[0].timesteps, frame_seconds=0.25, token_mask=s[0].token_mask),
        LatentStream("audio", audio, s[1].timesteps, frame_seconds=0.04, token_mask=s[1].token_mask),
    ]


def _moved(before, after):
    """Which video latent frames and which audio tokens an input change moved."""
    video = [not torch.allclose(before[0][:, :, f], after[0][:, :, f], atol=1e-6) for f in range(3)]
    audio = [not torch.allclose(before[1][:, :, t], after[1][:, :, t], atol=1e-6) for t in range(10)]
    return video, audio


def test_av_bridge_starts_as_a_no_op_and_joins_what_happens_at_the_same_time(tiny_transformer):
    """Added to a trained model the bridge changes nothing; trained, without any attention, a video latent
    frame reaches the audio tokens of its time window (0.25 s: tokens 0-6 of 40 ms) and no others, and an
    audio token reaches the video frame it plays under and no other; FLOPs count it."""
    model = OmniTransformer(**TINY_TRANSFORMER, av_bridge=True).eval()
    missing, _ = model.load_state_dict(tiny_transformer.state_dict(), strict=False)
    assert missing and all(".av_bridge." in k for k in missing)
    assert all(torch.equal(a, b) for a, b in zip(run(model, streams()), run(tiny_transformer, streams())))

    model = _without_attention(randomize(OmniTransformer(**TINY_TRANSFORMER, av_bridge=True).eval()))
    s = streams()
    base = run(model, s)
    video, audio = _moved(base, run(model, _changed_at_start(s, video_frame=0)))
    assert video == [True, False, False] and audio == [True] * 7 + [False] * 3
    video, audio = _moved(base, run(model, _changed_at_start(s, audio_token=8)))  # at 0.32 s: frame 1
    # ... and, through that frame in the next block, the other audio tokens of its window (7-9)
    assert video == [False, True, False] and audio == [False] * 7 + [True] * 3
    assert_reported_flops_match_counted(model, streams())


def test_av_bridge_does_not_leak_masked_tokens():
    """A dropped video condition (v2a's unconditional row) stays unheard through the bridge too."""
    model = _without_attention(randomize(OmniTransformer(**TINY_TRANSFORMER, av_bridge=True).eval()))
    s = streams()
    mask = torch.zeros(1, 3, dtype=torch.bool)  # the whole video out of attention
    s = [LatentStream("video", s[0].latents, torch.zeros(1, 3), frame_seconds=0.25, token_mask=mask), s[1]]
    _, audio = _moved(run(model, s), run(model, _changed_at_start(s, video_frame=0)))
    assert audio == [False] * 10


def test_av_bridge_needs_both_experts():
    with pytest.raises(ValueError, match="av_bridge joins video and audio tokens: it needs the audio expert"):
        OmniTransformer(**{**TINY_TRANSFORMER, "audio_in_channels": 0}, av_bridge=True)
    model = randomize(OmniTransformer(**TINY_TRANSFORMER, av_bridge=True)).eval()
    video_only = run(model, streams()[:1])  # a video-only request runs without the bridge
    assert video_only[0].shape == streams()[0].latents.shape


def test_sequence_parallelism_refuses_av_bridge():
    from omni.train.sequence_parallel import apply_sequence_parallel

    with pytest.raises(ValueError, match="cannot run a model with av_bridge"):
        apply_sequence_parallel(OmniTransformer(**TINY_TRANSFORMER, av_bridge=True), group=None)


def test_frame_noise_shares_its_variance_across_a_videos_frames_only():
    """Unit variance everywhere; the asked-for share common to a video's latent frames; images, sound and a
    share of 0 draw plain `torch.randn`; a share outside [0, 1) is refused, by the model's config too."""
    from omni.models.streams import frame_noise

    noise = frame_noise((8, 4, 5, 16, 16), torch.Generator().manual_seed(0), 0.6)
    assert abs(float(noise.var()) - 1.0) < 0.05
    frames = noise.transpose(1, 2).flatten(2)  # (B, F, values)
    correlation = torch.corrcoef(torch.stack([frames[:, 1].flatten(), frames[:, 3].flatten()]))[0, 1]
    assert abs(float(correlation) - 0.6) < 0.05
    for shape, shared in (((2, 4, 5, 8, 8), 0.0), ((2, 4, 1, 8, 8), 0.6), ((2, 4, 30, 16), 0.6)):
        plain = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        assert torch.equal(frame_noise(shape, torch.Generator().manual_seed(1), shared), plain)
    with pytest.raises(ValueError, match=r"variance share in \[0, 1\), got 1.0"):
        frame_noise((1, 4, 5, 8, 8), None, 1.0)
    with pytest.raises(
        ValueError, match=r"shared_frame_noise must be a variance share in \[0, 1\), got -0.5"
    ):
        OmniTransformer(**{**TINY_TRANSFORMER, "shared_frame_noise": -0.5})


def test_position_embedding_starts_as_a_no_op_and_tells_a_token_where_it_sits(tiny_transformer):
    """Added to a trained model, the position embedding changes nothing until trained; trained, tokens that
    hold the same values (pure noise looks the same everywhere) come out differently at different places of
    the frame, with no attention or convolution to tell them apart, in video and image streams alike."""
    model = OmniTransformer(**TINY_TRANSFORMER, position_embedding=True).eval()
    missing, _ = model.load_state_dict(tiny_transformer.state_dict(), strict=False)
    assert missing and all(".position_embedding." in k for k in missing)
    assert all(torch.equal(a, b) for a, b in zip(run(model, streams()), run(tiny_transformer, streams())))

    plain = _without_attention(randomize(OmniTransformer(**TINY_TRANSFORMER).eval()))
    placed = _without_attention(
        randomize(OmniTransformer(**TINY_TRANSFORMER, position_embedding=True).eval())
    )
    same = torch.ones(1, 4, 3, 4, 4)  # every 2x2 patch alike
    for modality, latents in (("video", same), ("image", same[:, :, :1])):
        stream = [LatentStream(modality, latents, torch.full((1,), 500.0), frame_seconds=0.25)]
        for model, apart in ((plain, False), (placed, True)):
            (out,) = run(model, stream)
            corners = [out[..., :2, :2], out[..., :2, 2:], out[..., 2:, :2], out[..., 2:, 2:]]
            differ = [not torch.allclose(corners[0], c, atol=1e-6) for c in corners[1:]]
            assert differ == [apart] * 3, (modality, apart)
            assert torch.allclose(out[:, :, 0], out[:, :, -1], atol=1e-6)  # the place, not the frame


def test_frame_index_embedding_starts_as_a_no_op_and_tells_a_frame_where_it_sits(tiny_transformer):
    """Added to a trained model, the frame index embedding changes nothing until trained; trained, frames that
    hold the same values come out differently at different moments of the clip, with no attention or
    convolution to tell them apart. A still image (one frame) is left as it was."""
    model = OmniTransformer(**TINY_TRANSFORMER, frame_index_embedding=True).eval()
    missing, _ = model.load_state_dict(tiny_transformer.state_dict(), strict=False)
    assert missing and all(".frame_index_embedding." in k for k in missing)
    assert all(torch.equal(a, b) for a, b in zip(run(model, streams()), run(tiny_transformer, streams())))

    timed = _without_attention(
        randomize(OmniTransformer(**TINY_TRANSFORMER, frame_index_embedding=True).eval())
    )
    same = torch.ones(1, 4, 3, 4, 4)  # every frame and patch alike
    (out,) = run(timed, [LatentStream("video", same, torch.full((1,), 500.0), frame_seconds=0.25)])
    frames = [out[:, :, i] for i in range(out.shape[2])]
    assert all(not torch.allclose(frames[0], f, atol=1e-6) for f in frames[1:])
    assert torch.allclose(out[..., :2, :2], out[..., 2:, 2:], atol=1e-6)  # the moment, not the place
    image = [LatentStream("image", same[:, :, :1], torch.full((1,), 500.0), frame_seconds=0.25)]
    (still,) = run(timed, image)
    for io in timed.experts.values():
        if hasattr(io, "frame_index_embedding"):
            torch.nn.init.zeros_(io.frame_index_embedding.weight)
            torch.nn.init.zeros_(io.frame_index_embedding.bias)
    assert torch.equal(still, run(timed, image)[0])


def test_input_gate_starts_as_a_no_op_and_can_shut_out_pure_noise(tiny_transformer):
    """Added to a trained model, the input gate changes nothing until trained; a closed gate makes the
    model's output the same whatever the noisy latents hold (what it should learn to do at sigma 1), an open
    one lets them count."""
    model = OmniTransformer(**TINY_TRANSFORMER, input_gate=True).eval()
    missing, _ = model.load_state_dict(tiny_transformer.state_dict(), strict=False)
    assert missing and all(".input_gate." in k for k in missing)
    assert all(torch.equal(a, b) for a, b in zip(run(model, streams()), run(tiny_transformer, streams())))

    gated = randomize(OmniTransformer(**TINY_TRANSFORMER, input_gate=True).eval())
    for io in gated.experts.values():  # closed at every noise level
        torch.nn.init.zeros_(io.input_gate.weight)
        torch.nn.init.constant_(io.input_gate.bias, -1.0)
    for out_a, out_b in zip(run(gated, streams(seed=0)), run(gated, streams(seed=1))):
        assert torch.allclose(out_a, out_b, atol=1e-5)
    for io in gated.experts.values():  # open again: the latents count
        torch.nn.init.zeros_(io.input_gate.bias)
    for out_a, out_b in zip(run(gated, streams(seed=0)), run(gated, streams(seed=1))):
        assert not torch.allclose(out_a, out_b, atol=1e-3)


def test_signal_input_hides_pure_noise_and_leaves_low_noise_as_it_was():
    """With signal_input, at sigma 1 the output is the same whatever the noisy latents hold (they carry
    nothing about the clip there); at sigma <= 0.5 the model computes what it computed without the option;
    in between the latents count."""
    plain = randomize(OmniTransformer(**TINY_TRANSFORMER).eval())
    model = OmniTransformer(**TINY_TRANSFORMER, signal_input=True).eval()
    model.load_state_dict(plain.state_dict())

    def outputs(net, seed, timestep):
        return run(net, streams(seed=seed, video_t=timestep, audio_t=timestep))

    for a, b in zip(outputs(model, 0, 1000.0), outputs(model, 1, 1000.0)):
        assert torch.allclose(a, b, atol=1e-5)
    for a, b in zip(outputs(model, 0, 900.0), outputs(model, 1, 900.0)):
        assert not torch.allclose(a, b, atol=1e-3)
    for a, b in zip(outputs(model, 0, 400.0), outputs(plain, 0, 400.0)):
        assert torch.allclose(a, b, atol=1e-6)


def test_clip_positions_tell_every_frame_apart_whatever_the_clip_length():
    """Every latent frame gets its own features, relative to the clip: the middle of a 1-frame clip and of a
    5-frame clip's centre frame agree."""
    from omni.models.transformer import clip_positions

    for frames in (2, 16, 21):
        features = clip_positions(frames)
        assert features.shape == (frames, 8)
        assert len(torch.unique(features, dim=0)) == frames
    assert torch.allclose(clip_positions(1)[0], clip_positions(5)[2], atol=1e-6)


def test_frame_positions_tell_every_cell_apart_whatever_the_frame_size():
    """Every cell of a frame gets its own features, its mirror image included, and the features say where a
    cell sits relative to the frame: the middle of a 1x1 frame and of a 3x3 frame's centre cell agree."""
    from omni.models.transformer import frame_positions

    for rows, cols in ((4, 4), (3, 5), (30, 52)):
        features = frame_positions(rows, cols)
        assert features.shape == (rows * cols, 16)
        assert len(torch.unique(features, dim=0)) == rows * cols
    assert torch.allclose(frame_positions(1, 1)[0], frame_positions(3, 3)[4], atol=1e-6)
