"""LatentShards: deterministic bucketed batches split across ranks, exact resumption, clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

from omni.data.clips import SourceClip
from omni.data.prepare import prepare
from omni.data.shards import LatentShards
from omni.data.sources import iterable_source
from omni.train.objective import ObjectiveConfig, flow_matching_loss
from tests.helpers import TINY_TRANSFORMER

SHORT, LONG = 10, 6  # clips of 9 and of 17 frames


def synthetic_clips(fps: float, size: int):
    """SHORT clips of 9 frames and LONG of 17, interleaved so that shards hold both buckets."""
    rng = np.random.default_rng(1)
    lengths = [9] * SHORT + [17] * LONG
    for i in rng.permutation(len(lengths)):
        frames = rng.integers(0, 256, (lengths[i], size, size, 3), dtype=np.uint8)
        audio = (0.1 * rng.standard_normal((1, round(lengths[i] / fps * 16000)))).astype(np.float32)
        yield SourceClip(f"clip{i}", frames, fps, audio, 16000, f"clip number {i}")


@pytest.fixture(scope="module")
def folder(tiny_pipeline, codecs, prepare_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("latent_shards")
    fmt = prepare_config.format
    source = iterable_source(lambda: synthetic_clips(fmt.fps, fmt.height), {"kind": "synthetic", "seed": 1})
    config = type(prepare_config)(fmt, prepare_config.max_text_tokens, shard_size=5)
    prepare(source, tiny_pipeline, out, config, codecs=codecs, progress=False)
    return out


@pytest.fixture(scope="module")
def shards(folder) -> LatentShards:
    return LatentShards(folder)


def frames_of(shards: LatentShards, indices: list[int]) -> set[int]:
    return {shards.record(i)["frames"] for i in indices}


def test_reads_what_the_trainer_needs(shards, tiny_pipeline):
    assert len(shards) == SHORT + LONG
    assert shards.empty_text.shape == (1, 32, 384) and shards.empty_text.dtype == torch.float32
    assert shards.empty_text_mask.shape == (1, 32) and shards.empty_text_mask.dtype == torch.bool
    batch = next(shards.batches(3, 0, 0, 1, 0))
    assert (
        batch.video.dtype == batch.audio.dtype == batch.text.dtype == batch.reference.dtype == torch.float32
    )
    assert batch.text_mask.dtype == torch.bool and batch.text_mask.shape == (3, 32)
    assert batch.video.shape[:2] == (3, 4) and batch.reference.shape[2] == 1
    assert batch.video_frame_seconds == 0.5 and batch.audio_frame_seconds == tiny_pipeline.audio_frame_seconds
    shards.check_transformer(tiny_pipeline.transformer.config)


def test_loaded_values_are_the_stored_ones_as_float32(shards, folder):
    first = shards.record(0)["frames"]
    second = next(i for i in range(1, 5) if shards.record(i)["frames"] == first)  # in the same shard
    batch = shards.load([0, second])
    with safe_open(str(folder / "shard_00000.safetensors"), framework="pt") as file:
        assert torch.equal(batch.video[1], file.get_tensor(f"{second}.video").float())
        assert torch.equal(batch.audio[0], file.get_tensor("0.audio").float())
        assert torch.equal(batch.text_mask[0], file.get_tensor("0.text_mask"))


def test_a_batch_trains_the_tiny_transformer(shards, tiny_pipeline):
    batch = next(shards.batches(2, 0, 0, 1, 0))
    generator = torch.Generator().manual_seed(0)
    config = ObjectiveConfig(tasks={"t2av": 1.0, "i2v": 1.0, "ref": 1.0})
    out = flow_matching_loss(
        tiny_pipeline.transformer, batch, shards.empty_text, shards.empty_text_mask, config, generator
    )
    assert torch.isfinite(out.loss)


def test_batches_are_a_function_of_seed_and_step(folder, shards):
    first = [b.video for b, _ in zip(LatentShards(folder).batches(2, 7, 0, 1, 0), range(12))]
    again = [b.video for b, _ in zip(shards.batches(2, 7, 0, 1, 0), range(12))]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other_seed = [shards.batch_indices(2, 8, 0, 1, step) for step in range(12)]
    assert other_seed != [shards.batch_indices(2, 7, 0, 1, step) for step in range(12)]


def test_resuming_at_a_step_yields_the_same_batches_as_an_uninterrupted_run(shards):
    fresh = [b for b, _ in zip(shards.batches(2, 3, 1, 2, 0, prefetch=0), range(9))]
    for start in (0, 4, 7):  # within the first epoch (3 steps) and later ones
        resumed = [b for b, _ in zip(shards.batches(2, 3, 1, 2, start), range(9 - start))]
        for a, b in zip(fresh[start:], resumed):
            assert (
                torch.equal(a.video, b.video)
                and torch.equal(a.audio, b.audio)
                and torch.equal(a.text, b.text)
            )


def test_ranks_see_disjoint_samples_and_batches_never_mix_shapes(shards):
    batch_size, dp_size = 2, 2
    steps = shards.steps_per_epoch(batch_size, dp_size)
    assert steps == SHORT // 4 + LONG // 4  # incomplete global batches are dropped
    for epoch in range(3):
        seen = []
        for step in range(epoch * steps, (epoch + 1) * steps):
            ranks = [shards.batch_indices(batch_size, 0, rank, dp_size, step) for rank in range(dp_size)]
            assert len(frames_of(shards, ranks[0] + ranks[1])) == 1  # one bucket per step, on every rank
            seen.extend(ranks[0] + ranks[1])
        assert len(seen) == len(set(seen)) == steps * batch_size * dp_size
    orders = {
        tuple(tuple(shards.batch_indices(2, 0, 0, 2, step)) for step in range(e * steps, (e + 1) * steps))
        for e in range(3)
    }
    assert len(orders) > 1  # each epoch is a new permutation


def test_every_batch_of_the_iterator_holds_one_shape(shards):
    for batch, _ in zip(shards.batches(3, 1, 0, 1, 0), range(10)):
        assert batch.video.shape[2] in (3, 5) and batch.audio.shape[0] == 3


def test_bad_arguments_are_named(shards):
    with pytest.raises(ValueError, match=r"dp_rank must be an integer in \[0, dp_size=2\), got 2"):
        shards.batch_indices(2, 0, 2, 2, 0)
    with pytest.raises(
        ValueError, match="batch_size 6 x dp_size 2 = 12 samples per step, but the largest bucket"
    ):
        shards.batches(6, 0, 0, 2, 0)
    with pytest.raises(ValueError, match="a batch holds one bucket"):
        shards.load([shards_of_frames(shards, 9), shards_of_frames(shards, 17)])


def shards_of_frames(shards: LatentShards, frames: int) -> int:
    return next(i for i in range(len(shards)) if shards.record(i)["frames"] == frames)


def test_a_transformer_of_another_layout_is_refused(shards):
    config = type("Config", (), {**TINY_TRANSFORMER})
    with pytest.raises(
        ValueError, match=r"audio_in_channels=8 \(shards need 32\), text_dim=16 \(shards need 384\)"
    ):
        shards.check_transformer(config)


def test_missing_unfinished_or_foreign_folders_are_explained(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="latent shards folder not found"):
        LatentShards(tmp_path / "nowhere")
    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / "index.json").rename(copy / "index.old")
    with pytest.raises(FileNotFoundError, match="did not finish; rerun it to resume"):
        LatentShards(copy)
    (copy / "progress.json").unlink()
    with pytest.raises(FileNotFoundError, match="not a folder written by `omni prepare`"):
        LatentShards(copy)
    index = json.loads((copy / "index.old").read_text())
    (copy / "index.json").write_text(json.dumps({**index, "version": 99}))
    with pytest.raises(ValueError, match="version 99; this omni reads 'omni-latent-shards' version 1"):
        LatentShards(copy)
