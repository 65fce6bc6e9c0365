"""Training checkpoints with `torch.distributed.checkpoint`: written atomically, the last N kept.

A checkpoint is `<root>/step_00001000/`, written first as `<root>/.tmp-step_00001000/` and renamed once
every rank has finished, so a kill at any moment leaves either the previous checkpoint or the new one,
never half of one. It holds the model, optimizer, EMA and each rank's RNG state, and `trainer.json` the step and LR schedule; the data
position is the step (the loader is a function of it). These files are for resuming your own runs; models
you share are exported as safetensors `OmniPipeline` folders.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from omni.train.distributed import DistInfo

PREFIX = "step_"


class CheckpointManager:
    def __init__(self, root: str | Path, keep_last: int, dist_info: DistInfo):
        if keep_last < 1:
            raise ValueError(f"checkpoint.keep_last must be at least 1, got {keep_last}")
        self.root = Path(root).expanduser()
        self.keep_last = keep_last
        self.dist = dist_info

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.glob(f"{PREFIX}*") if (p / "trainer.json").is_file()]
        return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def _state(self, model, optimizer, ema) -> dict:
        return {
            "model": get_model_state_dict(model),
            "optimizer": get_optimizer_state_dict(model, optimizer),
            "ema": ema.state_dict(),
            f"rng/rank{self.dist.rank}": torch.get_rng_state(),
        }

    def save(self, step: int, model, optimizer, ema, scheduler, trainer_state: dict) -> Path:
        final = self.root / f"{PREFIX}{step:08d}"
        tmp = self.root / f".tmp-{PREFIX}{step:08d}"
        if self.dist.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.dist.barrier()
        dcp.save(self._state(model, optimizer, ema), checkpoint_id=str(tmp))
        self.dist.barrier()
        if self.dist.is_main:
            record = {"step": step, "scheduler": scheduler.state_dict(), **trainer_state}
            (tmp / "trainer.json").write_text(json.dumps(record, indent=2))
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            for old in self.checkpoints()[: -self.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
        self.dist.barrier()
        return final

    def load(self, path: Path, model, optimizer, ema, scheduler) -> dict:
        """Restore everything in place; returns the trainer state (step, ...)."""
        state = self._state(model, optimizer, ema)
        _drop_state_never_saved(state["optimizer"], dcp.FileSystemReader(str(path)).read_metadata())
        dcp.load(state, checkpoint_id=str(path))
        set_model_state_dict(model, state["model"])
        # Not strict: parameters the checkpoint holds no state for (above) start with none.
        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=StateDictOptions(strict=False))
        ema.load_state_dict(state["ema"])
        torch.set_rng_state(state[f"rng/rank{self.dist.rank}"])
        record = json.loads((path / "trainer.json").read_text())
        scheduler.load_state_dict(record.pop("scheduler"))
        return record


def _drop_state_never_saved(optimizer_state: dict, metadata) -> None:
    """Forget, in place, the optimizer state of parameters the checkpoint holds none for.

    A parameter that never had a gradient (image-only training never reaches the motion-control embedding)
    has no optimizer state when a checkpoint is saved, while the state a fresh optimizer lays out to load
    into has an entry for every parameter. Such a parameter resumes with no state, as it is in a run that
    was not stopped. A parameter saved with only part of its state is left for the load to refuse.
    """
    saved = metadata.state_dict_metadata
    state = optimizer_state.get("state", {})
    for name in list(state):
        if not any(f"optimizer.state.{name}.{key}" in saved for key in state[name]):
            del state[name]
