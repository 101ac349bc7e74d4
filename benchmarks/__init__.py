"""Benchmarks: scripts that print measured ratios (ours vs a baseline) from one run."""
