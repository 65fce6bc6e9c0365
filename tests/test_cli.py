"""The `omni` command line as a user runs it: outputs on disk, clear errors, nothing partial left behind."""

from pathlib import Path

import av
import numpy as np
import pytest

from omni import media
from omni.cli import main
from omni.media.provenance import verify_file
from tests.media.local_ca import make_test_ca

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
        (["--seconds", "-1"], "--seconds must be a number in (0, 120], got '-1'"),
        (["--task", "retake", "--video", "missing.mp4", "--start", "0", "--end", "1"], "missing.mp4"),
        (["--start", "1"], "--start / --end go with --task retake"),
        (["--camera", "spin.json", "--seconds", "1"], "motion file not found"),
        (["--control-guidance", "3"], "--control-guidance 3 guides the motion control: give --trajectory"),
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


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a command gets as far as loading a model: its checks must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr("omni.pipelines.loading.load_model", refuse)


@pytest.mark.parametrize("only", [None, "OMNI_C2PA_CERT", "OMNI_C2PA_KEY"])
def test_a_broken_signer_fails_before_the_model_loads_and_keeps_the_old_output(
    tmp_path, capsys, monkeypatch, no_model, only
):
    out = tmp_path / "out.png"
    out.write_bytes(b"an earlier signed output")
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    env = {"OMNI_C2PA_CERT": str(tmp_path / "nonexistent.pem"), "OMNI_C2PA_KEY": str(key)}
    for name, value in env.items():
        if only is None or name == only:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    assert generate(tmp_path, "--task", "t2i", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert ("certificate chain file not found" if only is None else "is set but") in err
    assert out.read_bytes() == b"an earlier signed output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem", "out.png"]


def test_a_signature_that_fails_after_generation_leaves_the_old_output(tmp_path, capsys, monkeypatch):
    from omni.media import provenance

    ca = make_test_ca(tmp_path / "ca")
    monkeypatch.setenv("OMNI_C2PA_CERT", str(ca.cert_chain))
    monkeypatch.setenv("OMNI_C2PA_KEY", str(ca.private_key))
    monkeypatch.setattr(provenance, "check_signer", lambda signer: None)

    def fail(path, record, signer):
        raise provenance.ProvenanceError(f"signing {path} failed: the signer went away")

    monkeypatch.setattr(provenance, "sign_file", fail)
    out = tmp_path / "out.png"
    out.write_bytes(b"an earlier signed output")
    assert generate(tmp_path, "--task", "t2i", "--out", str(out)) == 2
    assert "the signer went away" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier signed output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca", "out.png"]


