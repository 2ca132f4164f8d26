"""What a training run records, and stopping criteria that read it.

Iterations are counted as completed updates: ``loss[i]`` is the training loss of update
``i`` (0-based, before that update), and a validation made after ``c`` updates is recorded
at iteration ``c``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np

from flexrnn import _validate as check

# What each rule records per update, besides the validations. ``loss`` and ``wall_time``
# mean the same for every rule; the other fields are named after what they hold.
RULE_FIELDS: dict[str, tuple[str, ...]] = {
    "bptt": ("loss", "grad_norm", "lr", "wall_time"),
    "force": ("loss", "weight_change", "alpha", "wall_time"),
    "full_force": ("loss", "weight_change", "alpha", "wall_time"),
    "hebbian": ("loss", "weight_change", "eta", "wall_time"),
    "genetic": ("loss", "median_loss", "sigma", "wall_time"),
}
ITERATION_FIELDS = RULE_FIELDS["bptt"]  # a History() of no named rule records BPTT's fields
HISTORY_FIELDS = tuple(dict.fromkeys(f for fields in RULE_FIELDS.values() for f in fields))
VALIDATION_FIELDS = ("val_iteration", "val_accuracy", "val_loss")
# In earlier versions every rule filled BPTT's fields: the names they held, per rule. Reading
# them still works (a DeprecationWarning names the new field); checkpoints written with
# them are renamed on resume.
LEGACY_FIELDS: dict[str, dict[str, str]] = {
    "force": {"grad_norm": "weight_change", "lr": "alpha"},
    "full_force": {"grad_norm": "weight_change", "lr": "alpha"},
    "hebbian": {"grad_norm": "weight_change", "lr": "eta"},
    "genetic": {"grad_norm": "median_loss", "lr": "sigma"},
}


class History:
    """Per-iteration and per-validation records of a training run.

    Every rule records, per update (arrays of shape (iters,), built on access):

    loss : the training loss of the update's batch (BPTT: the task's loss; FORCE /
        full-FORCE: the masked mean squared a priori error; Hebbian: the batch's mean error
        R; genetic: the best member's loss, before selection).
    wall_time : seconds of training (validations included) up to the end of each update,
        summed over resumed runs.

    and its own quantities, named for what they are (``fields`` lists them, in order):

    - ``bptt``: ``grad_norm`` the global norm of the trainable gradients before clipping,
      ``lr`` the learning rate of the update;
    - ``force``, ``full_force``: ``weight_change`` the Frobenius norm of the change of the
      trained weights, ``alpha`` the RLS regulariser (P0 = I / alpha);
    - ``hebbian``: ``weight_change`` the Frobenius norm of the batch's change of W, ``eta``
      the learning rate;
    - ``genetic``: ``median_loss`` the population's median loss, ``sigma`` the mutation scale.

    Per validation (n_val,): ``val_iteration`` updates completed, ``val_accuracy``
    (``task.score``), ``val_loss``. ``stopped``: None when the run did all its iterations,
    else why it ended early ("criterion" or "callback").

    Deprecated: reading ``grad_norm`` or ``lr`` of a rule other than BPTT (they held the
    quantities above in earlier versions) returns the renamed field with a DeprecationWarning.
    """

    def __init__(self, rule: str = "bptt") -> None:
        if rule not in RULE_FIELDS:
            raise ValueError(f"rule: expected one of {tuple(RULE_FIELDS)}, got {rule!r}")
        self.rule = rule
        self.fields = RULE_FIELDS[rule]
        self._records: dict[str, list] = {k: [] for k in self.fields + VALIDATION_FIELDS}
        self.stopped: str | None = None

    # Appending to lists is the cheap per-iteration path; arrays are made on access.
    def _append(self, *values: float) -> None:
        """One update's records, in the order of ``fields`` (wall_time last)."""
        if len(values) != len(self.fields):
            raise ValueError(f"values: expected {len(self.fields)} ({', '.join(self.fields)})")
        r = self._records
        for name, value in zip(self.fields, values):
            r[name].append(value)

    def _append_validation(self, iteration: int, accuracy: float, loss: float) -> None:
        r = self._records
        r["val_iteration"].append(iteration)
        r["val_accuracy"].append(accuracy)
        r["val_loss"].append(loss)

    def _array(self, name: str) -> np.ndarray:
        return np.array(self._records[name], dtype=np.int64 if name == "val_iteration" else float)

    loss = property(lambda self: self._array("loss"), doc="(iters,) training loss")
    wall_time = property(lambda self: self._array("wall_time"), doc="(iters,) seconds")
    val_iteration = property(lambda self: self._array("val_iteration"), doc="(n_val,)")
    val_accuracy = property(lambda self: self._array("val_accuracy"), doc="(n_val,)")
    val_loss = property(lambda self: self._array("val_loss"), doc="(n_val,)")

    def __getattr__(self, name: str) -> np.ndarray:
        """The rule's own fields (``grad_norm``, ``weight_change``, ``sigma``, ...) as arrays,
        and the deprecated names of :data:`LEGACY_FIELDS`."""
        records = self.__dict__.get("_records")
        if records is not None and not name.startswith("_"):
            if name in records:
                return self._array(name)
            new = LEGACY_FIELDS.get(self.__dict__.get("rule", ""), {}).get(name)
            if new is not None:
                warnings.warn(
                    f"History.{name} of a {self.rule} run is deprecated: it is the run's "
                    f"{new} (read History.{new})",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return self._array(new)
        raise AttributeError(f"{type(self).__name__} of a {self.__dict__.get('rule')} run "
                             f"has no field {name!r}")  # fmt: skip

    def __len__(self) -> int:
        """Number of updates recorded."""
        return len(self._records["loss"])

    @property
    def iterations(self) -> int:
        return len(self)

    @property
    def accuracies(self) -> list[float]:
        """Validation accuracies so far (the list itself: read it, do not change it)."""
        return self._records["val_accuracy"]

    @property
    def best(self) -> dict[str, Any] | None:
        """The validation with the highest accuracy (the earliest on ties), as
        ``{"iteration", "accuracy", "loss"}``; None before the first validation."""
        acc = self._records["val_accuracy"]
        if not acc:
            return None
        i = int(np.nanargmax(acc)) if not np.isnan(acc).all() else 0
        return {
            "iteration": self._records["val_iteration"][i],
            "accuracy": acc[i],
            "loss": self._records["val_loss"][i],
        }

    def as_dict(self) -> dict[str, Any]:
        """Every record as an array, plus ``stopped``."""
        out: dict[str, Any] = {name: self._array(name) for name in self._records}
        out["stopped"] = self.stopped
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], rule: str | None = None) -> History:
        """Inverse of :meth:`as_dict` (arrays or lists per field).

        rule : the rule whose fields ``data`` holds; None: the rule whose fields are those
        of ``data`` (BPTT's when ambiguous). With a ``rule``, data in the names used in
        earlier versions (BPTT's, see :data:`LEGACY_FIELDS`) are renamed.
        """
        names = {k for k in data if k in HISTORY_FIELDS}
        if rule is None:
            rule = next((r for r, f in RULE_FIELDS.items() if set(f) == names), "bptt")
        hist = cls(rule)
        renamed = dict(data)
        if names == set(ITERATION_FIELDS) and rule in LEGACY_FIELDS:
            for old, new in LEGACY_FIELDS[rule].items():
                renamed[new] = renamed.pop(old)
        foreign = sorted(k for k in renamed if k in HISTORY_FIELDS and k not in hist.fields)
        if foreign:
            raise ValueError(
                f"data: records {', '.join(foreign)} are not those of a {rule} run "
                f"({', '.join(hist.fields)})"
            )
        for name in hist._records:
            values = np.asarray(renamed.get(name, []))
            hist._records[name] = values.tolist()
        lengths = {len(hist._records[k]) for k in hist.fields}
        val_lengths = {len(hist._records[k]) for k in VALIDATION_FIELDS}
        if len(lengths) != 1 or len(val_lengths) != 1:
            raise ValueError("data: the per-iteration (or per-validation) records differ in length")
        stopped = data.get("stopped")
        hist.stopped = None if stopped is None or stopped == "" else str(stopped)
        return hist

    def __repr__(self) -> str:
        last = f", last val accuracy {self.accuracies[-1]:.3f}" if self.accuracies else ""
        stop = f", stopped by {self.stopped}" if self.stopped else ""
        loss = f", last loss {self._records['loss'][-1]:.4g}" if len(self) else ""
        return f"History({len(self)} iterations{loss}{last}{stop})"

    def plot(self, axes: Any = None) -> Any:
        """Training loss (log scale) and validation accuracy against iteration (matplotlib).

        axes: None (a new figure) or two Axes. Returns the figure.
        """
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
        else:
            fig = axes[0].figure
        ax_loss, ax_acc = axes
        ax_loss.semilogy(np.arange(1, len(self) + 1), self.loss, lw=0.8, label="train")
        if len(self.val_iteration):
            ax_loss.semilogy(self.val_iteration, self.val_loss, "o-", ms=3, label="validation")
            ax_acc.plot(self.val_iteration, self.val_accuracy, "o-", ms=3)
        ax_loss.set(xlabel="iteration", ylabel="loss")
        ax_loss.legend(frameon=False)
        ax_acc.set(xlabel="iteration", ylabel="validation accuracy", ylim=(0, 1.02))
        return fig


