"""ElementFinder: recall the element of a sequence that a query points to (docs/models.md)."""

from __future__ import annotations

import numpy as np

from flexrnn import _validate as check
from flexrnn.tasks.base import Task, Trials, check_dt


class ElementFinder(Task):
    """Report element q of a sequence whose first entry is the query index q.

    One input channel over ``T = length + 1`` steps (26 by default): ``u[0] = q`` with
    ``q ~ U{0, ..., length - 1}``, then ``u[1], ..., u[length]`` are integers drawn uniformly
    from ``{-max_value, ..., max_value}``. The target is element q, ``u[q + 1]``, at the last
    step only (mask 1 there, 0 elsewhere), so the answer comes after the whole sequence.
    Predicting 0 scores MSE ``E[v^2] = max_value (max_value + 1) / 3`` (36.67 for 10).

    A trial is correct when the last output rounds to the target, ``|y - target| < 0.5``.

    Parameters
    ----------
    length : int
        Number of sequence elements (>= 1; default 25, so T = 26).
    max_value : int
        Elements lie in ``{-max_value, ..., max_value}`` (>= 0; default 10).
    dt : float
        Duration of one step (metadata; default 1.0).

    Shapes: ``u: (T, B, 1)``, ``target, mask: (T, B, 1)``; ``info``: ``query`` (B,) int,
    ``answer`` (B,) float.
    """

    loss = "mse"

    def __init__(self, length: int = 25, max_value: int = 10, dt: float = 1.0) -> None:
        self.length = check.integer("length", length, minimum=1)
        self.max_value = check.integer("max_value", max_value, minimum=0)
        self.dt = check_dt(dt)
        self.T = self.length + 1
        self.n_in = 1
        self.n_out = 1
        self.name = "ElementFinder"

    @property
    def zero_predictor_mse(self) -> float:
        """Expected MSE of always answering 0: E[v^2] for v uniform on -max..max."""
        m = self.max_value
        return m * (m + 1) / 3

    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        query = rng.integers(0, self.length, size=B)
        elements = rng.integers(-self.max_value, self.max_value + 1, size=(self.length, B))
        answer = elements[query, np.arange(B)].astype(np.float64)
        u = np.empty((self.T, B, 1), dtype=dtype)
        u[0, :, 0] = query
        u[1:, :, 0] = elements
        target = np.zeros((self.T, B, 1), dtype=dtype)
        target[-1, :, 0] = answer
        mask = np.zeros((self.T, B, 1), dtype=dtype)
        mask[-1] = 1
        return Trials(u, target, mask, {"query": query, "answer": answer})

    def _correct(self, y: np.ndarray, trials: Trials) -> np.ndarray:
        return np.abs(y[-1, :, 0] - trials.info["answer"]) < 0.5
