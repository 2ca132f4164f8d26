"""Tasks: batches of trials for training and scoring recurrent networks (docs/models.md).

>>> import flexrnn as fr
>>> task = fr.tasks.MeasureWaitGo()
>>> trials = task.batch(64, rng=0)      # u: (T, B, n_in); target, mask: (T, B, n_out)
>>> task.score(trials.target, trials)   # accuracy in [0, 1] of outputs y: (T, B, n_out)
1.0

Every task builds its whole batch with NumPy broadcasting. ``from_neurogym`` wraps a
NeuroGym environment (optional dependency) into the same form.
"""

from __future__ import annotations

from flexrnn.reference.names import LOSSES
from flexrnn.tasks.base import FixedTrials, Task, Trials
from flexrnn.tasks.decision import ContextIntegration, PerceptualDecision
from flexrnn.tasks.multitask import MultiTask
from flexrnn.tasks.neurogym_adapter import NeuroGymTask, from_neurogym
from flexrnn.tasks.sequence import ElementFinder
from flexrnn.tasks.timing import IntervalRamp, MeasureWaitGo

__all__ = [
    "LOSSES",
    "ContextIntegration",
    "ElementFinder",
    "FixedTrials",
    "IntervalRamp",
    "MeasureWaitGo",
    "MultiTask",
    "NeuroGymTask",
    "PerceptualDecision",
    "Task",
    "Trials",
    "from_neurogym",
]
