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
- ``per="batch"`` draws one value for the whole batch instead of one per trial;
- where the values act, ``target=`` (default ``"gain"``): a site, optionally restricted to
  one cell type of a network with cell types (``net.cell_type``, Dale's law):

  ============  =====================================================================
  ``"gain"``    the global gain on the recurrent weights (``run(gain=...)``), (T, B)
  ``"pre"``     every sending neuron, ``W diag(g)`` (``pre_gain``), the same value
  ``"post"``    every receiving neuron, ``diag(g) W`` (``post_gain``)
  ``"neuron"``  the slope of phi of every neuron (``neuron_gain``)
  ``"pre:E"``   ``pre_gain`` of the excitatory neurons only (the others keep 1); also
                ``"pre:I"``, ``"post:E"``, ``"post:I"``, ``"neuron:E"``, ``"neuron:I"``
  ============  =====================================================================

  Aliases: ``"global"`` = ``"gain"``; ``"pre_gain"``, ``"post_gain"``, ``"neuron_gain"``
  = the site; ``"E"`` = ``"pre:E"`` and ``"I"`` = ``"pre:I"`` (a cell type's gain is a
  pre-synaptic gain, as ``net.cell_gains``). :meth:`Modulation.gains` turns a draw into the
  keywords of ``net.run`` / ``loss_and_grad``; a per-neuron site gets an array
  broadcastable to (T, B, n).

Several modulations act together through :func:`combine` (each draws its own values, in
order; values at the same site multiply), e.g. :func:`cell_types` draws the E and the I
gains from separate distributions.

>>> import flexrnn as fr
>>> mod = fr.modulation.uniform(0.5, 2.0, switches=2)
>>> mod.sample(np.random.default_rng(0), T=100, B=64).shape   # (100, 64)
>>> fr.train.bptt(net, task, iters=500, modulation=mod)
>>> fr.analysis.performance_vs_gain(net, task, mod.grid(11))
>>> ei = fr.modulation.cell_types(E=fr.modulation.uniform(0.5, 2), I=fr.modulation.uniform(1, 1.5))
>>> fr.train.bptt(dale_net, task, iters=500, modulation=ei)        # E and I pre-synaptic gains
>>> fr.analysis.performance_vs_gain(dale_net, task, [0.5, 1, 2], target="I")
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from flexrnn import _validate as check

__all__ = [
    "KINDS",
    "TARGETS",
    "Combined",
    "Modulation",
    "cell_types",
    "combine",
    "from_callable",
    "log_uniform",
    "parse_target",
    "site_gains",
    "uniform",
]

KINDS = ("uniform", "log_uniform", "callable")
PER = ("trial", "batch")
SITES = ("gain", "pre", "post", "neuron")
CELLS = ("E", "I")
# every canonical target: a site, or a per-neuron site restricted to one cell type
TARGETS = SITES + tuple(f"{site}:{cells}" for site in SITES[1:] for cells in CELLS)
TARGET_ALIASES = {"global": "gain", "pre_gain": "pre", "post_gain": "post",
                  "neuron_gain": "neuron", "E": "pre:E", "I": "pre:I"}  # fmt: skip
# the keyword of ``net.run`` / ``loss_and_grad`` of each site
KEYWORDS = {"gain": "gain", "pre": "pre_gain", "post": "post_gain", "neuron": "neuron_gain"}
WEIGHT_SITES = ("gain", "pre", "post")  # sites that scale weights: >= 0 under Dale's law


def parse_target(target: Any, argument: str = "target") -> tuple[str, str | None]:
    """(site, cells) of a target name (module docstring): site in "gain", "pre", "post",
    "neuron"; cells None (every neuron), "E" or "I". ``argument`` names the caller's argument
    in the error."""
    if not isinstance(target, str):
        raise TypeError(
            f"{argument}: expected a target name such as 'gain', 'pre', 'post', 'E' or "
            f"'post:I', got {type(target).__name__}"
        )
    name = TARGET_ALIASES.get(target, target)
    if name not in TARGETS:
        raise ValueError(
            f"{argument}: unknown target {target!r}; expected one of {', '.join(TARGETS)} "
            f"(aliases: {', '.join(TARGET_ALIASES)})"
        )
    site, _, cells = name.partition(":")
    return site, cells or None


def _canonical(target: Any, argument: str = "target") -> str:
    site, cells = parse_target(target, argument)
    return site if cells is None else f"{site}:{cells}"


def site_gains(net: Any, target: str, value: Any, argument: str = "target") -> dict[str, Any]:
    """The ``net.run`` keyword that puts ``value`` at ``target``.

    net : the network (its ``n``; its ``cell_type`` for an E- or I-only target).
    target : a target name (module docstring).
    value : a scalar, or an array broadcastable to (T, B) (e.g. a :meth:`Modulation.sample`).

    Returns {keyword: array}: ``{"gain": value}`` for the global gain; for a per-neuron site
    an (n,) vector for a scalar value, else an array broadcastable to (T, B, n)
    ((t, b, 1) for every neuron, (t, b, n) for one cell type, whose other neurons keep
    gain 1). Raises ValueError naming ``argument`` for an E/I target on a network without
    cell types, and for a negative weight gain on a network with cell types (Dale's law).
    """
    site, cells = parse_target(target, argument)
    v = np.asarray(value, dtype=np.float64)
    if v.ndim > 2:
        raise ValueError(
            f"{argument}: a gain value is a scalar or broadcastable to (T, B), got shape {v.shape}"
        )
    cell_type = getattr(net, "cell_type", None)
    if cells is not None and cell_type is None:
        raise ValueError(
            f"{argument}: target {target!r} acts on the {cells} cells, but this "
            f"{type(net).__name__} has no cell types (build it with dale=...)"
        )
    if site in WEIGHT_SITES and cell_type is not None and np.any(v < 0):
        raise ValueError(
            f"{argument}: a negative gain at {target!r} flips the sign of weights of a network "
            f"with cell types (Dale's law); expected values >= 0, got min {float(v.min()):g}"
        )
    if site == "gain":
        return {"gain": value if np.ndim(value) == 0 else v}
    n = int(net.n)
    if cells is None:
        per_neuron = np.full(n, float(v)) if v.ndim == 0 else v.reshape(v.shape + (1,))
    else:
        chosen = (np.asarray(cell_type) > 0) == (cells == "E")  # (n,)
        if v.ndim == 0:
            per_neuron = np.where(chosen, float(v), 1.0)
        else:
            v2 = v.reshape((1,) * (2 - v.ndim) + v.shape)
            per_neuron = np.where(chosen, v2[..., None], 1.0)
    return {KEYWORDS[site]: per_neuron}


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
    target : where the values act (module docstring), canonical: "gain", "pre", "post",
        "neuron", or one of those with ":E" / ":I".
    """

    kind: str
    low: float = float("nan")
    high: float = float("nan")
    draw: Callable[[np.random.Generator], Any] | None = None
    switches: int = 0
    drift: float | None = None
    per: str = "trial"
    target: str = "gain"

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", _canonical(self.target))
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

    def gains(self, rng: np.random.Generator, T: int, B: int, net: Any) -> dict[str, Any]:
        """The keywords of ``net.run`` / ``loss_and_grad`` for a batch of B trials of T steps:
        :meth:`sample` put at the target by :func:`site_gains` (``{"gain": (1 or T, B)}``,
        or e.g. ``{"pre_gain": (1 or T, B, 1 or n)}``)."""
        return site_gains(net, self.target, self.sample(rng, T, B), "modulation")

    def parts(self) -> tuple[Modulation, ...]:
        """The modulations that act together: (self,)."""
        return (self,)

    def check_for(self, net: Any) -> None:
        """Raise ValueError naming ``modulation`` when this modulation cannot act on ``net``:
        an E/I target without cell types, a range reaching below 0 at a weight site of a
        network with cell types, or a model whose ``run`` takes no such gain."""
        site, cells = parse_target(self.target)
        keyword = KEYWORDS[site]
        if keyword not in _run_keywords(net):
            raise ValueError(
                f"modulation: {type(net).__name__} takes no {keyword} (target {self.target!r})"
            )
        has_types = getattr(net, "cell_type", None) is not None
        if cells is not None and not has_types:
            raise ValueError(
                f"modulation: target {self.target!r} acts on the {cells} cells, but this "
                f"{type(net).__name__} has no cell types (build it with dale=...)"
            )
        if site in WEIGHT_SITES and has_types and self.kind != "callable" and self.low < 0:
            raise ValueError(
                f"modulation: gains down to {self.low:g} at {self.target!r}: a negative gain "
                "flips the sign of weights of a network with cell types (Dale's law)"
            )

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
        if self.target != "gain":
            args.append(f"target={self.target!r}")
        name = "from_callable" if self.kind == "callable" else self.kind
        return f"modulation.{name}({', '.join(args)})"


def uniform(low: float, high: float, *, switches: int = 0, drift: float | None = None,
            per: str = "trial", target: str = "gain") -> Modulation:  # fmt: skip
    """Gains uniform in ``[low, high]`` (module docstring for ``switches``, ``drift``,
    ``per``, ``target``)."""
    return Modulation("uniform", low, high, None, switches, drift, per, target)


def log_uniform(low: float, high: float, *, switches: int = 0, drift: float | None = None,
                per: str = "trial", target: str = "gain") -> Modulation:  # fmt: skip
    """Gains with ``log g`` uniform in ``[log low, log high]``, ``low > 0``."""
    return Modulation("log_uniform", low, high, None, switches, drift, per, target)


def from_callable(draw: Callable[[np.random.Generator], Any], *, switches: int = 0,
                  drift: float | None = None, per: str = "trial",
                  target: str = "gain") -> Modulation:  # fmt: skip
    """Gains from ``draw(rng) -> scalar``, called once per value (per trial, per segment
    with ``switches``, per knot with ``drift``), trials in order."""
    return Modulation("callable", float("nan"), float("nan"), draw, switches, drift, per, target)


@dataclass(frozen=True)
class Combined:
    """Modulations that act together (:func:`combine`): each draws its values from the
    generator in turn; values at the same keyword multiply.

    Attributes
    ----------
    members : tuple of Modulation, in drawing order.
    """

    members: tuple[Modulation, ...]

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("modulations: expected at least one Modulation, got none")
        for m in self.members:
            if not isinstance(m, Modulation):
                raise TypeError(f"modulations: expected Modulation objects, got {type(m).__name__}")

    @property
    def time_varying(self) -> bool:
        return any(m.time_varying for m in self.members)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(m.target for m in self.members)

    def parts(self) -> tuple[Modulation, ...]:
        return self.members

    def check_for(self, net: Any) -> None:
        """As :meth:`Modulation.check_for`, for every member."""
        for m in self.members:
            m.check_for(net)

    def gains(self, rng: np.random.Generator, T: int, B: int, net: Any) -> dict[str, Any]:
        """The keywords of ``net.run`` for a batch: the members' :meth:`Modulation.gains`,
        drawn in order, multiplied where they share a keyword (arrays broadcastable to
        (T, B) for ``gain``, to (T, B, n) for the per-neuron keywords)."""
        out: dict[str, Any] = {}
        for m in self.members:
            for key, value in m.gains(rng, T, B, net).items():
                out[key] = value if key not in out else _product(key, out[key], value)
        return out

    def __repr__(self) -> str:
        return f"modulation.combine({', '.join(map(repr, self.members))})"


def _product(key: str, a: Any, b: Any) -> np.ndarray:
    """Two gains at one keyword, multiplied: (t, b[, n]) arrays, (n,) vectors, scalars."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if key != "gain":  # per-neuron: (n,) vectors broadcast as (1, 1, n)
        a = a.reshape((1,) * (3 - a.ndim) + a.shape) if a.ndim else a
        b = b.reshape((1,) * (3 - b.ndim) + b.shape) if b.ndim else b
    return a * b


def combine(*modulations: Modulation) -> Combined:
    """Several modulations in one run: ``combine(uniform(0.5, 2, target="pre"),
    uniform(0.8, 1.2, target="post"))``. Each draws its own values, in the order given;
    values at the same site multiply. Accepted wherever a Modulation is by ``bptt``."""
    members: list[Modulation] = []
    for m in modulations:
        members.extend(m.members if isinstance(m, Combined) else [m])
    return Combined(tuple(members))


def cell_types(E: Modulation | None = None, I: Modulation | None = None, *,  # noqa: E741
               site: str = "pre") -> Combined:  # fmt: skip
    """E and I gains from separate distributions, at ``site`` ("pre": what each cell type
    sends, as ``net.cell_gains``; "post": what it receives; "neuron": its slope of phi). The
    distributions' own targets are replaced by ``site:E`` / ``site:I``; a type left at None
    keeps gain 1. Needs a network with cell types."""
    site = check.choice("site", site, SITES[1:])
    chosen = []
    for cells, m in (("E", E), ("I", I)):
        if m is None:
            continue
        if not isinstance(m, Modulation):
            raise TypeError(f"{cells}: expected a Modulation or None, got {type(m).__name__}")
        chosen.append(replace(m, target=f"{site}:{cells}"))
    if not chosen:
        raise ValueError("E: give a Modulation for E, I or both")
    return Combined(tuple(chosen))


def _run_keywords(net: Any) -> set[str]:
    """The gain keywords ``net.run`` takes (the model's ``run_gains``, else its signature)."""
    declared = getattr(type(net), "run_gains", None)
    if declared is not None:
        return set(declared) & set(KEYWORDS.values())
    try:
        params = inspect.signature(net.run).parameters
    except (TypeError, ValueError, AttributeError):
        return set()
    return {k for k in KEYWORDS.values() if k in params}
