"""Runs of the public API that make figures and reports (no algorithms live here)."""

from flexrnn.experiments.demo import demo

__all__ = ["demo"]