class StopWhenAccuracy:
    """Stop once the minimum of the last ``window`` validation accuracies is >= ``threshold``
    (McMahan et al. 2021: 0.9 over 10 validations)."""

    needs_validation = True

    def __init__(self, threshold: float, window: int = 10):
        self.threshold = check.scalar("threshold", threshold)
        self.window = check.integer("window", window, minimum=1)

    def __call__(self, history: History) -> bool:
        acc = history.accuracies
        return len(acc) >= self.window and min(acc[-self.window :]) >= self.threshold

    def __repr__(self) -> str:
        return f"stop_when_accuracy({self.threshold!r}, window={self.window})"


def stop_when_accuracy(threshold: float, window: int = 10) -> StopWhenAccuracy:
    """Criterion for ``bptt(stop=...)``: min of the last ``window`` validation accuracies
    >= ``threshold``."""
    return StopWhenAccuracy(threshold, window)


class KeepLowestLoss:
    """A training callback (``bptt(callback=...)``, ``staged``'s stages) that keeps a copy of
    the parameters after the update whose batch loss was the lowest so far; ``restore(net)``
    writes them back (in place, into the model's own arrays).

    The loss of update k is measured before the update, so the copy kept is the one the
    NM-RNN study's element-finder code keeps (the parameters returned by the step with the
    lowest batch loss). Nothing is stopped: the callback returns False.

    >>> best = fr.train.KeepLowestLoss()
    >>> fr.train.bptt(net, task, iters=20000, callback=best)
    >>> best.restore(net)   # best.update, best.loss: where and how low
    """

    def __init__(self) -> None:
        self.loss = math.inf
        self.update = 0
        self.params: dict[str, np.ndarray] | None = None

    def __call__(self, iteration: int, history: History, net: Any) -> bool:
        if len(history.loss) and history.loss[-1] < self.loss:
            self.loss = float(history.loss[-1])
            self.update = int(iteration)
            self.params = {name: p.copy() for name, p in net.params().items()}
        return False

    def restore(self, net: Any) -> None:
        """Copy the kept parameters into ``net`` (the model that was trained)."""
        if self.params is None:
            raise RuntimeError("restore: no update has been seen yet (train with callback=...)")
        own = net.params()
        if set(own) != set(self.params):
            raise ValueError(
                f"net: its parameters {sorted(own)} are not the kept ones {sorted(self.params)}"
            )
        for name, p in self.params.items():
            if own[name].shape != p.shape:
                raise ValueError(f"net: {name} has shape {own[name].shape}, kept {p.shape}")
            own[name][...] = p

    def __repr__(self) -> str:
        return f"KeepLowestLoss(loss={self.loss:.6g}, update={self.update})"


StopCriterion = Callable[[History], bool]


def progress_bar(progress: bool, total: int, desc: str, unit: str = "it", initial: int = 0):
    """A tqdm bar over ``total`` steps starting at ``initial`` (a resumed run), or None when
    ``progress`` is False."""
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress: expected True or False, got {type(progress).__name__}")
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
