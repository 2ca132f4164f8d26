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

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from flexrnn import _core
from flexrnn import _validate as check
from flexrnn.models import RateRNN
from flexrnn.tasks.base import Trials

from .bptt import _val_trials
from .checkpoint import load_for_resume
from .history import History, StopCriterion
from .loop import Checkpointing, LoopOptions, Rule, check_task_sizes
from .loop import run as run_loop

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
    stacked = {name: check.array(name, population[name], dt, (P, *shapes[name])) for name in PARAMS}
    return net.kernels["population_loss"](**stacked, u=u, target=target, mask=mask,
                                          options=net._options(), return_y=return_y)  # fmt: skip


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
    initial_population: Sequence[RateRNN] | None = None,
    val_trials: Any = None,
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
    initial_population : the first population as given, ``population`` RateRNNs of
        ``net``'s sizes, hyperparameters and dtype (e.g. independently drawn networks, as the
        learning-rule study did) instead of ``net`` and its mutants; ``init_sigma`` then
        plays no part. ``net`` receives the best member.
    val_trials : a fixed validation set (``Trials``) scored at every validation instead of
        fresh batches of ``val_batch`` (as :func:`bptt`'s; the learning-rule study's 2000
        trials).

    Returns
    -------
    History (``rule == "genetic"``): ``loss`` the best member's loss per generation (before
    selection), ``median_loss`` the population's median loss, ``sigma`` the mutation scale;
    validations of the best member. (``grad_norm`` and ``lr``, which held the last two
    in earlier versions, are deprecated aliases.)
    """
    if "population_loss" not in getattr(net, "kernels", {}):
        raise TypeError(f"net: genetic evolves a RateRNN, got {type(net).__name__}")
    check_task_sizes(task, net)
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
    loop = LoopOptions.checked(val_every=val_every, val_batch=val_batch, checkpoint=checkpoint,
                               checkpoint_every=checkpoint_every, allow_mismatch=allow_mismatch,
                               stop=stop, callback=callback)  # fmt: skip
    seed = check.seed("seed", seed)
    trainable = tuple(DEFAULT_TRAINABLE if trainable is None else trainable)
    for name in trainable:
        if name not in PARAMS:
            raise ValueError(f"trainable: unknown parameter {name!r} (expected {PARAMS})")
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
        "val_every": loop.val_every,
        "val_batch": loop.val_batch,
        "seed": seed,
    }

    if initial_population is not None:
        args["initial_population"] = "given"
    val_trials = _val_trials(val_trials, net)
    if val_trials is not None:  # recorded only when used: older checkpoints resume
        args["val_trials"] = "given"
        val_trials = Trials(*(np.ascontiguousarray(a, dtype=dt) for a in
                              (val_trials.u, val_trials.target, val_trials.mask)),
                            val_trials.info)  # fmt: skip
    ckpt = None
    if resume is not None:
        ckpt = load_for_resume(resume, args, RateRNN, dt, experiment={"task": task},
                               structural=("rule", "dtype", "population", "trainable"),
                               net=net, allow_mismatch=loop.allow_mismatch)  # fmt: skip
        pop = {name: np.array(ckpt.optimizer_state[name]) for name in PARAMS}
    elif initial_population is not None:
        pop = _given_population(initial_population, net, params, population)
    else:
        stacked = {name: np.repeat(params[name][None], population, axis=0) for name in PARAMS}
        mutate = np.ones(population, np.uint8)
        mutate[0] = 0
        pop = _next_generation(stacked, trainable, np.arange(population), mutate, init_sigma,
                               seed, 0)  # fmt: skip

    step = _GeneticStep(net, task, pop, trainable, survivors, sigma, batch_size, loop.val_batch,
                        seed)  # fmt: skip
    step.val_trials = val_trials
    history = run_loop(step, iters=generations, seed=seed, options=loop,
                       desc=f"genetic {args['task']}", progress=progress, net=net,
                       checkpointing=Checkpointing(loop.checkpoint, loop.checkpoint_every, args,
                                                   experiment={"task": task}),
                       resume=ckpt)  # fmt: skip
    if len(history) == 0:
        step.set_best(0)  # no generation ran: net holds the first population's member 0
    return history


class _GeneticStep(Rule):
    """One generation: score every member on a fresh batch, select, breed, mutate."""

    rule = "genetic"
    label = "best"
    unit = "gen"
    val_trials: Any = None

    def __init__(self, net, task, pop, trainable, survivors, sigma, batch_size, val_batch, seed):
        self.net, self.task, self.pop, self.trainable = net, task, pop, trainable
        self.survivors, self.sigma, self.batch_size = survivors, sigma, batch_size
        self.val_batch, self.seed = val_batch, seed

    def set_best(self, i: int) -> None:
        for name in PARAMS:
            setattr(self.net, name, np.array(self.pop[name][i]))

    def step(self, gen: int) -> tuple[float, float, float]:
        population = self.pop["W"].shape[0]
        trials = self.task.batch(self.batch_size, self.rng, dtype=self.net.dtype)
        losses, _ = population_loss(self.pop, self.net, trials)
        if not np.isfinite(losses).any():
            raise FloatingPointError(f"genetic: every member's loss is non-finite at {gen}")
        order = np.argsort(np.where(np.isfinite(losses), losses, np.inf), kind="stable")
        # parents among the finite members only (a diverged member never breeds)
        best = order[: min(self.survivors, int(np.isfinite(losses).sum()))]
        parent = np.empty(population, np.int64)
        parent[0] = best[0]
        parent[1:] = best[self.rng.integers(0, len(best), population - 1)]
        mutate = np.ones(population, np.uint8)
        mutate[0] = 0
        self.pop = _next_generation(self.pop, self.trainable, parent, mutate, self.sigma,
                                    self.seed, gen + 1)  # fmt: skip
        self.set_best(0)
        return float(losses[best[0]]), float(np.median(losses)), self.sigma

    def validate(self, done: int) -> tuple[float, float]:
        vt = self.val_trials
        if vt is None:
            vt = self.task.batch(self.val_batch, self.val_rng, dtype=self.net.dtype)
        # the best member's outputs and loss in one rollout
        vloss, vy = population_loss({k: v[:1] for k, v in self.pop.items()}, self.net, vt,
                                    return_y=True)  # fmt: skip
        return float(self.task.score(vy[0], vt)), float(vloss[0])

    def state(self) -> dict[str, Any]:
        return dict(self.pop)

    def constrain(self) -> None:
        # every member obeys the network's mask and cell types (mutations of an absent
        # connection or across a sign are undone), so it is scored as it would run
        if self.net.structure():
            self.net._constrain_W(self.pop["W"])
        self.net._constrain()


def _given_population(members: Any, net: RateRNN, params: dict, population: int) -> dict:
    """The stacked arrays (P, ...) of ``initial_population``, checked against ``net``."""
    if isinstance(members, (str, bytes)) or not isinstance(members, Sequence):
        raise TypeError(
            f"initial_population: expected a sequence of RateRNNs, got {type(members).__name__}"
        )
    if len(members) != population:
        raise ValueError(
            f"initial_population: expected {population} networks (population), got {len(members)}"
        )
    hyper = net.hyperparameters()
    for i, member in enumerate(members):
        if not isinstance(member, RateRNN):
            raise TypeError(
                f"initial_population[{i}]: expected a RateRNN, got {type(member).__name__}"
            )
        if member.hyperparameters() != hyper or member.dtype != net.dtype:
            raise ValueError(
                f"initial_population[{i}]: hyperparameters and dtype must be net's ({hyper}, "
                f"{net.dtype.name}), got {member.hyperparameters()}, {member.dtype.name}"
            )
    arrays = [m._check_shapes() for m in members]
    for i, a in enumerate(arrays):
        for name in PARAMS:
            if a[name].shape != params[name].shape:
                raise ValueError(
                    f"initial_population[{i}]: {name} has shape {a[name].shape}, net's "
                    f"{params[name].shape}"
                )
    return {name: np.stack([a[name] for a in arrays]).astype(net.dtype) for name in PARAMS}


def _next_generation(pop, trainable, parent, mutate, sigma, seed, generation):
    """Children of ``pop``: the trained arrays mutated in C++, the others copied."""
    children = _core.mutate_population(
        [pop[name] for name in trainable], np.asarray(parent, np.int64), mutate, sigma, seed,
        generation % 2**32,
    )  # fmt: skip
    out = {name: pop[name][parent] for name in PARAMS if name not in trainable}
    out.update(dict(zip(trainable, children)))
    return out
