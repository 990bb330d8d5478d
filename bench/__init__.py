"""Benchmarks: ``python -m bench.<name>``; each prints medians/ratios and writes JSON to bench/results/."""
