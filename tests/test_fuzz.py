"""Malformed inputs to every reader and parser: only documented error types, bounded time, nothing left behind.

Documented errors: MediaError (media), ConfigError (configs, shot lists), WeightsError (weights), all of them
ValueError subclasses, and FileNotFoundError. Each example must finish within a few seconds.
"""

import contextlib
import time

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omni import media
from omni.apps.project import load_project
from omni.config import ConfigError, from_dict
from omni.models.weights import WeightsError, read_safetensors_header
from omni.pipelines.presets import PresetConfig
from omni.train.config import TrainConfig

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SECONDS_PER_INPUT = 5.0


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    frames = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    audio = np.sin(np.arange(8000) / 16000 * 2 * np.pi * 440).astype(np.float32) * 0.3
    return {
        "mp4": media.write_mp4(root / "a.mp4", frames, 16.0, audio, 16000).read_bytes(),
        "wav": media.write_wav(root / "a.wav", audio, 16000).read_bytes(),
        "png": media.write_png(root / "a.png", frames[0]).read_bytes(),
    }


def _mutate(data: bytes, flips: list[tuple[float, int]], cut: float) -> bytes:
    data = bytearray(data[: max(1, int(len(data) * cut))])
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    return bytes(data)


READERS = {"mp4": media.read_video, "wav": media.read_audio, "png": media.read_image}


@pytest.mark.parametrize("kind", sorted(READERS))
@pytest.mark.filterwarnings("ignore::omni.media.errors.MediaWarning")  # a cut wav is read with a warning
@FUZZ
@given(
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=12),
    cut=st.floats(0.05, 1.0),
)
def test_damaged_media_raise_media_errors_quickly(valid_files, tmp_path, kind, flips, cut):
    path = tmp_path / f"input.{kind}"
    path.write_bytes(_mutate(valid_files[kind], flips, cut))
    start = time.perf_counter()
    with contextlib.suppress(media.MediaError):
        READERS[kind](path)
    assert time.perf_counter() - start < SECONDS_PER_INPUT


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_are_not_media(tmp_path, data):
    for kind, reader in READERS.items():
        path = tmp_path / f"random.{kind}"
        path.write_bytes(data)
        with pytest.raises(media.MediaError):
            reader(path)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(
    data=st.dictionaries(
        st.sampled_from(["name", "transformer", "vae", "scheduler", "pipeline", "x"]), yaml_values, max_size=5
    )
)
def test_model_presets_reject_bad_values_with_config_errors(data):
    with contextlib.suppress(ConfigError):
        from_dict(PresetConfig, data)


@FUZZ
@given(
    data=st.dictionaries(
        st.sampled_from(["model", "data", "steps", "tasks", "optim", "dropout", "y"]), yaml_values, max_size=5
    )
)
def test_train_recipes_reject_bad_values_with_config_errors(data):
    with contextlib.suppress(ConfigError):
        from_dict(TrainConfig, data)


@FUZZ
@given(
    shots=yaml_values,
    extra=st.dictionaries(st.sampled_from(["defaults", "subjects", "memory", "z"]), yaml_values, max_size=3),
)
def test_shot_lists_reject_bad_values_with_config_errors(tmp_path, shots, extra):
    path = tmp_path / "shots.yaml"
    path.write_text(yaml.safe_dump({"shots": shots, **extra}))
    with contextlib.suppress(ConfigError):
        load_project(path)


@FUZZ
@given(st.text(max_size=200))
def test_config_files_of_any_text_give_config_errors(tmp_path, text):
    from omni.config import load_yaml

    path = tmp_path / "c.yaml"
    path.write_text(text)
    try:
        data = load_yaml(path)
        from_dict(TrainConfig, data)
    except ConfigError:
        pass


@FUZZ
@given(st.binary(max_size=256))
def test_weights_headers_of_any_bytes_give_weights_errors(tmp_path, data):
    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    with contextlib.suppress(WeightsError):
        read_safetensors_header(path)


