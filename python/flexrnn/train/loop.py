"""The one training loop: iteration, validation, stopping, checkpoints and exact resumption,
history and progress, for every learning rule (docs/learning_rules.md, "The training loop").

A learning rule supplies only its step, as a :class:`Rule`:

- ``step(it) -> records``: one update (``it`` = updates done before it), returning the
  update's history records in the order of ``History(rule).fields``, without ``wall_time``
  (BPTT: loss, grad_norm, lr; genetic: loss, median_loss, sigma; ...);
- ``validate(done) -> (accuracy, loss)``: a fresh batch drawn from ``self.val_rng``;
- ``state() -> dict``: what a checkpoint holds of the rule beyond the parameters, the
  generators and the history (optimiser moments, the population, running errors);
- ``constrain()``: project what the rule trains onto the model's structure (a RateRNN's
  connectivity ``mask`` and Dale's-law ``cell_type``); the default projects ``self.net``.

:func:`run` owns everything else. Per update, in this order: the stopping criterion
(``stop(history)``, before the update), the step, the projection onto the model's structure
(``rule.constrain()``: masked weights back to zero, signs kept; also once before the first
update, so that a rule's initial state obeys it), its records and wall time, a validation
every ``val_every`` updates, a checkpoint every ``checkpoint_every`` updates, the progress
bar, the callback (``callback(done, history, net) is True`` ends the run); after the last
update a final checkpoint unless the last one is current. The training generator
(``self.rng``, ``default_rng(seed)``) and the validation generator (``self.val_rng``,
``default_rng([seed, 1])``) are the loop's: it creates them, saves their states in
checkpoints and restores them on resume, so a resumed run is bitwise identical to an
uninterrupted one.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from flexrnn import _validate as check

from .checkpoint import (
    Checkpoint,
    check_allow_mismatch,
    check_checkpoint_folder,
    check_same_structure,
    resume_run,
    save_run,
)
from .history import History, StopCriterion, progress_bar


class Rule(ABC):
    """One learning rule's step, run by :func:`run`.

    Class attributes: ``rule`` names the history's fields (``history.RULE_FIELDS``);
    ``label`` the progress bar's name of the loss (``loss=0.0123``); ``unit`` its unit.
    Set by the loop before the first step: ``rng`` (training batches) and ``val_rng``
    (validation batches), ``saved_at`` (the iteration of the last checkpoint this call
    wrote, -1 before the first; for error messages).
    """

    rule: str = "bptt"
    label: str = "loss"
    unit: str = "it"
    rng: np.random.Generator
    val_rng: np.random.Generator
    saved_at: int = -1

    @abstractmethod
    def step(self, it: int) -> Sequence[float]:
        """One update (``it`` updates done before it): the records of ``History.fields``
        except ``wall_time``. Raises FloatingPointError, leaving the model as it was, when
        the update would make it non-finite."""

    def validate(self, done: int) -> tuple[float, float]:
        """(accuracy, loss) on a fresh batch of ``self.val_rng``, after ``done`` updates.

        Rules without a validation keep this default, and their drivers never set
        ``val_every``: asking one to validate is a TypeError."""
        raise TypeError(f"{type(self).__name__} has no validation (val_every must be None)")

    def state(self) -> dict[str, Any]:
        """The rule's state for a checkpoint (arrays, and JSON values).

        Rules without checkpoints keep this default, and their drivers never set a
        checkpoint path: asking one for its state is a TypeError."""
        raise TypeError(f"{type(self).__name__} has no checkpoints (checkpoint must be None)")

    def advance(self, it: int) -> int:
        """Progress-bar units of update ``it`` (1: one update)."""
        return 1

    def constrain(self) -> None:
        """Project the trained model (``self.net``, which every rule holds) onto its
        structure, in place: ``net._constrain()`` sets weights outside a RateRNN's ``mask``
        to zero and clips each column of ``W`` to its cell type's sign (nothing for models
        without structure). The loop calls it after every step and once before the first.
        Rules that keep other copies of the weights (a population) project those too."""
        net = getattr(self, "net", None)
        if net is not None:
            net._constrain()


@dataclass
class Checkpointing:
    """Where and what :func:`run` checkpoints: ``path`` (None: never), every ``every``
    updates; ``args`` the training arguments (JSON), ``arrays`` argument arrays, and the
    ``experiment`` objects to fingerprint (``{"task": task}``), all compared on resume."""

    path: Path | None
    every: int
    args: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    experiment: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoopOptions:
    """The loop's arguments of a training driver, checked (:meth:`checked`)."""

    val_every: int | None
    val_batch: int
    checkpoint: Path | None
    checkpoint_every: int
    allow_mismatch: bool
    stop: StopCriterion | None
    callback: Callable[..., Any] | None

    @classmethod
    def checked(
        cls,
        *,
        val_every: Any,
        val_batch: Any,
        checkpoint: Any = None,
        checkpoint_every: Any = 1,
        allow_mismatch: Any = False,
        stop: Any = None,
        callback: Any = None,
    ) -> LoopOptions:
        """ValueError / TypeError naming the argument for bad values: ``val_every`` None or
        >= 1, ``val_batch`` >= 1, ``checkpoint_every`` >= 1, the ``checkpoint`` folder must
        exist, ``stop`` and ``callback`` callables (a criterion reading validations needs
        ``val_every``)."""
        if val_every is not None:
            val_every = check.integer("val_every", val_every, minimum=1)
        val_batch = check.integer("val_batch", val_batch, minimum=1)
        checkpoint_every = check.integer("checkpoint_every", checkpoint_every, minimum=1)
        checkpoint = check_checkpoint_folder(checkpoint)
        allow_mismatch = check_allow_mismatch(allow_mismatch)
        if stop is not None and not callable(stop):
            raise TypeError(f"stop: expected a callable history -> bool, got {type(stop).__name__}")
        if stop is not None and getattr(stop, "needs_validation", False) and val_every is None:
            raise ValueError(f"stop: {stop!r} reads validation accuracies; set val_every")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
        return cls(val_every, val_batch, checkpoint, checkpoint_every, allow_mismatch, stop,
                   callback)  # fmt: skip


