"""Task performance of a trained network under gain modulation (docs/dynamics_analysis.md,
"Performance under a gain").

:func:`performance_vs_gain` evaluates a network on fresh batches of its task at each gain
of a list: the same trials (and noise keys) at every gain, so differences between gains
are paired; mean and standard error over the batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flexrnn import _validate as check
from flexrnn import modulation as _modulation
from flexrnn.modulation import Combined, Modulation
from flexrnn.reference.losses import masked_loss
from flexrnn.reference.names import LOSSES

__all__ = ["PerformanceVsGain", "performance_vs_gain", "TARGETS"]

TARGETS = _modulation.TARGETS  # where the gain acts (aliases: modulation.TARGET_ALIASES)


@dataclass
class PerformanceVsGain:
    """Accuracy and loss over gains.

    Attributes
    ----------
    gains : (G,) ndarray
    accuracy, loss : (G,) ndarray
        Means over the batches (``task.score`` of the outputs; the task's masked loss).
    accuracy_se, loss_se : (G,) ndarray
        Standard errors of those means over the batches (``std(ddof=1) / sqrt(batches)``;
        NaN for one batch).
    batch_accuracy, batch_loss : (G, batches) ndarray
        Per batch.
    target : str
        Where the gain acts, canonical (``"gain"``, ``"pre"``, ``"post"``, ``"neuron"``,
        ``"pre:E"``, ...; see :mod:`flexrnn.modulation`).
    trained : Modulation, Combined or None
        The training distribution, when given (shaded on the plot).
    settings : dict
        batch_size, batches, seed, noise_std, loss.
    """

    gains: np.ndarray
    accuracy: np.ndarray
    accuracy_se: np.ndarray
    loss: np.ndarray
    loss_se: np.ndarray
    batch_accuracy: np.ndarray
    batch_loss: np.ndarray
    target: str = "gain"
    trained: Modulation | Combined | None = None
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.gains.shape[0])

    def summary(self) -> str:
        lines = [f"{'gain':>8}  {'accuracy':>17}  {'loss':>21}"]
        for i in range(len(self)):
            lines.append(
                f"{self.gains[i]:8.4g}  {self.accuracy[i]:7.3f} ± {self.accuracy_se[i]:7.3f}  "
                f"{self.loss[i]:9.4g} ± {self.loss_se[i]:9.3g}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, axes: Any = None, label: str | None = None) -> Any:
        """Accuracy and loss against the gain, error bars one standard error, the trained
        range shaded when known (two stacked Axes, or ``axes`` given; ``label`` names this
        curve in the legends, e.g. to overlay several networks). Returns the figure."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(2, 1, figsize=(5, 5), sharex=True, constrained_layout=True)
        else:
            if len(axes) != 2:
                raise ValueError(f"axes: expected 2 Axes, got {len(axes)}")
            fig = axes[0].figure
        ax_a, ax_l = axes
        name = label or "evaluated"
        ax_a.errorbar(self.gains, self.accuracy, yerr=self.accuracy_se, marker="o", ms=3,
                      capsize=2, label=name)  # fmt: skip
        ax_l.errorbar(self.gains, self.loss, yerr=self.loss_se, marker="o", ms=3, capsize=2,
                      label=name)  # fmt: skip
        if isinstance(self.trained, Modulation) and self.trained.kind != "callable":
            for ax in axes:
                ax.axvspan(self.trained.low, self.trained.high, color="0.85", zorder=0,
                           label="trained range")  # fmt: skip
        ax_a.axvline(1.0, color="0.5", lw=0.8, ls=":")
        ax_l.axvline(1.0, color="0.5", lw=0.8, ls=":")
        ax_a.set(ylabel="accuracy", title=f"performance vs {self.target}")
        ax_l.set(ylabel=f"loss ({self.settings.get('loss', '')})", xlabel=self.target)
        for ax in axes:
            ax.legend(frameon=False, fontsize="small")
        return fig


def performance_vs_gain(
    net: Any,
    task: Any,
    gains: Any,
    target: str | None = None,
    *,
    batch_size: int = 64,
    batches: int = 8,
    seed: int = 0,
    noise_std: float = 0.0,
    neuron_gain: Any = None,
    loss: str | None = None,
    trained: Modulation | Combined | None = None,
) -> PerformanceVsGain:
    """Accuracy and loss of ``net`` on ``task`` at each gain.

    Parameters
    ----------
    net : RateRNN or LowRankRNN (its ``run`` takes the gain).
    task : has ``batch(B, rng, dtype=...)`` and ``score(y, trials)``; ``n_in``, ``n_out``
        as the network's.
    gains : (G,) gains (each held constant over every trial), or a
        :class:`~flexrnn.modulation.Modulation`: its ``grid(11)``, and it is recorded as
        ``trained``.
    target : where the gain acts (a target of :mod:`flexrnn.modulation`): ``"gain"`` (the
        global gain, the default), ``"pre"`` / ``"post"`` (every sending / receiving neuron:
        ``pre_gain`` / ``post_gain`` filled with the gain), ``"neuron"`` (the slope of phi),
        ``"E"`` / ``"I"`` (the pre-synaptic gain of one cell type, ``net.cell_gains``;
        ``"post:E"``, ``"post:I"`` for the post-synaptic one). None: the target of a
        Modulation given as ``gains``, else ``"gain"``. A per-neuron site's gain multiplies
        a ``neuron_gain`` given at the same keyword.
    batch_size, batches : trials per batch, batches per gain (standard errors over them).
    seed : the batches come from ``default_rng(seed)`` (the same trials at every gain);
        batch k's recurrent noise has key ``seed * 1_000_003 + k``.
    noise_std, neuron_gain : as in ``net.run``.
    loss : "mse", "cross_entropy" or None (the task's ``loss``, else inferred from the
        target's dtype).
    trained : the Modulation (or Combined) the network was trained under, recorded, its
        range shaded on the plot (optional).

    Returns
    -------
    PerformanceVsGain.
    """
    if isinstance(gains, Combined):
        raise TypeError(
            "gains: a Combined modulation has no single range; pass the gains and target="
        )
    if target is None:
        target = gains.target if isinstance(gains, Modulation) else "gain"
    site, _ = _modulation.parse_target(target)
    keyword = _modulation.KEYWORDS[site]
    if keyword not in _modulation._run_keywords(net):
        raise TypeError(
            f"net: expected a network whose run takes {keyword} (RateRNN, LowRankRNN), got "
            f"{type(net).__name__}"
        )
    for method in ("batch", "score"):
        if not callable(getattr(task, method, None)):
            raise TypeError(f"task: expected an object with batch() and score(); "
                            f"{type(task).__name__} has no {method}()")  # fmt: skip
    for attr in ("n_in", "n_out"):
        want, have = getattr(task, attr, None), getattr(net, attr)
        if want is not None and int(want) != int(have):
            raise ValueError(f"task: {attr} = {want}, but the network has {attr} = {have}")
    if isinstance(gains, Modulation):
        trained = gains if trained is None else trained
        gains = gains.grid(11)
    if trained is not None and not isinstance(trained, (Modulation, Combined)):
        raise TypeError(
            f"trained: expected a Modulation, Combined or None, got {type(trained).__name__}"
        )
    g = check.real_array("gains", gains)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"gains: expected shape (G,) with G >= 1, got {g.shape}")
    g = check.array("gains", g, np.dtype(np.float64))
    at_site = [_modulation.site_gains(net, target, float(v), "gains") for v in g]  # checked
    target = _modulation._canonical(target)
    rate = getattr(net, "takes_gain", False)  # also takes neuron_gain and noise
    if not rate and (noise_std != 0 or neuron_gain is not None):
        name = "noise_std" if noise_std != 0 else "neuron_gain"
        raise ValueError(f"{name}: {type(net).__name__} takes no {name}")
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    batches = check.integer("batches", batches, minimum=1)
    seed = check.seed("seed", seed)
    noise_std = check.scalar("noise_std", noise_std, nonneg=True)
    if loss is not None:
        loss = check.choice("loss", loss, LOSSES)
    elif getattr(task, "loss", None) in LOSSES:
        loss = task.loss

    rng = np.random.default_rng(seed)
    trial_batches = [task.batch(batch_size, rng, dtype=net.dtype) for _ in range(batches)]
    acc = np.empty((g.size, batches))
    err = np.empty((g.size, batches))
    for k, trials in enumerate(trial_batches):
        key = (seed * 1_000_003 + k) % 2**64
        for i, kwargs in enumerate(at_site):
            if rate:
                if neuron_gain is not None:
                    ng = kwargs.get("neuron_gain")
                    kwargs = {**kwargs, "neuron_gain": neuron_gain if ng is None else
                              np.asarray(neuron_gain, np.float64) * ng}  # fmt: skip
                kwargs = {**kwargs, "noise_std": noise_std, "seed": key}
            y = net.outputs(trials.u, **kwargs)
            acc[i, k] = float(task.score(y, trials))
            err[i, k], used = _loss(y, trials, loss)
    settings = dict(batch_size=batch_size, batches=batches, seed=seed, noise_std=noise_std)
    settings["loss"] = used
    se = (lambda a: a.std(axis=1, ddof=1) / np.sqrt(batches)) if batches > 1 else (
        lambda a: np.full(a.shape[0], np.nan))  # fmt: skip
    return PerformanceVsGain(
        gains=g,
        accuracy=acc.mean(axis=1),
        accuracy_se=se(acc),
        loss=err.mean(axis=1),
        loss_se=se(err),
        batch_accuracy=acc,
        batch_loss=err,
        target=target,
        trained=trained,
        settings=settings,
    )


def _loss(y: np.ndarray, trials: Any, loss: str | None) -> tuple[float, str]:
    """(masked loss of the outputs y (T, B, n_out) in float64, the loss used)."""
    target = np.asarray(trials.target)
    if loss is None:
        loss = "cross_entropy" if target.dtype.kind in "iu" else "mse"
    given = getattr(trials, "mask", None)
    mask = np.asarray(1.0 if given is None else check.loss_weights("mask", given), np.float64)
    return float(masked_loss(np.asarray(y, np.float64), target, mask, loss)), loss
