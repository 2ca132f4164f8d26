"""Staged BPTT: train subsets of a model's parameters one stage after another, each stage with
a fresh optimiser, keeping the best parameters of each stage by a validation loss checked
every ``val_every`` updates (the NM-RNN study's protocol: the low-rank network, then the
modulator, then both).

>>> stages = [fr.train.Stage(["U", "V", "B_x", "C"], iters=10_000),
...           fr.train.Stage(["W_z", "B_z", "A_z", "c_z"], iters=10_000),
...           fr.train.Stage(fr.train.trainable_except(net, "initial_states", "biases"),
...                          iters=50_000)]
>>> result = fr.train.staged(net, fr.tasks.FixedTrials(task, train), stages, batch_size=40,
...                          optimizer="adamw", weight_decay=1e-4, clip_value=1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flexrnn import _validate as check
from flexrnn.models import Model

from .bptt import bptt, task_loss
from .history import History

# parameter groups by role, over every model's parameter names
INITIAL_STATES = ("x0", "z0", "h0", "c0")
BIASES = ("b", "b_out", "b_z", "d")  # additive biases (the LSTM's gate biases b included)
GROUPS = {"initial_states": INITIAL_STATES, "biases": BIASES}


def trainable_except(net: Model, *excluded: str) -> list[str]:
    """The names of ``net``'s parameters (in its order) without those ``excluded``: parameter
    names, or the groups ``"initial_states"`` (x0, z0, h0, c0) and ``"biases"`` (b, b_out,
    b_z, d: every additive bias, the LSTM's gate biases included).

    >>> trainable_except(nmrnn, "initial_states", "biases")   # the NM-RNN study's choice
    ['W_z', 'B_z', 'A_z', 'c_z', 'U', 'V', 'B_x', 'C']
    """
    if not isinstance(net, Model):
        raise TypeError(f"net: expected a flexrnn model, got {type(net).__name__}")
    names = list(net.params())
    drop: set[str] = set()
    for item in excluded:
        if item in GROUPS:
            drop.update(GROUPS[item])
        elif item in names:
            drop.add(item)
        else:
            raise ValueError(
                f"excluded: {item!r} is neither a group ({', '.join(GROUPS)}) nor a parameter "
                f"of this {type(net).__name__} ({', '.join(names)})"
            )
    kept = [n for n in names if n not in drop]
    if not kept:
        raise ValueError("excluded: every parameter excluded; nothing left to train")
    return kept


@dataclass
class Stage:
    """One stage of :func:`staged`: train ``trainable`` for ``iters`` updates at ``lr`` with a
    fresh optimiser. ``freeze``: columns held fixed, as ``bptt(freeze=...)``; ``name``: a
    label for the result (default ``"stage <k>"``)."""

    trainable: Sequence[str]
    iters: int
    lr: float = 1e-3
    freeze: dict[str, Sequence[int]] | None = None
    name: str = ""


@dataclass
class StagedResult:
    """What :func:`staged` did, per stage (lists in stage order).

    histories : the :class:`History` of each stage's :func:`bptt` run.
    validations : per stage, (iterations, losses): the validation losses and the updates
        (counted within the stage) after which they were taken, 0 included.
    best : per stage, ``{"iteration", "loss"}`` of the parameters kept at its end.
    names : the stages' labels.
    """

    histories: list[History] = field(default_factory=list)
    validations: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    best: list[dict[str, float]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @property
    def loss(self) -> np.ndarray:
        """Training loss of every update, the stages one after another."""
        parts = [h.loss for h in self.histories]
        return np.concatenate(parts) if parts else np.zeros(0)

    def __repr__(self) -> str:
        best = ", ".join(f"{n}: {b['loss']:.3g} @ {int(b['iteration'])}"
                         for n, b in zip(self.names, self.best))  # fmt: skip
        return f"StagedResult({len(self.names)} stages, best {best})"


class _KeepBest:
    """bptt callback: every ``every`` updates, the loss on ``trials``; a copy of the
    parameters whenever it is the lowest so far."""

    def __init__(self, net: Model, trials: Any, every: int, loss: str | None) -> None:
        self.net, self.trials, self.every, self.loss = net, trials, every, loss
        self.iterations: list[int] = []
        self.losses: list[float] = []
        self.best_loss = np.inf
        self.best_iteration = 0
        self.best_params: dict[str, np.ndarray] = {}
        self.check(0)

    def check(self, done: int) -> None:
        y = self.net.outputs(self.trials.u)
        value = task_loss(y, self.trials, self.loss)
        self.iterations.append(done)
        self.losses.append(value)
        if value < self.best_loss:  # NaN never counts as better
            self.best_loss, self.best_iteration = value, done
            self.best_params = {k: v.copy() for k, v in self.net.params().items()}

    def __call__(self, done: int, history: History, net: Model) -> None:
        if done % self.every == 0:
            self.check(done)

    def restore(self) -> None:
        for name, arr in self.net.params().items():
            arr[...] = self.best_params[name]


def staged(
    net: Model,
    task: Any,
    stages: Sequence[Stage],
    *,
    batch_size: int = 64,
    optimizer: str = "adamw",
    weight_decay: float | None = None,
    clip_value: float | None = None,
    clip_norm: float | None = None,
    validation: Any = None,
    val_every: int = 100,
    loss: str | None = None,
    progress: bool = True,
    seed: int = 0,
) -> StagedResult:
    """Train ``net`` in place, stage after stage, by :func:`flexrnn.train.bptt`.

    Each stage runs ``bptt`` on its ``trainable`` parameters (the others bitwise unchanged)
    with a fresh optimiser (``optimizer``, ``weight_decay``, the stage's ``lr``), clipping as
    given. Every ``val_every`` updates (and before the first) the loss on ``validation`` is
    computed; at the end of the stage the network gets back the parameters with the lowest
    validation loss, and the next stage starts from them.

    Parameters
    ----------
    net : any flexrnn model; updated in place.
    task : as for ``bptt`` (e.g. ``FixedTrials(task, task.training_set())`` for full-batch
        training).
    stages : :class:`Stage` objects (at least one).
    batch_size, optimizer, weight_decay, clip_value, clip_norm, loss, progress : as ``bptt``.
    validation : Trials (``u``: (T, B, n_in), ``target``, ``mask``) for the validation loss;
        None: the trials of a :class:`~flexrnn.tasks.FixedTrials` task, else 256 trials
        drawn once from ``task`` with ``default_rng([seed, 2])``.
    val_every : updates between validation checks (>= 1).
    seed : seeds stage k's bptt run with ``seed + k``.

    Returns
    -------
    StagedResult (per stage: history, validation losses, the best iteration and loss).
    """
    if not isinstance(net, Model):
        raise TypeError(f"net: expected a flexrnn model, got {type(net).__name__}")
    stages = list(stages) if not isinstance(stages, Stage) else [stages]
    if not stages or not all(isinstance(s, Stage) for s in stages):
        raise TypeError("stages: expected a non-empty sequence of flexrnn.train.Stage")
    for k, stage in enumerate(stages):
        check.integer(f"stages[{k}].iters", stage.iters, minimum=1)
    val_every = check.integer("val_every", val_every, minimum=1)
    seed = check.seed("seed", seed)
    if validation is None:
        fixed = getattr(task, "trials", None)
        if fixed is None:
            fixed = task.batch(256, np.random.default_rng([seed, 2]), dtype=net.dtype)
        validation = fixed
    if not hasattr(validation, "u") or not hasattr(validation, "target"):
        raise TypeError("validation: expected Trials (u, target, mask)")

    result = StagedResult()
    for k, stage in enumerate(stages):
        keeper = _KeepBest(net, validation, val_every, loss)
        hist = bptt(
            net, task, iters=stage.iters, batch_size=batch_size, lr=stage.lr,
            optimizer=optimizer, weight_decay=weight_decay, clip_value=clip_value,
            clip_norm=clip_norm, trainable=stage.trainable, freeze=stage.freeze, loss=loss,
            val_every=None, progress=progress, seed=seed + k, callback=keeper,
        )  # fmt: skip
        keeper.restore()
        result.histories.append(hist)
        result.validations.append((np.array(keeper.iterations), np.array(keeper.losses)))
        result.best.append({"iteration": keeper.best_iteration, "loss": keeper.best_loss})
        result.names.append(stage.name or f"stage {k}")
    return result