def test_an_unwritable_output_is_refused_before_the_model_loads(tmp_path, capsys, no_model):
    folder = tmp_path / "taken.png"
    folder.mkdir()
    assert generate(tmp_path, "--task", "t2i", "--out", str(folder)) == 2
    assert "is a directory" in capsys.readouterr().err
    if Path("/sys/kernel").is_dir():  # a read-only filesystem, even for root
        assert generate(tmp_path, "--task", "t2i", "--out", "/sys/x.png") == 2
        err = capsys.readouterr().err
        assert "cannot write /sys/x.png" in err and "Traceback" not in err


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    import argparse
    import os
    import signal

    def run(args):
        with media.atomic_output(tmp_path / "clip.mp4") as tmp:
            tmp.write_bytes(b"half a clip")
            os.kill(os.getpid(), signal.SIGTERM)

    parser = argparse.ArgumentParser()
    parser.set_defaults(run=run, command="generate")
    monkeypatch.setattr("omni.cli.build_parser", lambda *command: parser)
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seconds", "inf"], "--seconds must be a number in (0, 120], got 'inf'"),
        (["--seconds", "nan"], "--seconds must be a number in (0, 120], got 'nan'"),
        (["--chunk-seconds", "0"], "--chunk-seconds must be a number in (0, 120], got '0'"),
        (["--keyframe", "inf:key.png"], "--keyframe takes SECONDS:IMAGE with SECONDS in [0, 120]"),
        (["--keyframe", "1.0"], "--keyframe takes SECONDS:IMAGE"),
        (["--seed", "-1"], "--seed must be an integer in [0, 2**63 - 1], got '-1'"),
        (["--seed", str(2**70)], "--seed must be an integer in [0, 2**63 - 1]"),
        (["--camera", "spin"], "--camera 'spin' is neither a preset"),
        (["--fps", "0"], "--fps must be a number in [1, 120]"),
        (["--steps", "0"], "--steps must be an integer in [1, 1000]"),
        (["--guidance", "nan"], "--guidance must be a number in [0, 100]"),
        (["--guidance-min-sigma", "1.5"], "--guidance-min-sigma must be a number in [0, 1]"),
        (["--start=-inf", "--task", "retake"], "--start must be a number"),
        (["--size", "0"], "--size sides must be in [1, 8192]"),
        (["--frames", "-3"], "--frames must be an integer in [1, 100000]"),
    ],
)
def test_every_number_is_checked_when_the_arguments_are_parsed(tmp_path, capsys, no_model, args, message):
    assert generate(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_prompt_that_is_not_utf8_is_refused_by_name(tmp_path, capsys, no_model):
    prompt = b"\xff\xfe".decode("utf-8", "surrogateescape")  # what Python makes of such bytes in argv
    assert main(["generate", "--prompt", prompt, *FAST, "--out", str(tmp_path / "x.mp4")]) == 2
    assert "--prompt is not valid Unicode text" in capsys.readouterr().err


def test_loud_or_truncated_input_audio_is_named_before_generation(tmp_path, capsys, no_model):
    import soundfile

    loud = tmp_path / "loud.wav"
    soundfile.write(loud, np.full(16000, 1.5, np.float32), 16000, subtype="FLOAT")
    out = tmp_path / "out.mp4"
    assert generate(tmp_path, "--task", "a2v", "--audio", str(loud), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"--audio {loud} has 16000 samples outside [-1, 1]" in err and "out.mp4" not in err


def test_a_retake_outside_the_clip_is_refused(tmp_path, capsys):
    clip = media.write_mp4(tmp_path / "clip.mp4", np.zeros((16, 64, 64, 3), np.uint8), 16.0)
    out = tmp_path / "out.mp4"
    args = ["--task", "retake", "--video", str(clip), "--start", "5", "--end", "9", "--out", str(out)]
    assert generate(tmp_path, *args) == 2
    assert "retake range 5 to 9 s is not inside the given clip (0 to 1 s)" in capsys.readouterr().err
    assert not out.exists()


def test_model_folders_that_cannot_load_are_one_line_errors(tmp_path, capsys):
    from omni.pipelines.presets import build_pipeline

    bin_only = tmp_path / "bin_only"
    bin_only.mkdir()
    (bin_only / "model_index.json").write_text("{}")
    (bin_only / "PYTORCH_MODEL.BIN").write_bytes(b"pickle")
    bad_index = tmp_path / "bad_index"
    bad_index.mkdir()
    (bad_index / "model_index.json").write_text("")
    no_weights = tmp_path / "no_weights"
    build_pipeline("tiny", seed=0).save_pretrained(no_weights)
    for weights in (no_weights / "transformer").glob("*.safetensors"):
        weights.unlink()
    for folder, message in [
        (bin_only, "refusing pickle-format weights"),
        (bad_index, f"{bad_index / 'model_index.json'}: the pipeline index is not valid JSON"),
        (no_weights, f"{no_weights / 'transformer'}: no .safetensors weights"),
    ]:
        args = ["generate", "--prompt", "x", "--model", str(folder), "--device", "cpu"]
        assert main([*args, "--out", str(tmp_path / "x.mp4")]) == 2, folder
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_unexpected_error_says_how_to_report_it(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("unsupported operand")

    monkeypatch.setattr("omni.pipelines.loading.load_model", broken)
    assert generate(tmp_path, "--out", str(tmp_path / "x.mp4")) == 1
    err = capsys.readouterr().err
    assert "unexpected error (TypeError: unsupported operand)" in err and "report" in err
    assert "Traceback" not in err


def test_toyworld_render_runs_under_the_omni_command(tmp_path):
    args = ["toyworld", "render", "--count", "1", "--frames", "5", "--size", "16", "--out", str(tmp_path)]
    assert main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy_000000.json", "toy_000000.mp4"]
