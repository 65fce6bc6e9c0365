"""Motion control: camera paths and trajectories become control maps the model can read."""

import json

import numpy as np
import pytest
import torch

from omni import LatentStream, OmniTransformer
from omni.conditioning.motion import CAMERA_PRESETS, CONTROL_CHANNELS, CameraPath, Trajectory, control_maps
from tests.helpers import TINY_TRANSFORMER, randomize


def test_trajectory_bump_peaks_where_the_subject_is():
    xs = np.interp(np.arange(9), [0, 4, 8], [4.0, 36.0, 60.0])  # through cell centres at frames 0, 4, 8
    points = np.stack([xs, np.full(9, 44.0)], axis=1)
    maps = control_maps((3, 8, 8), (64, 64), trajectory=Trajectory(points))
    for i, frame in enumerate((0, 4, 8)):  # latent frame i uses pixel frame 4i
        row, col = divmod(int(maps[8, i].argmax()), 8)
        assert (row, col) == (5, int(points[frame, 0] // 8))
    assert maps[7].eq(1).all() and maps[:7].eq(0).all()


def test_sub_cell_offsets_recover_the_exact_position():
    maps = control_maps((1, 8, 8), (64, 64), trajectory=Trajectory(np.array([[21.3, 37.9]])))
    weight, du, dv = maps[8, 0], maps[9, 0], maps[10, 0]
    row, col = divmod(int(weight.argmax()), 8)
    x = (col + 0.5) * 8 + du[row, col] / weight[row, col] * 8
    y = (row + 0.5) * 8 + dv[row, col] / weight[row, col] * 8
    assert abs(x - 21.3) < 1e-3 and abs(y - 37.9) < 1e-3


def test_camera_presets_differ_and_static_has_no_moment():
    maps = {
        name: control_maps((3, 4, 4), (64, 64), camera=CameraPath.preset(name, 9, 64))
        for name in CAMERA_PRESETS
    }
    assert maps["static"][4:7].abs().max() == 0
    assert not torch.allclose(maps["pan-left"], maps["pan-right"])
    assert not torch.allclose(maps["zoom-in"][1:4], maps["zoom-out"][1:4])
    assert all(m[0].eq(1).all() for m in maps.values())


def test_motion_files_are_parsed_and_checked(tmp_path):
    path = tmp_path / "path.json"
    path.write_text(json.dumps({"boxes": [[0.0, 0, 0, 10, 10], [1.0, 50, 50, 60, 60]]}))
    trajectory = Trajectory.from_json(path, num_frames=17, fps=16)
    assert np.allclose(trajectory.points[0], [5, 5]) and np.allclose(trajectory.points[16], [55, 55])
    path.write_text(json.dumps({"points": [[0.5, 1, 2]]}))
    assert np.isnan(Trajectory.from_json(path, 17, 16).points[0]).all()  # before the first key
    path.write_text(json.dumps({"points": [[1.0, 1, 2], [0.5, 3, 4]]}))
    with pytest.raises(ValueError, match="times must increase"):
        Trajectory.from_json(path, 17, 16)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        CameraPath.from_json(path, 17, 16)
    with pytest.raises(ValueError, match="unknown camera preset 'spin'"):
        CameraPath.preset("spin", 9, 64)


def test_control_starts_as_a_no_op_and_then_steers_the_model():
    model = OmniTransformer(**TINY_TRANSFORMER, control_channels=CONTROL_CHANNELS)
    for name, param in model.named_parameters():
        if "control_embedding" not in name:
            torch.nn.init.normal_(param, std=0.1)
    video = torch.randn(1, 4, 3, 4, 4)
    maps = control_maps((3, 4, 4), (64, 64), camera=CameraPath.preset("pan-left", 9, 64))[None]
    text = torch.randn(1, 5, 16)
    with torch.no_grad():
        plain = model([LatentStream("video", video, torch.full((1,), 500.0))], text)[0]
        steered = model([LatentStream("video", video, torch.full((1,), 500.0), control=maps)], text)[0]
        assert torch.equal(plain, steered)  # zero-initialised
        randomize(model.experts["video"].control_embedding)
        steered = model([LatentStream("video", video, torch.full((1,), 500.0), control=maps)], text)[0]
    assert not torch.allclose(plain, steered)


def test_models_without_control_refuse_control_maps():
    model = OmniTransformer(**TINY_TRANSFORMER)
    maps = torch.zeros(1, CONTROL_CHANNELS, 3, 4, 4)
    with pytest.raises(ValueError, match="no motion control"):
        model(
            [LatentStream("video", torch.zeros(1, 4, 3, 4, 4), torch.zeros(1), control=maps)],
            torch.zeros(1, 5, 16),
        )
