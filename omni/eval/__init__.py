"""Capability metrics, weights-free media metrics, reports and speed benchmarks."""
