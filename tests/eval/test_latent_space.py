"""scripts/measure_latent_space.py: the share of variance a grouping explains, and the share of fine detail."""

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[2] / "scripts" / "measure_latent_space.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("latent_space", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_channel_set_by_the_room_is_explained_and_a_noise_channel_is_not(script):
    generator = torch.Generator().manual_seed(0)
    rooms = ["grey", "blue", "green"] * 40
    level = {"grey": -1.0, "blue": 0.0, "green": 1.0}
    x = torch.randn(len(rooms), 2, 4, 4, generator=generator)
    x[:, 0] = 0.1 * x[:, 0] + torch.tensor([level[r] for r in rooms])[:, None, None]
    per_channel, together = script.explained_share(x, rooms)
    assert per_channel[0] > 0.95 and abs(per_channel[1]) < 0.1
    assert 0.3 < together < 0.5  # both channels of similar variance: half the whole is explained
    x[:, 1] *= 0.01  # the noise channel's variance shrinks: the whole is now nearly all room
    assert script.explained_share(x, rooms)[1] > 0.95
    with pytest.raises(ValueError, match="2 or more groups"):
        script.explained_share(x, ["grey"] * len(rooms))


def test_a_checkerboard_is_fine_detail_and_a_slow_wave_is_not(script):
    board = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    wave = torch.cos(2 * torch.pi * torch.arange(8) / 8)[None, :].expand(8, 8)
    share = script.high_frequency_share(torch.stack([board, wave]).float()[None])
    assert share[0] > 0.99 and share[1] < 0.01


def test_the_measurement_runs_on_a_pipeline(script, tiny_pipeline):
    result = script.measure(tiny_pipeline, clips=6, frames=9)
    channels = tiny_pipeline.vae.config.z_dim
    assert result["clips"] <= 6 and len(result["room_r2_per_channel"]) == channels
    assert len(result["high_frequency_share"]) == channels
    assert all(torch.isfinite(torch.tensor(result["room_r2_per_channel"])))
