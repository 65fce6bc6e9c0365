"""Training samples rendered and encoded on the fly from a registered clip source (a procedural world).

Every step's batch is new, and a pure function of the seed, the step and the rank: clip `i` of rank `r` at
step `s` is the source's clip number `(s * dp_size + r) * batch_size + i`, so a resumed run sees exactly the
batches an unstopped one would. DataLoader workers render ahead; without them a thread does.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from omni.data.batch import LatentBatch
from omni.data.clips import ClipFormat, conform
from omni.data.prepare import SampleEncoder
from omni.data.shards import _check_sampling, load_ahead, stack_samples
from omni.data.sources import build_source

# A stream's clips are numbered from here (times the seed + 1), far from the seeds evaluation suites use.
FIRST_CLIP = 10_000_000


class StreamedSamples:
    """Batches of freshly rendered clips from source `source` (e.g. "toyworld"), encoded by `pipe`'s codecs.

    Offers what the trainer reads of `LatentShards`: `batches`, `empty_text`, `empty_text_mask`,
    `video_frame_seconds`, `audio_frame_seconds`, `marks_subjects` and `check_transformer`.
    """

    def __init__(
        self,
        source: str,
        pipe,
        fmt: ClipFormat,
        max_text_tokens: int,
        workers: int = 0,
        options: dict | None = None,
    ):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
        self.source = source
        self.format = fmt
        self.workers = workers
        self.options = dict(options or {})  # the source's own options (e.g. toyworld's num_objects)
        self.encoder = SampleEncoder(pipe, max_text_tokens)
        # an unknown source or option fails here, not in a worker
        build_source(source, fmt, count=1, seed=0, **self.options)
        self.layout = self.encoder.layout
        self.empty_text, self.empty_text_mask = self.encoder.text([""])
        self.video_frame_seconds = pipe.vae_temporal / fmt.fps
        self.audio_frame_seconds = pipe.audio_frame_seconds

    def marks_subjects(self) -> bool:
        """Whether the source's clips carry subject boxes (what a recipe's `focus_weight` needs); asks one clip."""
        (pending,) = build_source(self.source, self.format, count=1, seed=0, **self.options)
        return pending.load().subject_boxes is not None

    def check_transformer(self, config) -> None:
        """Refuse a transformer (its config) whose input widths differ from the codecs' latents."""
        wrong = self.layout.misfits(config)
        if wrong:
            details = ", ".join(f"{key}={got} (the codecs give {need})" for key, (got, need) in wrong.items())
            raise ValueError(f"the {self.source} stream's latents do not fit this transformer: {details}")

    def first_clip(self, batch_size: int, seed: int, dp_rank: int, dp_size: int, step: int) -> int:
        """The source's number of the first clip rank `dp_rank` trains on at `step`."""
        return FIRST_CLIP * (seed + 1) + (step * dp_size + dp_rank) * batch_size

    def load(self, batch_size: int, first: int) -> LatentBatch:
        """Clips `first` .. `first + batch_size - 1`, rendered, conformed and encoded into one batch."""
        clips = [
            pending.load()
            for pending in build_source(
                self.source, self.format, count=batch_size, seed=first, **self.options
            )
        ]
        text, text_mask = self.encoder.text([clip.caption for clip in clips])  # one text encoder call
        samples = []
        for i, clip in enumerate(clips):
            conformed = conform(clip, self.format)
            tensors = self.encoder.encode(conformed, clip, (text[i : i + 1], text_mask[i : i + 1])).tensors
            if conformed.subject_boxes is not None:
                tensors["subject_boxes"] = torch.from_numpy(conformed.subject_boxes)
            samples.append(tensors)
        size = (self.format.height, self.format.width)
        return stack_samples(samples, self.video_frame_seconds, self.audio_frame_seconds, size)

    def batches(
        self,
        batch_size: int,
        seed: int,
        dp_rank: int = 0,
        dp_size: int = 1,
        start_step: int = 0,
        prefetch: int = 2,
    ) -> Iterator[LatentBatch]:
        """An endless iterator of this rank's batches from `start_step` on (CPU tensors, float32)."""
        _check_sampling(batch_size, seed, dp_rank, dp_size, start_step)

        def load(step: int) -> LatentBatch:
            return self.load(batch_size, self.first_clip(batch_size, seed, dp_rank, dp_size, step))

        if self.workers == 0:
            return load_ahead(load, start_step, prefetch)
        steps = _StepBatches(load, start_step, self.workers)
        loader = DataLoader(
            steps, batch_size=None, num_workers=self.workers, prefetch_factor=max(prefetch, 1)
        )
        return iter(loader)


class _StepBatches(IterableDataset):
    """Worker `w` of `W` loads steps start + w, start + w + W, ...; the loader's round robin keeps step order."""

    def __init__(self, load, start_step: int, workers: int):
        self.load, self.start_step, self.workers = load, start_step, workers

    def __iter__(self) -> Iterator[LatentBatch]:
        info = get_worker_info()
        worker = 0 if info is None else info.id
        torch.set_num_threads(1)
        for step in count(self.start_step + worker, self.workers):
            yield self.load(step)
