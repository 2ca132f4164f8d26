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
# convention="study" (Costacurta et al. 2024, after Duncker et al. 2020): epoch durations in
# seconds, U(low, high), then the whole trial rescaled to T steps.
STUDY_STIM_ON = (0.3, 0.7)  # from the trial start to the stimulus onset
STUDY_DELAY_GO = (0.2, 1.5)  # Delay tasks: from the stimulus onset to fix-off
STUDY_MEMORY_STIM = (0.2, 1.6)  # Memory tasks: stimulus duration
STUDY_MEMORY_DELAY = (0.2, 1.6)  # Memory tasks: from the stimulus offset to fix-off
STUDY_RESPONSE = (0.3, 0.7)  # from fix-off to the end of the trial
CONVENTIONS = ("flexrnn", "study")
DECODINGS = ("atan2", "arctan")


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

    ``convention="study"`` follows the NM-RNN study's code (Costacurta et al. 2024): epoch
    durations are drawn in seconds and the trial is rescaled to T steps: stimulus onset
    ``U(0.3, 0.7)``; Delay tasks: fix-off ``U(0.2, 1.5)`` after the onset; Memory tasks:
    the stimulus lasts ``U(0.2, 1.6)``, fix-off comes ``U(0.2, 1.6)`` after its offset; the
    response lasts ``U(0.3, 0.7)``; each time ``t_e`` in seconds becomes the first step
    ``>= t_e T / total``. The mask is all ones (no grace period), and the score decodes the
    angle as the study does, ``arctan(y_sin / y_cos)`` for the output and the target, and
    compares the two in (-pi/2, pi/2) without wrapping: a response at theta + pi counts as
    correct (``decode="atan2"`` scores the full angle instead).

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
    grace : int or None
        Steps after fix-off excluded from the loss (>= 0; default 5, and 0 for
        ``convention="study"``, which takes no other value).
    dt : float
        Duration of one step (metadata; default 1.0; Yang et al. use 20 ms).
    convention : "flexrnn" (default) or "study"
        Epoch timings, mask and angle decoding (see above).
    decode : None, "atan2" or "arctan"
        How the score decodes the response angle from ``(y_sin, y_cos)``: the full angle
        (``"atan2"``) or modulo pi (``"arctan"``, the study's). None: the convention's.

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
        grace: int | None = None,
        dt: float = 1.0,
        convention: str = "flexrnn",
        decode: str | None = None,
    ) -> None:
        self.tasks = _task_names(tasks)
        self.T = check_steps("T", T, 20)
        self.sigma = check.scalar("sigma", sigma, nonneg=True)
        self.convention = check.choice("convention", convention, CONVENTIONS)
        study = self.convention == "study"
        self.grace = check.integer("grace", (0 if study else 5) if grace is None else grace,
                                   minimum=0)  # fmt: skip
        if study and self.grace != 0:
            raise ValueError(f"grace: convention='study' has no grace period, got {grace}")
        self.decode = check.choice(
            "decode", ("arctan" if study else "atan2") if decode is None else decode, DECODINGS
        )
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
        extra = ", convention='study'" if study else ""
        if self.decode != ("arctan" if study else "atan2"):
            extra += f", decode={self.decode!r}"
        self.name = f"MultiTask({', '.join(self.tasks)}{extra})"

    def _epochs(self, task: np.ndarray, rng: np.random.Generator):
        """(stim_on, stim_off, fix_off): (B,) int steps; stim_off = T for the Delay tasks."""
        B, T = task.size, self.T
        is_memory = task >= 2
        if self.convention == "study":
            stim_on = rng.uniform(*STUDY_STIM_ON, size=B)
            memory_stim = rng.uniform(*STUDY_MEMORY_STIM, size=B)
            memory_delay = rng.uniform(*STUDY_MEMORY_DELAY, size=B)
            delay_go = rng.uniform(*STUDY_DELAY_GO, size=B)
            response = rng.uniform(*STUDY_RESPONSE, size=B)
            stim_off = stim_on + memory_stim
            fix_off = np.where(is_memory, stim_off + memory_delay, stim_on + delay_go)
            scale = T / (fix_off + response)  # the whole trial, in seconds, onto T steps
            # a step t is in an epoch that starts at time e when t >= e * scale
            step = lambda e: np.ceil(e * scale).astype(np.int64)  # noqa: E731
            return step(stim_on), np.where(is_memory, step(stim_off), T), step(fix_off)
        stim_on = rng.integers(self._stim_on[0], self._stim_on[1] + 1, size=B)
        fix_off = stim_on + rng.integers(self._go_after[0], self._go_after[1] + 1, size=B)
        memory_stim = rng.integers(self._memory[0], self._memory[1] + 1, size=B)
        return stim_on, np.where(is_memory, stim_on + memory_stim, T), fix_off

    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        T = self.T
        # the same draws whatever the subset: a seed gives the same directions and timings
        task = self._task_index[rng.integers(0, self._task_index.size, size=B)]
        theta = rng.uniform(0.0, 2 * np.pi, size=B)
        stim_on, stim_off, fix_off = self._epochs(task, rng)
        is_anti = task % 2 == 1

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
        wanted = trials.info["response_angle"]
        if self.decode == "arctan":  # the study's decoding: the angle modulo pi
            with np.errstate(divide="ignore", invalid="ignore"):
                angle = np.arctan(y[-1, :, 1] / y[-1, :, 2])
            error = np.abs(angle - np.arctan(np.tan(wanted)))  # both in (-pi/2, pi/2)
        else:
            angle = np.arctan2(y[-1, :, 1], y[-1, :, 2])
            error = np.abs(np.angle(np.exp(1j * (angle - wanted))))  # wrapped
        return held & (error < ANGLE_TOLERANCE)
