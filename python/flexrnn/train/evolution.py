"""Genetic algorithm over a population of RateRNNs (docs/learning_rules.md).

>>> hist = fr.train.genetic(net, task, generations=300, population=50, survivors=5)

Each generation every member is scored (masked MSE, the task's loss) on the same fresh
batch in one C++ call, one member per thread; the ``survivors`` best survive; child 0 is an
exact copy of the best, every other child copies a random survivor and adds
``sigma N(0, 1)`` to every trained weight. The mutations come from the counter-based
generator keyed by ``(seed, child * n_trained + array, generation)``; the batches and the
choice of parents from NumPy generators whose states are checkpointed, so a resumed run is
bitwise identical to an uninterrupted one. ``net`` holds the best member after every
generation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
from .force import _check_task_sizes
from .history import History, StopCriterion, progress_bar

PathLike = Union[str, Path]
PARAMS = ("W", "W_in", "b", "W_out", "b_out", "x0")
DEFAULT_TRAINABLE = ("W", "W_in", "b", "W_out", "b_out")


def population_loss(
    population: dict[str, np.ndarray], net: RateRNN, trials: Any, *, return_y: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Masked MSE (P,) of every member of ``population`` (arrays stacked along a leading
    member axis: W (P, n, n), W_in (P, n, n_in), b (P, n), W_out (P, n_out, n), b_out
    (P, n_out), x0 (P, n)) on ``trials``, with ``net``'s hyperparameters (alpha, phi, form,
    readout), in one C++ call. With ``return_y``, also the outputs (P, T, B, n_out)."""
    dt = net.dtype
    u = check.inputs(trials.u, net.n_in, dt)
    T, B = u.shape[:2]
    target = check.array("target", trials.target, dt, (T, B, net.n_out))
    mask = getattr(trials, "mask", None)
    if mask is not None:
        mask = check.loss_weights("mask", mask)
        mask = check.array("mask", np.broadcast_to(mask, target.shape), dt, target.shape)
    P = population["W"].shape[0]
    shapes = net._shapes(net.params())
    arrays = [check.array(name, population[name], dt, (P, *shapes[name])) for name in PARAMS]
    return _core.population_loss(*arrays, u, target, mask, net.alpha, net.phi, net.form,
                                 net.readout, return_y)  # fmt: skip


