"""MultiTask: Delay/Memory Pro/Anti saccades in one network (Yang et al. 2019 style)."""

from __future__ import annotations

from typing import Any

import numpy as np

from flexrnn import _validate as check
from flexrnn.tasks.base import Task, Trials, check_dt, check_steps

TASK_NAMES = ("DelayPro", "DelayAnti", "MemoryPro", "MemoryAnti")
FIXATION_TARGET = 0.8
ANGLE_TOLERANCE = np.pi / 10
# Epoch timings in steps for T = 100 (scaled by T / 100 otherwise): (low, high) inclusive.
STIM_ON = (10, 20)  # stimulus onset
GO_AFTER_STIM = (30, 50)  # fix-off, counted from the stimulus onset
MEMORY_STIM = (10, 20)  # stimulus duration of the Memory tasks


def _task_names(tasks: Any) -> tuple[str, ...]:
    if isinstance(tasks, str):
        tasks = (tasks,)
    try:
        names = tuple(tasks)
    except TypeError as err:
        raise TypeError(f"tasks: expected a sequence of task names, got {tasks!r}") from err
    if not names:
        raise ValueError(f"tasks: expected at least one of {', '.join(TASK_NAMES)}")
    for name in names:
        if name not in TASK_NAMES:
            raise ValueError(f"tasks: expected names among {', '.join(TASK_NAMES)}; got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"tasks: each task at most once, got {names}")
    return names


class MultiTask(Task):
    """Four saccade tasks on a ring, cued by a rule input (after Yang et al. 2019).

    Inputs (7): fixation (1 until fix-off, then 0); the stimulus direction theta as
    ``(sin theta, cos theta)``; a one-hot rule over the four tasks, on for the whole trial.
    Outputs (3): fixation, and the response direction ``(sin, cos)``.

    Tasks: *DelayPro* / *DelayAnti*: the stimulus comes on and stays on to the end of the
    trial; *MemoryPro* / *MemoryAnti*: the stimulus is shown, then removed before fix-off
    (memory period). Targets: fixation output 0.8 until fix-off, then 0; response outputs 0
    until fix-off, then ``(sin, cos)`` of theta (Pro) or theta + pi (Anti).

    Epochs (steps, drawn per trial; for T = 100, scaled by T / 100 otherwise): stimulus
    onset ``stim_on ~ U{10..20}``; fix-off ``fix_off = stim_on + U{30..50}`` (so 40..70, and
    the response period lasts 30 to 60 steps); Memory tasks: the stimulus lasts ``U{10..20}``
    steps, leaving a memory period of 10 to 40 steps before fix-off. Directions are
    ``theta ~ U[0, 2 pi)``; tasks are drawn uniformly from ``tasks``.

    Loss: MSE; the mask is 1 everywhere except a grace period of ``grace`` steps from fix-off
    (0 there), during which the response may move (Yang et al. 2019 use 100 ms).

    A trial is correct when fixation is held (fixation output > 0.5 at every step before
    fix-off) and the direction of the last output's response units, ``atan2(y_sin, y_cos)``,
    lies within pi/10 of the target direction.

    Parameters
    ----------
    tasks : sequence of str
        Subset of ``("DelayPro", "DelayAnti", "MemoryPro", "MemoryAnti")`` (default all four).
        The rule input and ``info["task"]`` always use the index in that full list, so a
        network trained on a subset keeps its input layout.
    T : int
        Steps per trial (>= 20; default 100).
    sigma : float
        Standard deviation of independent Gaussian noise added to every input at every step
        (>= 0; default 0).
    grace : int
        Steps after fix-off excluded from the loss (>= 0; default 5).
    dt : float
        Duration of one step (metadata; default 1.0; Yang et al. use 20 ms).

    Shapes: ``u: (T, B, 7)``, ``target, mask: (T, B, 3)``; ``info``: ``task`` (B,) int,
    ``theta`` and ``response_angle`` (B,) in [0, 2 pi), ``stim_on``, ``stim_off``,
    ``fix_off`` (B,) int (``stim_off`` = T for the Delay tasks).
    """

    loss = "mse"
    TASK_NAMES = TASK_NAMES

    def __init__(
        self,
        tasks: Any = TASK_NAMES,
        T: int = 100,
        sigma: float = 0.0,
        grace: int = 5,
        dt: float = 1.0,
    ) -> None:
        self.tasks = _task_names(tasks)
        self.T = check_steps("T", T, 20)
        self.sigma = check.scalar("sigma", sigma, nonneg=True)
        self.grace = check.integer("grace", grace, minimum=0)
        self.dt = check_dt(dt)
        scale = self.T / 100
        self._stim_on, self._go_after, self._memory = (
            (max(1, round(lo * scale)), max(1, round(hi * scale)))
            for lo, hi in (STIM_ON, GO_AFTER_STIM, MEMORY_STIM)
        )
        shortest_response = self.T - self._stim_on[1] - self._go_after[1]
        if self.grace >= shortest_response:
            raise ValueError(
                f"grace: must be shorter than the shortest response period "
                f"({shortest_response} steps for T = {self.T}), got {self.grace}"
            )
        self._task_index = np.array([TASK_NAMES.index(t) for t in self.tasks])
        self.n_in = 3 + len(TASK_NAMES)
        self.n_out = 3
        self.name = f"MultiTask({', '.join(self.tasks)})"

    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        T = self.T
        # the same draws whatever the subset: a seed gives the same directions and timings
        task = self._task_index[rng.integers(0, self._task_index.size, size=B)]
        theta = rng.uniform(0.0, 2 * np.pi, size=B)
        stim_on = rng.integers(self._stim_on[0], self._stim_on[1] + 1, size=B)
        fix_off = stim_on + rng.integers(self._go_after[0], self._go_after[1] + 1, size=B)
        memory_stim = rng.integers(self._memory[0], self._memory[1] + 1, size=B)
        is_memory = task >= 2
        is_anti = task % 2 == 1
        stim_off = np.where(is_memory, stim_on + memory_stim, T)

        t = np.arange(T)[:, None]
        fixating = t < fix_off  # (T, B)
        stim_shown = (t >= stim_on) & (t < stim_off)
        direction = np.stack([np.sin(theta), np.cos(theta)], axis=-1)  # (B, 2)
        response = np.where(is_anti[:, None], -direction, direction)  # theta + pi for Anti

        u = np.zeros((T, B, self.n_in))
        u[:, :, 0] = fixating
        u[:, :, 1:3] = stim_shown[:, :, None] * direction
        u[:, :, 3:] = np.eye(len(TASK_NAMES))[task]
        if self.sigma > 0:
            u += self.sigma * rng.standard_normal(u.shape)

        target = np.empty((T, B, 3), dtype=dtype)
        target[:, :, 0] = FIXATION_TARGET * fixating
        target[:, :, 1:] = ~fixating[:, :, None] * response
        grace = (t >= fix_off) & (t < fix_off + self.grace)
        mask = np.broadcast_to(~grace[:, :, None], (T, B, 3)).astype(dtype)

        info = {
            "task": task,
            "theta": theta,
            "response_angle": np.mod(theta + np.pi * is_anti, 2 * np.pi),
            "stim_on": stim_on,
            "stim_off": stim_off,
            "fix_off": fix_off,
        }
        return Trials(u.astype(dtype, copy=False), target, mask, info)

    def _correct(self, y: np.ndarray, trials: Trials) -> np.ndarray:
        fix_off = trials.info["fix_off"]
        before_go = np.arange(y.shape[0])[:, None] < fix_off
        held = np.all((y[:, :, 0] > 0.5) | ~before_go, axis=0)
        angle = np.arctan2(y[-1, :, 1], y[-1, :, 2])
        error = np.angle(np.exp(1j * (angle - trials.info["response_angle"])))  # wrapped
        return held & (np.abs(error) < ANGLE_TOLERANCE)
