"""scripts/measure_latent_space.py: the share of variance a grouping explains, and the share of fine detail."""

import numpy as np
import pytest
import torch

from tests.helpers import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("measure_latent_space")


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
    assert abs(script.explained_share(x, None)[1]) < 0.05  # the mean clip knows no room


def test_what_every_clip_shares_at_a_position_needs_no_caption(script):
    """A first frame brighter in every clip (a causal VAE's first latent frame, say) is explained by the
    mean clip alone; the room's share adds to it only what the room decides."""
    generator = torch.Generator().manual_seed(0)
    rooms = ["grey", "blue"] * 30
    x = 0.1 * torch.randn(len(rooms), 1, 3, 4, 4, generator=generator)
    x[:, :, 0] += 2.0
    x[:, :, 1:] += torch.tensor([0.5 if r == "grey" else -0.5 for r in rooms]).view(-1, 1, 1, 1, 1)
    mean_clip, room = script.explained_share(x, None)[1], script.explained_share(x, rooms)[1]
    assert 0.6 < mean_clip < room and room > 0.95


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
    assert 0 < result["positions_on_objects"] < 1 and 0 < result["frames"]["positions_on_objects"] < 1
    assert all(torch.isfinite(torch.tensor(result["room_r2_per_channel"])))
    assert result["mean_clip_r2_normalised"] <= result["room_r2_normalised"] + 0.05


def test_object_positions_follow_the_latent_grid(script):
    coverage = np.zeros((1, 5, 8, 8), dtype=np.float32)  # one object, 5 frames of 8x8
    coverage[0, 3, 0, 0] = 1.0  # frame 3 -> latent frame 1 + (3 - 1) // 2 = 2 at temporal 2
    on = script.object_positions(coverage, temporal=2, spatial=2)
    assert on.shape == (3, 4, 4) and on.sum() == 1 and on[2, 0, 0]


def test_variance_on_objects_is_located(script):
    """Latents that vary only where an object is: all unexplained variance lies on the object, and off it
    the room explains everything."""
    generator = torch.Generator().manual_seed(0)
    rooms = ["grey", "blue"] * 20
    x = torch.tensor([0.0 if r == "grey" else 1.0 for r in rooms]).view(-1, 1, 1, 1, 1).expand(-1, 1, 1, 4, 4)
    on = torch.zeros(len(rooms), 1, 4, 4, dtype=torch.bool)
    on[:, 0, 0, 0] = True
    x = x + on[:, None] * torch.randn(len(rooms), 1, 1, 4, 4, generator=generator)
    share = script.split_share(x, rooms, on)
    assert share["positions_on_objects"] == 1 / 16 and share["unexplained_on_objects"] > 0.999
    assert share["room_r2_off_objects"] > 0.999 and share["room_r2_on_objects"] < 0.5
