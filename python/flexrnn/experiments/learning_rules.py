"""The learning-rule study (McMahan et al., NeurIPS 2021): its networks, rules and analyses as
named presets, and one network's run for ``flexrnn reproduce learning-rules``.

The study trained populations of rate networks on a perceptual decision task and on
N-context integration (N = 1 ... 6) with four rules: BPTT, a genetic algorithm (GA),
full-FORCE and reward-modulated Hebbian learning, and compared the networks by their
attractor topology (:func:`flexrnn.analysis.topology`) and their representational geometry
(:func:`flexrnn.analysis.svcca_protocol`). Its finding: for the complex tasks topology is
invariant to the rule while geometry is not; for the simple task topology depends on the
input noise.

Presets (options, not defaults of the package):

- :func:`study_network`: ``phi = 1 + tanh`` (``shifted_tanh``), the output read from the
  state, ``W ~ N(0, 0.02²)``, ``W_in ~ N(0, 0.5²)``, ``W_out ~ N(0, 0.1²)``, biases and x0 0;
- :func:`study_bptt`: BPTT on W only, Adam lr 5e-4 (1e-4 for N-context integration), batches
  of 500, no clipping, a random initial state ``0.3 N(0, I)`` per trial redrawn every update,
  validation after every update on a fixed set of 2000 trials with coherences
  ``linspace(0, 0.1875, 20)`` (:func:`study_validation_trials`), stopped when the last 10
  validations all reach 0.9;
- :func:`study_genetic`: an initial population of independently drawn networks (50 for the
  decision task, 20 for N-context integration) mutating W_in, W, W_out (not the biases) by
  ``0.005 N(0, 1)``, the best 5 the parents, batches of 500, validation of the best member
  on the same fixed set after every generation, the same stopping rule;
- :func:`study_full_force`: the student's J = W_out = 0 at the start; a teacher with g = 1
  and its own input weights N(0, 0.25²), never reset between trials; hint = target = ±1
  from t = 0; RLS at t = 0 and every step from t >= 200; alpha 5e4 / 1e4; a restart after
  5000 trials; the output tanh(w·r) (``full_force(output="tanh")``: RLS on the pre-tanh
  output with target atanh of the target clipped to ±``output_clip``); full-FORCE needs a
  rate readout, so its networks use tanh units;
- :func:`study_hebbian`: Miconi's rule on its own task (:class:`HebbianDecision`: a fixed
  ±0.25 coherence on steps 1-500 of 700 and 200 silent response steps), N = 50.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np

import flexrnn
from flexrnn import _validate as check
from flexrnn import analysis, tasks
from flexrnn.tasks.base import Task, Trials, check_steps
from flexrnn.train import bptt, full_force, genetic, hebbian, hold_units, stop_when_accuracy

RULES = ("bptt", "genetic", "full_force", "hebbian")
VALIDATION_COHERENCES = np.linspace(0.0, 0.1875, 20)
PSYCHOMETRIC_LEVELS = np.linspace(-0.1875, 0.1875, 13)


# ---------------------------------------------------------------------------------------------
# Networks and tasks


def study_network(
    n_in: int, n_out: int = 1, n: int = 50, *, seed: int = 0, tau: float = 10.0,
    dt: float = 1.0, dtype: Any = "float64",
) -> flexrnn.RateRNN:  # fmt: skip
    """The study's network: ``shifted_tanh``, ``readout="state"``, ``W ~ N(0, 0.02²)``,
    ``W_in ~ N(0, 0.5²)``, ``W_out ~ N(0, 0.1²)``, biases and x0 zero.

    Returns a RateRNN with W (n, n), W_in (n, n_in), W_out (n_out, n)."""
    n = check.integer("n", n, minimum=1)
    n_in = check.integer("n_in", n_in, minimum=0)
    n_out = check.integer("n_out", n_out, minimum=0)
    rng = np.random.default_rng(check.seed("seed", seed))
    W = rng.normal(0.0, 0.02, (n, n))
    W_in = rng.normal(0.0, 0.5, (n, n_in))
    W_out = rng.normal(0.0, 0.1, (n_out, n))
    return flexrnn.RateRNN(W, W_in, W_out, tau=tau, dt=dt, phi="shifted_tanh",
                           readout="state", dtype=dtype)  # fmt: skip


def study_task(N: int | None = None, sigma: float = 0.5, T: int = 750) -> Task:
    """The decision task (``N=None``: PerceptualDecision) or N-context integration, with the
    coherence range of the study (0 to 0.1875) and input noise ``sigma``."""
    if N is None:
        return tasks.PerceptualDecision(sigma=sigma, T=T, coherence_max=0.1875)
    return tasks.ContextIntegration(N, sigma=sigma, T=T, coherence_max=0.1875)


def study_validation_trials(
    task: Task, count: int = 2000, coherences: Any = None, seed: int = 0
) -> Trials:
    """A fixed validation set of ``count`` trials of a PerceptualDecision or
    ContextIntegration task whose coherences cycle through ``coherences`` (default the
    study's ``linspace(0, 0.1875, 20)``), signs, contexts and noise drawn with ``seed``.

    Returns Trials (``u``: (T, count, n_in)); ``info["coherence"]`` holds the coherences."""
    if not isinstance(task, (tasks.PerceptualDecision, tasks.ContextIntegration)):
        raise TypeError(
            f"task: expected PerceptualDecision or ContextIntegration, got {type(task).__name__}"
        )
    count = check.integer("count", count, minimum=1)
    levels = (
        VALIDATION_COHERENCES if coherences is None else check.real_array("coherences", coherences)
    )
    if levels.ndim != 1 or levels.size == 0 or np.any(levels < 0):
        raise ValueError(f"coherences: expected a non-empty 1-d array >= 0, got {levels}")
    silent = copy.copy(task)
    silent.coherence_max = 0.0  # noise only: u = sigma eps exactly, coherences added below
    trials = silent.batch(count, np.random.default_rng(check.seed("seed", seed)))
    coherence = np.resize(levels, count)
    u = trials.u.copy()
    if isinstance(task, tasks.PerceptualDecision):
        u[:, :, 0] += trials.info["sign"] * coherence
    else:
        u[:, :, : task.N] += trials.info["signs"] * coherence[:, None]
    info = {**trials.info, "coherence": coherence}
    return Trials(u, trials.target, trials.mask, info)


class HebbianDecision(Task):
    """The study's task for the Hebbian rule: a fixed coherence ``±coherence`` (plus noise
    ``sigma``) on steps 1-``stimulus`` of ``T``, then silence; the target ``±1`` over the
    last ``T - stimulus`` steps (the response period), where the mask is 1. A trial is
    correct when the mean output over the response period has the sign of the stimulus.

    Shapes: ``u: (T, B, 1)``, ``target, mask: (T, B, 1)``; ``info["sign"]`` (B,)."""

    loss = "mse"

    def __init__(
        self, coherence: float = 0.25, sigma: float = 0.0, T: int = 700, stimulus: int = 500
    ) -> None:
        self.coherence = check.scalar("coherence", coherence, nonneg=True)
        self.sigma = check.scalar("sigma", sigma, nonneg=True)
        self.T = check_steps("T", T, 2)
        self.stimulus = check.integer("stimulus", stimulus, minimum=1, maximum=self.T - 1)
        self.n_in, self.n_out, self.dt = 1, 1, 1.0
        self.name = f"HebbianDecision(coherence={self.coherence}, sigma={self.sigma})"

    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        sign = 2.0 * rng.integers(0, 2, size=B) - 1.0
        u = np.zeros((self.T, B, 1))
        noise = rng.standard_normal((self.stimulus, B))
        u[: self.stimulus, :, 0] = sign * self.coherence + self.sigma * noise
        target = np.zeros((self.T, B, 1))
        target[self.stimulus :, :, 0] = sign
        mask = np.zeros((self.T, B, 1))
        mask[self.stimulus :] = 1.0
        return Trials(u.astype(dtype), target.astype(dtype), mask.astype(dtype), {"sign": sign})

    def _correct(self, y: np.ndarray, trials: Trials) -> np.ndarray:
        return np.sign(y[self.stimulus :, :, 0].mean(axis=0)) == trials.info["sign"]


# ---------------------------------------------------------------------------------------------
# The four rules as the study ran them


def study_bptt(
    net: flexrnn.RateRNN, task: Task, *, iters: int, lr: float | None = None,
    batch_size: int = 500, val_every: int = 1, val_count: int = 2000, criterion: float = 0.9,
    criterion_window: int = 10, seed: int = 0, progress: bool = False,
):  # fmt: skip
    """BPTT as the study ran it: W only, Adam (lr 5e-4, 1e-4 for N-context integration), no
    clipping, random initial states 0.3 N(0, I) per update, validation on the fixed set
    (:func:`study_validation_trials`) every ``val_every`` updates, stopped when the last
    ``criterion_window`` validations (the study: 10) all reach ``criterion``. Returns the
    History."""
    if lr is None:
        lr = 1e-4 if isinstance(task, tasks.ContextIntegration) else 5e-4
    val = study_validation_trials(task, val_count, seed=seed + 10_000)
    return bptt(
        net,
        task,
        iters=iters,
        batch_size=batch_size,
        lr=lr,
        trainable=["W"],
        x0_std=0.3,
        val_trials=val,
        val_every=val_every,
        stop=stop_when_accuracy(criterion, window=criterion_window),
        progress=progress,
        seed=seed,
    )


def study_genetic(
    task: Task, *, n: int = 50, generations: int, population: int | None = None,
    batch_size: int = 500, sigma: float = 0.005, survivors: int = 5, val_every: int = 1,
    val_count: int | None = 2000, val_batch: int = 500, criterion: float = 0.9,
    criterion_window: int = 10, dtype: Any = "float64", seed: int = 0, progress: bool = False,
):  # fmt: skip
    """The GA as the study ran it: an initial population of ``population`` independently
    drawn study networks (default 50 for the decision task, 20 for N-context integration),
    mutations ``sigma N(0, 1)`` of W_in, W and W_out only, the best ``survivors`` the parents,
    batches of ``batch_size``; the best member validated every ``val_every`` generations on
    the fixed set of :func:`study_validation_trials` (``val_count`` trials; None: fresh
    batches of ``val_batch``), stopped when the last ``criterion_window`` validations all
    reach ``criterion``. Returns (best net, History)."""
    if population is None:
        population = 20 if isinstance(task, tasks.ContextIntegration) else 50
    members = [study_network(task.n_in, task.n_out, n, seed=seed * 1000 + i, dtype=dtype)
               for i in range(population)]  # fmt: skip
    net = members[0].copy()
    survivors = min(survivors, population)
    val = None if val_count is None else study_validation_trials(task, val_count,
                                                                 seed=seed + 10_000)  # fmt: skip
    hist = genetic(
        net,
        task,
        generations=generations,
        population=population,
        survivors=survivors,
        sigma=sigma,
        batch_size=batch_size,
        trainable=["W", "W_in", "W_out"],
        initial_population=members,
        val_every=val_every,
        val_batch=val_batch,
        val_trials=val,
        stop=stop_when_accuracy(criterion, window=criterion_window),
        progress=progress,
        seed=seed,
    )
    return net, hist


def full_force_network(n_in: int, n: int = 50, seed: int = 0) -> flexrnn.RateRNN:
    """full-FORCE's student: tanh, rate readout, J = W_out = 0, W_in ~ N(0, 0.5²)."""
    rng = np.random.default_rng(seed)
    W_in = rng.normal(0.0, 0.5, (n, n_in))
    return flexrnn.RateRNN(np.zeros((n, n)), W_in, np.zeros((1, n)), tau=10.0, dt=1.0)


