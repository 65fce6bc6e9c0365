"""omni works installed from a wheel, not only from this checkout: presets and the built-in model ship as
package data and are found inside the installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

import omni
from omni.config import CONFIG_DIR, load_yaml, resolve_config_path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "omni"


def test_presets_are_found_inside_the_package():
    assert CONFIG_DIR.parent == Path(omni.__file__).resolve().parent
    assert resolve_config_path("tiny") == CONFIG_DIR / "tiny.yaml"
    assert resolve_config_path("toy", "train") == CONFIG_DIR / "train" / "toy.yaml"


def test_package_data_covers_every_preset_and_the_built_in_model():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "omni"
    ]
    shipped = {path for pattern in patterns for path in PACKAGE.glob(pattern) if path.is_file()}
    needed = {p for folder in ("configs", "assets") for p in (PACKAGE / folder).rglob("*") if p.is_file()}
    assert needed - shipped == set(), "files the wheel would leave out"


# Loads omni from the unpacked wheel only: the checkout's editable-install finder is taken off first.
INSTALLED = """
import sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in getattr(f, "__name__", type(f).__module__)]
sys.path.insert(0, sys.argv[1])
from omni.config import CONFIG_DIR, load_yaml, resolve_config_path, load_yaml
from omni.pipelines.presets import load_preset
assert str(CONFIG_DIR).startswith(sys.argv[1]), CONFIG_DIR
print(load_preset("tiny").name, len(load_yaml(resolve_config_path("toy", "train"))))
"""


@pytest.mark.slow
def test_a_wheel_install_loads_presets_by_name(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info next to the sources
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(PACKAGE, source / "omni", ignore=ignore)
    shutil.copytree(REPO / "kernels" / "omni_kernels", source / "kernels" / "omni_kernels", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            wheel_dir,
            source,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheel_dir.glob("omni-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-c", INSTALLED, str(tmp_path / "site")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["tiny", str(len(load_yaml(resolve_config_path("toy", "train"))))]
