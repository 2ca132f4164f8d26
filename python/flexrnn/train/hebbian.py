"""Reward-modulated Hebbian learning with exploratory perturbations (Miconi 2017;
docs/learning_rules.md).

>>> hist = fr.train.hebbian(net, task, iters=200, batch_size=10)

Trials run one after the other in C++; the recurrent weights ``W`` change after every trial.
The error of a trial is ``R = mean |y - target|`` over its last ``window`` steps, where the
target is the trial's final target (``trials.target[-1]``: the response the window should
hold); with a one-hot ``W_out`` this is Miconi's ``|r_0 - target|``. Its running average
``Rbar`` is kept per condition, as Miconi keeps one per trial type: with
``baseline="target"`` (default) a condition is a distinct final target (the sign, for the
decision tasks), with ``"global"`` there is one.
The kicks come from the counter-based generator keyed by ``(seed, trial, step)``; batches
from NumPy generators whose states are checkpointed with ``W``, ``Rbar`` and the history,
so a resumed run is bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from flexrnn import _core
from flexrnn import _validate as check
from flexrnn.models import RateRNN

from .bptt import task_loss
from .checkpoint import load_for_resume
from .force import _own
from .history import History, StopCriterion
from .loop import Checkpointing, LoopOptions, Rule, check_task_sizes
from .loop import run as run_loop

PathLike = Union[str, Path]


def hebbian(
    net: RateRNN,
    task: Any,
    *,
    iters: int,
    batch_size: int = 10,
    eta: float = 0.01,
    clip: float = 2e-4,
    kick_prob: float = 0.003,
    kick_amp: float = 30.0,
    trace_decay: float = 0.05,
    reward_decay: float = 0.75,
    window: int = 200,
    baseline: str = "target",
    val_every: int | None = 10,
    val_batch: int = 256,
    stop: StopCriterion | None = None,
    progress: bool = True,
    checkpoint: PathLike | None = None,
    checkpoint_every: int = 50,
    resume: PathLike | None = None,
    allow_mismatch: bool = False,
    seed: int = 0,
    callback: Callable[[int, History, RateRNN], Any] | None = None,
    rbar_factor: bool = False,
    learn_from: int = 0,
    clamp: dict[int, float] | None = None,
) -> History:
    """Train the recurrent weights ``W`` of ``net`` by reward-modulated Hebbian learning.

    Per step: each neuron with probability ``kick_prob`` gets ``kick_amp U(-1, 1)`` added to
    its input; the eligibility ``e_ij += (r_j[t-1] (x_i[t] - xbar_i))^3`` with ``xbar`` the
    running average of x over the earlier steps, updated after the eligibility
    (``xbar <- trace_decay xbar + (1 - trace_decay) x[t]``, as in Miconi's code): with
    Miconi's fast average (0.05) the deviation is about the one-step change of x, which a
    kick dominates, so the rule correlates the error with the kicks rather than with the
    network's own (chaotic) drift. Per trial:
    ``R`` (see the module), ``Rbar`` its running average (``reward_decay``), and
    ``W += clip(-eta e (R - Rbar), +-clip)``.

    Parameters
    ----------
    net : RateRNN, ``form="current"``; W changes in place (W_in, W_out, biases fixed).
    task : ``batch(B, rng, dtype=)`` with float targets (T, B, n_out), ``score``.
    iters : batches (including those of a resumed run); ``batch_size`` trials each, in order.
    eta, clip, kick_prob, kick_amp, trace_decay, reward_decay, window : the rule's constants
        (the spec's eta, clip, kicks and window; the decays of the running averages from
        Miconi's code: 0.05 for xbar, 0.75 for Rbar).
    baseline : "target" (one Rbar per distinct final target) or "global".
    val_every, val_batch, stop, progress, checkpoint, checkpoint_every, resume,
    allow_mismatch, seed, callback : as in :func:`bptt` (validation runs without kicks; the
        task is verified on resume).
    rbar_factor, learn_from, clamp : the learning-rule study's variant (McMahan et al. 2021):
        ``rbar_factor=True`` multiplies the update by the running error,
        ``W += clip(-eta Rbar e (R - Rbar), +-clip)``; W changes only from trial
        ``learn_from`` on (0, 1, ... over the whole run; the running errors are tracked from
        the first); ``clamp={unit: value}`` holds those units' x at the values during
        training (bias units; the study's ``{0: 1, 9: 1, 10: -1}``). For the network to run
        the same way outside training, give those units zero rows of W and W_in, bias and
        x0 equal to the value (:func:`hold_units`).

    Returns
    -------
    History (``rule == "hebbian"``): ``loss`` the batch's mean R, ``weight_change`` the
    Frobenius norm of the batch's change of W, ``eta``; validation accuracy (``task.score``)
    and masked MSE. (``grad_norm`` and ``lr``, which held weight_change and eta in
    earlier versions, are deprecated aliases.)
    """
    if "hebbian" not in getattr(net, "kernels", {}):
        raise TypeError(f"net: hebbian trains a RateRNN, got {type(net).__name__}")
    if net.form != "current":
        raise ValueError(f"net: hebbian needs form='current', got form={net.form!r}")
    check_task_sizes(task, net)
    iters = check.integer("iters", iters, minimum=0)
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    eta = check.scalar("eta", eta, nonneg=True)
    clip = check.scalar("clip", clip, nonneg=True)
    kick_prob = check.scalar("kick_prob", kick_prob, nonneg=True)
    kick_amp = check.scalar("kick_amp", kick_amp, nonneg=True)
    trace_decay = check.scalar("trace_decay", trace_decay, nonneg=True)
    reward_decay = check.scalar("reward_decay", reward_decay, nonneg=True)
    for name, value in (("trace_decay", trace_decay), ("reward_decay", reward_decay)):
        if value > 1:
            raise ValueError(f"{name}: must be in [0, 1], got {value}")
    window = check.integer("window", window, minimum=1)
    learn_from = check.integer("learn_from", learn_from, minimum=0)
    clamp_units, clamp_values = _clamp(clamp, net.n)
    baseline = check.choice("baseline", baseline, ("target", "global"))
    loop = LoopOptions.checked(val_every=val_every, val_batch=val_batch, checkpoint=checkpoint,
                               checkpoint_every=checkpoint_every, allow_mismatch=allow_mismatch,
                               stop=stop, callback=callback)  # fmt: skip
    seed = check.seed("seed", seed)
    dt = net.dtype
    args = {
        "rule": "hebbian",
        "dtype": dt.name,
        "task": str(getattr(task, "name", type(task).__name__)),
        "batch_size": batch_size,
        "eta": eta,
        "clip": clip,
        "kick_prob": kick_prob,
        "kick_amp": kick_amp,
        "trace_decay": trace_decay,
        "reward_decay": reward_decay,
        "window": window,
        "baseline": baseline,
        "val_every": loop.val_every,
        "val_batch": loop.val_batch,
        "seed": seed,
    }
    if rbar_factor or learn_from or clamp_units:  # recorded when used: old checkpoints resume
        args.update(rbar_factor=bool(rbar_factor), learn_from=learn_from,
                    clamp_units=clamp_units, clamp_values=clamp_values)  # fmt: skip
    step = _HebbianStep(net, task, args)
    ckpt = None
    if resume is not None:
        ckpt = load_for_resume(resume, args, RateRNN, dt, experiment={"task": task},
                               structural=("rule", "dtype"), net=net,
                               allow_mismatch=loop.allow_mismatch)  # fmt: skip
        step.restore(ckpt)
    step.p = net._kernel()  # W is trained in place through the bound parameters
    saving = Checkpointing(loop.checkpoint, loop.checkpoint_every, args, experiment={"task": task})
    return run_loop(step, iters=iters, seed=seed, options=loop, desc=f"hebbian {args['task']}",
                    progress=progress, net=net, checkpointing=saving, resume=ckpt)  # fmt: skip


class _HebbianStep(Rule):
    """One batch of trials, in order, each followed by its change of W (in C++)."""

    rule = "hebbian"
    label = "R"

    def __init__(self, net: RateRNN, task: Any, args: dict[str, Any]) -> None:
        self.net, self.task, self.args = net, task, args
        self.W = _own(net, "W")
        # running errors per condition: keys (final targets, as tuples) in order of appearance
        self.keys: list[tuple[float, ...]] = []
        self.Rbar = np.zeros(0)
        self.p: Any = None  # the bound parameters (net._kernel()), set before the first step

    def restore(self, ckpt: Any) -> None:
        if ckpt.net.W.shape != self.W.shape:
            raise ValueError(f"resume: W has shape {ckpt.net.W.shape} in the checkpoint")
        self.W[...] = ckpt.net.W
        self.keys = [tuple(k) for k in ckpt.optimizer_state["baseline_keys"]]
        self.Rbar = np.array(ckpt.optimizer_state["Rbar"], dtype=np.float64)

    def _conditions(self, target: np.ndarray) -> np.ndarray:
        """(B,) index of each trial's condition; new conditions get Rbar = NaN."""
        condition = np.zeros(len(target), np.int64)
        for i, row in enumerate(target.tolist()):
            key = tuple(row) if self.args["baseline"] == "target" else ()
            if key not in self.keys:
                self.keys.append(key)
            condition[i] = self.keys.index(key)
        if len(self.Rbar) < len(self.keys):
            new = np.full(len(self.keys) - len(self.Rbar), np.nan)
            self.Rbar = np.concatenate([self.Rbar, new])
        return condition

    def step(self, it: int) -> tuple[float, float, float]:
        net, p, a, W = self.net, self.p, self.args, self.W
        dt, batch_size = net.dtype, a["batch_size"]
        trials = self.task.batch(batch_size, self.rng, dtype=dt)
        u = check.inputs(trials.u, net.n_in, dt)
        T = u.shape[0]
        target = check.array("target", np.asarray(trials.target)[-1], dt,
                             (batch_size, net.n_out))  # fmt: skip
        x0 = check.initial_state("x0", None, net.x0, batch_size)
        condition = self._conditions(target)
        before = W.copy()
        options = _core.HebbianOptions(
            rate=net._options(), kick_prob=a["kick_prob"], kick_amp=a["kick_amp"],
            trace_decay=a["trace_decay"], eta=a["eta"], clip=a["clip"],
            reward_decay=a["reward_decay"], window=min(a["window"], T), seed=a["seed"],
            trial0=it * batch_size, learn=True,
        )  # fmt: skip
        if "rbar_factor" in a:
            options.rbar_factor, options.learn_from = a["rbar_factor"], a["learn_from"]
            options.clamp_units, options.clamp_values = a["clamp_units"], a["clamp_values"]
        _, R = _hebbian_kernel(net, p, options, u=u, target=target, x0=x0, condition=condition,
                               Rbar=self.Rbar)  # fmt: skip
        change = float(np.linalg.norm((W - before).astype(np.float64)))
        if not (np.isfinite(R).all() and np.isfinite(W).all()):
            raise FloatingPointError(f"hebbian: non-finite error or weights at iteration {it}")
        return float(R.mean()), change, a["eta"]

    def validate(self, done: int) -> tuple[float, float]:
        vt = self.task.batch(self.args["val_batch"], self.val_rng, dtype=self.net.dtype)
        vy = self.net.outputs(vt.u)
        return float(self.task.score(vy, vt)), task_loss(vy, vt)

    def state(self) -> dict[str, Any]:
        return {"Rbar": self.Rbar, "baseline_keys": [list(k) for k in self.keys]}


def _clamp(clamp: Any, n: int) -> tuple[list[int], list[float]]:
    """(units, values) of the ``clamp`` mapping {unit: value}, checked."""
    if clamp is None:
        return [], []
    if not isinstance(clamp, dict):
        raise TypeError(f"clamp: expected a dict {{unit: value}}, got {type(clamp).__name__}")
    units, values = [], []
    for unit, value in sorted(clamp.items()):
        unit = check.integer("clamp", unit, minimum=0)
        if unit >= n:
            raise ValueError(f"clamp: unit {unit} outside the network's {n} units")
        units.append(unit)
        values.append(check.scalar("clamp", value))
    return units, values


def hold_units(net: RateRNN, clamp: dict[int, float]) -> None:
    """Make ``clamp``'s units of ``net`` (in place) constant at their values in any run: zero
    rows of W and W_in, bias and x0 equal to the value (form "current": x stays at the value
    up to rounding)."""
    units, values = _clamp(clamp, net.n)
    for name in ("W", "W_in", "b", "x0"):
        _own(net, name)
    net.W[units] = 0
    net.W_in[units] = 0
    net.b[units] = values
    net.x0[units] = values


def exploratory_run(
    net: RateRNN, u: Any, *, kick_prob: float = 0.003, kick_amp: float = 30.0, seed: int = 0
) -> np.ndarray:
    """Run ``net`` (form "current") with the Hebbian rule's exploratory kicks and learning
    off: the network as the rule sees it. u: (T, B, n_in), trials from the model's x0; the
    kicks of trial b come from the key (seed, b, step). Returns y: (T, B, n_out)."""
    if "hebbian" not in getattr(net, "kernels", {}) or net.form != "current":
        raise ValueError("net: exploratory_run needs a RateRNN with form='current'")
    kick_prob = check.scalar("kick_prob", kick_prob, nonneg=True)
    kick_amp = check.scalar("kick_amp", kick_amp, nonneg=True)
    seed = check.seed("seed", seed)
    p = net._check_shapes()
    u = check.inputs(u, net.n_in, net.dtype)
    T, B = u.shape[:2]
    x0 = check.initial_state("x0", None, p["x0"], B)
    options = _core.HebbianOptions(
        rate=net._options(), kick_prob=kick_prob, kick_amp=kick_amp, trace_decay=0.05, eta=0.0,
        clip=0.0, reward_decay=0.75, window=max(T, 1), seed=seed, trial0=0, learn=False,
    )  # fmt: skip
    target = np.zeros((B, net.n_out), net.dtype)
    # learn=False: W is read, not written
    y, _ = _hebbian_kernel(net, net._kernel(p), options, u=u, target=target, x0=x0,
                           condition=None, Rbar=np.zeros(1))  # fmt: skip
    return y


def _hebbian_kernel(
    net: RateRNN,
    params: Any,
    options: Any,
    *,
    u: np.ndarray,
    target: np.ndarray,
    x0: np.ndarray,
    condition: np.ndarray | None,
    Rbar: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The one call of the Hebbian kernel (``net.kernels["hebbian"]``), every array by name:
    params (the bound ``net._kernel()``, W trained in place when ``options.learn``), options
    (``_core.HebbianOptions``), u (T, B, n_in), target (B, n_out), x0 (B, n), condition (B,)
    int64 or None, Rbar (n_conditions,) float64 updated in place. Returns (y (T, B, n_out),
    R (B,))."""
    return net.kernels["hebbian"](params=params, options=options, u=u, target=target, x0=x0,
                                  condition=condition, Rbar=Rbar)  # fmt: skip