def genetic(
    net: RateRNN,
    task: Any,
    *,
    generations: int,
    population: int = 50,
    survivors: int = 5,
    sigma: float = 0.005,
    init_sigma: float | None = None,
    batch_size: int = 64,
    trainable: Sequence[str] | None = None,
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
    """Evolve ``net`` (a RateRNN) on ``task`` with a genetic algorithm.

    Parameters
    ----------
    net : RateRNN; after every generation it holds the best member (in place).
    task : ``batch(B, rng, dtype=)`` with float targets (T, B, n_out) and ``score``.
    generations : total generations (including those of a resumed run).
    population, survivors : P members, of which the best ``survivors`` are parents.
    sigma : mutation scale: every trained weight of a child gets ``sigma N(0, 1)``.
    init_sigma : the first population: member 0 is ``net``, the others ``net`` mutated with
        ``init_sigma`` (default ``sigma``).
    batch_size : trials per generation (one fresh batch shared by all members).
    trainable : the mutated parameters (default W, W_in, b, W_out, b_out).
    val_every, val_batch, stop, progress, callback : as in :func:`bptt` (validation scores
        the best member on fresh trials).
    checkpoint, checkpoint_every, resume, allow_mismatch : as in :func:`bptt` (the task is
        verified on resume); the checkpoint holds the whole population.
    seed : batches, parents, mutations.

    Returns
    -------
    History: ``loss`` the best member's loss per generation (before selection),
    ``grad_norm`` the population's median loss, ``lr`` = sigma; validations of the best.
    """
    if not isinstance(net, RateRNN):
        raise TypeError(f"net: genetic evolves a RateRNN, got {type(net).__name__}")
    _check_task_sizes(task, net)
    generations = check.integer("generations", generations, minimum=0)
    population = check.integer("population", population, minimum=1)
    survivors = check.integer("survivors", survivors, minimum=1)
    if survivors > population:
        raise ValueError(f"survivors: must be <= population ({population}), got {survivors}")
    sigma = check.scalar("sigma", sigma, nonneg=True)
    init_sigma = (
        sigma if init_sigma is None else check.scalar("init_sigma", init_sigma, nonneg=True)
    )
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    if val_every is not None:
        val_every = check.integer("val_every", val_every, minimum=1)
    val_batch = check.integer("val_batch", val_batch, minimum=1)
    checkpoint_every = check.integer("checkpoint_every", checkpoint_every, minimum=1)
    checkpoint = check_checkpoint_folder(checkpoint)
    allow_mismatch = check_allow_mismatch(allow_mismatch)
    seed = check.seed("seed", seed)
    trainable = tuple(DEFAULT_TRAINABLE if trainable is None else trainable)
    for name in trainable:
        if name not in PARAMS:
            raise ValueError(f"trainable: unknown parameter {name!r} (expected {PARAMS})")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
    dt = net.dtype
    params = net._check_shapes()
    args = {
        "rule": "genetic",
        "dtype": dt.name,
        "task": str(getattr(task, "name", type(task).__name__)),
        "population": population,
        "survivors": survivors,
        "sigma": sigma,
        "init_sigma": init_sigma,
        "batch_size": batch_size,
        "trainable": list(trainable),
        "val_every": val_every,
        "val_batch": val_batch,
        "seed": seed,
    }

    rng = np.random.default_rng(seed)
    val_rng = np.random.default_rng([seed, 1])
    history = History()
    start = 0
    if resume is not None:
        ckpt = load_for_resume(resume, args, RateRNN, dt, experiment={"task": task},
                               structural=("rule", "dtype", "population", "trainable"),
                               allow_mismatch=allow_mismatch)  # fmt: skip
        pop = {name: np.array(ckpt.optimizer_state[name]) for name in PARAMS}
        rng, val_rng, history, start = resume_run(ckpt)
    else:
        stacked = {name: np.repeat(params[name][None], population, axis=0) for name in PARAMS}
        mutate = np.ones(population, np.uint8)
        mutate[0] = 0
        pop = _next_generation(stacked, trainable, np.arange(population), mutate, init_sigma,
                               seed, 0)  # fmt: skip

    def set_best(i: int) -> None:
        for name in PARAMS:
            setattr(net, name, np.array(pop[name][i]))

    def save(done: int) -> None:
        save_run(checkpoint, net=net, iteration=done, history=history,  # type: ignore[arg-type]
                 state=dict(pop), rng=rng, val_rng=val_rng, args=args,
                 experiment={"task": task})  # fmt: skip

    bar = progress_bar(progress, generations, f"genetic {args['task']}", "gen", initial=start)
    elapsed = history._records["wall_time"][-1] if len(history) else 0.0
    t0 = time.perf_counter() - elapsed
    done, saved_at = start, -1
    try:
        for gen in range(start, generations):
            if stop is not None and stop(history):
                history.stopped = "criterion"
                break
            trials = task.batch(batch_size, rng, dtype=dt)
            losses, _ = population_loss(pop, net, trials)
            if not np.isfinite(losses).any():
                raise FloatingPointError(f"genetic: every member's loss is non-finite at {gen}")
            order = np.argsort(np.where(np.isfinite(losses), losses, np.inf), kind="stable")
            # parents among the finite members only (a diverged member never breeds)
            best = order[: min(survivors, int(np.isfinite(losses).sum()))]
            parent = np.empty(population, np.int64)
            parent[0] = best[0]
            parent[1:] = best[rng.integers(0, len(best), population - 1)]
            mutate = np.ones(population, np.uint8)
            mutate[0] = 0
            pop = _next_generation(pop, trainable, parent, mutate, sigma, seed, gen + 1)
            set_best(0)
            done = gen + 1
            history._append(float(losses[best[0]]), float(np.median(losses)), sigma,
                            time.perf_counter() - t0)  # fmt: skip
            if val_every is not None and done % val_every == 0:
                vt = task.batch(val_batch, val_rng, dtype=dt)
                # the best member's outputs and loss in one rollout
                vloss, vy = population_loss({k: v[:1] for k, v in pop.items()}, net, vt,
                                            return_y=True)  # fmt: skip
                history._append_validation(done, float(task.score(vy[0], vt)), float(vloss[0]))
            if checkpoint is not None and done % checkpoint_every == 0:
                save(done)
                saved_at = done
            if bar is not None:
                acc = f", acc={history.accuracies[-1]:.3f}" if history.accuracies else ""
                bar.set_postfix_str(f"best={losses[best[0]]:.4g}{acc}", refresh=False)
                bar.update(1)
            if callback is not None and callback(done, history, net) is True:
                history.stopped = "callback"
                break
        if checkpoint is not None and (saved_at != done or history.stopped):
            save(done)
    finally:
        if bar is not None:
            bar.close()
    if done == start and start == 0:
        set_best(0)
    return history


def _next_generation(pop, trainable, parent, mutate, sigma, seed, generation):
    """Children of ``pop``: the trained arrays mutated in C++, the others copied."""
    children = _core.mutate_population(
        [pop[name] for name in trainable], np.asarray(parent, np.int64), mutate, sigma, seed,
        generation % 2**32,
    )  # fmt: skip
    out = {name: pop[name][parent] for name in PARAMS if name not in trainable}
    out.update(dict(zip(trainable, children)))
    return out
