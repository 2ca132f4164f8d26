"""Benchmark sections, one module each; bench/run.py lists them (its ``SECTIONS``)."""