def sign_hint(trials: Trials) -> np.ndarray:
    """The study's full-FORCE hint: the trial's target sign ±1 at every step (T, B, 1)."""
    T = trials.u.shape[0]
    return np.broadcast_to(trials.info["sign"][None, :, None], (T, trials.u.shape[1], 1)).copy()


def study_full_force(
    task: Task, *, n: int = 50, iters: int, batch_size: int = 10, alpha: float | None = None,
    restart_after: int = 5000, val_every: int = 10, val_batch: int = 500,
    criterion: float = 0.9, criterion_window: int = 10, output: str = "tanh",
    output_clip: float = 0.95, seed: int = 0, progress: bool = False,
):  # fmt: skip
    """full-FORCE as the study ran it: the student's J = W_out = 0 at the start; a teacher
    with g = 1 and its own input weights N(0, 0.25²), never reset between trials
    (``carry_teacher``); hint = target = ±1 from t = 0 (``response_steps = T``); RLS at t = 0
    and then every step from t >= 200; alpha 5e4 (decision) / 1e4 (N-context integration),
    in flexrnn's convention ``P0 = I / alpha``; a fresh network (next seed) when the criterion
    is not met after ``restart_after`` trials, once; the output ``tanh(w·r)`` (``output``,
    ``output_clip``: see :func:`flexrnn.train.full_force`; the network's own readout stays
    the pre-tanh ``w·r``, whose sign is the decision). ``iters`` batches of ``batch_size``
    trials per attempt. Returns (net, History of the last attempt)."""
    if alpha is None:
        alpha = 1e4 if isinstance(task, tasks.ContextIntegration) else 5e4
    for attempt in range(2):
        net = full_force_network(task.n_in, n, seed + 7919 * attempt)
        hist = full_force(
            net, task, iters=iters, batch_size=batch_size, hint=sign_hint, alpha=alpha,
            g_teacher=1.0, teacher_input_std=0.25, carry_teacher=True, rls_from=200,
            response_steps=task.T, output=output, output_clip=output_clip,
            val_every=val_every, val_batch=val_batch,
            stop=stop_when_accuracy(criterion, window=criterion_window), progress=progress,
            seed=seed + 7919 * attempt,
        )  # fmt: skip
        if hist.stopped == "criterion" or len(hist) * batch_size < restart_after:
            break
    return net, hist


