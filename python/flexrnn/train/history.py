"""What a training run records, and stopping criteria that read it.

Iterations are counted as completed updates: ``loss[i]`` is the training loss of update
``i`` (0-based, before that update), and a validation made after ``c`` updates is recorded
at iteration ``c``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from flexrnn import _validate as check

ITERATION_FIELDS = ("loss", "grad_norm", "lr", "wall_time")
VALIDATION_FIELDS = ("val_iteration", "val_accuracy", "val_loss")


class History:
    """Per-iteration and per-validation records of a training run.

    Attributes (arrays, built on access)
    ------------------------------------
    loss : (iters,) training loss of each update's batch.
    grad_norm : (iters,) global norm of the trainable parameters' gradients, before clipping.
    lr : (iters,) learning rate of each update.
    wall_time : (iters,) seconds of training (validations included) up to the end of each
        update, summed over resumed runs.
    val_iteration : (n_val,) updates completed at each validation.
    val_accuracy : (n_val,) ``task.score`` on the validation batch.
    val_loss : (n_val,) loss on the validation batch.
    stopped : None when the run did all its iterations, else why it ended early
        ("criterion" or "callback").
    """

    def __init__(self) -> None:
        self._records: dict[str, list] = {k: [] for k in ITERATION_FIELDS + VALIDATION_FIELDS}
        self.stopped: str | None = None

    # Appending to lists is the cheap per-iteration path; arrays are made on access.
    def _append(self, loss: float, grad_norm: float, lr: float, wall_time: float) -> None:
        r = self._records
        r["loss"].append(loss)
        r["grad_norm"].append(grad_norm)
        r["lr"].append(lr)
        r["wall_time"].append(wall_time)

    def _append_validation(self, iteration: int, accuracy: float, loss: float) -> None:
        r = self._records
        r["val_iteration"].append(iteration)
        r["val_accuracy"].append(accuracy)
        r["val_loss"].append(loss)

    def _array(self, name: str) -> np.ndarray:
        return np.array(self._records[name], dtype=np.int64 if name == "val_iteration" else float)

    loss = property(lambda self: self._array("loss"), doc="(iters,) training loss")
    grad_norm = property(lambda self: self._array("grad_norm"), doc="(iters,) pre-clip norm")
    lr = property(lambda self: self._array("lr"), doc="(iters,) learning rate")
    wall_time = property(lambda self: self._array("wall_time"), doc="(iters,) seconds")
    val_iteration = property(lambda self: self._array("val_iteration"), doc="(n_val,)")
    val_accuracy = property(lambda self: self._array("val_accuracy"), doc="(n_val,)")
    val_loss = property(lambda self: self._array("val_loss"), doc="(n_val,)")

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
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of :meth:`as_dict` (arrays or lists per field)."""
        hist = cls()
        for name in hist._records:
            values = np.asarray(data.get(name, []))
            hist._records[name] = values.tolist()
        lengths = {len(hist._records[k]) for k in ITERATION_FIELDS}
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
