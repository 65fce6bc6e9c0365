"""The flow-matching objective: clean tokens at t = 0 and out of the loss, dropped conditions leave attention."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from omni.conditioning.motion import CONTROL_CHANNELS, Trajectory, control_maps
from omni.data.batch import LatentBatch
from omni.train.objective import ObjectiveConfig, TimestepSampler, _focus, flow_matching_loss


class Recorder(torch.nn.Module):
    """Predicts zeros and records the streams it was given."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.streams = None

    def forward(self, streams, text, mask):
        self.streams, self.text = streams, text
        return [torch.zeros_like(s.latents) + self.weight for s in streams]

    def num_tokens(self, streams):
        return sum(
            s.latents[0, 0].numel() // (4 if s.modality != "audio" else s.latents.shape[-1]) for s in streams
        )


def batch(size=4):
    g = torch.Generator().manual_seed(0)
    return LatentBatch(
        video=torch.randn(size, 4, 3, 4, 4, generator=g),
        audio=torch.randn(size, 2, 7, 4, generator=g),
        text=torch.randn(size, 5, 8, generator=g),
        text_mask=torch.ones(size, 5, dtype=torch.bool),
        video_frame_seconds=0.25,
        audio_frame_seconds=0.04,
    )


def run(config, size=4, seed=0):
    model = Recorder()
    b = batch(size)
    out = flow_matching_loss(
        model,
        b,
        torch.zeros(1, 5, 8),
        torch.ones(1, 5, dtype=torch.bool),
        config,
        torch.Generator().manual_seed(seed),
    )
    return model, b, out


def test_clean_frames_are_exact_and_at_timestep_zero():
    model, b, _ = run(ObjectiveConfig(tasks={"i2v": 1.0}, dropout_image=0.0))
    video = model.streams[0]
    assert torch.equal(video.latents[:, :, 0], b.video[:, :, 0])
    assert (video.timesteps[:, 0] == 0).all() and (video.timesteps[:, 1:] > 0).all()
    assert video.token_mask is None


def test_loss_is_only_on_noisy_tokens():
    # With zero predictions the loss is E[(noise - x0)^2] over noisy tokens; v2a's video is clean, so only audio counts.
    _, _, out = run(ObjectiveConfig(tasks={"v2a": 1.0}, dropout_image=0.0))
    assert set(out.per_modality) == {"audio"}


def test_dropped_image_condition_leaves_attention():
    model, _, _ = run(ObjectiveConfig(tasks={"i2v": 1.0}, dropout_image=1.0))
    mask = model.streams[0].token_mask
    assert mask is not None and not mask[:, 0].any() and mask[:, 1:].all()


def test_dropped_text_uses_the_empty_prompt():
    model, _, _ = run(ObjectiveConfig(tasks={"t2av": 1.0}, dropout_text=1.0))
    assert torch.equal(model.text, torch.zeros_like(model.text))


def test_absent_streams_are_masked_and_unscored():
    model, _, out = run(ObjectiveConfig(tasks={"t2v": 1.0, "t2a": 1.0}), size=16)
    video, audio = model.streams
    assert video.token_mask is not None and audio.token_mask is not None
    assert ((video.token_mask.any(1)) ^ (audio.token_mask.any(1))).all()  # each sample uses exactly one
    assert set(out.per_task) == {"t2v", "t2a"}


def test_text_to_image_uses_the_first_latent_frame_as_an_image():
    model, b, _ = run(ObjectiveConfig(tasks={"t2i": 1.0}))
    image = next(s for s in model.streams if s.modality == "image")
    assert image.latents.shape == (4, 4, 1, 4, 4)
    assert not torch.equal(image.latents, b.video[:, :, :1])  # noised


def test_same_generator_same_loss():
    config = ObjectiveConfig(tasks={"t2av": 1.0, "i2v": 1.0, "retake": 1.0})
    assert run(config, seed=3)[2].loss == run(config, seed=3)[2].loss != run(config, seed=4)[2].loss


def test_shifted_timesteps_lean_noisy():
    g = torch.Generator().manual_seed(0)
    assert (
        TimestepSampler(shift=3.0).sample(10000, g).mean() > TimestepSampler().sample(10000, g).mean() + 0.1
    )


