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

import time
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from flexrnn import _core
from flexrnn import _validate as check
from flexrnn.models import RateRNN

from .checkpoint import (
    check_allow_mismatch,
    check_checkpoint_folder,
    load_for_resume,
    resume_run,
    save_run,
)
from .force import _check_task_sizes, _own
from .history import History, StopCriterion, progress_bar

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

    Returns
    -------
    History: ``loss`` the batch's mean R, ``grad_norm`` the norm of the batch's change of W,
    ``lr`` = eta; validation accuracy (``task.score``) and masked MSE.
    """
    if not isinstance(net, RateRNN):
        raise TypeError(f"net: hebbian trains a RateRNN, got {type(net).__name__}")
    if net.form != "current":
        raise ValueError(f"net: hebbian needs form='current', got form={net.form!r}")
    _check_task_sizes(task, net)
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
    baseline = check.choice("baseline", baseline, ("target", "global"))
    if val_every is not None:
        val_every = check.integer("val_every", val_every, minimum=1)
    val_batch = check.integer("val_batch", val_batch, minimum=1)
    checkpoint_every = check.integer("checkpoint_every", checkpoint_every, minimum=1)
    checkpoint = check_checkpoint_folder(checkpoint)
    allow_mismatch = check_allow_mismatch(allow_mismatch)
    seed = check.seed("seed", seed)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
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
        "val_every": val_every,
        "val_batch": val_batch,
        "seed": seed,
    }
    rng = np.random.default_rng(seed)
    val_rng = np.random.default_rng([seed, 1])
    history = History()
    # running errors per condition: keys (final targets, as tuples) in order of appearance
    keys: list[tuple[float, ...]] = []
    Rbar = np.zeros(0)
    start = 0
    W = _own(net, "W")
    if resume is not None:
        ckpt = load_for_resume(resume, args, RateRNN, dt, experiment={"task": task},
                               structural=("rule", "dtype"),
                               allow_mismatch=allow_mismatch)  # fmt: skip
        if ckpt.net.W.shape != W.shape:
            raise ValueError(f"resume: W has shape {ckpt.net.W.shape} in the checkpoint")
        W[...] = ckpt.net.W
        keys = [tuple(k) for k in ckpt.optimizer_state["baseline_keys"]]
        Rbar = np.array(ckpt.optimizer_state["Rbar"], dtype=np.float64)
        rng, val_rng, history, start = resume_run(ckpt)
    p = net._check_shapes()

    def save(done: int) -> None:
        state = {"Rbar": Rbar, "baseline_keys": [list(k) for k in keys]}
        save_run(checkpoint, net=net, iteration=done, history=history,  # type: ignore[arg-type]
                 state=state, rng=rng, val_rng=val_rng, args=args,
                 experiment={"task": task})  # fmt: skip

    bar = progress_bar(progress, iters, f"hebbian {args['task']}", initial=start)
    elapsed = history._records["wall_time"][-1] if len(history) else 0.0
    t0 = time.perf_counter() - elapsed
    done, saved_at = start, -1
    try:
        for it in range(start, iters):
            if stop is not None and stop(history):
                history.stopped = "criterion"
                break
            trials = task.batch(batch_size, rng, dtype=dt)
            u = check.inputs(trials.u, net.n_in, dt)
            T = u.shape[0]
            target = check.array("target", np.asarray(trials.target)[-1], dt,
                                 (batch_size, net.n_out))  # fmt: skip
            x0 = check.initial_state("x0", None, p["x0"], batch_size)
            condition = np.zeros(batch_size, np.int64)
            for i, row in enumerate(target.tolist()):
                key = tuple(row) if baseline == "target" else ()
                if key not in keys:
                    keys.append(key)
                condition[i] = keys.index(key)
            if len(Rbar) < len(keys):
                Rbar = np.concatenate([Rbar, np.full(len(keys) - len(Rbar), np.nan)])
            before = W.copy()
            _, R = _core.hebbian_run(
                W, p["W_in"], p["b"], p["W_out"], p["b_out"], u, target, x0, condition, Rbar,
                net.alpha, net.phi, net.readout, kick_prob, kick_amp, trace_decay, eta, clip,
                reward_decay, min(window, T), seed, it * batch_size, True,
            )  # fmt: skip
            change = float(np.linalg.norm((W - before).astype(np.float64)))
            if not (np.isfinite(R).all() and np.isfinite(W).all()):
                raise FloatingPointError(f"hebbian: non-finite error or weights at iteration {it}")
            done = it + 1
            history._append(float(R.mean()), change, eta, time.perf_counter() - t0)
            if val_every is not None and done % val_every == 0:
                vt = task.batch(val_batch, val_rng, dtype=dt)
                vy = net.run(vt.u).y
                from .bptt import task_loss

                history._append_validation(done, float(task.score(vy, vt)), task_loss(vy, vt))
            if checkpoint is not None and done % checkpoint_every == 0:
                save(done)
                saved_at = done
            if bar is not None:
                acc = f", acc={history.accuracies[-1]:.3f}" if history.accuracies else ""
                bar.set_postfix_str(f"R={R.mean():.4g}{acc}", refresh=False)
                bar.update(1)
            if callback is not None and callback(done, history, net) is True:
                history.stopped = "callback"
                break
        if checkpoint is not None and (saved_at != done or history.stopped):
            save(done)
    finally:
        if bar is not None:
            bar.close()
    return history


def exploratory_run(
    net: RateRNN, u: Any, *, kick_prob: float = 0.003, kick_amp: float = 30.0, seed: int = 0
) -> np.ndarray:
    """Run ``net`` (form "current") with the Hebbian rule's exploratory kicks and learning
    off: the network as the rule sees it. u: (T, B, n_in), trials from the model's x0; the
    kicks of trial b come from the key (seed, b, step). Returns y: (T, B, n_out)."""
    if not isinstance(net, RateRNN) or net.form != "current":
        raise ValueError("net: exploratory_run needs a RateRNN with form='current'")
    kick_prob = check.scalar("kick_prob", kick_prob, nonneg=True)
    kick_amp = check.scalar("kick_amp", kick_amp, nonneg=True)
    seed = check.seed("seed", seed)
    p = net._check_shapes()
    u = check.inputs(u, net.n_in, net.dtype)
    T, B = u.shape[:2]
    x0 = check.initial_state("x0", None, p["x0"], B)
    W = p["W"].copy()  # not updated (learn=False), but the kernel takes it writeable
    y, _ = _core.hebbian_run(
        W, p["W_in"], p["b"], p["W_out"], p["b_out"], u, np.zeros((B, net.n_out), net.dtype),
        x0, None, np.zeros(1), net.alpha, net.phi, net.readout, kick_prob, kick_amp, 0.05, 0.0,
        0.0, 0.75, max(T, 1), seed, 0, False,
    )  # fmt: skip
    return y
