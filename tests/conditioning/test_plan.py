"""One StreamPlan for training and sampling: checked on construction, broadcast from one request, and
dropping a condition hides the same tokens on both sides."""

import pytest
import torch

from omni.conditioning.plan import StreamPlan
from omni.data.batch import LatentBatch
from omni.pipelines.presets import SchedulerConfig, build_scheduler
from omni.pipelines.sampling import Guidance, TextConditioning, denoise
from omni.train.objective import ObjectiveConfig, flow_matching_loss

SHAPE = (4, 3, 2, 2)


class Recorder(torch.nn.Module):
    """Predicts zeros and records the streams of each call."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.calls = []

    def forward(self, streams, text, mask):
        self.calls.append(streams)
        return [torch.zeros_like(s.latents) + self.weight for s in streams]

    def num_tokens(self, streams):
        return sum(s.latents[0, 0].numel() // 4 for s in streams)


def i2v_plan(batch=1):
    mask = torch.tensor([True, False, False]).expand(batch, 3)
    return StreamPlan("video", SHAPE, clean=torch.randn(batch, *SHAPE), clean_mask=mask, condition="image")


def test_a_dropped_condition_hides_the_same_tokens_in_training_and_sampling():
    g = torch.Generator().manual_seed(0)
    batch = LatentBatch(
        video=torch.randn(2, *SHAPE, generator=g),
        audio=None,
        text=torch.randn(2, 5, 8, generator=g),
        text_mask=torch.ones(2, 5, dtype=torch.bool),
        video_frame_seconds=0.25,
        audio_frame_seconds=0.04,
    )
    trainee = Recorder()
    config = ObjectiveConfig(tasks={"i2v": 1.0}, dropout_image=1.0, dropout_text=0.0)
    empty = torch.zeros(1, 5, 8), torch.ones(1, 5, dtype=torch.bool)
    flow_matching_loss(trainee, batch, *empty, config, torch.Generator().manual_seed(0))
    sampler = Recorder()
    states, mask = torch.randn(1, 5, 8), torch.ones(1, 5, dtype=torch.bool)
    scheduler = build_scheduler(SchedulerConfig("euler"))
    text = TextConditioning(states, mask, states, mask)
    denoise(sampler, [i2v_plan()], text, scheduler, 1, Guidance(text=1.0, image=2.0), progress=False)
    trained, sampled = trainee.calls[0][0], sampler.calls[0][0]  # sampling rows: {text}, {image, text}
    assert trained.token_mask.tolist() == [[False, True, True]] * 2 == sampled.token_mask[:1].tolist() * 2
    assert sampled.token_mask[1].all()
    assert trained.timesteps[:, 0].eq(0).all() and sampled.timesteps[:, 0].eq(0).all()


def test_per_sample_plan_gives_each_sample_its_mask_and_presence():
    mask = torch.tensor([[True, False, False], [False, False, False]])
    plan = StreamPlan(
        "video", SHAPE, clean=torch.randn(2, *SHAPE), clean_mask=mask, present=torch.tensor([True, False])
    )
    stream = plan.stream(torch.randn(2, *SHAPE), torch.tensor([500.0, 700.0]), {})
    assert stream.timesteps.tolist() == [[0.0, 500.0, 500.0], [700.0, 700.0, 700.0]]
    assert stream.token_mask.tolist() == [[True] * 3, [False] * 3]


def test_clean_values_are_written_back_per_frame_and_per_token():
    plan = i2v_plan()
    out = plan.clean_where(torch.zeros(3, *SHAPE))  # one request's values in every sample
    assert torch.equal(out[:, :, 0], plan.clean[:, :, 0].expand(3, -1, -1, -1)) and not out[:, :, 1:].any()
    per_token = torch.zeros(1, 3, 1, 2, dtype=torch.bool)  # (B, F, H/ph, W/pw) with ph = 2, pw = 1
    per_token[0, 1, 0, 1] = True
    plan = StreamPlan("video", SHAPE, clean=torch.ones(1, *SHAPE), clean_mask=per_token, condition="image")
    out = plan.clean_where(torch.zeros(1, *SHAPE))
    assert out[0, :, 1, :, 1].eq(1).all() and out.sum() == 2 * 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(clean=torch.zeros(1, *SHAPE)), "give both clean latents and clean_mask"),
        (
            dict(clean=torch.zeros(SHAPE), clean_mask=torch.ones(1, 3, dtype=torch.bool)),
            "need a batch dimension",
        ),
        (
            dict(clean=torch.zeros(1, 4, 2, 2, 2), clean_mask=torch.ones(1, 2, dtype=torch.bool)),
            "not \\(B, \\*shape\\)",
        ),
        (
            dict(clean=torch.zeros(1, *SHAPE), clean_mask=torch.ones(1, 2, dtype=torch.bool)),
            "covers 2 frames",
        ),
        (dict(clean=torch.zeros(1, *SHAPE), clean_mask=torch.ones(1, 3)), "must be bool"),
        (
            dict(present=torch.ones(2, dtype=torch.bool), control=torch.zeros(1, 11, 3, 2, 2)),
            "one batch size",
        ),
        (dict(present=torch.tensor([1])), "present must be \\(B,\\) bool"),
        (dict(control=torch.zeros(1, 11, 3, 4, 4)), "control maps"),
        (dict(condition="text"), "condition must be 'image', 'audio' or None"),
    ],
)
def test_bad_plans_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StreamPlan("video", SHAPE, **kwargs)


def test_a_plan_serves_its_own_batch_or_broadcasts_one_sample():
    with pytest.raises(ValueError, match="unknown modality"):
        StreamPlan("depth", SHAPE)
    plan = i2v_plan(batch=2)
    with pytest.raises(ValueError, match="holds 2 samples"):
        plan.stream(torch.zeros(3, *SHAPE), 500.0, {})
    with pytest.raises(ValueError, match="not \\(N, \\*shape\\)"):
        plan.stream(torch.zeros(2, 4, 3, 4, 4), 500.0, {})
    with pytest.raises(ValueError, match="dropped\\['image'\\] has shape \\(1,\\), not \\(2,\\)"):
        plan.stream(torch.zeros(2, *SHAPE), 500.0, {"image": torch.ones(1, dtype=torch.bool)})
