"""Learned metrics as plugins: each loads its weights from a local folder, or reports itself unavailable.

`--metric-weights` names either a folder with one sub-folder per metric (`clip/`, `dino/`, `clap/`, `i3d/`)
or a YAML file mapping those names to folders (relative to the file). Nothing is ever fetched from a model
hub: loading sets HF_HUB_OFFLINE and passes local_files_only=True.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from omni.config import ConfigError, from_dict, load_yaml
from omni.eval.harness.decoded import DecodedMedia
from omni.eval.harness.suite import SuiteItem
from omni.models.weights import check_safetensors_only


class MetricUnavailable(Exception):
    """A learned metric cannot run here (no weights, unreadable weights); the message is one line."""


class LearnedMetric:
    """Base of the plugins. Per item: `item_metrics`; per system (FVD): `item_features` then `set_metrics`."""

    name = ""

    def item_metrics(self, item: SuiteItem, output: DecodedMedia) -> dict[str, float]:
        """Metric values for one output (empty when the metric does not apply to it)."""
        return {}

    def item_features(self, item: SuiteItem, output: DecodedMedia) -> np.ndarray | None:
        """A feature vector for set-level metrics, or None."""
        return None

    def set_metrics(self, features: dict[str, list[np.ndarray]], reference: str | None) -> dict[str, dict]:
        """{system: {metric: value}} from every system's features (see `item_features`)."""
        return {}


@dataclass(frozen=True)
class MetricWeights:
    """Where each learned metric's weights are (None: not available)."""

    clip: str | None = None  # CLIPModel or SiglipModel folder (text-video score)
    dino: str | None = None  # Dinov2Model or ViTModel folder (subject consistency)
    clap: str | None = None  # ClapModel folder (text-audio score)
    i3d: str | None = None  # folder holding InceptionI3d weights as model.safetensors (FVD)


def locate_weights(source: str | Path | None) -> MetricWeights:
    """Read `--metric-weights`: a folder of per-metric sub-folders, or a YAML file of paths. None: no weights."""
    if source is None:
        return MetricWeights()
    source = Path(source)
    if source.is_dir():
        return MetricWeights(
            **{f.name: str(source / f.name) for f in fields(MetricWeights) if (source / f.name).is_dir()}
        )
    if source.suffix in (".yaml", ".yml"):
        data = from_dict(MetricWeights, load_yaml(source), str(source))
        return MetricWeights(
            **{
                f.name: str((source.parent / value).resolve())
                for f in fields(MetricWeights)
                if (value := getattr(data, f.name)) is not None
            }
        )
    raise ConfigError(f"--metric-weights {source}: give a folder (clip/, dino/, clap/, i3d/) or a .yaml file")


def offline() -> dict[str, Any]:
    """Keyword arguments for transformers' `from_pretrained` that forbid any download (and set the env)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return {"local_files_only": True}


def check_model_type(folder: str | Path, what: str, allowed: tuple[str, ...]) -> str:
    """The model_type of the transformers config in `folder`; MetricUnavailable when there is none or it is
    not one of `allowed`."""
    from transformers import AutoConfig

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise MetricUnavailable(f"{what}: no config.json in {folder}")
    model_type = load_pretrained(AutoConfig, folder, what).model_type
    if model_type not in allowed:
        raise MetricUnavailable(
            f"{what}: {folder} holds a {model_type!r} model; expected {' or '.join(allowed)}"
        )
    return model_type


def load_pretrained(cls, folder: str | Path, what: str):
    """`cls.from_pretrained(folder)` offline, turning a missing or unreadable folder, or one holding
    pickle-format weights, into MetricUnavailable."""
    folder = Path(folder)
    try:
        check_safetensors_only(folder)
        return cls.from_pretrained(folder, **offline())
    except (OSError, ValueError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MetricUnavailable(f"{what}: cannot load {folder}: {first_line}") from error


def pooled(output) -> Any:
    """The embedding of a transformers `get_*_features` call (a tensor, or an output's pooler_output)."""
    return output if hasattr(output, "ndim") else output.pooler_output


def text_inputs(tokens, device: str) -> dict[str, Any]:
    """Token ids and mask only: a BERT-style tokenizer's token_type_ids mean nothing to CLIP-like models."""
    return {k: tokens[k].to(device) for k in ("input_ids", "attention_mask") if k in tokens}