HEBBIAN_BIAS_UNITS = {1: 1.0, 10: 1.0, 11: -1.0}  # the study's clamped units (0-based)


def hebbian_network(n: int = 50, seed: int = 0) -> flexrnn.RateRNN:
    """Miconi's network for the Hebbian rule: tanh, ``W ~ N(0, 1.5²/n)``, ``W_in ~ U(-1, 1)``,
    the output read from unit 0's rate (``W_out = e_0``), tau = 30, dt = 1; the study's bias
    units 1, 10, 11 held at +1, +1, -1 (:func:`flexrnn.train.hold_units`)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 1.5 / np.sqrt(n), (n, n))
    W_in = rng.uniform(-1.0, 1.0, (n, 1))
    W_out = np.zeros((1, n))
    W_out[0, 0] = 1.0
    net = flexrnn.RateRNN(W, W_in, W_out, tau=30.0, dt=1.0)
    hold_units(net, {u: v for u, v in HEBBIAN_BIAS_UNITS.items() if u < n})
    return net


def study_hebbian(
    task: Task, *, n: int = 50, iters: int, batch_size: int = 10, val_every: int = 10,
    val_batch: int = 200, criterion: float = 0.9, criterion_window: int = 10, seed: int = 0,
    progress: bool = False,
):  # fmt: skip
    """Miconi's reward-modulated Hebbian rule as the study ran it, on
    :class:`HebbianDecision`: ``W += clip(-eta Rbar e (R - Rbar))`` (``rbar_factor``),
    learning from trial 100 on, the bias units clamped. Returns (net, History)."""
    net = hebbian_network(n, seed)
    window = task.T - task.stimulus if isinstance(task, HebbianDecision) else 200
    hist = hebbian(
        net,
        task,
        iters=iters,
        batch_size=batch_size,
        window=window,
        rbar_factor=True,
        learn_from=100,
        clamp={u: v for u, v in HEBBIAN_BIAS_UNITS.items() if u < n},
        val_every=val_every,
        val_batch=val_batch,
        stop=stop_when_accuracy(criterion, window=criterion_window),
        progress=progress,
        seed=seed,
    )
    return net, hist


# ---------------------------------------------------------------------------------------------
# Per network: training, accuracy, psychometric curve, topology


def psychometric(net: flexrnn.RateRNN, task: Task, levels: Any = None, trials: int = 200,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(levels (L,), P(choice +) (L,)): per signed coherence (the cued channel's for
    N-context integration; the stimulus' for :class:`HebbianDecision`), the fraction of
    ``trials`` trials of that sign whose response (final output; mean over the response
    period for HebbianDecision) is positive. At 0, trials of both signs."""
    levels = PSYCHOMETRIC_LEVELS if levels is None else np.asarray(levels, dtype=np.float64)
    rng = np.random.default_rng(seed)
    out = np.zeros(len(levels))
    for i, level in enumerate(levels):
        if isinstance(task, HebbianDecision):
            t = HebbianDecision(abs(level), task.sigma, task.T, task.stimulus)
            tr = t.batch(2 * trials, rng)
            response = net.outputs(tr.u)[task.stimulus :, :, 0].mean(axis=0)
        else:
            tr = study_validation_trials(task, 2 * trials, [abs(level)],
                                         seed=int(rng.integers(2**31)))  # fmt: skip
            response = net.outputs(tr.u)[-1, :, 0]
        chosen = response > 0
        sign = tr.info["sign"]
        pick = np.ones(len(sign), bool) if level == 0 else sign == np.sign(level)
        out[i] = float(np.mean(chosen[pick])) if pick.any() else np.nan
    return levels, out


