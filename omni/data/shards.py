"""Reading prepared latent shards as training batches: bucketed, seeded, split across data-parallel ranks.

The batch of a step is a pure function of (folder contents, batch_size, seed, dp_rank, dp_size, step), so a
run resumed at step s sees exactly the batches an uninterrupted run saw from s on. An epoch is a seeded
permutation of every bucket (samples of one latent shape); each bucket's permutation is cut into global
batches of batch_size * dp_size samples (the incomplete rest is dropped), rank r takes the r-th slice of each,
and the global batches of all buckets are visited in a seeded order. So a batch never mixes shapes, all ranks
work on the same shape at a step, and the ranks see disjoint samples within an epoch.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from torch import Tensor

from omni.config import read_json
from omni.data.batch import LatentBatch
from omni.data.shard_format import (
    EMPTY_TEXT_FILE,
    INDEX_FILE,
    PROGRESS_FILE,
    TENSORS,
    ShardLayout,
    check_format,
    tensor_key,
)

OPEN_SHARDS = 16  # shard files kept memory-mapped at once


@dataclass(frozen=True)
class SampleLocation:
    """Where sample `index` lives: shard number, position in the shard, and its bucket key (its shapes)."""

    shard: int
    position: int
    bucket: str


class LatentShards:
    """A folder written by `omni prepare`, read lazily (only the tensors a batch needs).

    Attributes:
        folder: the folder.
        index: its parsed `index.json`.
        empty_text: (1, Lt, D) float32, the encoded empty prompt; empty_text_mask: (1, Lt) bool.
        layout: the latent layout of the codecs the folder was prepared with.
        video_frame_seconds, audio_frame_seconds: seconds between latent frames of each stream.
    """

    def __init__(self, folder: str | os.PathLike[str]):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"latent shards folder not found: {folder} (write one with `omni prepare`)"
            )
        if not (folder / INDEX_FILE).is_file():
            if (folder / PROGRESS_FILE).is_file():
                raise FileNotFoundError(
                    f"{folder} has no {INDEX_FILE}: its `omni prepare` run did not finish; rerun it to resume"
                )
            raise FileNotFoundError(f"{folder} has no {INDEX_FILE}: not a folder written by `omni prepare`")
        self.folder = folder
        self.index = read_json(folder / INDEX_FILE, "the shard index")
        check_format(self.index, folder / INDEX_FILE)
        self.layout = ShardLayout(**self.index["layout"])
        self.video_frame_seconds = float(self.index["video_frame_seconds"])
        self.audio_frame_seconds = float(self.index["audio_frame_seconds"])
        self._shard_files = [folder / shard["file"] for shard in self.index["shards"]]
        self._locations = self._read_locations()
        self._buckets = _group(self._locations)
        self._open: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.empty_text, self.empty_text_mask = self._read_empty_text()

    def __len__(self) -> int:
        return len(self._locations)

    @property
    def buckets(self) -> dict[str, int]:
        """Bucket key (the JSON of its tensor shapes) -> number of samples."""
        return {key: len(indices) for key, indices in self._buckets.items()}

    def _read_locations(self) -> list[SampleLocation]:
        locations = []
        for number, shard in enumerate(self.index["shards"]):
            sidecar = read_json(self.folder / shard["sidecar"], "a shard's sidecar")
            check_format(sidecar, self.folder / shard["sidecar"])
            records = sidecar["samples"]
            if len(records) != shard["samples"] or not self._shard_files[number].is_file():
                raise ValueError(
                    f"{self.folder / shard['file']}: missing or not the shard the index lists "
                    f"({len(records)} samples in its sidecar, {shard['samples']} in the index); "
                    "prepare the folder again"
                )
            for position, record in enumerate(records):
                locations.append(
                    SampleLocation(number, position, json.dumps(record["shapes"], sort_keys=True))
                )
        if not locations:
            raise ValueError(
                f"{self.folder}: holds no samples ({len(self.index.get('skipped', []))} clips were skipped)"
            )
        return locations

    def _read_empty_text(self) -> tuple[Tensor, Tensor]:
        path = self.folder / EMPTY_TEXT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the encoded empty prompt is missing; prepare the folder again")
        with safe_open(str(path), framework="pt") as file:
            text, mask = file.get_tensor("text").float(), file.get_tensor("text_mask").bool()
        if tuple(text.shape) != (1, self.layout.text_tokens, self.layout.text_dim):
            expected = (1, self.layout.text_tokens, self.layout.text_dim)
            raise ValueError(f"{path}: text is {tuple(text.shape)}, the index says (1, Lt, D) = {expected}")
        return text, mask

    def marks_subjects(self) -> bool:
        """Prepared shards carry no subject boxes (what a recipe's `focus_weight` needs)."""
        return False

    def check_transformer(self, config) -> None:
        """Refuse a transformer (its config) whose input widths differ from the prepared latents'."""
        wrong = self.layout.misfits(config)
        if wrong:
            details = ", ".join(f"{key}={got} (shards need {need})" for key, (got, need) in wrong.items())
            raise ValueError(
                f"{self.folder} was prepared with codecs {self.index.get('codecs')!r} whose latents do not "
                f"fit this transformer: {details}"
            )

    # ---------------------------------------------------------------------------------------- sampling

    def steps_per_epoch(self, batch_size: int, dp_size: int = 1) -> int:
        """Steps in one pass over the data: full global batches of every bucket."""
        return sum(len(indices) // (batch_size * dp_size) for indices in self._buckets.values())

    def batch_indices(self, batch_size: int, seed: int, dp_rank: int, dp_size: int, step: int) -> list[int]:
        """The sample indices rank `dp_rank` trains on at `step` (a pure function of its arguments)."""
        _check_sampling(batch_size, seed, dp_rank, dp_size, step)
        steps = self.steps_per_epoch(batch_size, dp_size)
        if steps == 0:
            largest = max(len(indices) for indices in self._buckets.values())
            raise ValueError(
                f"batch_size {batch_size} x dp_size {dp_size} = {batch_size * dp_size} samples per step, but "
                f"the largest bucket of {self.folder} holds {largest}; lower the batch size or add clips"
            )
        epoch, position = divmod(step, steps)
        plan = self._epoch_plan(batch_size, dp_size, seed, epoch)
        return plan[position][dp_rank].tolist()

    @lru_cache(maxsize=2)  # noqa: B019 - the instance lives as long as training; two epochs cover a boundary
    def _epoch_plan(self, batch_size: int, dp_size: int, seed: int, epoch: int) -> list[np.ndarray]:
        """Global batches of one epoch, each (dp_size, batch_size) sample indices, in visiting order."""
        rng = np.random.default_rng([seed, epoch])
        batches = []
        for key in sorted(self._buckets):
            indices = rng.permutation(self._buckets[key])
            full = len(indices) // (batch_size * dp_size)
            batches.extend(indices[: full * batch_size * dp_size].reshape(full, dp_size, batch_size))
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]

    def batches(
        self,
        batch_size: int,
        seed: int,
        dp_rank: int = 0,
        dp_size: int = 1,
        start_step: int = 0,
        prefetch: int = 2,
    ) -> Iterator[LatentBatch]:
        """An endless iterator of this rank's batches from `start_step` on (CPU tensors, float32).

        `prefetch` batches are loaded ahead in a background thread (0: load on demand); the order is the same.
        """
        _check_sampling(batch_size, seed, dp_rank, dp_size, start_step)
        self.batch_indices(batch_size, seed, dp_rank, dp_size, start_step)  # fail here on a too-large batch

        def load(step: int) -> LatentBatch:
            return self.load(self.batch_indices(batch_size, seed, dp_rank, dp_size, step))

        return load_ahead(load, start_step, prefetch)

    # ----------------------------------------------------------------------------------------- loading

    def load(self, indices: list[int]) -> LatentBatch:
        """The samples `indices` (all of one bucket) stacked into a batch, float32 (masks bool)."""
        if not indices:
            raise ValueError("a batch needs at least one sample index")
        keys = {self._location(i).bucket for i in indices}
        if len(keys) > 1:
            raise ValueError(f"samples {indices} have different shapes; a batch holds one bucket")
        samples = [self.sample(i) for i in indices]
        size = (int(self.index["height"]), int(self.index["width"]))
        return stack_samples(samples, self.video_frame_seconds, self.audio_frame_seconds, size)

    def sample(self, index: int) -> dict[str, Tensor]:
        """Sample `index`'s tensors: video (C, f, h, w), audio (C', T, M), reference (C, 1, h, w),
        text (Lt, D), motion (F, 5) as float32 and text_mask (Lt,) bool."""
        location = self._location(index)
        with self._lock:
            file = self._shard(location.shard)
            tensors = {name: file.get_tensor(tensor_key(location.position, name)) for name in TENSORS}
        return {name: t.bool() if name == "text_mask" else t.float() for name, t in tensors.items()}

    def record(self, index: int) -> dict[str, Any]:
        """Sample `index`'s sidecar record: clip id, caption, source files, frames, shapes."""
        location = self._location(index)
        sidecar = read_json(
            self.folder / self.index["shards"][location.shard]["sidecar"], "a shard's sidecar"
        )
        return sidecar["samples"][location.position]

    def _location(self, index: int) -> SampleLocation:
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < len(self):
            raise IndexError(f"sample index must be an integer in [0, {len(self)}), got {index!r}")
        return self._locations[index]

    def _shard(self, number: int):
        """The memory-mapped shard `number`, keeping the most recently used `OPEN_SHARDS` open."""
        if number in self._open:
            self._open.move_to_end(number)
            return self._open[number]
        handle = safe_open(str(self._shard_files[number]), framework="pt")
        self._open[number] = handle
        if len(self._open) > OPEN_SHARDS:
            self._open.popitem(last=False)
        return handle


def _group(locations: list[SampleLocation]) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for index, location in enumerate(locations):
        groups.setdefault(location.bucket, []).append(index)
    return {key: np.array(indices, dtype=np.int64) for key, indices in groups.items()}


def _check_sampling(batch_size: int, seed: int, dp_rank: int, dp_size: int, step: int) -> None:
    for name, value, low in (
        ("batch_size", batch_size, 1),
        ("dp_size", dp_size, 1),
        ("step", step, 0),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(dp_rank, bool) or not isinstance(dp_rank, int | np.integer) or not 0 <= dp_rank < dp_size:
        raise ValueError(f"dp_rank must be an integer in [0, dp_size={dp_size}), got {dp_rank!r}")


def stack_samples(
    samples: list[dict[str, Tensor]], video_frame_seconds: float, audio_frame_seconds: float, frame_size
) -> LatentBatch:
    """Samples' tensors (each as `LatentShards.sample` returns them) stacked into one batch."""
    stacked = {name: torch.stack([sample[name] for sample in samples]) for name in TENSORS}
    boxes = [sample.get("subject_boxes") for sample in samples]
    stacked["subject_boxes"] = None if any(b is None for b in boxes) else torch.stack(boxes)
    return LatentBatch(
        video=stacked["video"],
        audio=stacked["audio"],
        text=stacked["text"],
        text_mask=stacked["text_mask"],
        video_frame_seconds=video_frame_seconds,
        audio_frame_seconds=audio_frame_seconds,
        reference=stacked["reference"],
        motion=stacked["motion"],
        frame_size=frame_size,
        subject_boxes=stacked["subject_boxes"],
    )


def load_ahead(load: Callable[[int], LatentBatch], start_step: int, prefetch: int) -> Iterator[LatentBatch]:
    """`load(step)` for step = start_step, start_step + 1, ...: `prefetch` steps ahead in a thread, or on
    demand when it is 0; the order is the same."""
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValueError(f"prefetch must be a non-negative integer, got {prefetch!r}")
    if prefetch == 0:
        return (load(step) for step in count(start_step))
    return _prefetched(load, start_step, prefetch)


def _prefetched(load: Callable[[int], LatentBatch], start_step: int, depth: int) -> Iterator[LatentBatch]:
    """`load(step)` for step = start_step, start_step + 1, ... computed `depth` steps ahead in a thread."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        for step in count(start_step):
            try:
                item: Any = load(step)
            except BaseException as error:  # handed to the consumer, raised there
                item = error
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set() or isinstance(item, BaseException):
                return

    thread = threading.Thread(target=work, name="latent-shards-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
