"""Benchmarks (not tests): run with `make bench` or `python -m bench`; results in bench/RESULTS.md."""
