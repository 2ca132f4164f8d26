"""The NM-RNN rank-1 theory (docs/models.md, "NM-RNN rank-1 theory"): the gain s(t) with
which a linear rank-1 network produces a given output f(t), in discrete time.

A linear rank-1 network ``x[t] = (1 - a) x[t-1] + a s[t] l r^T x[t-1]`` (``a = 1 / tau_x``,
no input) whose state lies along ``l`` with ``c^T l = 1`` has the readout
``y[t] = c^T x[t] + d``; it follows a target f exactly when::

    s[t] = (1 / r^T l) (1 + tau_x (f[t] - f[t-1]) / (f[t-1] - d))

For a linear ramp of duration I, f' = 1 / I: the longer the interval, the closer the gain
stays to ``1 / r^T l`` (the gain at which the network holds its state).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flexrnn import _validate as check


def rank1_gain(f: Any, d: float, tau_x: float, r_dot_l: float) -> np.ndarray:
    """Closed-form gain of the linear rank-1 network that outputs ``f``.

    f : (T,) or (T, B): the target output from step 0 (f[0] is the output of the initial
        state); ``f - d`` must not vanish before the last step.
    d : readout offset; tau_x : time constant in steps (a = 1 / tau_x); r_dot_l : r^T l.

    Returns s: (T - 1,) or (T - 1, B), the gains of steps 1..T-1.
    """
    f = check.real_array("f", f).astype(np.float64)
    if f.ndim not in (1, 2) or f.shape[0] < 2:
        raise ValueError(f"f: expected shape (T,) or (T, B) with T >= 2, got {f.shape}")
    tau_x = check.scalar("tau_x", tau_x, positive=True)
    r_dot_l = check.scalar("r_dot_l", r_dot_l)
    if r_dot_l == 0:
        raise ValueError("r_dot_l: must be non-zero (the network has no recurrence along l)")
    d = check.scalar("d", d)
    offset = f[:-1] - d
    if np.any(offset == 0):
        raise ValueError("f: f - d vanishes before the last step, where no gain can move it")
    return (1.0 + tau_x * np.diff(f, axis=0) / offset) / r_dot_l


def rank1_run(
    s: Any, left: Any, right: Any, c: Any, d: float, tau_x: float, f0: float
) -> np.ndarray:
    """Output of the linear rank-1 network ``W = left right^T`` (the theory's l r^T) driven by
    gains ``s`` (T - 1,), started on ``left`` with output f0 (``x[0] = (f0 - d) l / c^T l``):
    y (T,), y[0] = f0. The oracle of :func:`rank1_gain` (a loop over steps: a test and
    report helper, not a kernel)."""
    s = np.asarray(s, dtype=np.float64)
    left, right, c = (np.asarray(v, dtype=np.float64) for v in (left, right, c))
    a = 1.0 / tau_x
    x = (f0 - d) * left / (c @ left)
    y = [f0]
    for s_t in s:
        x = (1 - a) * x + a * s_t * left * (right @ x)
        y.append(c @ x + d)
    return np.array(y)
