"""Terminal sets (and reward regions) of NeuroMOP, as composable primitives.

Every primitive is the set of states that its name makes terminal, written the way
docs/neuromop.md writes the condition: ``Energy(0.11)`` is ``E(x) > 0.11``, ``Box(0.1)`` is
``|x_1| > 0.1 or |x_2| > 0.1`` (leaving the box), ``Shape("heart")`` is the outside of the
heart, ``Readout(w, 0.5)`` is ``w . x > 0.5``. Sets combine with ``|`` (or), ``&`` (and) and
``~`` (complement: ``~Box(0.05, center=(0.1, 0.1))`` is the inside of a square, a reward
region). ``Custom(f)`` wraps a Python predicate ``f(states (m, d)) -> (m,) bool``.

A set compiles to a small postfix program (docs/internals.md) that the C++ core evaluates on
all 2^M successors of every step; only ``Custom`` calls back into Python.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Callable

import numpy as np

from flexrnn import _core, _validate

# program operations and atom kinds: the core's enums (docs/internals.md)
_ATOM, _NOT, _AND, _OR = (int(_core.ProgramOp.__members__[k]) for k in
                          ("atom", "op_not", "op_and", "op_or"))  # fmt: skip
_ENERGY, _ABS, _LINEAR, _ELLIPSE, _L1, _HEART, _CUSTOM = (
    int(_core.AtomKind.__members__[k])
    for k in ("energy", "abs", "linear", "ellipse", "l1", "heart", "custom")
)

SHAPES = ("square", "plus", "circle", "diamond", "oval", "heart")


class TerminalSet(ABC):
    """A set of states. Combine with ``|``, ``&``, ``~``; test states with :meth:`contains`."""

    def __or__(self, other: TerminalSet) -> TerminalSet:
        return _Op(_OR, _check_set(other), self)

    def __and__(self, other: TerminalSet) -> TerminalSet:
        return _Op(_AND, _check_set(other), self)

    def __invert__(self) -> TerminalSet:
        return _Op(_NOT, self)

    def contains(self, states) -> np.ndarray:
        """Membership of states (m, d) (or one state (d,)) -> (m,) bool (or a bool)."""
        x = np.asarray(states, dtype=np.float64)
        single = x.ndim == 1
        x2 = np.atleast_2d(x)
        if x2.ndim != 2:
            raise ValueError(f"states: expected (m, d) or (d,), got shape {x.shape}")
        program, custom = compile_sets([self], x2.shape[1])
        out = _core.mop_terminal(program, np.ascontiguousarray(x2), 0, custom)
        return bool(out[0]) if single else out

    @abstractmethod
    def _emit(self, code: list, atoms: list, weights: list, custom: list) -> None:
        """Append this set's postfix code (and its atoms, readout weights, predicates)."""


def _check_set(value) -> TerminalSet:
    if not isinstance(value, TerminalSet):
        raise TypeError(f"expected a flexrnn.mop terminal set, got {type(value).__name__}")
    return value


class _Op(TerminalSet):
    def __init__(self, op: int, *operands: TerminalSet) -> None:
        self.op, self.operands = op, operands

    def _emit(self, code, atoms, weights, custom):
        for operand in reversed(self.operands):  # postfix: left operand first
            operand._emit(code, atoms, weights, custom)
        code.append((self.op, 0))

    def __repr__(self) -> str:
        if self.op == _NOT:
            return f"~{self.operands[0]!r}"
        sym = "|" if self.op == _OR else "&"
        return f"({self.operands[1]!r} {sym} {self.operands[0]!r})"


class _Atom(TerminalSet):
    """One atom: ``kind``, and ``_atom()`` -> (index (i, j), params) unless ``_emit`` is
    overridden (atoms with readout weights or a predicate)."""

    kind = -1

    def _atom(self) -> tuple[tuple[int, int], tuple[float, ...]]:
        return (0, 0), ()

    def _emit(self, code, atoms, weights, custom):
        index, params = self._atom()
        code.append((_ATOM, len(atoms)))
        atoms.append((self.kind, index, tuple(params) + (0.0,) * (4 - len(params))))


def _neurons(name: str, value) -> tuple[int, int]:
    if len(value) != 2:
        raise ValueError(f"{name}: expected two coordinates, got {value!r}")
    return (
        _validate.integer(name, value[0], minimum=0),
        _validate.integer(name, value[1], minimum=0),
    )


