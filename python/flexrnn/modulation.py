"""Distributions of gain modulation: what ``fr.train.bptt(..., modulation=...)`` trains under
and ``fr.analysis.performance_vs_gain`` evaluates over.

A :class:`Modulation` draws, from a NumPy Generator, the gain of a batch of ``B`` trials of
``T`` steps as an array broadcastable to ``(T, B)`` (the shape ``net.run(u, gain=...)``
takes):

- the values: ``uniform(low, high)``, ``log_uniform(low, high)`` (uniform in ``log g``), or
  ``from_callable(draw)`` with ``draw(rng) -> gain`` called once per value needed;
- their time course within a trial: constant (``(1, B)``, one value per trial, the default),
  ``switches=k`` (piecewise constant: ``k`` switch times drawn uniformly in ``1..T-1`` per
  trial, a fresh value after each; ``(T, B)``), or ``drift=L`` (slow drift: fresh values at
  knots ``L`` steps apart, from a random phase, joined linearly (in ``log g`` for the
  log-uniform); ``(T, B)``, inside ``[low, high]``);
- ``per="batch"`` draws one value for the whole batch instead of one per trial.

>>> import flexrnn as fr
>>> mod = fr.modulation.uniform(0.5, 2.0, switches=2)
>>> mod.sample(np.random.default_rng(0), T=100, B=64).shape   # (100, 64)
>>> fr.train.bptt(net, task, iters=500, modulation=mod)
>>> fr.analysis.performance_vs_gain(net, task, mod.grid(11))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from flexrnn import _validate as check

__all__ = ["KINDS", "Modulation", "from_callable", "log_uniform", "uniform"]

KINDS = ("uniform", "log_uniform", "callable")
PER = ("trial", "batch")


@dataclass(frozen=True)
class Modulation:
    """A distribution of gain trajectories (module docstring); build it with
    :func:`uniform`, :func:`log_uniform` or :func:`from_callable`.

    Attributes
    ----------
    kind : "uniform", "log_uniform" or "callable".
    low, high : the range of the values (NaN for "callable").
    draw : the callable ``rng -> gain`` ("callable"), else None.
    switches : switch times per trial (0: constant within a trial).
    drift : steps between the knots of a slow drift, or None.
    per : "trial" (a value per trial) or "batch" (one for the whole batch).
    """

    kind: str
    low: float = float("nan")
    high: float = float("nan")
    draw: Callable[[np.random.Generator], Any] | None = None
    switches: int = 0
    drift: float | None = None
    per: str = "trial"

    def __post_init__(self) -> None:
        check.choice("kind", self.kind, KINDS)
        check.choice("per", self.per, PER)
        check.integer("switches", self.switches, minimum=0)
        if self.drift is not None:
            if check.scalar("drift", self.drift, positive=True) < 1:
                raise ValueError(f"drift: steps between knots must be >= 1, got {self.drift}")
            if self.switches:
                raise ValueError("drift: give either switches or drift, not both")
        if self.kind == "callable":
            if not callable(self.draw):
                raise TypeError(f"draw: expected a callable rng -> gain, got {self.draw!r}")
            return
        low, high = check.scalar("low", self.low), check.scalar("high", self.high)
        if low > high:
            raise ValueError(f"high: must be >= low = {low}, got {high}")
        if self.kind == "log_uniform" and low <= 0:
            raise ValueError(f"low: a log-uniform gain needs low > 0, got {low}")

    @property
    def time_varying(self) -> bool:
        """The gain changes within a trial (switches or drift)."""
        return self.switches > 0 or self.drift is not None

    def values(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """(size,) independent gain values (float64)."""
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high, size)
        if self.kind == "log_uniform":
            return np.exp(rng.uniform(np.log(self.low), np.log(self.high), size))
        out = np.empty(size)
        for i in range(size):
            value = np.asarray(self.draw(rng))
            if value.ndim != 0 or value.dtype.kind not in "biuf":
                raise ValueError(
                    f"draw: expected a real scalar gain per call, got {value!r} "
                    f"(shape {value.shape})"
                )
            out[i] = float(value)
        if not np.isfinite(out).all():
            raise ValueError("draw: returned a NaN or infinite gain")
        return out

    def sample(self, rng: np.random.Generator, T: int, B: int) -> np.ndarray:
        """The gains of a batch of B trials of T steps, broadcastable to (T, B) (float64):
        shape (1, B) (constant per trial) or (T, B) (switches, drift); with
        ``per="batch"``, (1, 1) or (T, 1)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        T = check.integer("T", T, minimum=1)
        B = check.integer("B", B, minimum=1)
        columns = 1 if self.per == "batch" else B
        if self.switches:
            gain = self._switching(rng, T, columns)
        elif self.drift is not None:
            gain = self._drifting(rng, T, columns)
        else:
            gain = self.values(rng, columns)[None, :]
        return gain

    def _switching(self, rng: np.random.Generator, T: int, B: int) -> np.ndarray:
        """(T, B): k + 1 values per trial, the k switch times drawn in 1..T-1."""
        k = self.switches
        values = self.values(rng, (k + 1) * B).reshape(B, k + 1)
        if T == 1:
            return values[:, :1].T.copy()
        times = np.sort(rng.integers(1, T, size=(B, k)), axis=1)  # (B, k)
        segment = (np.arange(T)[None, :, None] >= times[:, None, :]).sum(axis=2)  # (B, T)
        return np.take_along_axis(values, segment, axis=1).T.copy()

    def _drifting(self, rng: np.random.Generator, T: int, B: int) -> np.ndarray:
        """(T, B): values at knots drift steps apart (random phase), joined linearly (in log g
        for the log-uniform)."""
        L = float(self.drift)
        n_knots = int(np.ceil(T / L)) + 2
        values = self.values(rng, n_knots * B).reshape(B, n_knots)
        if self.kind == "log_uniform":
            values = np.log(values)
        phase = rng.uniform(0, L, size=B)
        position = (np.arange(T)[None, :] + phase[:, None]) / L  # (B, T) in knots
        left = np.floor(position).astype(np.int64)
        w = position - left
        a = np.take_along_axis(values, left, axis=1)
        b = np.take_along_axis(values, left + 1, axis=1)
        path = (1 - w) * a + w * b
        return (np.exp(path) if self.kind == "log_uniform" else path).T.copy()

    def grid(self, G: int = 11) -> np.ndarray:
        """(G,) gains spanning the range (evenly, or evenly in log g for the log-uniform),
        e.g. for :func:`flexrnn.analysis.performance_vs_gain`."""
        G = check.integer("G", G, minimum=1)
        if self.kind == "callable":
            raise ValueError(
                "G: a Modulation given by a callable has no range to span; pass the gains"
            )
        if G == 1:
            return np.array([0.5 * (self.low + self.high)])
        if self.kind == "log_uniform":
            return np.geomspace(self.low, self.high, G)
        return np.linspace(self.low, self.high, G)

    def __repr__(self) -> str:
        args = ([f"{self.low:g}", f"{self.high:g}"] if self.kind != "callable"
                else [getattr(self.draw, "__qualname__", repr(self.draw))])  # fmt: skip
        if self.switches:
            args.append(f"switches={self.switches}")
        if self.drift is not None:
            args.append(f"drift={self.drift:g}")
        if self.per == "batch":
            args.append("per='batch'")
        name = "from_callable" if self.kind == "callable" else self.kind
        return f"modulation.{name}({', '.join(args)})"


def uniform(low: float, high: float, *, switches: int = 0, drift: float | None = None,
            per: str = "trial") -> Modulation:  # fmt: skip
    """Gains uniform in ``[low, high]`` (module docstring for ``switches``, ``drift``,
    ``per``)."""
    return Modulation("uniform", low, high, None, switches, drift, per)


def log_uniform(low: float, high: float, *, switches: int = 0, drift: float | None = None,
                per: str = "trial") -> Modulation:  # fmt: skip
    """Gains with ``log g`` uniform in ``[log low, log high]``, ``low > 0``."""
    return Modulation("log_uniform", low, high, None, switches, drift, per)


def from_callable(draw: Callable[[np.random.Generator], Any], *, switches: int = 0,
                  drift: float | None = None, per: str = "trial") -> Modulation:  # fmt: skip
    """Gains from ``draw(rng) -> scalar``, called once per value (per trial, per segment
    with ``switches``, per knot with ``drift``), trials in order."""
    return Modulation("callable", float("nan"), float("nan"), draw, switches, drift, per)
