"""Optimisers, gradient clipping and learning-rate schedules on dicts of NumPy arrays.

Everything here works in place on ``{name: ndarray}`` dicts (a model's ``params()`` and the
gradients of ``loss_and_grad``) and keeps its state in the parameters' dtype, so float32
networks are trained in float32. The updates use one work buffer per parameter, sized once:
an optimiser step allocates nothing, which keeps the trainer's Python cost small next to the
C++ gradient call.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Callable, Union

import numpy as np

from flexrnn import _validate as check
from flexrnn.reference.adam import adam_step

Arrays = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------
# Optimisers


class Optimizer(ABC):
    """An optimiser over named arrays: ``step(params, grads, lr)`` updates ``params`` in place.

    ``state_dict()`` / ``load_state_dict()`` carry everything the next step depends on, so a
    run restored from a checkpoint continues bitwise identically.
    """

    lr: float

    @abstractmethod
    def step(self, params: Arrays, grads: Arrays, lr: float | None = None) -> None:
        """Update every array of ``params`` in place from the gradient of the same name."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Step count, hyperparameters and per-parameter arrays (``"<slot>/<name>"`` keys)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (arrays are copied)."""


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), bias-corrected: :func:`flexrnn.reference.adam.adam_step`.

    For every parameter p with gradient g, at step t = 1, 2, ...::

        m = b1 m + (1 - b1) g
        v = b2 v + (1 - b2) g^2
        p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    Parameters
    ----------
    lr : learning rate (> 0); a schedule may pass another one to each :meth:`step`.
    betas : (b1, b2), each in [0, 1).
    eps : added to the denominator (> 0).

    The moments ``m``, ``v`` have the shape and dtype of their parameter and are created at
    the first step that sees the parameter.
    """

    kind = "adam"

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps=1e-8):
        self.lr = check.scalar("lr", lr, positive=True)
        self.betas = _betas(betas)
        self.eps = check.scalar("eps", eps, positive=True)
        self.t = 0
        self.m: Arrays = {}
        self.v: Arrays = {}
        self._work: Arrays = {}

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    def _slots(self, name: str, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.m.get(name)
        if m is None or m.shape != p.shape or m.dtype != p.dtype:
            if m is not None:
                raise ValueError(
                    f"params: {name} has shape {p.shape} and dtype {p.dtype}, but the "
                    f"optimiser's moments have {m.shape} and {m.dtype}"
                )
            self.m[name] = m = np.zeros_like(p)
            self.v[name] = np.zeros_like(p)
        work = self._work.get(name)
        if work is None or work.shape != p.shape or work.dtype != p.dtype:
            self._work[name] = work = np.empty_like(p)
        return m, self.v[name], work

    def _decay(self, p: np.ndarray, lr: float) -> None:
        """Decoupled weight decay (AdamW); none for Adam."""

    def step(self, params: Arrays, grads: Arrays, lr: float | None = None) -> None:
        """One Adam step on every array of ``params`` (in place), with ``grads[name]``.

        ``lr`` overrides ``self.lr`` for this step (a schedule's value).
        """
        lr = self.lr if lr is None else lr
        b1, b2 = self.betas
        self.t += 1
        for name, p in params.items():
            m, v, work = self._slots(name, p)
            self._decay(p, lr)
            adam_step(p, grads[name], m, v, self.t, lr, b1, b2, self.eps, work=work)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"kind": self.kind, "t": self.t, **self.hyperparameters()}
        for name in self.m:
            state[f"m/{name}"] = self.m[name].copy()
            state[f"v/{name}"] = self.v[name].copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind", self.kind) != self.kind:
            raise ValueError(f"state: written by {state['kind']!r}, not {self.kind!r}")
        t = check.integer("state['t']", state["t"], minimum=0)
        m, v = {}, {}
        for key, value in state.items():
            slot, _, name = key.partition("/")
            if slot in ("m", "v") and name:
                (m if slot == "m" else v)[name] = np.array(value, copy=True)
        if m.keys() != v.keys():
            raise ValueError("state: every parameter needs both moments m/<name> and v/<name>")
        self.t, self.m, self.v = t, m, v


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam plus weight decay decoupled from the gradient.

    Before the Adam update of each step, ``p *= 1 - lr * weight_decay`` (PyTorch's order), with
    the step's learning rate. Parameters as :class:`Adam`, plus ``weight_decay`` (>= 0).
    """

    kind = "adamw"

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        super().__init__(lr, betas, eps)
        self.weight_decay = check.scalar("weight_decay", weight_decay, nonneg=True)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "weight_decay": self.weight_decay}

    def _decay(self, p: np.ndarray, lr: float) -> None:
        if self.weight_decay:
            p *= 1.0 - lr * self.weight_decay


def _betas(betas: Any) -> tuple[float, float]:
    try:
        b1, b2 = betas
    except (TypeError, ValueError) as err:
        raise ValueError(f"betas: expected a pair (b1, b2), got {betas!r}") from err
    b1, b2 = check.scalar("betas", b1), check.scalar("betas", b2)
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"betas: each must be in [0, 1), got ({b1}, {b2})")
    return b1, b2


