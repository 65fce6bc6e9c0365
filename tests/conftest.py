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
