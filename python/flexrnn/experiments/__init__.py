"""Runs of the public API that make figures and reports (no algorithms live here)."""

from flexrnn.experiments.demo import demo
from flexrnn.experiments.training import training_report

__all__ = ["demo", "training_report"]
