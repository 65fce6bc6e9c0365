"""Training checkpoints with `torch.distributed.checkpoint`: written atomically, the last N kept.

A checkpoint is `<root>/step_00001000/`, written first as `<root>/.tmp-step_00001000/` and renamed once
every rank has finished, so a kill at any moment leaves either the previous checkpoint or the new one,
never half of one. It holds the model, optimizer, EMA and each rank's RNG state, and `trainer.json` the step and LR schedule; the data
position is the step (the loader is a function of it). `manifest.json`, written last, holds the size and
sha256 of every other file, so a checkpoint damaged later (a disk error, a truncated copy) is recognised
and a resume falls back to the newest one that verifies. These files are for resuming your own runs;
models you share are exported as safetensors `OmniPipeline` folders.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from omni.config import read_json
from omni.media.atomic import write_json
from omni.train.distributed import DistInfo

PREFIX = "step_"
MANIFEST = "manifest.json"
TRAINER_STATE = "trainer.json"
# What a damaged checkpoint raises while loading: truncated files (EOFError), flipped bytes (RuntimeError from
# torch's reader), a broken `.metadata` (UnpicklingError), missing files or keys.
# torch.distributed.checkpoint wraps a reader's error in CheckpointException, a BaseException.
LOAD_ERRORS = (
    EOFError,
    RuntimeError,
    ValueError,
    OSError,
    KeyError,
    pickle.UnpicklingError,
    CheckpointException,
)


class CheckpointError(ValueError):
    """No checkpoint of a run can be resumed from; the message says why each was skipped."""


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
        found = [
            p
            for p in self.root.glob(f"{PREFIX}*")
            if p.name[len(PREFIX) :].isdigit() and (p / TRAINER_STATE).is_file()
        ]
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
            (tmp / TRAINER_STATE).write_text(json.dumps(record, indent=2))
            write_json(tmp / MANIFEST, {"files": _file_digests(tmp)})
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            for old in self.checkpoints()[: -self.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
        self.dist.barrier()
        return final

    def verify(self, path: Path) -> str | None:
        """None when every file of checkpoint `path` has the size and sha256 its manifest records, else why
        not. A checkpoint written before manifests existed has none and passes (its load is the test)."""
        if not (path / MANIFEST).is_file():
            return None
        try:
            files = read_json(path / MANIFEST, "the checksum manifest")["files"]
            expected = {str(name): (int(v["bytes"]), str(v["sha256"])) for name, v in files.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            return f"its checksum manifest is unreadable ({error})"
        for name, (size, digest) in sorted(expected.items()):
            file = path / name
            if not file.is_file():
                return f"{name} is missing"
            if file.stat().st_size != size:
                return f"{name} has {file.stat().st_size:,} bytes, the manifest records {size:,}"
            if _sha256(file) != digest:
                return f"{name} differs from the checksum the manifest records"
        return None

    def load_newest_intact(self, model, optimizer, ema, scheduler, log) -> tuple[Path, dict] | None:
        """Restore the newest checkpoint that verifies and loads; say (through `log`) which ones were skipped
        and why. None when there is no checkpoint; `CheckpointError` when there are some but none is intact."""
        skipped = []
        for path in reversed(self.checkpoints()):
            problem = self.verify(path)
            if problem is None:
                try:
                    record = self.load(path, model, optimizer, ema, scheduler)
                except LOAD_ERRORS as error:
                    problem = f"cannot be loaded ({_describe(error)})"
                else:
                    if not (path / MANIFEST).is_file():
                        log(
                            f"note: {path} has no checksum manifest (written by an older omni), so it is unverified"
                        )
                    return path, record
            log(f"skipping damaged checkpoint {path}: {problem}")
            skipped.append(f"{path.name}: {problem}")
        if skipped:
            raise CheckpointError(
                f"no checkpoint in {self.root} can be resumed from ({'; '.join(skipped)}); "
                "move them away to start the run afresh"
            )
        return None

    def load(self, path: Path, model, optimizer, ema, scheduler) -> dict:
        """Restore everything in place; returns the trainer state (step, ...)."""
        record = read_json(path / TRAINER_STATE, "the trainer state")
        state = self._state(model, optimizer, ema)
        _drop_state_never_saved(state["optimizer"], dcp.FileSystemReader(str(path)).read_metadata())
        dcp.load(state, checkpoint_id=str(path))
        set_model_state_dict(model, state["model"])
        # Not strict: parameters the checkpoint holds no state for (above) start with none.
        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=StateDictOptions(strict=False))
        ema.load_state_dict(state["ema"])
        torch.set_rng_state(state[f"rng/rank{self.dist.rank}"])
        scheduler.load_state_dict(record.pop("scheduler"))
        return record


def _describe(error: BaseException) -> str:
    """One line for a load failure. CheckpointException's text is the reader's traceback, whose last line
    names the error (e.g. EOFError)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if isinstance(error, CheckpointException):
        return f"a shard cannot be read: {lines[-1] if lines else type(error).__name__}"
    return f"{type(error).__name__}: {' '.join(lines)[:300]}"


def _file_digests(folder: Path) -> dict[str, dict]:
    return {
        p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


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