def topology_inputs(config: dict[str, Any]) -> np.ndarray:
    """The static inputs of the topology descriptor for a run's task."""
    if config["task"] == "context":
        return analysis.context_inputs(config["N"])
    return analysis.decision_inputs()


def _make_task(config: dict[str, Any]) -> Task:
    """The run's task; ``config["T"]`` (default 750; 700 for the Hebbian task) shortens the
    trials for tests."""
    if config["rule"] == "hebbian":
        T = config.get("T", 700)
        return HebbianDecision(sigma=config.get("hebbian_sigma", 0.0), T=T,
                               stimulus=T * 5 // 7)  # fmt: skip
    N = config["N"] if config["task"] == "context" else None
    return study_task(N, sigma=config["sigma"], T=config.get("T", 750))


def train_network(config: dict[str, Any], seed: int):
    """Train one network by ``config["rule"]`` on ``config``'s task. Returns (net, History,
    task)."""
    rule, task = config["rule"], _make_task(config)
    n, budget = config.get("n", 50), config["budget"]
    dtype = config.get("dtype", "float64")
    if rule == "bptt":
        net = study_network(task.n_in, task.n_out, n, seed=seed, dtype=dtype)
        hist = study_bptt(net, task, iters=budget, lr=config.get("lr"),
                          batch_size=config.get("batch_size", 500),
                          val_every=config.get("val_every", 1),
                          val_count=config.get("val_count", 2000), seed=seed)  # fmt: skip
    elif rule == "genetic":
        net, hist = study_genetic(task, n=n, generations=budget,
                                  population=config.get("population"),
                                  batch_size=config.get("batch_size", 500),
                                  val_count=config.get("val_count", 2000), dtype=dtype,
                                  seed=seed)  # fmt: skip
    elif rule == "full_force":
        net, hist = study_full_force(task, n=n, iters=budget, seed=seed)
    elif rule == "hebbian":
        net, hist = study_hebbian(task, n=n, iters=budget, seed=seed)
    else:
        raise ValueError(f"rule: expected one of {RULES}, got {rule!r}")
    return net, hist, task


def learning_rules_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One network of the study (a ``flexrnn.sweep`` run function): train it, then its
    accuracy on 2000 fresh trials, its psychometric curve and its topology descriptors
    (strict and loose acceptance). Keeps the network (``net``)."""
    t0 = time.perf_counter()
    net, hist, task = train_network(config, seed)
    train_seconds = time.perf_counter() - t0
    if isinstance(task, HebbianDecision):
        test = task.batch(2000, np.random.default_rng(seed + 20_000))
    else:
        test = study_validation_trials(task, 2000, seed=seed + 20_000)
    y = net.outputs(test.u)
    if config["rule"] == "full_force":
        y = np.tanh(y)  # the study's full-FORCE output (the same signs)
    accuracy = float(task.score(y, test))
    levels, choice = psychometric(net, task, seed=seed + 30_000,
                                  trials=config.get("psychometric_trials", 200))  # fmt: skip
    # The analyses use the study's integration step dt / tau = 0.1 (Hebbian nets run at 1/30).
    analysed = net if abs(net.alpha - 0.1) < 1e-12 else _at_alpha(net, 0.1)
    inputs = topology_inputs(config) if config["rule"] != "hebbian" else analysis.decision_inputs()
    t1 = time.perf_counter()
    fp_options = {"n_init": config.get("fp_init", 100), "iters": config.get("fp_iters", 2000)}
    strict = analysis.topology(analysed, inputs, seed=seed, **fp_options)
    loose = analysis.topology(analysed, inputs, acceptance="loose", seed=seed, **fp_options)
    return {
        "accuracy": accuracy,
        "trained_steps": len(hist),
        "train_seconds": round(train_seconds, 2),
        "analysis_seconds": round(time.perf_counter() - t1, 2),
        "stopped": str(hist.stopped),
        "psychometric_levels": levels,
        "psychometric": choice,
        "topology_strict": strict.descriptor,
        "topology_loose": loose.descriptor,
        "points_strict": strict.counts,
        "points_loose": loose.counts,
        "stable_strict": int(strict.stable.sum()),
        "stable_loose": int(loose.stable.sum()),
        "fixed_points_strict": int(strict.counts.sum()),
        "fixed_points_loose": int(loose.counts.sum()),
        "net": analysed,
    }


def _at_alpha(net: flexrnn.RateRNN, alpha: float) -> flexrnn.RateRNN:
    """The same network integrated with dt / tau = alpha (tau kept, dt changed)."""
    out = net.copy()
    out.dt = alpha * net.tau
    return out
