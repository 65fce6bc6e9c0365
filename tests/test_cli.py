"""The `omni` command line as a user runs it: outputs on disk, clear errors, nothing partial left behind."""

import av
import numpy as np
import pytest

from omni import media
from omni.cli import main
from omni.media.provenance import verify_file
from omni.media.testing_ca import make_test_ca

FAST = ["--preset", "tiny", "--steps", "2", "--device", "cpu"]


def generate(tmp_path, *args):
    return main(["generate", "--prompt", "a red ball bouncing in a grey room", *FAST, *args])


def test_generate_writes_a_playable_mp4_of_the_requested_duration(tmp_path, capsys, monkeypatch):
    # The unsigned-output notice is shown once per process; another test may have shown it already.
    monkeypatch.setattr("omni.media.provenance._unsigned_warning_shown", False)
    monkeypatch.delenv("OMNI_C2PA_CERT", raising=False)
    monkeypatch.delenv("OMNI_C2PA_KEY", raising=False)
    out = tmp_path / "clip.mp4"
    assert generate(tmp_path, "--seconds", "1.5", "--out", str(out)) == 0
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert video.frames == 24
    clip = media.read_video(out)
    assert clip.num_frames == 24 and clip.audio.shape[-1] == 24000
    printed = capsys.readouterr()
    assert "wrote" in printed.out and "denoise" in printed.out
    assert "random-weight preset tiny" in printed.err and "not signed" in printed.err


@pytest.mark.parametrize(
    ("task", "suffix", "extra"),
    [("t2i", ".png", []), ("t2a", ".wav", ["--seconds", "1"])],
)
def test_images_and_audio_get_their_own_formats(tmp_path, task, suffix, extra):
    out = tmp_path / f"out{suffix}"
    assert generate(tmp_path, "--task", task, "--out", str(out), *extra) == 0
    if suffix == ".png":
        assert media.read_image(out).shape == (64, 64, 3)
    else:
        audio, rate = media.read_audio(out)
        assert rate == 16000 and audio.shape[-1] == 16000


def test_workflow_tasks_from_files(tmp_path):
    clip = tmp_path / "clip.mp4"
    assert generate(tmp_path, "--seconds", "1", "--out", str(clip)) == 0
    key = tmp_path / "key.png"
    media.write_png(key, np.zeros((64, 64, 3), np.uint8))
    runs = {
        "i2v": [
            "--image",
            str(key),
            "--last-image",
            str(key),
            "--reference",
            str(key),
            "--camera",
            "pan-right",
        ],
        "v2a": ["--video", str(clip)],
        "extend": ["--video", str(clip), "--seconds", "0.5"],
        "retake": ["--video", str(clip), "--start", "0.25", "--end", "0.5", "--modality", "audio"],
    }
    for task, args in runs.items():
        out = tmp_path / f"{task}.mp4"
        assert generate(tmp_path, "--task", task, "--out", str(out), *args) == 0, task
    assert media.read_video(tmp_path / "extend.mp4").num_frames == 24
    retaken, original = media.read_video(tmp_path / "retake.mp4"), media.read_video(clip)
    # Video kept, only re-encoded once: the random-weight model's noisy frames lose 2-4 levels to H.264,
    # a regenerated clip differs by tens.
    assert np.abs(retaken.frames.astype(int) - original.frames.astype(int)).mean() < 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "32"], "nearest valid value is 33"),
        (["--size", "50"], "height=50 is not a multiple of 16"),
        (["--task", "i2v"], "needs an image"),
        (["--task", "t2i", "--out", "x.mp4"], "writes a .png file"),
        (["--seconds", "-1"], "seconds must be in"),
        (["--task", "retake", "--video", "missing.mp4", "--start", "0", "--end", "1"], "missing.mp4"),
        (["--start", "1"], "--start / --end go with --task retake"),
        (["--camera", "spin.json", "--seconds", "1"], "motion file not found"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert generate(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.mp4")) and not list(tmp_path.rglob("*.png"))


def test_corrupt_media_is_refused_and_nothing_is_written(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    out = tmp_path / "out.mp4"
    assert generate(tmp_path, "--task", "i2v", "--image", str(bad), "--out", str(out)) == 2
    assert "bad.png" in capsys.readouterr().err and not out.exists()


def test_outputs_are_signed_when_a_certificate_is_configured(tmp_path, monkeypatch):
    ca = make_test_ca(tmp_path / "ca")
    monkeypatch.setenv("OMNI_C2PA_CERT", str(ca.cert_chain))
    monkeypatch.setenv("OMNI_C2PA_KEY", str(ca.private_key))
    out = tmp_path / "signed.mp4"
    assert generate(tmp_path, "--seconds", "1", "--seed", "7", "--out", str(out)) == 0
    result = verify_file(out, trust_anchors=ca.root_cert)
    assert result.status == "valid" and result.record.seed == 7 and result.record.task == "t2av"
    assert main(["verify", str(out), "--trust-anchors", str(ca.root_cert)]) == 0