class Energy(_Atom):
    """``E(x) = sqrt(sum_i (x_i - center)^2) / d > level`` (spec: center -1, level 0.11 for
    tanh, 0.13 for ReLU)."""

    kind = _ENERGY

    def __init__(self, level: float, center: float = -1.0) -> None:
        self.level = _validate.scalar("level", level, positive=True)
        self.center = _validate.scalar("center", center)

    def _atom(self):
        return (0, 0), (self.center, self.level)

    def __repr__(self) -> str:
        return f"Energy({self.level}, center={self.center})"


class Threshold(_Atom):
    """``|x_i - center| > level`` on one coordinate."""

    kind = _ABS

    def __init__(self, index: int, level: float, center: float = 0.0) -> None:
        self.index = _validate.integer("index", index, minimum=0)
        self.level = _validate.scalar("level", level, nonneg=True)
        self.center = _validate.scalar("center", center)

    def _atom(self):
        return (self.index, 0), (self.center, self.level)

    def __repr__(self) -> str:
        return f"Threshold({self.index}, {self.level}, center={self.center})"


class Readout(_Atom):
    """``w @ x > level`` for a linear readout w (d,) (``below=True``: ``w @ x < level``)."""

    kind = _LINEAR

    def __init__(self, w, level: float = 0.0, below: bool = False) -> None:
        self.w = _validate.real_array("w", w).astype(np.float64).ravel()
        if not np.all(np.isfinite(self.w)):
            raise ValueError("w: contains NaN or infinite values")
        self.level = _validate.scalar("level", level)
        self.below = bool(below)

    def _emit(self, code, atoms, weights, custom):
        sign = -1.0 if self.below else 1.0
        code.append((_ATOM, len(atoms)))
        atoms.append((self.kind, (len(weights), 0), (-sign * self.level, 0.0, 0.0, 0.0)))
        weights.append(sign * self.w)

    def __repr__(self) -> str:
        return f"Readout(w ({self.w.size},), {self.level}, below={self.below})"


class _Pair(_Atom):
    def __init__(self, params: tuple, neurons) -> None:
        self.neurons = _neurons("neurons", neurons)
        self.params = params

    def _atom(self):
        return self.neurons, self.params


class Box(TerminalSet):
    """Leaving a box on chosen coordinates: ``|x_i - c_i| > half_width`` for any i in
    ``neurons`` (spec's box task: ``Box(0.1)`` on neurons 0 and 1)."""

    def __init__(self, half_width: float, neurons: Sequence[int] = (0, 1), center=None) -> None:
        self.half_width = _validate.scalar("half_width", half_width, positive=True)
        self.neurons = tuple(_validate.integer("neurons", i, minimum=0) for i in neurons)
        if not self.neurons:
            raise ValueError("neurons: need at least one coordinate")
        c = np.zeros(len(self.neurons)) if center is None else np.asarray(center, float).ravel()
        if c.shape != (len(self.neurons),):
            raise ValueError(f"center: expected {len(self.neurons)} values, got {c.size}")
        self.center = tuple(float(v) for v in c)
        self._set = _union([Threshold(i, self.half_width, ci) for i, ci in zip(self.neurons, c)])

    def _emit(self, code, atoms, weights, custom):
        self._set._emit(code, atoms, weights, custom)

    def __repr__(self) -> str:
        return f"Box({self.half_width}, neurons={self.neurons}, center={self.center})"


def _union(sets: list[TerminalSet]) -> TerminalSet:
    out = sets[0]
    for s in sets[1:]:
        out = out | s
    return out


class _Ellipse(_Pair):
    kind = _ELLIPSE


class _L1(_Pair):
    kind = _L1


class _Heart(_Pair):
    kind = _HEART


class Shape(TerminalSet):
    """The outside of one of the six shapes of the spec on (x_i, x_j) = ``neurons``, with
    ``L+ = big`` and ``L- = small``: square ``|x1|>L- or |x2|>L-``; plus ``|x1|>L+ or
    |x2|>L+ or (|x1|>L- and |x2|>L-)``; circle ``sqrt(x1^2+x2^2) > L+``; diamond
    ``|x1|+|x2| > L+``; oval ``(x1/L+)^2 + (x2/L-)^2 > 1``; heart
    ``(x1^2+x2^2-L-)^3 - x1^2 x2^3 > 0``."""

    def __init__(
        self, name: str, neurons: Sequence[int] = (0, 1), big: float = 0.2, small: float = 0.1
    ) -> None:
        self.name = _validate.choice("name", name, SHAPES)
        self.neurons = _neurons("neurons", neurons)
        self.big = _validate.scalar("big", big, positive=True)
        self.small = _validate.scalar("small", small, positive=True)
        i, j = self.neurons
        lp, lm = self.big, self.small
        if self.name == "square":
            s = Threshold(i, lm) | Threshold(j, lm)
        elif self.name == "plus":
            s = Threshold(i, lp) | Threshold(j, lp) | (Threshold(i, lm) & Threshold(j, lm))
        elif self.name == "circle":
            s = _Ellipse((0.0, 0.0, lp, lp), self.neurons)
        elif self.name == "diamond":
            s = _L1((lp, lp), self.neurons)
        elif self.name == "oval":
            s = _Ellipse((0.0, 0.0, lp, lm), self.neurons)
        else:
            s = _Heart((lm,), self.neurons)
        self._set = s

    def _emit(self, code, atoms, weights, custom):
        self._set._emit(code, atoms, weights, custom)

    def __repr__(self) -> str:
        return f"Shape({self.name!r}, neurons={self.neurons}, big={self.big}, small={self.small})"


