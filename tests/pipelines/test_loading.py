"""Loading a model from Python: the README's snippet runs as written, and random weights are always said."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omni.pipelines import loading
from omni.pipelines.loading import load_model

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_python() -> str:
    (block,) = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
    return block


@pytest.mark.slow
def test_readme_python_snippet_runs_as_written_and_gives_the_shapes_it_states(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loading, "BUILTIN_MODEL", tmp_path / "not-installed")
    namespace: dict = {}
    exec(readme_python(), namespace)
    out = namespace["out"]
    stated = dict(re.findall(r"^out\.(\w+)\s+# \(([\d, ]+)\)", readme_python(), re.M))
    assert out.frames.shape == tuple(int(n) for n in stated["frames"].split(","))
    assert out.audio.shape == tuple(int(n) for n in stated["audio"].split(","))
    assert "random-weight preset tiny" in capsys.readouterr().err


def test_the_random_weight_fallback_is_said_and_a_chosen_preset_too(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loading, "BUILTIN_MODEL", tmp_path / "not-installed")
    assert load_model(device="cpu").random_weights
    assert "built-in model is not installed" in capsys.readouterr().err
    assert load_model(preset="tiny", device="cpu").random_weights
    assert "random-weight preset tiny (as asked)" in capsys.readouterr().err


def test_a_folder_loads_without_a_note(tiny_pipeline, tmp_path, capsys):
    tiny_pipeline.save_pretrained(tmp_path / "model")
    loaded = load_model(tmp_path / "model", device="cpu")
    assert not loaded.random_weights and "note" not in capsys.readouterr().err


def test_loading_a_folder_needs_accelerate(tiny_pipeline, tmp_path):
    """Why pyproject declares accelerate though omni never imports it: diffusers loads a model with fp32-kept
    modules only through accelerate's low-memory path."""
    import subprocess
    import sys

    tiny_pipeline.save_pretrained(tmp_path / "model")
    script = f"""
import importlib.util, sys
find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a, **k: None if name == "accelerate" else find_spec(name, *a, **k)
sys.modules["accelerate"] = None
from omni.pipelines.pipeline_omni import OmniPipeline
OmniPipeline.from_pretrained({str(tmp_path / "model")!r})
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "low_cpu_mem_usage" in run.stderr