def run(
    rule: Rule,
    *,
    iters: int,
    seed: int,
    options: LoopOptions,
    desc: str,
    progress: bool = True,
    net: Any = None,
    history: History | None = None,
    total: int | None = None,
    checkpointing: Checkpointing | None = None,
    resume: Checkpoint | None = None,
) -> History:
    """Run ``rule`` for updates ``start .. iters - 1`` and return the history.

    rule : the step (:class:`Rule`).
    iters : total updates, those of a resumed run included.
    seed : the generators of a fresh run, ``default_rng(seed)`` and ``default_rng([seed, 1])``.
    options : validation, stopping, callback and checkpoint arguments (:class:`LoopOptions`).
    desc, progress, total : the tqdm bar's text, whether to show it, and its length
        (default ``iters``; the steps advance it by ``rule.advance(it)``).
    net : the model handed to ``callback(done, history, net)`` and written to checkpoints.
    history : the history a fresh run records into (default ``History(rule.rule)``).
    checkpointing : what checkpoints hold besides the rule's ``state()``.
    resume : a checkpoint, verified by the driver (the rule's own state already restored
        from it): the generators, the history and the iteration count continue from it.
    """
    if resume is not None:
        check_same_structure(resume.net, net)
        rule.rng, rule.val_rng, history, start = resume_run(resume)
        if history.rule != rule.rule:  # a checkpoint of an earlier version: BPTT's field names
            history = History.from_dict(history.as_dict(), rule=rule.rule)
    else:
        rule.rng, rule.val_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
        history = History(rule.rule) if history is None else history
        start = 0
    rule.saved_at = -1
    saving = checkpointing or Checkpointing(None, 1, {})
    path = saving.path
    val_every, stop, callback = options.val_every, options.stop, options.callback

    def save(done: int) -> None:
        save_run(path, net=net, iteration=done, history=history, state=rule.state(),  # type: ignore[arg-type]
                 rng=rule.rng, val_rng=rule.val_rng, args=saving.args, arrays=saving.arrays,
                 experiment=saving.experiment)  # fmt: skip
        rule.saved_at = done

    elapsed = history._records["wall_time"][-1] if len(history) else 0.0
    t0 = time.perf_counter() - elapsed
    bar = progress_bar(progress, iters if total is None else total, desc, rule.unit,
                       initial=start)  # fmt: skip
    done = start
    rule.constrain()
    try:
        for it in range(start, iters):
            if stop is not None and stop(history):
                history.stopped = "criterion"
                break
            records = rule.step(it)
            rule.constrain()
            done = it + 1
            history._append(*records, time.perf_counter() - t0)
            if val_every is not None and done % val_every == 0:
                history._append_validation(done, *rule.validate(done))
            if path is not None and done % saving.every == 0:
                save(done)
            if bar is not None:
                accs = history.accuracies
                acc = f", acc={accs[-1]:.3f}" if accs else ""
                bar.set_postfix_str(f"{rule.label}={records[0]:.4g}{acc}", refresh=False)
                bar.update(rule.advance(it))
            if callback is not None and callback(done, history, net) is True:
                history.stopped = "callback"
                break
        if path is not None and (rule.saved_at != done or history.stopped):
            save(done)
    finally:
        if bar is not None:
            bar.close()
    return history


def check_task_sizes(task: Any, net: Any) -> None:
    """ValueError naming ``task`` when its ``n_in`` / ``n_out`` differ from the network's."""
    for attr in ("n_in", "n_out"):
        want, got = getattr(net, attr, None), getattr(task, attr, None)
        if got is not None and want is not None and int(got) != int(want):
            raise ValueError(f"task: {attr} = {got}, but the network has {attr} = {want}")
