"""Benchmarks (not tests): ``python -m bench.trainer`` compares the classic transfer-learning tutorial
loop with the same job run by Headstart's trainer; ``python -m bench.quickstart_options`` re-measures
the data options considered for the offline quickstart."""
