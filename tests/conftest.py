"""Shared fixtures: tiny random models that run in well under a second on a CPU."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from omni.models.transformer import OmniTransformer
from tests.helpers import TINY_TRANSFORMER, randomize


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tiny_transformer() -> OmniTransformer:
    return randomize(OmniTransformer(**TINY_TRANSFORMER)).eval()


@pytest.fixture(scope="session")
def tiny_pipeline():
    from omni.pipelines.presets import build_pipeline

    return build_pipeline("tiny", seed=0)


@pytest.fixture(scope="session")
def random_pipeline():
    """A tiny pipeline whose transformer has random (not adaLN-zero) weights, so every input matters."""
    from omni.pipelines.presets import build_pipeline

    pipe = build_pipeline("tiny", seed=1)
    randomize(pipe.transformer, seed=1)
    return pipe


@pytest.fixture(scope="session")
def wan_folders(tmp_path_factory):
    """layout -> (diffusers WanPipeline, its saved folder, the folder `omni convert --from wan` made of it)."""
    from omni.cli import main
    from tests.helpers import tiny_wan_pipeline

    made = {}

    def get(layout: str):
        if layout not in made:
            wan = tiny_wan_pipeline(layout)
            root = tmp_path_factory.mktemp(layout)
            wan.save_pretrained(root / "wan")
            assert main(["convert", "--from", "wan", str(root / "wan"), str(root / "omni")]) == 0
            made[layout] = (wan, root / "wan", root / "omni")
        return made[layout]

    return get
