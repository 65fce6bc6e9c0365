"""`omni bench transformer`'s clock: CPU time on the CPU, so waiting on a busy machine does not count."""

import time

from omni.eval.speed import Timing, measure_interleaved, ratios


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