def test_a_timestep_tail_trains_where_the_sampler_starts():
    """Shift 3 alone gives t > 0.97 (only the caption says what to draw) to about 1% of samples."""
    plain, tailed = TimestepSampler(shift=3.0), TimestepSampler(shift=3.0, tail=0.2, tail_min=0.95)
    t = plain.sample(20000, torch.Generator().manual_seed(0))
    assert (t > 0.97).float().mean() < 0.015
    t = tailed.sample(20000, torch.Generator().manual_seed(0))
    assert 0.11 < (t > 0.97).float().mean() < 0.145  # 3/5 of the tail, plus the logit-normal's own
    assert float(t.max()) <= 1.0 and float(t.min()) > 0.0
    # without a tail nothing else is drawn, so earlier runs keep their random streams
    torch.testing.assert_close(
        TimestepSampler(shift=3.0, tail=0.0).sample(100, torch.Generator().manual_seed(1)),
        plain.sample(100, torch.Generator().manual_seed(1)),
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [({"tail": 1.5}, "tail must be a probability"), ({"tail_min": 1.0}, "tail_min must be in")],
)
def test_bad_timestep_tails_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TimestepSampler(**kwargs)


class Drafting(Recorder):
    """Predicts a fixed velocity, so that its estimates are known; records every call's streams."""

    config = {"patch_size": (1, 2, 2), "self_condition": True}

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, streams, text, mask):
        self.calls.append((torch.is_grad_enabled(), streams))
        return [torch.ones_like(s.latents) + self.weight for s in streams]


def test_self_condition_feeds_a_share_of_samples_the_models_own_estimate():
    """A first pass without gradients drafts x_0 = x_t - sigma * v; the graded pass reads it for the samples
    drawn (about the share asked for), zeros for the others; without it, one pass and no estimate."""
    model = Drafting()
    config = ObjectiveConfig(tasks={"t2av": 1.0}, self_condition=0.5)
    out = flow_matching_loss(
        model, batch(32), torch.zeros(1, 5, 8), torch.ones(1, 5, dtype=torch.bool), config, torch.Generator()
    )
    (first_grad, first), (second_grad, second) = model.calls
    assert not first_grad and second_grad and out.loss.requires_grad
    assert all(s.self_condition is None for s in first)
    for draft, graded in zip(first, second):
        estimate = draft.sample_estimate(torch.ones_like(draft.latents), (1, 2, 2))
        seen = graded.self_condition.flatten(1).abs().sum(1) > 0  # (B,) samples given an estimate
        assert 8 <= int(seen.sum()) <= 24
        assert torch.allclose(graded.self_condition[seen], estimate[seen])
        assert torch.equal(graded.latents, draft.latents)
    model = Drafting()
    flow_matching_loss(
        model,
        batch(),
        torch.zeros(1, 5, 8),
        torch.ones(1, 5, dtype=torch.bool),
        ObjectiveConfig(),
        torch.Generator(),
    )
    assert len(model.calls) == 1 and all(s.self_condition is None for s in model.calls[0][1])


def boxed_batch(size=2, latent_frames=3, temporal=2):
    """A 32x32-pixel clip on a 4x4 latent grid (8 px cells) whose subject box covers the top-left cell of
    pixel frame 0, then moves one cell right on pixel frame 2."""
    b = batch(size)
    pixel_frames = 1 + temporal * (latent_frames - 1)
    boxes = torch.full((size, pixel_frames, 4), float("nan"))
    boxes[:, :2] = torch.tensor([1.0, 1.0, 7.0, 7.0])
    boxes[:, 2] = torch.tensor([9.0, 1.0, 15.0, 7.0])
    b.subject_boxes, b.frame_size = boxes, (32, 32)
    return b


