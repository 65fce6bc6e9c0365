"""`omni eval toyworld` end to end on a random-weight model: every capability runs, the table and the JSON
carry every key the issue names, and a random model meets no picture target."""

import json

from omni.cli import main
from omni.toyworld.evaluate import TARGETS

REQUIRED = (
    "color_accuracy",
    "shape_accuracy",
    "motion_accuracy",
    "motion_chance_accuracy",
    "av_sync_median_ms",
    "pitch_accuracy",
    "i2v_first_frame_psnr_db",
    "a2v_beat_error_median_frames",
    "v2a_onset_error_median_frames",
    "a2v_beat_error_chance_frames",
    "v2a_onset_error_chance_frames",
    "a2v_precision",
    "v2a_precision",
    "seconds_per_clip",
    "trajectory_error_px",
    "extension_attribute_persistence",
    "extension_boundary_jump_px",
    "retake_outside_error",
    "project_identity_consistency",
    "shape_iou",
    "direction_error_deg",
    "motion_gap_still",
    "motion_gap_horizontal",
    "motion_gap_vertical",
    "motion_gap_orbit",
    "pieces",
    "t2i_shape_iou",
    "t2i_pieces",
    "t2i_one_piece",
)


def test_every_capability_is_scored_into_the_report(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(
        [
            "eval",
            "toyworld",
            "--preset",
            "tiny",
            "--seeds",
            "1",
            "--steps",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert set(REQUIRED) <= set(report) and set(TARGETS) <= set(report)
    assert report["settings"]["seeds"] == 1 and report["details"]["t2av"][0]["prompt"]
    assert report["color_accuracy"] == 0.0  # noise has no main object of the asked colour
    assert report["seconds_per_clip"] > 0
    # a retake leaves the outside of its range as it was, up to one VAE round trip at most
    assert report["retake_outside_error"] <= report["retake_vae_roundtrip_error"]
    table = capsys.readouterr().out
    assert all(key in table for key in REQUIRED)


def test_motion_chance_is_what_one_motion_for_every_caption_scores():
    """Answering "diagonal" to every caption scores the share of diagonal captions; a model whose motions
    follow the captions beats its chance; no clips, no number."""
    from omni.toyworld.evaluate import motion_chance

    asked = ["diagonal", "diagonal", "vertical", "orbit"]
    assert motion_chance([(a, "diagonal") for a in asked]) == 0.5
    assert motion_chance([(a, a) for a in asked]) == (4 + 1 + 1) / 16
    assert motion_chance([(a, None) for a in asked]) == 0.0
    assert motion_chance([]) != motion_chance([])  # NaN
