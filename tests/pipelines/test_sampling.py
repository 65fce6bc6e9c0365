"""The one denoising loop: clean tokens never change, guidance rows compose as documented."""

import pytest
import torch

from omni.conditioning.plan import StreamPlan
from omni.pipelines.presets import SchedulerConfig, build_scheduler
from omni.pipelines.sampling import Guidance, GuidanceRows, TextConditioning, denoise


class RecordingModel(torch.nn.Module):
    """Stands in for the transformer: predicts a constant velocity and records what it was given."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, streams, states, mask):
        self.calls.append((streams, states, mask))
        return [torch.ones_like(s.latents) for s in streams]


def text():
    states = torch.randn(1, 3, 8)
    mask = torch.ones(1, 3, dtype=torch.bool)
    return TextConditioning(states, mask, torch.zeros(1, 3, 8), mask)


def i2v_plan():
    clean = torch.randn(1, 4, 3, 2, 2)  # one request: batch 1 serves every sample and guidance row
    mask = torch.tensor([[True, False, False]])
    return StreamPlan("video", (4, 3, 2, 2), clean=clean, clean_mask=mask, condition="image")


def euler(model, plan, steps, guidance, batch_size=1, prompt=None):
    """`denoise` of one plan with the Euler scheduler, no progress bar (`prompt`: default a fresh `text()`)."""
    return denoise(
        model,
        [plan],
        prompt or text(),
        build_scheduler(SchedulerConfig("euler")),
        steps,
        guidance,
        batch_size=batch_size,
        progress=False,
    )


def test_clean_frames_are_never_updated():
    plan = i2v_plan()
    model = RecordingModel()
    for kind in ("euler", "unipc"):
        out = denoise(
            model,
            [plan],
            text(),
            build_scheduler(SchedulerConfig(kind)),
            5,
            Guidance(text=1.0),
            progress=False,
        )[0]
        assert torch.equal(out[0, :, 0], plan.clean[0, :, 0])
        assert not torch.allclose(out[0, :, 1:], plan.clean[0, :, 1:])
    streams = model.calls[0][0]
    assert streams[0].timesteps[0, 0] == 0 and streams[0].timesteps[0, 1] > 0


def test_guidance_rows_skip_unit_scales():
    plans = [i2v_plan(), StreamPlan("audio", (2, 5, 4))]
    assert GuidanceRows.build(plans, Guidance(text=1.0, image=1.0)).rows == [frozenset({"image", "text"})]
    rows = GuidanceRows.build(plans, Guidance(text=4.0, image=1.0))
    assert rows.rows == [frozenset({"image"}), frozenset({"image", "text"})] and rows.scales == [4.0]
    rows = GuidanceRows.build(plans, Guidance(text=4.0, image=2.0))
    assert rows.rows == [frozenset(), frozenset({"image"}), frozenset({"image", "text"})]


def test_guidance_combines_nested_conditions():
    rows = GuidanceRows([frozenset(), frozenset({"image"}), frozenset({"image", "text"})], [2.0, 4.0])
    r0, r1, r2 = torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([4.0])
    assert rows.combine(torch.cat([r0, r1, r2])).item() == 1.0 + 2.0 * (3 - 1) + 4.0 * (4 - 3)


def test_dropped_conditions_are_masked_out_and_text_swapped():
    model = RecordingModel()
    conditioning = text()
    denoise(
        model,
        [i2v_plan()],
        conditioning,
        build_scheduler(SchedulerConfig("euler")),
        1,
        Guidance(text=3.0, image=2.0),
        progress=False,
    )
    streams, states, _ = model.calls[0]
    mask = streams[0].token_mask  # rows: {}, {image}, {image, text}
    assert mask.shape == (3, 3)
    assert mask[0].tolist() == [False, True, True] and mask[1].all() and mask[2].all()
    assert torch.equal(states[0], conditioning.negative_states[0]) and torch.equal(
        states[2], conditioning.states[0]
    )


def test_same_seed_same_latents():
    plan = StreamPlan("audio", (2, 6, 4))
    scheduler = build_scheduler(SchedulerConfig("unipc"))

    def run(seed):
        return denoise(
            RecordingModel(),
            [plan],
            text(),
            scheduler,
            3,
            Guidance(text=1.0),
            torch.Generator().manual_seed(seed),
            progress=False,
        )[0]

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))


def test_one_request_plan_serves_every_sample_and_guidance_row():
    model = RecordingModel()
    plan = i2v_plan()
    out = euler(model, plan, 1, Guidance(text=3.0, image=2.0), batch_size=2)[0]
    assert out.shape == (2, *plan.shape) and torch.equal(
        out[:, :, 0], plan.clean[:, :, 0].expand(2, -1, -1, -1)
    )
    streams, states, _ = model.calls[0]
    mask = streams[0].token_mask  # rows {}, {image}, {image, text}, two samples each
    assert mask.shape == (6, 3) and states.shape[0] == 6
    assert not mask[:2, 0].any() and mask[:2, 1:].all() and mask[2:].all()


def test_denoise_refuses_a_plan_of_several_samples_by_name():
    clean, mask = torch.zeros(2, 4, 3, 2, 2), torch.zeros(2, 3, dtype=torch.bool)
    plan = StreamPlan("video", (4, 3, 2, 2), clean=clean, clean_mask=mask)
    with pytest.raises(ValueError, match="batch 1 for all 2 samples; the video plan holds 2"):
        euler(RecordingModel(), plan, 1, Guidance(), batch_size=2)


class DraftingModel(RecordingModel):
    """A recording model that self-conditions (`OmniTransformer`'s `self_condition`)."""

    config = {"patch_size": (1, 1, 1), "self_condition": True}


def test_a_self_conditioning_model_reads_its_previous_estimate_at_every_step_but_the_first():
    """Each guidance row gets the x_0 its own previous prediction pointed to (x_t - sigma * v); clean frames'
    estimate is the clean frames; a model without the option is never given one."""
    plan = i2v_plan()
    model = DraftingModel()
    euler(model, plan, 3, Guidance(text=3.0, image=2.0), batch_size=2)
    assert model.calls[0][0][0].self_condition is None
    for (before, _, _), (after, _, _) in zip(model.calls, model.calls[1:]):
        stream, later = before[0], after[0]
        assert torch.allclose(
            later.self_condition, stream.sample_estimate(torch.ones_like(stream.latents), (1, 1, 1))
        )
        assert torch.equal(later.self_condition[:, :, 0], plan.clean[:, :, 0].expand(6, -1, -1, -1))
    plain = RecordingModel()
    euler(plain, plan, 3, Guidance(text=3.0))
    assert all(streams[0].self_condition is None for streams, _, _ in plain.calls)


class SharedNoiseModel(RecordingModel):
    """A recording model that learned under noise 90% shared by the latent frames of a video."""

    config = {"patch_size": (1, 1, 1), "shared_frame_noise": 0.9}


def test_a_model_learned_under_shared_frame_noise_starts_from_it():
    """The starting noise of a video's generated frames is shared as the model learned it; other models
    start from independent frames."""
    plan = StreamPlan("video", (4, 3, 16, 16))

    def start(model):
        euler(model, plan, 1, Guidance(text=1.0))
        noise = model.calls[0][0][0].latents[0]  # (C, F, H, W)
        return float(torch.corrcoef(torch.stack([noise[:, 1].flatten(), noise[:, 2].flatten()]))[0, 1])

    assert start(SharedNoiseModel()) > 0.8
    assert abs(start(RecordingModel())) < 0.15


def test_control_guidance_drops_the_control_maps_in_its_row():
    maps = torch.rand(1, 11, 3, 2, 2) + 0.5
    plan = StreamPlan("video", (4, 3, 2, 2), control=maps)
    assert GuidanceRows.build([plan], Guidance(text=4.0)).rows == [
        frozenset({"control"}),
        frozenset({"control", "text"}),
    ]
    model = RecordingModel()
    euler(model, plan, 1, Guidance(text=4.0, control=3.0))
    streams, states, _ = model.calls[0]
    control = streams[0].control  # rows {}, {control}, {control, text}
    assert control.shape[0] == 3 and not control[0].any()
    assert torch.equal(control[1], maps[0]) and torch.equal(control[2], maps[0])
    rows = GuidanceRows.build([plan], Guidance(text=4.0, control=3.0))
    assert rows.scales == [3.0, 4.0]
    assert GuidanceRows.build([StreamPlan("video", (4, 3, 2, 2))], Guidance(control=3.0)).rows[-1] == {"text"}


def test_below_the_guidance_interval_the_model_runs_once_on_the_prompt():
    """Steps at noise levels under `min_sigma` run one row, every condition on and the prompt's text; the steps
    above run every guidance row."""
    model = RecordingModel()
    prompt = text()
    euler(model, i2v_plan(), 6, Guidance(text=3.0, image=2.0, min_sigma=0.5), prompt=prompt)
    sigmas = [float(streams[0].timesteps.max()) / 1000 for streams, _, _ in model.calls]
    rows = [streams[0].latents.shape[0] for streams, _, _ in model.calls]
    assert any(s < 0.5 for s in sigmas) and any(s >= 0.5 for s in sigmas)
    assert rows == [3 if s >= 0.5 else 1 for s in sigmas]
    for (streams, states, _), sigma in zip(model.calls, sigmas):
        if sigma < 0.5:
            mask = streams[0].token_mask  # None: no token dropped
            assert torch.equal(states, prompt.states) and (mask is None or bool(mask.all()))


def test_a_self_conditioning_model_keeps_its_conditioned_estimate_past_the_guidance_interval():
    model = DraftingModel()
    plan = i2v_plan()
    euler(model, plan, 4, Guidance(text=3.0, min_sigma=0.5), batch_size=2)
    first_unguided = next(
        i for i, (streams, _, _) in enumerate(model.calls) if streams[0].latents.shape[0] == 2
    )
    before, after = model.calls[first_unguided - 1][0][0], model.calls[first_unguided][0][0]
    estimate = before.sample_estimate(torch.ones_like(before.latents), (1, 1, 1))
    assert torch.allclose(after.self_condition, estimate[2:])  # rows {}, {text}: the second one's two samples


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True])
def test_guidance_min_sigma_outside_zero_to_one_is_refused(value):
    with pytest.raises(ValueError, match="min_sigma must be a noise level in \\[0, 1\\]"):
        Guidance(min_sigma=value)