def test_focus_weights_the_latents_inside_the_subject_boxes():
    """1 + focus_weight on the cells a box touches in any pixel frame of a latent frame, 1 elsewhere, a mean
    of 1 per sample; unknown boxes weigh nothing extra."""
    weight = _focus(boxed_batch(), 7.0)[0, 0]  # (F, H, W)
    inside = torch.zeros(3, 4, 4, dtype=torch.bool)
    inside[0, 0, 0] = True  # pixel frame 0
    inside[1, 0, :2] = True  # pixel frames 1 and 2: the box moved a cell right between them
    assert torch.allclose(weight.mean(), torch.tensor(1.0))
    assert torch.allclose(weight[inside] / weight[~inside].max(), torch.tensor(8.0))
    assert torch.allclose(weight[2], weight[~inside].max())  # pixel frames 3 and 4 have no known box


def test_focus_puts_more_of_the_loss_where_the_subject_is():
    """An error inside the subject's box costs more with a focus weight; data without boxes is refused."""
    b = boxed_batch(size=4)
    b.video = torch.zeros_like(b.video)
    b.video[..., 0, 0] = 10.0  # a subject the zero prediction misses, in the boxed top-left cell
    losses = [
        run_on(b, ObjectiveConfig(tasks={"t2v": 1.0}, focus_weight=w)).per_modality["video"] for w in (0, 7)
    ]
    assert losses[1] > 1.5 * losses[0]
    # noisier samples than focus_max_sigma keep an even loss (here all of them)
    capped = run_on(b, ObjectiveConfig(tasks={"t2v": 1.0}, focus_weight=7.0, focus_max_sigma=0.01))
    assert capped.per_modality["video"] == pytest.approx(losses[0])
    with pytest.raises(ValueError, match="focus_weight: 7.0 needs data that marks its subjects' boxes"):
        run_on(batch(), ObjectiveConfig(tasks={"t2v": 1.0}, focus_weight=7.0))


def test_control_maps_follow_the_codecs_frames_per_latent_frame():
    """A trajectory known per pixel frame is read at each latent frame's own pixel frame: 2 apart for a codec
    that packs 2 frames into a latent (the toy preset), as the pipeline's maps are, not Wan's 4."""
    b = boxed_batch(size=1, latent_frames=3, temporal=2)
    points = np.array([[4.0, 4.0], [12.0, 4.0], [20.0, 4.0], [28.0, 4.0], [28.0, 12.0]])
    b.motion = torch.from_numpy(np.concatenate([points, np.full((5, 3), np.nan)], axis=1)).float()[None]
    model = Recorder()
    model.config = SimpleNamespace(control_channels=CONTROL_CHANNELS)
    config = ObjectiveConfig(tasks={"t2v": 1.0}, trajectory_probability=1.0, camera_probability=0.0)
    flow_matching_loss(
        model, b, torch.zeros(1, 5, 8), torch.ones(1, 5, dtype=torch.bool), config, torch.Generator()
    )
    expected = control_maps((3, 4, 4), (32, 32), trajectory=Trajectory(points), temporal=2)
    assert torch.allclose(model.streams[0].control[0], expected)


def run_on(b, config):
    return flow_matching_loss(
        Recorder(), b, torch.zeros(1, 5, 8), torch.ones(1, 5, dtype=torch.bool), config, torch.Generator()
    )


def frame_correlation(video):
    """Mean correlation of latent frames 1 and 2 over the samples of a (B, C, F, H, W) tensor."""
    a, b = video[:, :, 1].flatten(1), video[:, :, 2].flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean())


def test_a_model_that_learns_under_shared_frame_noise_is_trained_with_it():
    """The video's noise shares the model's `shared_frame_noise` across latent frames; the audio's does not."""
    b = batch(16)
    b.video = torch.zeros(16, 4, 3, 16, 16)  # x_t is the noise alone, scaled
    b.audio = torch.zeros_like(b.audio)
    for shared, low, high in ((0.0, -0.1, 0.1), (0.7, 0.6, 0.8)):
        model = Recorder()
        model.config = {"shared_frame_noise": shared}
        flow_matching_loss(
            model,
            b,
            torch.zeros(1, 5, 8),
            torch.ones(1, 5, dtype=torch.bool),
            ObjectiveConfig(tasks={"t2av": 1.0}),
            torch.Generator().manual_seed(0),
        )
        video, audio = model.streams[0].latents, model.streams[1].latents
        assert low < frame_correlation(video) < high
        assert abs(frame_correlation(audio[..., None])) < 0.1
