"""Runs of the public API that make figures and reports (no algorithms live here)."""

from flexrnn.experiments.analysis import analysis_report
from flexrnn.experiments.demo import demo
from flexrnn.experiments.learning import learning_report
from flexrnn.experiments.neuromop import neuromop_report
from flexrnn.experiments.training import training_report

__all__ = ["analysis_report", "demo", "learning_report", "neuromop_report", "training_report"]
