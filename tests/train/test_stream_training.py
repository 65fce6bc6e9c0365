"""Training on the toy world rendered on the fly: batches a pure function of the step, stretches that resume."""

import time

import pytest
import torch

from omni.config import ConfigError
from omni.data.prepare import default_format
from omni.data.sources import build_source
from omni.data.stream import StreamedSamples
from omni.pipelines.pipeline_omni import OmniPipeline
from omni.pipelines.presets import build_pipeline
from omni.train.config import load_train_config
from omni.train.trainer import Trainer

SMALL = {
    "num_layers": 1,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "ffn_dim": 32,
    "audio_ffn_dim": 32,
    # the recipe's own options (it replaces the recipe's transformer arguments, and optim.lr_scale names these)
    "position_embedding": True,
    "frame_index_embedding": True,
    "signal_input": True,
}


@pytest.fixture(scope="module")
def toy():
    return build_pipeline("toy")


def test_a_step_gets_the_same_new_clips_whether_or_not_a_run_was_stopped(toy):
    stream = StreamedSamples("toyworld", toy, default_format(toy, frames=(9,)), 48)
    first = next(stream.batches(2, seed=0, start_step=3, prefetch=0))
    again = next(stream.batches(2, seed=0, start_step=3, prefetch=0))
    other = next(stream.batches(2, seed=0, start_step=4, prefetch=0))
    assert first.video.shape == (2, 24, 5, 32, 32) and first.text.shape == (2, 48, 384)
    assert torch.equal(first.video, again.video) and torch.equal(first.text, again.text)
    assert not torch.equal(first.video, other.video)  # every step renders new clips
    steps = stream.batches(2, seed=0, start_step=3, prefetch=0)
    assert torch.equal(next(steps).video, first.video) and torch.equal(next(steps).video, other.video)


def test_workers_deliver_the_steps_in_order(toy):
    fmt = default_format(toy, frames=(1,))
    stream = StreamedSamples("toyworld", toy, fmt, 48, workers=2)
    inline = StreamedSamples("toyworld", toy, fmt, 48)
    by_workers, by_thread = stream.batches(2, seed=1, start_step=5), inline.batches(2, seed=1, start_step=5)
    for _ in range(3):
        assert torch.equal(next(by_workers).video, next(by_thread).video)


def small_run(run, **extra) -> dict:
    """Settings of the toy recipe for a 1-block model on 5-frame clips, 2 a batch, rendered inline."""
    return {
        "model.transformer": SMALL,
        "data.batch_size": 2,
        "data.num_workers": 0,
        "data.frames": 5,
        "checkpoint.dir": str(run),
        **extra,
    }


def test_a_stretch_ends_on_time_with_a_checkpoint_and_an_export_and_the_next_goes_on(tmp_path):
    settings = small_run(tmp_path / "run", **{"checkpoint.every": 1000, "log.every": 1})
    config = load_train_config("toy", settings)
    start = time.monotonic()
    result = Trainer(config).fit(max_seconds=0.01)  # the first step already takes longer
    assert result.steps == 1 and time.monotonic() - start < 120
    assert (tmp_path / "run" / "step_00000001").is_dir()
    pipe = OmniPipeline.from_pretrained(result.export)  # the export carries the preset's fixed codecs
    assert type(pipe.vae).__name__ == "PixelVideoCodec"
    resumed = Trainer(config)
    assert resumed.resume() and resumed.step == 1
    assert resumed.fit(max_steps=1).steps == 2


def test_data_names_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one of shards"):
        load_train_config("toy", {"data.shards": "somewhere"})
    with pytest.raises(ConfigError, match="data.frames"):
        load_train_config("toy", {"data.frames": 0})
    with pytest.raises(ConfigError, match="data.options are a stream's"):
        load_train_config("toy", {"data.stream": None, "data.shards": "x", "data.options": {"a": 1}})


def test_a_stream_can_fix_the_toy_worlds_object_count(toy):
    fmt = default_format(toy, frames=(1,))
    mixed = [clip.load() for clip in build_source("toyworld", fmt, count=40, seed=0)]
    single = [clip.load() for clip in build_source("toyworld", fmt, count=40, seed=0, num_objects=1)]
    # the world's trajectory is given for one-object scenes only
    assert any(clip.trajectory is None for clip in mixed)
    assert all(clip.trajectory is not None for clip in single)
    stream = StreamedSamples("toyworld", toy, fmt, 48, options={"num_objects": 1})
    assert next(stream.batches(2, seed=0, start_step=0, prefetch=0)).video.shape[0] == 2


def test_an_unknown_source_option_is_named_before_any_work(toy):
    fmt = default_format(toy, frames=(1,))
    with pytest.raises(
        ValueError,
        match=r"no option\(s\) \['objects'\]; its options are \['count', 'seed', 'num_objects', 'lanes', 'motion_weights'\]",
    ):
        StreamedSamples("toyworld", toy, fmt, 48, options={"objects": 1})
    with pytest.raises(ValueError, match="num_objects must be 1 or 2"):
        StreamedSamples("toyworld", toy, fmt, 48, options={"num_objects": 3})


def test_toy_clips_mark_their_subjects_boxes_for_a_focused_loss(toy, tmp_path):
    """Each rendered clip carries the box around its objects per frame; a recipe's `focus_weight` trains on
    them, and is refused before any work on data that marks none."""
    fmt = default_format(toy, frames=(9,))
    (pending,) = build_source("toyworld", fmt, count=1, seed=3, num_objects=1)
    clip = pending.load()
    x0, y0, x1, y1 = clip.subject_boxes[0]
    coloured = (clip.frames[0].max(-1).astype(int) - clip.frames[0].min(-1)) > 60  # the object, not the room
    rows, cols = coloured.nonzero()
    # every pixel the object colours overlaps the box (pixel column c spans [c, c + 1])
    assert x0 < cols.min() + 1 and cols.max() < x1 and y0 < rows.min() + 1 and rows.max() < y1
    assert (x1 - x0) * (y1 - y0) < 0.3 * 64 * 64
    stream = StreamedSamples("toyworld", toy, fmt, 48)
    assert stream.marks_subjects()
    assert next(stream.batches(2, seed=0, start_step=0, prefetch=0)).subject_boxes.shape == (2, 9, 4)
    settings = small_run(tmp_path / "run", focus_weight=4.0)
    assert Trainer(load_train_config("toy", settings)).fit(max_steps=1).steps == 1
    with pytest.raises(ConfigError, match="focus_weight: -1.0 must be a number >= 0"):
        load_train_config("toy", {**settings, "focus_weight": -1.0})
    with pytest.raises(ConfigError, match=r"focus_max_sigma: 0.0 must be in \(0, 1\]"):
        load_train_config("toy", {**settings, "focus_max_sigma": 0.0})
