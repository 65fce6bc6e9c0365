"""The exported weights are an EMA of the trained ones: short runs (a GPU stretch of a few hundred steps)
must export recent weights, long ones a smooth average."""

import math

import pytest
import torch
from torch import nn

from omni.train.config import EMASection
from omni.train.ema import EMA


def test_the_weights_are_copied_until_the_start_step_then_the_decay_grows_to_its_cap():
    ema = EMASection(decay=0.999, start_step=300)
    assert [ema.decay_at(step) for step in (0, 299, 300)] == [0.0, 0.0, 0.0]
    assert ema.decay_at(301) == pytest.approx(0.25)
    assert ema.decay_at(400) < ema.decay_at(1000) < 0.999
    assert ema.decay_at(2300) == ema.decay_at(100_000) == 0.999


def weight_of_start(ema: EMASection, steps: int) -> float:
    """The share of the weights at `start_step` in the average `steps` steps later."""
    return math.prod(ema.decay_at(ema.start_step + n) for n in range(1, steps + 1))


def test_an_export_two_hundred_steps_after_the_start_is_mostly_recent_weights():
    ema = EMASection(decay=0.999, start_step=300)
    assert weight_of_start(ema, 200) < 1e-3
    # the second half of the steps carries most of the average
    later_half = 1 - math.prod(ema.decay_at(ema.start_step + n) for n in range(101, 201))
    assert later_half > 0.7
    # the fixed decay it replaces kept 82% of the start's weights
    assert 0.999**200 > 0.8


def test_update_moves_the_shadow_towards_the_weights_by_one_minus_the_decay():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, 0.75)
    assert torch.allclose(ema.state_dict()["weight"], torch.full((1, 2), 0.25))
    ema.update(model, 0.0)
    assert torch.allclose(ema.state_dict()["weight"], torch.ones(1, 2))