def shapes(neurons: Sequence[int] = (0, 1), big: float = 0.2, small: float = 0.1) -> list:
    """The six shapes of the context task, in the order of ``SHAPES`` (context k = shape k)."""
    return [Shape(name, neurons, big, small) for name in SHAPES]


class Corridor(TerminalSet):
    """Leaving a corridor on (x_i, x_j): two discs of ``radius`` at (±``offset``, 0) joined by
    a strip ``width`` wide along x_i (spec: radius 0.1, offset 0.15, width 0.02)."""

    def __init__(
        self,
        neurons: Sequence[int] = (0, 1),
        radius: float = 0.1,
        offset: float = 0.15,
        width: float = 0.02,
    ) -> None:
        self.neurons = _neurons("neurons", neurons)
        self.radius = _validate.scalar("radius", radius, positive=True)
        self.offset = _validate.scalar("offset", offset, nonneg=True)
        self.width = _validate.scalar("width", width, positive=True)
        i, j = self.neurons
        r = self.radius
        left = _Ellipse((-self.offset, 0.0, r, r), self.neurons)
        right = _Ellipse((self.offset, 0.0, r, r), self.neurons)
        off_strip = Threshold(j, self.width / 2) | Threshold(i, self.offset)
        self._set = left & right & off_strip

    def _emit(self, code, atoms, weights, custom):
        self._set._emit(code, atoms, weights, custom)

    def __repr__(self) -> str:
        return (
            f"Corridor(neurons={self.neurons}, radius={self.radius}, offset={self.offset}, "
            f"width={self.width})"
        )


class Custom(_Atom):
    """A Python predicate ``fn(states (m, d)) -> (m,) bool`` (called once per step on all
    successors, with the GIL: rollouts using it run on one thread)."""

    kind = _CUSTOM

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        if not callable(fn):
            raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
        self.fn = fn

    def _emit(self, code, atoms, weights, custom):
        code.append((_ATOM, len(atoms)))
        atoms.append((self.kind, (len(custom), 0), (0.0, 0.0, 0.0, 0.0)))
        custom.append(self.fn)

    def __repr__(self) -> str:
        return f"Custom({getattr(self.fn, '__name__', self.fn)!r})"


def compile_sets(sets: Sequence[TerminalSet], d: int, name: str = "terminal") -> tuple[dict, list]:
    """One program per set (context k = sets[k]) for states of dimension d: the arrays of
    docs/internals.md and the list of custom predicates they call. The core validates the
    program (``_core.mop_check_program``, as every MOP kernel does): a ValueError naming
    ``name`` and the problem."""
    code: list = []
    atoms: list = []
    weights: list = []
    custom: list = []
    start = [0]
    for s in sets:
        _check_set(s)._emit(code, atoms, weights, custom)
        start.append(len(code))
    sizes = {w.size for w in weights}
    if len(sizes) > 1:  # rows of unequal size make no matrix; the core checks the rest
        raise ValueError(f"Readout: w has {sorted(sizes)} values, the state has {d}")
    program = {
        "code": np.array(code, dtype=np.int32).reshape(-1, 2),
        "start": np.array(start, dtype=np.int32),
        "kind": np.array([a[0] for a in atoms], dtype=np.int32),
        "index": np.array([a[1] for a in atoms], dtype=np.int64).reshape(-1, 2),
        "params": np.array([a[2] for a in atoms], dtype=np.float64).reshape(-1, 4),
        "weights": np.array(weights, dtype=np.float64).reshape(len(weights), -1 if weights else d),
    }
    _core.mop_check_program(program, d, len(custom), name)
    return program, custom
