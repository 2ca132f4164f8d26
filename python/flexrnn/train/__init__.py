"""Training: BPTT with Adam/AdamW, clipping, schedules, validation, checkpoints.

>>> import flexrnn as fr
>>> hist = fr.train.bptt(net, task, iters=2000, batch_size=64, lr=1e-3, progress=True)
>>> loss, grads = fr.train.loss_and_grad(net, trials)   # C++ BPTT, grads keyed by name
"""

from .bptt import bptt, task_loss
from .checkpoint import Checkpoint, load_checkpoint
from .evolution import genetic, population_loss
from .force import ForceHistory, feedback_run, force, full_force, integration_hint
from .gradients import loss_and_grad
from .hebbian import exploratory_run, hebbian, hold_units
from .history import History, KeepLowestLoss, StopWhenAccuracy, stop_when_accuracy
from .optim import (
    Adam,
    AdamW,
    Constant,
    Cosine,
    Exponential,
    LinearWarmup,
    Optimizer,
    Schedule,
    StepDecay,
    clip_global_norm,
    clip_value,
    global_norm,
)
from .staged import Stage, StagedResult, staged, trainable_except

__all__ = [
    "Adam",
    "AdamW",
    "Checkpoint",
    "Constant",
    "Cosine",
    "Exponential",
    "ForceHistory",
    "History",
    "KeepLowestLoss",
    "LinearWarmup",
    "Optimizer",
    "Schedule",
    "Stage",
    "StagedResult",
    "StepDecay",
    "StopWhenAccuracy",
    "bptt",
    "clip_global_norm",
    "clip_value",
    "exploratory_run",
    "feedback_run",
    "force",
    "full_force",
    "genetic",
    "global_norm",
    "hebbian",
    "hold_units",
    "integration_hint",
    "load_checkpoint",
    "loss_and_grad",
    "population_loss",
    "staged",
    "stop_when_accuracy",
    "task_loss",
    "trainable_except",
]
