"""The Task interface and the Trials a task hands to a trainer.

Every task is defined in steps and builds a whole batch at once with NumPy
broadcasting (no Python loop over trials or time steps), so that generating a
batch costs far less than one training step.

Contract read by the trainers:

- ``loss == "mse"``: ``target`` float ``(T, B, n_out)`` and ``mask`` float ``(T, B, n_out)``
  (1 where the loss counts, 0 elsewhere; other non-negative values are relative weights).
- ``loss == "cross_entropy"``: ``target`` int64 class labels ``(T, B)`` and ``mask`` float
  ``(T, B)``.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import numpy as np

from flexrnn import _validate as check

RngLike = Union[np.random.Generator, int, None]


@dataclass
class Trials:
    """A batch of trials, time-major.

    Attributes
    ----------
    u : ndarray, (T, B, n_in)
        Inputs, in the dtype asked of :meth:`Task.batch`.
    target : ndarray
        ``(T, B, n_out)`` floats for ``loss == "mse"``; ``(T, B)`` int64 class labels for
        ``loss == "cross_entropy"``.
    mask : ndarray
        Weight of every entry of the loss: ``(T, B, n_out)`` for ``"mse"``, ``(T, B)`` for
        ``"cross_entropy"``; 1 where the loss counts, 0 where it does not.
    info : dict of str -> ndarray
        Per-trial conditions, each an array whose first axis is the trial (B, ...): the
        coherence, sign, context, interval, ... of every trial. Tasks read them back in
        :meth:`Task.per_trial_correct`.
    """

    u: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    info: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def T(self) -> int:
        """Steps per trial."""
        return self.u.shape[0]

    @property
    def batch_size(self) -> int:
        """Number of trials B."""
        return self.u.shape[1]

    def __repr__(self) -> str:
        keys = ", ".join(self.info)
        return (
            f"Trials(u={self.u.shape}, target={self.target.shape} {self.target.dtype}, "
            f"mask={self.mask.shape}, info=[{keys}])"
        )


def as_generator(rng: RngLike) -> np.random.Generator:
    """A NumPy Generator from a Generator (used as is), an integer seed, or None (fresh)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(check.seed("rng", rng))
    raise TypeError(
        f"rng: expected a numpy.random.Generator or an integer seed, got {type(rng).__name__}"
    )


class Task(ABC):
    """A supervised task for a time-major recurrent network.

    Subclasses set ``n_in``, ``n_out``, ``T``, ``dt`` and ``name`` in their constructor and
    implement :meth:`_generate` (the whole batch, vectorised) and :meth:`_correct`.

    Attributes
    ----------
    n_in, n_out : int
        Input and output sizes a network needs.
    T : int
        Steps per trial.
    dt : float
        Duration of one step, in the time unit of the model (``net.dt``). Tasks are defined
        in steps; dt is carried so that a trainer can check it against the network's.
    loss : str
        ``"mse"`` or ``"cross_entropy"`` (decides the form of ``target`` and ``mask``).
    name : str
        Short description, e.g. ``"ContextIntegration(N=2)"``.
    """

    loss: ClassVar[str] = "mse"
    n_in: int
    n_out: int
    T: int
    dt: float
    name: str

    def batch(self, B: int, rng: RngLike = None, dtype: Any = np.float64) -> Trials:
        """B trials drawn with ``rng``.

        Parameters
        ----------
        B : int
            Number of trials (>= 1).
        rng : numpy.random.Generator or int or None
            Source of every random draw (a seed gives a fresh ``default_rng(seed)``; None
            draws fresh entropy). The same seed gives the same batch.
        dtype : float32 or float64
            dtype of ``u``, of a float ``target`` and of ``mask``.

        Returns
        -------
        Trials
            ``u: (T, B, n_in)``, ``target``, ``mask`` (see the module docstring), ``info``.
        """
        B = check.integer("B", B, minimum=1)
        gen = as_generator(rng)
        return self._generate(B, gen, check.as_dtype(dtype))

    @abstractmethod
    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        """The batch, built without Python loops over trials or steps."""

    def per_trial_correct(self, y: Any, trials: Trials) -> np.ndarray:
        """Whether each trial was performed correctly.

        Parameters
        ----------
        y : array, (T, B, n_out)
            The network's outputs on ``trials.u``.
        trials : Trials
            The batch ``y`` answers.

        Returns
        -------
        ndarray of bool, (B,)
        """
        return self._correct(self._check_output(y, trials), trials)

    def score(self, y: Any, trials: Trials) -> float:
        """Accuracy in [0, 1]: the fraction of trials performed correctly (see the task's
        docstring for what counts as correct). y: (T, B, n_out)."""
        return float(np.mean(self.per_trial_correct(y, trials)))

    @abstractmethod
    def _correct(self, y: np.ndarray, trials: Trials) -> np.ndarray:
        """(B,) bool from a checked y: (T, B, n_out)."""

    def _check_output(self, y: Any, trials: Trials) -> np.ndarray:
        if not isinstance(trials, Trials):
            raise TypeError(f"trials: expected Trials, got {type(trials).__name__}")
        arr = check.real_array("y", y)
        want = (trials.T, trials.batch_size, self.n_out)
        if arr.shape != want:
            raise ValueError(f"y: expected shape (T, B, n_out) = {want}, got {arr.shape}")
        return arr

    def __repr__(self) -> str:
        return (
            f"{self.name} [n_in={self.n_in}, n_out={self.n_out}, T={self.T}, dt={self.dt}, "
            f"loss={self.loss}]"
        )


def check_dt(dt: Any) -> float:
    return check.scalar("dt", dt, positive=True)


def check_steps(name: str, value: Any, minimum: int) -> int:
    return check.integer(name, value, minimum=minimum)


class FixedTrials(Task):
    """Full-batch training: every ``batch`` returns the same trials (e.g. a task's
    ``training_set()``), whatever ``B``; scoring is the wrapped task's.

    >>> task = MeasureWaitGo()
    >>> fixed = FixedTrials(task, task.training_set())   # 40 trials in every batch
    """

    def __init__(self, task: Task, trials: Trials):
        if not isinstance(task, Task):
            raise TypeError(f"task: expected a Task, got {type(task).__name__}")
        if not isinstance(trials, Trials):
            raise TypeError(f"trials: expected Trials, got {type(trials).__name__}")
        if trials.u.ndim != 3 or trials.u.shape[2] != task.n_in:
            raise ValueError(f"trials: u must be (T, B, {task.n_in}), got {trials.u.shape}")
        check.loss_weights("mask", trials.mask)
        self.task, self.trials = task, trials
        self.n_in, self.n_out, self.T, self.dt = task.n_in, task.n_out, trials.T, task.dt
        self.loss = task.loss
        self.name = f"{task.name}, fixed {trials.batch_size} trials"

    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        t = self.trials
        target = t.target if self.loss == "cross_entropy" else t.target.astype(dtype, copy=False)
        return Trials(
            t.u.astype(dtype, copy=False), target, t.mask.astype(dtype, copy=False), t.info
        )

    def _correct(self, y: np.ndarray, trials: Trials) -> np.ndarray:
        return self.task.per_trial_correct(y, trials)
