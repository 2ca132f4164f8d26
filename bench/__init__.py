"""flexrnn benchmarks: ``python -m bench`` from the repository root (see bench/run.py)."""