OPTIMIZERS = {"adam": Adam, "adamw": AdamW}


# ---------------------------------------------------------------------------------------------
# Clipping


def global_norm(grads: Arrays) -> float:
    """sqrt(sum over arrays of sum(g^2)): the norm of all gradients as one vector.

    Each array's sum of squares is an einsum over its flat view: no temporaries, and no BLAS
    call, whose sleeping threads can take a millisecond to wake between two training steps.
    Returns inf or nan when a gradient is not finite.
    """
    total = 0.0
    for g in grads.values():
        flat = g.reshape(-1)
        total += float(np.einsum("i,i->", flat, flat))
    if not math.isfinite(total) and all(np.isfinite(g).all() for g in grads.values()):
        # finite float32 gradients whose squares overflow: sum them again in float64
        total = 0.0
        for g in grads.values():
            flat = g.reshape(-1).astype(np.float64)
            total += float(np.einsum("i,i->", flat, flat))
    return math.sqrt(total)


def clip_global_norm(grads: Arrays, max_norm: float) -> float:
    """Scale all gradients in place by ``max_norm / norm`` when their global norm exceeds
    ``max_norm`` (their direction is kept). Returns the norm before clipping."""
    max_norm = check.scalar("max_norm", max_norm, positive=True)
    norm = global_norm(grads)
    if norm > max_norm and math.isfinite(norm):
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm


def clip_value(grads: Arrays, max_value: float) -> Arrays:
    """Clip every gradient element into ``[-max_value, max_value]`` in place; returns grads."""
    max_value = check.scalar("max_value", max_value, positive=True)
    for g in grads.values():
        np.clip(g, -max_value, max_value, out=g)
    return grads


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules. A Schedule gives a factor of the base learning rate at iteration
# it = 0, 1, ...; the trainer also takes any callable it -> lr.


class Schedule(ABC):
    """Learning rate at iteration ``it`` (0-based) = base lr * ``factor(it)``."""

    @abstractmethod
    def factor(self, it: int) -> float:
        """Multiplier of the base learning rate at iteration ``it``."""

    def lr(self, base_lr: float, it: int) -> float:
        return base_lr * self.factor(it)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]


class Constant(Schedule):
    """The base learning rate throughout."""

    def factor(self, it: int) -> float:
        return 1.0


class StepDecay(Schedule):
    """Multiply the learning rate by ``gamma`` every ``every`` iterations:
    factor = gamma ** (it // every)."""

    def __init__(self, every: int, gamma: float = 0.1):
        self.every = check.integer("every", every, minimum=1)
        self.gamma = check.scalar("gamma", gamma, positive=True)

    def factor(self, it: int) -> float:
        return self.gamma ** (it // self.every)


class Exponential(Schedule):
    """factor = gamma ** it (gamma slightly below 1 for a smooth decay)."""

    def __init__(self, gamma: float):
        self.gamma = check.scalar("gamma", gamma, positive=True)

    def factor(self, it: int) -> float:
        return self.gamma**it


class Cosine(Schedule):
    """Cosine annealing from 1 to ``final`` over ``iters`` iterations, ``final`` after:
    factor = final + (1 - final) (1 + cos(pi min(it, iters) / iters)) / 2."""

    def __init__(self, iters: int, final: float = 0.0):
        self.iters = check.integer("iters", iters, minimum=1)
        self.final = check.scalar("final", final, nonneg=True)

    def factor(self, it: int) -> float:
        phase = min(it, self.iters) / self.iters
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * phase))


class LinearWarmup(Schedule):
    """Linear warmup over ``iters`` iterations, factor (it + 1) / iters, then ``after``
    (default :class:`Constant`) counted from the end of the warmup."""

    def __init__(self, iters: int, after: Schedule | None = None):
        self.iters = check.integer("iters", iters, minimum=1)
        if after is not None and not isinstance(after, Schedule):
            raise TypeError(f"after: expected a Schedule, got {type(after).__name__}")
        self.after = Constant() if after is None else after

    def factor(self, it: int) -> float:
        if it < self.iters:
            return (it + 1) / self.iters
        return self.after.factor(it - self.iters)


ScheduleLike = Union[Schedule, Callable[[int], float], None]


def learning_rate_fn(schedule: ScheduleLike, base_lr: float) -> Callable[[int], float]:
    """it -> lr from None (constant), a :class:`Schedule` or a callable it -> lr, which is
    checked to give a finite lr >= 0."""
    if schedule is None:
        return lambda it: base_lr
    if isinstance(schedule, Schedule):
        return lambda it: base_lr * schedule.factor(it)
    if not callable(schedule):
        raise TypeError(
            f"schedule: expected None, a Schedule or a callable it -> lr, got "
            f"{type(schedule).__name__}"
        )

    def checked(it: int) -> float:
        lr = schedule(it)
        try:
            lr = float(lr)
        except (TypeError, ValueError) as err:
            raise TypeError(f"schedule: returned {lr!r} at iteration {it}, not a number") from err
        if not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"schedule: returned lr={lr} at iteration {it}; need finite >= 0")
        return lr

    return checked