NUMBERS = ["0", "1", "-1", "0.5", "1e400", "-inf", "inf", "nan", "2e-320", str(2**70), "33", "1x1", "", "abc"]
GENERATE_FLAGS = {
    "--task": ["t2av", "t2v", "t2i", "t2a", "i2v", "v2a", "a2v", "extend", "retake", "x"],
    "--seconds": NUMBERS,
    "--chunk-seconds": NUMBERS,
    "--frames": NUMBERS,
    "--fps": NUMBERS,
    "--size": [*NUMBERS, "64x32", "0x0", "16x99999999999999999999"],
    "--steps": NUMBERS,
    "--guidance": NUMBERS,
    "--image-guidance": NUMBERS,
    "--audio-guidance": NUMBERS,
    "--seed": NUMBERS,
    "--start": NUMBERS,
    "--end": NUMBERS,
    "--modality": ["video", "audio", "both", "x"],
    "--keyframe": ["0:FILE", "inf:FILE", "nan:FILE", "1", ":", "0:"],
    "--camera": ["pan-left", "spin", "FILE", "x.json"],
    "--scheduler": ["unipc", "euler", "x"],
    "--device": ["cpu", "cuda", "cuda:7", "tpu", "auto"],
    "--dtype": ["auto", "float32", "int8"],
    "--preset": ["tiny", "nope"],
    "--model": ["FILE", "missing"],
}
FILE_FLAGS = ("--image", "--last-image", "--reference", "--audio", "--video", "--trajectory")


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, valid_files):
    """Inputs a user might name: valid media, damaged media, directories, JSON and YAML of all kinds."""
    root = tmp_path_factory.mktemp("cli_inputs")
    files = {f"ok.{kind}": data for kind, data in valid_files.items()}
    files.update(
        {
            "cut.wav": valid_files["wav"][:100],
            "cut.mp4": valid_files["mp4"][:500],
            "text.png": b"not an image",
            "nested.json": b"[" * 50_000,
            "empty.json": b"",
            "points.json": b'{"points": [[0, 1e400, 2]]}',
            "nested.yaml": b"shots: " + b"[" * 50_000,
            "shots.yaml": b"shots: [{id: a, prompt: x, seconds: .inf}]",
            "bad.safetensors": (200_000).to_bytes(8, "little") + b"[" * 200_000,
            "utf16.yaml": "shots: []".encode("utf-16"),
        }
    )
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "folder").mkdir()
    return [str(root / name) for name in [*files, "folder", "missing.png"]]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_command_line_gives_a_traceback(cli_files, tmp_path, monkeypatch, capsys, data):
    """Any combination of flags and values ends in a one-line error (exit 2) or reaches the model (which is
    replaced here, so nothing generates): never a traceback or an unexpected error."""
    from omni.cli import CLIError, main

    def reached(*args, **kwargs):
        raise CLIError("reached the model")

    monkeypatch.setattr("omni.pipelines.loading.load_model", reached)
    monkeypatch.delenv("OMNI_C2PA_CERT", raising=False)
    monkeypatch.delenv("OMNI_C2PA_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    pick = data.draw
    command = pick(st.sampled_from(["generate", "generate", "generate", "project", "verify"]))
    if command == "generate":
        argv = ["generate", "--prompt", pick(st.text(max_size=20))]
        for flag in pick(st.lists(st.sampled_from(sorted(GENERATE_FLAGS) + list(FILE_FLAGS)), max_size=6)):
            value = pick(st.sampled_from(GENERATE_FLAGS.get(flag, ["FILE"])))
            argv += [f"{flag}={value.replace('FILE', pick(st.sampled_from(cli_files)))}"]
        argv += ["--out", pick(st.sampled_from(["o.mp4", "o.png", "o.wav", "o.txt", ".", "sub/o.mp4"]))]
    elif command == "project":
        argv = [
            "project",
            pick(st.sampled_from(cli_files)),
            "--out",
            pick(st.sampled_from(["f.mp4", "f.png"])),
        ]
    else:
        argv = ["verify", *pick(st.lists(st.sampled_from(cli_files), min_size=1, max_size=3))]
    status = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected error" not in err, (argv, err)
    assert status in (0, 1, 2) if command == "verify" else status == 2, (argv, err)
