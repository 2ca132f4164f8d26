"""Interval timing: MeasureWaitGo (NM-RNN timing task) and IntervalRamp (docs/models.md).

Both tasks share trial structure and targets. A trial has an interval ``I`` and a measure
time ``t_m``; the go cue comes at ``t_go = t_m + I + delay`` (delay = 15 steps). The target is
-0.5 up to and including ``t_go``, then a linear ramp that reaches +0.5 at ``t_go + I``, then
+0.5::

    target[t] = -0.5 + clip((t - t_go) / I, 0, 1)

The loss is the MSE over every step (mask all ones). With the default training set (I in
{12, 14, 16, 18} x t_m in {10..19}), the best constant predictor scores MSE 0.2269 and the
per-step mean 0.00946 (the 0.227 and 0.0095 of the spec).

Score: a trial is correct when the output's first upward crossing of 0 (interpolated linearly
between steps) lies within ``max(2, 0.1 I)`` steps of the target's, ``t_go + I / 2``. An output
that never crosses 0 upwards is wrong, and so is one whose first crossing is early, even if
it dips back and crosses again on time.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from flexrnn import _validate as check
from flexrnn.tasks.base import Task, Trials, check_dt, check_steps

TRAIN_INTERVALS = (12, 14, 16, 18)
TRAIN_MEASURE_TIMES = tuple(range(10, 20))
TEST_INTERVALS = tuple(range(4, 27, 2))
TEST_MEASURE_TIME = 15


def _int_values(name: str, value: Any, minimum: int) -> np.ndarray:
    """A non-empty 1-D int64 array of whole numbers >= minimum (from a list, range, array)."""
    arr = check.real_array(name, value)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence of integers, got {arr.shape}")
    if arr.dtype.kind == "b" or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ValueError(f"{name}: expected whole numbers, got {arr}")
    arr = arr.astype(np.int64)
    if np.any(arr < minimum):
        raise ValueError(f"{name}: every value must be >= {minimum}, got {arr.min()}")
    return arr


def first_upward_crossing(y: np.ndarray) -> np.ndarray:
    """Time of the first crossing of 0 from below, interpolated between steps.

    y: (T, B) -> (B,) float64, NaN for trials that never go from < 0 to >= 0.
    """
    y = np.asarray(y, dtype=np.float64)
    up = (y[:-1] < 0) & (y[1:] >= 0)
    k = up.argmax(axis=0)
    b = np.arange(y.shape[1])
    before, after = y[k, b], y[k + 1, b]
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = k + before / (before - after)
    return np.where(up.any(axis=0), crossing, np.nan)


class _RampTask(Task):
    """Shared trial grid, targets, mask and score of the timing tasks."""

    loss = "mse"

    def __init__(
        self,
        T: int,
        intervals: Any,
        measure_times: Any,
        test_intervals: Any,
        test_measure_time: int,
        delay: int,
        pulse: float,
        dt: float,
    ) -> None:
        self.T = check_steps("T", T, 2)
        self.delay = check.integer("delay", delay, minimum=1)
        self.pulse = check.scalar("pulse", pulse)
        self.dt = check_dt(dt)
        self.intervals = _int_values("intervals", intervals, 1)
        self.measure_times = _int_values("measure_times", measure_times, 0)
        self.test_intervals = _int_values("test_intervals", test_intervals, 1)
        self.test_measure_time = check.integer("test_measure_time", test_measure_time, minimum=0)
        # training grid: interval-major, deterministic order
        self._train_interval = np.repeat(self.intervals, self.measure_times.size)
        self._train_t_m = np.tile(self.measure_times, self.intervals.size)
        test_t_m = np.full_like(self.test_intervals, self.test_measure_time)
        grids = [(self._train_interval, self._train_t_m), (self.test_intervals, test_t_m)]
        for interval, t_m in grids:
            end = t_m + 2 * interval + self.delay  # the step at which the ramp reaches +0.5
            if end.max() >= self.T:
                j = int(end.argmax())
                raise ValueError(
                    f"T: {self.T} steps are too few for interval {interval[j]} with t_m "
                    f"{t_m[j]} (the ramp ends at step {end[j]}); need T >= {end[j] + 1}"
                )

    def training_set(self, dtype: Any = np.float64) -> Trials:
        """Every training condition once (intervals x measure times, interval-major order):
        40 trials by default."""
        return self._build(self._train_interval, self._train_t_m, check.as_dtype(dtype))

    def test_set(self, dtype: Any = np.float64) -> Trials:
        """The extrapolation set: each test interval once, with t_m = test_measure_time
        (I in {4, 6, ..., 26}, t_m = 15: 12 trials by default)."""
        t_m = np.full_like(self.test_intervals, self.test_measure_time)
        return self._build(self.test_intervals, t_m, check.as_dtype(dtype))

    def trials_for(self, interval: Any, t_m: Any, dtype: Any = np.float64) -> Trials:
        """Trials with the given conditions.

        interval, t_m: integers or 1-D sequences of equal length B (a scalar is repeated).
        The whole ramp must fit in the trial: t_m + 2 interval + delay < T.
        """
        interval = _int_values("interval", interval, 1)
        t_m = _int_values("t_m", t_m, 0)
        try:
            interval, t_m = np.broadcast_arrays(interval, t_m)
        except ValueError as err:
            raise ValueError(
                f"t_m: expected the length of interval ({interval.size}) or 1, got {t_m.size}"
            ) from err
        end = t_m + 2 * interval + self.delay
        if end.max() >= self.T:
            raise ValueError(
                f"interval: the ramp must end before step T = {self.T}; "
                f"t_m + 2 interval + delay reaches {end.max()}"
            )
        return self._build(interval.copy(), t_m.copy(), check.as_dtype(dtype))

    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        """B conditions drawn uniformly, with replacement, from the training set."""
        pick = rng.integers(0, self._train_interval.size, size=B)
        return self._build(self._train_interval[pick], self._train_t_m[pick], dtype)

    def _build(self, interval: np.ndarray, t_m: np.ndarray, dtype: np.dtype) -> Trials:
        T, B = self.T, interval.size
        t_go = t_m + interval + self.delay
        t = np.arange(T)[:, None]
        ramp = np.clip((t - t_go) / interval, 0.0, 1.0)  # (T, B)
        target = (ramp - 0.5).astype(dtype)[:, :, None]
        mask = np.ones((T, B, 1), dtype=dtype)
        u = self._inputs(interval, t_m, t_go, dtype)
        return Trials(u, target, mask, {"interval": interval, "t_m": t_m, "t_go": t_go})

    @abstractmethod
    def _inputs(
        self, interval: np.ndarray, t_m: np.ndarray, t_go: np.ndarray, dtype: np.dtype
    ) -> np.ndarray:
        """u: (T, B, n_in)."""

    def _correct(self, y: np.ndarray, trials: Trials) -> np.ndarray:
        interval = trials.info["interval"]
        wanted = trials.info["t_go"] + interval / 2  # where the target ramp crosses 0
        crossing = first_upward_crossing(y[:, :, 0])
        tolerance = np.maximum(2.0, 0.1 * interval)
        with np.errstate(invalid="ignore"):
            return np.abs(crossing - wanted) <= tolerance


class MeasureWaitGo(_RampTask):
    """Measure-wait-go timing task of the NM-RNN study (Costacurta et al. 2024).

    Three one-step pulses of height ``pulse`` (10): *measure* at ``t_m``, *wait* at
    ``t_m + I`` (so the interval between the first two pulses is I), and *go* at
    ``t_go = t_m + I + delay``. After go, the output must ramp from -0.5 to +0.5 over I steps
    (see the module docstring for the target and the score). The input is 0 during the ramp.

    ``channels=3`` (default, the study's inputs): each pulse on its own channel, measure on
    channel 0, wait on 1, go on 2. ``channels=1``: the three pulses summed on one channel (not
    the study's task: the network must tell the pulses apart by their order).

    ``batch(B, rng)`` draws B conditions uniformly (with replacement) from the 40 training
    conditions I in {12, 14, 16, 18} x t_m in {10, ..., 19}; :meth:`training_set` returns all
    40, :meth:`test_set` the extrapolation set I in {4, 6, ..., 26} with t_m = 15, and
    :meth:`trials_for` any conditions.

    Parameters
    ----------
    T : int
        Steps per trial (default 110).
    intervals, measure_times : sequences of int
        The training grid (defaults above).
    test_intervals : sequence of int; test_measure_time : int
        The test set (defaults above).
    delay : int
        Steps from the wait cue to the go cue (default 15).
    pulse : float
        Height of the pulses (default 10).
    dt : float
        Duration of one step (metadata; default 1.0).
    channels : 3 or 1
        Input channels (default 3, see above).

    Shapes: ``u: (T, B, channels)``, ``target, mask: (T, B, 1)``; ``info``: ``interval``,
    ``t_m``, ``t_go`` (B,) int.
    """

    def __init__(
        self,
        T: int = 110,
        intervals: Any = TRAIN_INTERVALS,
        measure_times: Any = TRAIN_MEASURE_TIMES,
        test_intervals: Any = TEST_INTERVALS,
        test_measure_time: int = TEST_MEASURE_TIME,
        delay: int = 15,
        pulse: float = 10.0,
        dt: float = 1.0,
        channels: int = 3,
    ) -> None:
        super().__init__(
            T, intervals, measure_times, test_intervals, test_measure_time, delay, pulse, dt
        )
        self.channels = check.integer("channels", channels)
        if self.channels not in (1, 3):
            raise ValueError(f"channels: expected 3 (the study's inputs) or 1, got {channels}")
        self.n_in = self.channels
        self.n_out = 1
        self.name = "MeasureWaitGo" if self.channels == 3 else "MeasureWaitGo(channels=1)"

    def _inputs(self, interval, t_m, t_go, dtype):
        B = interval.size
        u = np.zeros((self.T, B, self.channels), dtype=dtype)
        b = np.arange(B)
        for k, cue in enumerate((t_m, t_m + interval, t_go)):  # each a fancy-indexed write
            u[cue, b, k if self.channels == 3 else 0] = self.pulse
        return u


class IntervalRamp(_RampTask):
    """Timing with the interval cued directly: the ramp of :class:`MeasureWaitGo` without
    having to measure it.

    Two input channels: channel 0 is a tonic context ``I / interval_max``, on from the first
    step up to (not including) the go step; channel 1 is a one-step go pulse of height
    ``pulse`` at ``t_go``. There is no input during the ramp, as the NM-RNN rank-1 theory of
    docs/models.md assumes. Trials, targets, mask, score, training and test sets are those
    of :class:`MeasureWaitGo` (go at ``t_m + I + delay``, with t_m drawn as there), so the two
    tasks differ only in how the interval is communicated.

    Parameters
    ----------
    interval_max : float or None
        Scale of the context input; None (default) takes the longest training or test
        interval (26), so every context value lies in (0, 1].
    Others as :class:`MeasureWaitGo`.

    Shapes: ``u: (T, B, 2)``, ``target, mask: (T, B, 1)``; ``info``: ``interval``, ``t_m``,
    ``t_go`` (B,) int.
    """

    def __init__(
        self,
        T: int = 110,
        intervals: Any = TRAIN_INTERVALS,
        measure_times: Any = TRAIN_MEASURE_TIMES,
        test_intervals: Any = TEST_INTERVALS,
        test_measure_time: int = TEST_MEASURE_TIME,
        delay: int = 15,
        pulse: float = 10.0,
        interval_max: float | None = None,
        dt: float = 1.0,
    ) -> None:
        super().__init__(
            T, intervals, measure_times, test_intervals, test_measure_time, delay, pulse, dt
        )
        if interval_max is None:
            interval_max = max(self.intervals.max(), self.test_intervals.max())
        self.interval_max = check.scalar("interval_max", interval_max, positive=True)
        self.n_in = 2
        self.n_out = 1
        self.name = "IntervalRamp"

    def _inputs(self, interval, t_m, t_go, dtype):
        B = interval.size
        u = np.zeros((self.T, B, 2), dtype=dtype)
        before_go = np.arange(self.T)[:, None] < t_go
        u[:, :, 0] = np.where(before_go, interval / self.interval_max, 0.0)
        u[t_go, np.arange(B), 1] = self.pulse
        return u
