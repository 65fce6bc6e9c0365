"""A codec stage's training state mid-way, so that a stopped run loses minutes, not hours.

`omni codecs` saves a stage only when it finishes. The stages are long on a CPU (the toy vocoder trains
7000 steps, about two hours), so every few minutes the stage's state goes into one safetensors file beside
the stage folders, `stages/<name>.partial.safetensors`:

- the weights of its modules;
- its optimizers' state;
- its random generators;
- the seed of the next clip it would draw;
- the losses so far;
- the settings the run was started with, and the stage's architecture.

The file is written beside the old one, flushed to disk, then swapped in: a run killed at any moment
leaves either the previous state or the new one whole. A rerun with the same settings goes on from the saved step, drawing the
same clips and random numbers an uninterrupted run would have drawn. A rerun with other settings is
refused, naming what changed. The file is removed once the stage folder is saved. No pickle: tensors are
stored as tensors, the rest as JSON in the file's metadata.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

# Settings that change how fast or where a run trains, not what it learns: a rerun may change them.
RUN_ONLY_SETTINGS = frozenset({"workers", "device", "eval_clips", "checkpoint_minutes"})


class Seekable(Protocol):
    position: int  # seed of the next clip to be drawn

    def seek(self, seed: int) -> None: ...


@dataclass
class StageState:
    """What a stage must restore to go on where it stopped. `_fit` adds the stage's own optimizer."""

    modules: dict[str, nn.Module]
    clips: Seekable
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)


class StageCheckpoint:
    """The partial state of one stage at `path`, saved at most every `minutes` (0: never)."""

    def __init__(self, path: str | Path, settings: dict, minutes: float) -> None:
        if minutes < 0:
            raise ValueError(f"checkpoint_minutes must be >= 0 (0: never), got {minutes}")
        self.path = Path(path)
        kept = {k: v for k, v in settings.items() if k not in RUN_ONLY_SETTINGS}
        self.settings = json.loads(json.dumps(kept))  # as the file will give them back (tuples as lists)
        self.minutes = minutes
        self.started = self.last_save = time.monotonic()
        self.earlier_seconds = 0.0  # training time of the sittings before this one (set by `restore`)

    @property
    def seconds(self) -> float:
        """Training time of the stage so far, every sitting counted."""
        return self.earlier_seconds + time.monotonic() - self.started

    def due(self) -> bool:
        return self.minutes > 0 and time.monotonic() - self.last_save >= self.minutes * 60

    def save(self, step: int, losses: list[float], state: StageState) -> None:
        tensors, optimizers = {}, {}
        for name, module in state.modules.items():
            for key, value in module.state_dict().items():
                tensors[f"module.{name}.{key}"] = value.detach().cpu().clone().contiguous()
        for name, optimizer in state.optimizers.items():
            saved = optimizer.state_dict()
            values = {}
            for index, entries in saved["state"].items():
                for key, value in entries.items():
                    if torch.is_tensor(value):
                        tensors[f"optimizer.{name}.{index}.{key}"] = value.detach().cpu().clone().contiguous()
                    else:
                        values.setdefault(str(index), {})[key] = value
            optimizers[name] = {
                "param_groups": saved["param_groups"],
                "indices": [str(index) for index in saved["state"]],
                "values": values,
            }
        for name, generator in state.generators.items():
            tensors[f"generator.{name}"] = generator.get_state()
        progress = {
            "step": step,
            "losses": losses,
            "clip_seed": state.clips.position,
            "seconds": self.seconds,
            "settings": self.settings,
            "optimizers": optimizers,
        }
        tmp = self.path.with_name(f".tmp-{self.path.name}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, tmp, metadata={"progress": json.dumps(progress)})
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())  # on disk before it replaces the state it supersedes
        os.replace(tmp, self.path)  # the previous partial state stays whole until this moment
        self.last_save = time.monotonic()

    def restore(self, state: StageState) -> tuple[int, list[float]]:
        """Load the saved state into `state` and return (steps done, their losses); (0, []) if none."""
        if not self.path.is_file():
            return 0, []
        try:
            with safe_open(self.path, "pt") as f:
                progress = json.loads(f.metadata()["progress"])
                tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (no __iter__)
        except Exception as error:  # truncated, not safetensors, no progress record
            raise ValueError(
                f"{self.path} is not a readable partial stage ({type(error).__name__}: {error}); remove the "
                "file to train this stage from the start"
            ) from None
        changed = sorted(
            key
            for key in set(progress["settings"]) | set(self.settings)
            if progress["settings"].get(key) != self.settings.get(key)
        )
        if changed:
            details = ", ".join(
                f"{k}: {progress['settings'].get(k)!r} -> {self.settings.get(k)!r}" for k in changed
            )
            raise ValueError(
                f"{self.path} holds {progress['step']} steps of a run with other settings ({details}): rerun "
                "with the settings it was started with, or remove the file to train this stage from the start"
            )
        for name, module in state.modules.items():
            prefix = f"module.{name}."
            weights = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(weights)
            except RuntimeError as error:
                raise ValueError(
                    f"{self.path}: the saved {name} does not fit this preset's ({error}); remove the file to "
                    "train this stage from the start"
                ) from None
        for name, optimizer in state.optimizers.items():
            saved = progress["optimizers"][name]
            entries = {}
            for index in saved["indices"]:
                prefix = f"optimizer.{name}.{index}."
                entry = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                entry.update(saved["values"].get(index, {}))
                entries[int(index)] = entry
            optimizer.load_state_dict({"state": entries, "param_groups": saved["param_groups"]})
        for name, generator in state.generators.items():
            generator.set_state(tensors[f"generator.{name}"])
        state.clips.seek(progress["clip_seed"])
        self.earlier_seconds = progress.get("seconds", 0.0)  # files written before it was recorded: 0
        self.started = time.monotonic()
        return progress["step"], progress["losses"]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
