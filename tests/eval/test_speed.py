"""`omni bench transformer`'s clock: CPU time on the CPU, so waiting on a busy machine does not count."""

import math
import time

import pytest

from omni.eval.speed import (
    Timing,
    TransformerRow,
    TransformerShape,
    bench_transformer,
    measure_interleaved,
    ratios,
    token_grid,
    transformer_table,
)


def busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_timing_counts_work_not_waiting_and_runs_in_turns():
    order = []

    def work():
        order.append("work")
        busy(0.02)

    def wait():
        order.append("wait")
        time.sleep(0.02)  # what another job on the core costs a wall clock

    (work_times, wait_times), clock = measure_interleaved([work, wait], repeats=3, warmup=1)
    assert "CPU time" in clock
    assert order == ["work", "wait"] + ["work", "wait"] * 3
    assert all(t > 0.015 for t in work_times) and all(t < 0.005 for t in wait_times)


def test_ratios_pair_each_repeat_with_its_neighbour():
    a = Timing("a", (2.0, 4.0, 3.0), tokens=1)
    b = Timing("b", (1.0, 4.0, 1.0), tokens=1)
    assert ratios(a, b) == (2.0, 1.0, 3.0)  # median and range; the medians' ratio would say 3.0


def test_token_grids_hold_exactly_the_asked_tokens():
    assert token_grid(272) == (17, 4, 4)
    assert token_grid(1088) == (17, 8, 8)
    for tokens in (1, 218, 2304, 8384, 6707):
        f, h, w = token_grid(tokens)
        assert f * h * w == tokens and h <= w


def test_a_shape_by_tokens_keeps_its_length_with_audio():
    shape = TransformerShape.by_tokens(272, 0.2)
    assert (
        shape.audio_tokens == 54 and math.prod(shape.mixed_grid) == 218 and math.prod(shape.video_grid) == 272
    )
    with pytest.raises(ValueError, match="audio share"):
        TransformerShape.by_tokens(272, 1.0)


def test_an_audio_token_costing_a_video_token_reads_1x():
    shape = TransformerShape.by_tokens(100, 0.25)
    row = TransformerRow(
        shape, {"omni": Timing("omni", (1.0, 2.0), 100), "omni (audio)": Timing("a", (1.0, 2.2), 100)}
    )
    cost = row.audio_token_cost
    assert cost.p10 == pytest.approx(1.0) and cost.p90 == pytest.approx(1.4)  # 10% more time from 25% audio


def test_transformer_bench_times_every_model_on_the_same_tokens():
    shapes = [TransformerShape.by_tokens(24, 0.25)]
    rows, clock = bench_transformer("tiny", shapes, text_tokens=4, repeats=2, ltx2=True)
    assert set(rows[0].timings) == {"wan", "omni", "omni (audio)", "ltx2 (audio)"}
    assert all(len(t.times) == 2 for t in rows[0].timings.values())
    table = transformer_table(rows)
    assert table[0].startswith("| tokens | of them audio | Wan ms | omni ms | omni / Wan | audio token")
    assert [line.split("|")[1:3] for line in table[2:]] == [[" 24 ", " 0 "], [" 24 ", " 6 "]]
