"""Benchmark harness: suites of items, `omni bench run` (generate a suite), `omni bench score` (every
system's outputs, weights-free and learned metrics) and `omni bench report` (one self-contained HTML page)."""
