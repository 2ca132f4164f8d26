"""The BPTT trainer: batches from a task, C++ loss and gradient, Adam/AdamW, validation,
stopping, progress, checkpoints and exact resumption (docs/learning_rules.md, "BPTT").

Randomness: one NumPy Generator, ``default_rng(seed)``, draws the training batches (and the
gain, when ``gain`` is a callable); a second, ``default_rng([seed, 1])``, draws the
validation batches; the recurrent noise of update ``it`` has the counter-based key
``(seed * 1_000_003 + it) mod 2**64``. Both generators' states are saved in checkpoints,
so a resumed run is bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from flexrnn import _validate as check
from flexrnn.models import Model
from flexrnn.modulation import Combined, Modulation
from flexrnn.reference.losses import masked_loss
from flexrnn.reference.names import LOSSES

from . import gradients
from .checkpoint import check_same_structure, load_checkpoint, verify_resume
from .history import History, StopCriterion
from .loop import Checkpointing, LoopOptions, Rule
from .loop import run as run_loop
from .optim import OPTIMIZERS, Optimizer, Schedule, ScheduleLike, global_norm, learning_rate_fn

PathLike = Union[str, Path]
NOISE_SEED_STRIDE = 1_000_003
VALIDATION_NOISE_OFFSET = 2**63  # validation noise keys: far from every training key


def bptt(
    net: Model,
    task: Any,
    *,
    iters: int,
    batch_size: int = 64,
    lr: float | None = None,
    optimizer: str | Optimizer = "adam",
    weight_decay: float | None = None,
    clip_value: float | None = None,
    clip_norm: float | None = None,
    trainable: Sequence[str] | str | None = None,
    freeze: dict[str, Sequence[int]] | None = None,
    schedule: ScheduleLike = None,
    loss: str | None = None,
    gain: float | Callable[[np.random.Generator], Any] = 1.0,
    neuron_gain: Any = None,
    modulation: Modulation | Combined | None = None,
    noise_std: float = 0.0,
    pre_gain: Any = None,
    post_gain: Any = None,
    val_every: int | None = 50,
    val_batch: int = 256,
    x0_std: float = 0.0,
    val_trials: Any = None,
    stop: StopCriterion | None = None,
    progress: bool = True,
    checkpoint: PathLike | None = None,
    checkpoint_every: int = 100,
    resume: PathLike | None = None,
    allow_mismatch: bool = False,
    seed: int = 0,
    callback: Callable[[int, History, Model], Any] | None = None,
) -> History:
    """Train ``net`` in place on ``task`` by backpropagation through time.

    Each update draws ``trials = task.batch(batch_size, rng, dtype=net.dtype)`` (``u``:
    (T, B, n_in), ``target``, ``mask``), computes the loss and the gradient of every
    parameter in C++ (:func:`flexrnn.train.loss_and_grad`), clips, and steps the optimiser
    on the trainable parameters only.

    Parameters
    ----------
    net : RateRNN, LowRankRNN, NMRNN or LSTM; its parameter arrays are updated in place.
    task : has ``batch(B, rng, dtype=...)``, and ``score(y, trials) -> [0, 1]`` when
        validating (``y``: (T, B, n_out)); ``n_in`` / ``n_out`` must match the network's.
    iters : total number of updates (including those of a resumed run).
    batch_size : trials per update.
    lr : base learning rate (default 1e-3, or the optimiser object's own ``lr``).
    optimizer : "adam", "adamw" or an optimiser object (e.g. ``Adam(lr, betas, eps)``).
    weight_decay : AdamW's decoupled weight decay (default 1e-2); only with "adamw".
    clip_value : clip every gradient element into [-clip_value, clip_value].
    clip_norm : rescale the trainable gradients when their global norm exceeds it (after
        ``clip_value``, when both are given).
    trainable : names of the parameters to train (e.g. ``["W", "W_out"]``); the others stay
        bitwise unchanged. Default: all.
    freeze : ``{name: column indices}``: columns of trainable 2-D parameters held bitwise
        fixed (their gradient is zeroed before clipping and the gradient norm, and their
        values are restored after each step, so AdamW's weight decay leaves them too), e.g.
        ``{"W_in": [3, 4, 5]}`` to train a network's response to one new input only.
    schedule : None (constant ``lr``), a :class:`~flexrnn.train.Schedule` (a factor of
        ``lr``: ``Cosine``, ``StepDecay``, ``Exponential``, ``LinearWarmup``, ``Constant``)
        or any callable ``it -> lr`` (it = 0, 1, ...).
    loss : "mse", "cross_entropy" or None (the task's own: ``task.loss``, else inferred
        from the target's dtype).
    gain : recurrent gain of RateRNN / LowRankRNN: a scalar, or a callable ``rng -> gain``
        (a scalar or an array broadcastable to (T, B)) called once per batch with the
        batch's generator: training across gains, the neuromodulation use case.
    neuron_gain : None or (n,): per-neuron slope of phi (RateRNN / LowRankRNN).
    pre_gain, post_gain : None or (n,): gains of the sending (``W diag(pre_gain)``) and
        receiving (``diag(post_gain) W``) neurons during training and validation
        (RateRNN / LowRankRNN; see ``RateRNN.run``).
    modulation : None, a :class:`flexrnn.modulation.Modulation` or a
        :class:`~flexrnn.modulation.Combined` (not with ``gain``): each batch's gains are
        ``modulation.gains(rng, T, B, net)``, drawn after the batch (from the batch
        generator): per trial, or varying within trials (switches, drift), at the
        modulation's target: the global gain, ``pre_gain``, ``post_gain``, ``neuron_gain``,
        or one cell type's (``target="E"``, ``"post:I"``, ..., networks with cell types).
        A modulated per-neuron gain multiplies the fixed ``pre_gain`` / ``post_gain`` /
        ``neuron_gain`` given. Validation batches draw theirs from the validation
        generator. The model's ``run`` must take the keyword (RateRNN, LowRankRNN).
    noise_std : recurrent noise during training and validation (RateRNN / LowRankRNN).
    val_every : validate after every ``val_every`` updates (None: never) on a fresh batch
        of ``val_batch`` trials: accuracy ``task.score(net.outputs(u), trials)`` and loss.
    x0_std : rate networks only: when > 0, every update starts its trials from random
        states ``x0_std * N(0, I)`` (one per trial, redrawn every update from a generator
        keyed by ``(seed, update)``) instead of the trained-or-not ``x0`` (the learning-rule
        study's 0.3); validation then also starts from such states.
    val_trials : a fixed validation set (``Trials``, e.g. the learning-rule study's 2000
        trials at set coherences) used at every validation instead of fresh batches of
        ``val_batch``; with ``x0_std`` its initial states are drawn once too.
    stop : a criterion ``history -> bool`` checked before each update, e.g.
        ``stop_when_accuracy(0.9, window=10)`` (min of the last 10 validation accuracies
        >= 0.9); when it holds, training ends and ``history.stopped == "criterion"``.
    progress : show a tqdm bar with the loss and the last validation accuracy.
    checkpoint : path of a checkpoint ``.npz`` written every ``checkpoint_every`` updates
        and at the end (atomically: a crash leaves the previous one intact).
    resume : path of a checkpoint to continue from: restores the parameters (into ``net``),
        the optimiser state, the generators, the history and the iteration count, then
        runs up to ``iters``, bitwise identically to an uninterrupted run. The training
        arguments must match those saved (``iters``, ``progress``, ``checkpoint*``,
        ``stop`` and ``callback`` may differ), and so must the task: every parameter and
        array of it (its fingerprint is in the checkpoint), so that
        ``PerceptualDecision(sigma=3.0)`` does not continue a run of ``sigma=0.5``. A
        difference is a ValueError naming each one. If ``stop`` already holds, nothing runs.
    allow_mismatch : resume even when the task or training arguments differ from the
        checkpoint's (a RuntimeWarning lists the differences), e.g. to continue on a harder
        task. The model, optimiser and trainable parameters must still match.
    seed : seeds the batch and validation generators and the noise keys (see the module).
    callback : ``callback(iteration, history, net)`` after every update (iteration = updates
        done); returning True ends training (``history.stopped == "callback"``).

    Returns
    -------
    History of the run (per-update loss, pre-clip gradient norm, lr, wall time; per
    validation iteration, accuracy, loss; ``.best``).

    Raises
    ------
    ValueError / TypeError naming the argument for bad arguments.
    FloatingPointError when the loss or a gradient is not finite. The update is not applied:
    the network holds the parameters before the failing iteration, and the last checkpoint
    is intact; lower ``lr`` or clip (``clip_norm=1``) and resume from it.
    """
    iters = check.integer("iters", iters, minimum=0)
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    loop = LoopOptions.checked(val_every=val_every, val_batch=val_batch, checkpoint=checkpoint,
                               checkpoint_every=checkpoint_every, allow_mismatch=allow_mismatch,
                               stop=stop, callback=callback)  # fmt: skip
    seed = check.seed("seed", seed)
    noise_std = check.scalar("noise_std", noise_std, nonneg=True)
    x0_std = check.scalar("x0_std", x0_std, nonneg=True)
    if clip_value is not None:
        clip_value = check.scalar("clip_value", clip_value, positive=True)
    if clip_norm is not None:
        clip_norm = check.scalar("clip_norm", clip_norm, positive=True)
    if loss is not None:
        loss = check.choice("loss", loss, LOSSES)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress: expected True or False, got {type(progress).__name__}")

    if not isinstance(net, Model):
        raise TypeError(f"net: expected a flexrnn model, got {type(net).__name__}")
    params = _own_params(net)
    dtype = net.dtype
    _check_task(task, net, validating=loop.val_every is not None)
    trainable = _trainable(trainable, net, params)
    freeze = _frozen_columns(freeze, params, trainable)
    opt, base_lr = _optimizer(optimizer, lr, weight_decay)
    lr_at = learning_rate_fn(schedule, base_lr)
    gain_fn, gain = _gain(gain)
    if modulation is not None:
        gain_fn = _modulation(modulation, gain_fn, gain, net)
    if neuron_gain is not None:
        neuron_gain = check.array("neuron_gain", neuron_gain, dtype, (params["x0"].shape[0],))
    run_options = _run_options(net, gain_fn, gain, neuron_gain, noise_std)
    site_gains = _site_gains(net, dtype, pre_gain=pre_gain, post_gain=post_gain)
    if run_options is not None:
        run_options.update(site_gains)
    if x0_std > 0 and not getattr(net, "takes_gain", False):
        raise ValueError(f"x0_std: only rate networks take it, not {type(net).__name__}")
    val_trials = _val_trials(val_trials, net)
    if loss is None:
        loss = getattr(task, "loss", None)
        loss = loss if loss in LOSSES else None  # None: loss_and_grad infers it per batch
    if (loop.checkpoint is not None or resume is not None) and not hasattr(opt, "state_dict"):
        raise TypeError("optimizer: checkpoints need state_dict() and load_state_dict()")

    args, arg_arrays, experiment = _run_record(
        net, task, batch_size, opt, base_lr, clip_value, clip_norm, trainable, schedule, loss,
        gain_fn, gain, neuron_gain, noise_std, loop, seed,
    )  # fmt: skip
    for name, value in site_gains.items():  # recorded only when given: older records match
        args[name] = True
        arg_arrays[name] = value
    if freeze:  # recorded only when given, so earlier checkpoints still compare equal
        args["freeze"] = {name: cols.tolist() for name, cols in freeze.items()}
    if x0_std > 0 or val_trials is not None:  # recorded only when used: old checkpoints resume
        args["x0_std"] = x0_std
        experiment["val_trials"] = val_trials

    ckpt = None
    if resume is not None:
        ckpt = _load_for_resume(
            resume, net, params, args, arg_arrays, iters, experiment, loop.allow_mismatch
        )
        for name, arr in params.items():
            arr[...] = ckpt.net.params()[name]
        opt.load_state_dict(ckpt.optimizer_state)

    step = _BpttStep(net=net, task=task, batch_size=batch_size, loss=loss, gain_fn=gain_fn,
                     gain=gain, neuron_gain=neuron_gain, noise_std=noise_std, seed=seed,
                     train_params={name: params[name] for name in trainable}, opt=opt,
                     lr_at=lr_at, clip_value=clip_value, clip_norm=clip_norm,
                     run_options=run_options, val_batch=loop.val_batch)  # fmt: skip
    step.site_gains = site_gains
    step.freeze = freeze
    step.x0_std, step.val_trials = x0_std, val_trials
    saving = Checkpointing(loop.checkpoint, loop.checkpoint_every, args, arg_arrays, experiment)
    return run_loop(step, iters=iters, seed=seed, options=loop, desc=f"bptt {args['task']}",
                    progress=progress, net=net, checkpointing=saving, resume=ckpt)  # fmt: skip


class _BpttStep(Rule):
    """One BPTT update: a batch, the C++ loss and gradient, clipping, the optimiser step."""

    rule = "bptt"
    freeze: dict[str, np.ndarray] = {}  # noqa: RUF012 (replaced per run, never mutated)
    x0_std: float = 0.0
    val_trials: Any = None

    def __init__(self, *, net: Model, task: Any, batch_size: int, loss: str | None,
                 gain_fn: Callable | None, gain: float, neuron_gain: Any, noise_std: float,
                 seed: int, train_params: dict[str, np.ndarray], opt: Any,
                 lr_at: Callable[[int], float], clip_value: float | None,
                 clip_norm: float | None, run_options: dict[str, Any] | None,
                 val_batch: int) -> None:  # fmt: skip
        self.net, self.task, self.batch_size, self.loss = net, task, batch_size, loss
        self.gain_fn, self.gain, self.neuron_gain = gain_fn, gain, neuron_gain
        self.noise_std, self.seed, self.train_params, self.opt = noise_std, seed, train_params, opt
        self.lr_at, self.clip_value, self.clip_norm = lr_at, clip_value, clip_norm
        self.run_options, self.val_batch = run_options, val_batch
        self.site_gains: dict[str, np.ndarray] = {}  # pre_gain / post_gain when given

    def step(self, it: int) -> tuple[float, float, float]:
        trials = self.task.batch(self.batch_size, self.rng, dtype=self.net.dtype)
        gains = _batch_gains(self.gain_fn, self.gain, self.rng, trials, self.net,
                             self.neuron_gain, self.site_gains)  # fmt: skip
        x0 = None
        if self.x0_std > 0:
            x0 = _random_x0(self.net, self.x0_std, trials.u.shape[1], [self.seed, it, _X0_KEY])
        try:
            value, grads = gradients.loss_and_grad(
                self.net,
                trials,
                loss=self.loss,
                noise_std=self.noise_std,
                seed=(self.seed * NOISE_SEED_STRIDE + it) % 2**64,
                **gains,
                **({} if x0 is None else {"x0": x0}),
            )
        except FloatingPointError as err:  # the forward pass diverged
            raise FloatingPointError(_non_finite_message(it, math.nan, {}, self.saved_at)) from err
        value = float(value)
        step_grads = {name: grads[name] for name in self.train_params}
        for name, cols in self.freeze.items():
            step_grads[name][:, cols] = 0.0
        # absent connections (a RateRNN's mask) get no gradient, so the norm, the clipping
        # and the optimiser's moments never see them; the loop then projects the signs
        self.net._mask_gradients(step_grads)
        norm = global_norm(step_grads)
        if not (math.isfinite(value) and math.isfinite(norm)):
            raise FloatingPointError(_non_finite_message(it, value, step_grads, self.saved_at))
        if self.clip_value is not None:
            for g in step_grads.values():
                np.clip(g, -self.clip_value, self.clip_value, out=g)
        if self.clip_norm is not None:
            clipped_norm = norm if self.clip_value is None else global_norm(step_grads)
            if clipped_norm > self.clip_norm:
                scale = self.clip_norm / clipped_norm
                for g in step_grads.values():
                    g *= scale
        step_lr = self.lr_at(it)
        held = {name: self.train_params[name][:, cols] for name, cols in self.freeze.items()}
        self.opt.step(self.train_params, step_grads, step_lr)
        for name, cols in self.freeze.items():
            self.train_params[name][:, cols] = held[name]
        return value, norm, step_lr

    def validate(self, done: int) -> tuple[float, float]:
        if self.x0_std > 0 or self.val_trials is not None:
            return self._validate_study(done)
        return _validate(self.net, self.task, self.val_rng, self.val_batch, self.loss,
                         self.run_options, self.gain_fn, self.seed, done)  # fmt: skip

    def _validate_study(self, done: int) -> tuple[float, float]:
        """Validation with random initial states and / or the fixed validation set."""
        fixed = self.val_trials is not None
        trials = self.val_trials if fixed else self.task.batch(self.val_batch, self.val_rng,
                                                               dtype=self.net.dtype)  # fmt: skip
        options = dict(self.run_options or {})
        if isinstance(self.gain_fn, (Modulation, Combined)):
            T, B = np.shape(trials.u)[:2]
            options.update(_modulated(self.gain_fn, self.val_rng, T, B, self.net, options))
        elif self.gain_fn is not None:
            options["gain"] = self.gain_fn(self.val_rng)
        if self.x0_std > 0:
            key = [self.seed, _X0_KEY] if fixed else [self.seed, done, _X0_KEY, 1]
            options["x0"] = _random_x0(self.net, self.x0_std, trials.u.shape[1], key)
        if self.run_options is not None and self.net.takes_gain:
            key = self.seed * NOISE_SEED_STRIDE + VALIDATION_NOISE_OFFSET + done
            options["seed"] = key % 2**64
        y = self.net.outputs(trials.u.astype(self.net.dtype, copy=False), **options)
        return float(self.task.score(y, trials)), task_loss(y, trials, self.loss)

    def state(self) -> dict[str, Any]:
        return self.opt.state_dict()


def _run_record(net, task, batch_size, opt, base_lr, clip_value, clip_norm, trainable, schedule,
                loss, gain_fn, gain, neuron_gain, noise_std, loop, seed):  # fmt: skip
    """What a checkpoint records of the run and a resume compares: the training arguments
    (JSON; callables, the schedule and the gain, as "" / "callable"), the argument arrays,
    and the experiment's objects to fingerprint (the task, the callables)."""
    args = {
        "model": type(net).__name__,
        "dtype": net.dtype.name,
        "task": str(getattr(task, "name", type(task).__name__)),
        "batch_size": batch_size,
        "optimizer": str(getattr(opt, "kind", type(opt).__name__)),
        "optimizer_hyperparameters": _jsonable(getattr(opt, "hyperparameters", dict)()),
        "lr": base_lr,
        "clip_value": clip_value,
        "clip_norm": clip_norm,
        "trainable": list(trainable),
        "schedule": repr(schedule) if schedule is None or isinstance(schedule, Schedule) else "",
        "loss": loss,
        "gain": _gain_record(gain_fn, gain),
        "neuron_gain": neuron_gain is not None,
        "noise_std": noise_std,
        "val_every": loop.val_every,
        "val_batch": loop.val_batch,
        "seed": seed,
    }
    arg_arrays = {} if neuron_gain is None else {"neuron_gain": neuron_gain}
    # fingerprinted: every parameter and array of the task, and the callables' names
    experiment: dict[str, Any] = {"task": task}
    if schedule is not None and not isinstance(schedule, Schedule):
        experiment["schedule"] = schedule
    if gain_fn is not None:
        experiment["gain"] = gain_fn
    return args, arg_arrays, experiment


_X0_KEY = 0x5830  # generator key of the random initial states (x0_std)


def _random_x0(net: Model, std: float, B: int, key: list[int]) -> np.ndarray:
    """(B, n) initial states ``std * N(0, I)`` from ``default_rng(key)``, in net's dtype."""
    x0 = np.random.default_rng(key).standard_normal((B, net.x0.shape[0]))
    return (std * x0).astype(net.dtype)


def _val_trials(val_trials: Any, net: Model) -> Any:
    if val_trials is None:
        return None
    u = getattr(val_trials, "u", None)
    if u is None or not hasattr(val_trials, "target"):
        raise TypeError("val_trials: expected Trials (u, target, mask), e.g. task.batch(...)")
    n_in = getattr(net, "n_in", np.shape(u)[-1])
    if np.ndim(u) != 3 or np.shape(u)[2] != n_in:
        raise ValueError(f"val_trials: u must be (T, B, {n_in}), got {np.shape(u)}")
    return val_trials


def _own_params(net: Model) -> dict[str, np.ndarray]:
    """The network's parameter arrays, made C-contiguous, finite, in its dtype, writeable
    and disjoint: those arrays are then updated in place (a parameter given as a list or
    another dtype, a read-only array, or one sharing memory with an earlier parameter is
    replaced by its own copy once, here)."""
    params = net.params()
    kept: list[np.ndarray] = []
    for name, value in params.items():
        arr = check.array(name, value, net.dtype)
        if not arr.flags.writeable or any(np.may_share_memory(arr, k) for k in kept):
            arr = arr.copy()
        if arr is not value:
            setattr(net, name, arr)
            params[name] = arr
        kept.append(arr)
    return params


def _check_task(task: Any, net: Model, validating: bool) -> None:
    needed = ("batch", "score") if validating else ("batch",)
    missing = [m for m in needed if not callable(getattr(task, m, None))]
    if missing:
        raise TypeError(
            f"task: expected an object with {' and '.join(needed)}() (missing "
            f"{', '.join(missing)}); got {type(task).__name__}"
        )
    for attr in ("n_in", "n_out"):
        want, have = getattr(task, attr, None), getattr(net, attr, None)
        if want is not None and have is not None and int(want) != int(have):
            raise ValueError(f"task: {attr} = {want}, but the network has {attr} = {have}")


def _trainable(trainable: Any, net: Model, params: dict[str, np.ndarray]) -> list[str]:
    """Trainable names, in the model's parameter order (which fixes the order of every sum
    over parameters, e.g. the gradient norm)."""
    if trainable is None:
        return list(params)
    names = [trainable] if isinstance(trainable, str) else list(trainable)
    if not names:
        raise ValueError("trainable: expected at least one parameter name, got none")
    bad = [n for n in names if not isinstance(n, str) or n not in params]
    if bad:
        raise ValueError(
            f"trainable: unknown parameter(s) {', '.join(map(repr, bad))}; this "
            f"{type(net).__name__} has {', '.join(params)}"
        )
    return [name for name in params if name in set(names)]


def _frozen_columns(freeze: Any, params: dict[str, np.ndarray], trainable: list[str]):
    """{name: sorted unique int64 column indices} of trainable 2-D parameters, checked."""
    if freeze is None:
        return {}
    if not isinstance(freeze, dict):
        raise TypeError(
            f"freeze: expected a dict name -> column indices, got {type(freeze).__name__}"
        )
    out = {}
    for name, cols in freeze.items():
        if name not in trainable:
            raise ValueError(f"freeze: {name!r} is not among the trainable parameters {trainable}")
        if params[name].ndim != 2:
            raise ValueError(f"freeze: {name} has shape {params[name].shape}; columns need 2-D")
        idx = np.asarray(cols)
        if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
            raise ValueError(
                f"freeze: {name}: expected a non-empty 1-D list of column indices, got {cols!r}"
            )
        n_cols = params[name].shape[1]
        if idx.min() < 0 or idx.max() >= n_cols:
            raise ValueError(f"freeze: {name} has columns 0..{n_cols - 1}, got {idx.tolist()}")
        out[name] = np.unique(idx).astype(np.int64)
    return out


def _optimizer(optimizer: Any, lr: Any, weight_decay: Any) -> tuple[Any, float]:
    if isinstance(optimizer, str):
        kind = check.choice("optimizer", optimizer, tuple(OPTIMIZERS))
        lr = 1e-3 if lr is None else check.scalar("lr", lr, positive=True)
        if kind == "adamw":
            wd = 1e-2 if weight_decay is None else weight_decay
            return OPTIMIZERS[kind](lr, weight_decay=wd), lr
        if weight_decay is not None and weight_decay != 0:
            raise ValueError(
                "weight_decay: Adam has no weight decay; use optimizer='adamw' (decoupled)"
            )
        return OPTIMIZERS[kind](lr), lr
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(
            f"optimizer: expected 'adam', 'adamw' or an object with step(params, grads, lr); "
            f"got {type(optimizer).__name__}"
        )
    if weight_decay is not None:
        raise ValueError("weight_decay: set it on the optimizer object, not here")
    own = getattr(optimizer, "lr", None)
    if lr is not None and own is not None and check.scalar("lr", lr, positive=True) != own:
        raise ValueError(f"lr: {lr} differs from the optimizer object's lr = {own}; give one")
    base = own if lr is None else lr
    if base is None:
        raise ValueError("lr: the optimizer object has no lr; pass lr=")
    return optimizer, check.scalar("lr", base, positive=True)


def _gain(gain: Any) -> tuple[Callable | None, float]:
    if callable(gain):
        return gain, 1.0
    return None, check.scalar("gain", gain)


def _site_gains(net: Model, dtype: np.dtype, **gains: Any) -> dict[str, np.ndarray]:
    """pre_gain / post_gain of bptt: the ones given, checked (n,) arrays in the model's dtype;
    only models whose run takes them (rate networks, NMRNN)."""
    given = {name: value for name, value in gains.items() if value is not None}
    for name, value in given.items():
        if name not in net.run_gains:
            raise ValueError(f"{name}: {type(net).__name__} takes no {name}")
        given[name] = check.array(name, value, dtype, (net.n,))
    return given


def _modulation(modulation: Any, gain_fn: Callable | None, gain: float, net: Model) -> Modulation:
    """The checked ``modulation=`` of bptt: a Modulation, for a model that takes a gain,
    without ``gain``."""
    if not isinstance(modulation, (Modulation, Combined)):
        raise TypeError(
            "modulation: expected a flexrnn.modulation.Modulation (e.g. "
            f"fr.modulation.uniform(0.5, 2.0)) or Combined, got {type(modulation).__name__}"
        )
    if gain_fn is not None or gain != 1.0:
        raise ValueError("modulation: give either gain or modulation, not both")
    modulation.check_for(net)
    return modulation


def _gain_record(gain_fn: Any, gain: float) -> Any:
    """The gain as a checkpoint records it: the Modulation's repr, "callable", or the value."""
    if isinstance(gain_fn, (Modulation, Combined)):
        return repr(gain_fn)
    return "callable" if gain_fn is not None else gain


def _batch_gain(gain_fn: Any, gain: float, rng: np.random.Generator, trials: Any) -> Any:
    """The global gain of one batch (no Modulation): the callable's value or the fixed gain."""
    return gain_fn(rng) if gain_fn is not None else gain


def _batch_gains(gain_fn: Any, gain: float, rng: np.random.Generator, trials: Any, net: Model,
                 neuron_gain: Any, site_gains: dict[str, np.ndarray],
                 ) -> dict[str, Any]:  # fmt: skip
    """The gain keywords of ``loss_and_grad`` for one batch: the fixed ones (given only when
    set, so that models without gains get none), with a Modulation's draw for the batch's
    (T, B) at its targets (multiplying a fixed per-neuron gain at the same keyword)."""
    fixed: dict[str, Any] = dict(site_gains)
    if neuron_gain is not None:
        fixed["neuron_gain"] = neuron_gain
    if isinstance(gain_fn, (Modulation, Combined)):
        T, B = np.shape(trials.u)[:2]
        return {**fixed, **_modulated(gain_fn, rng, T, B, net, fixed)}
    value = _batch_gain(gain_fn, gain, rng, trials)
    if net.takes_gain or gain_fn is not None or value != 1.0:
        fixed["gain"] = value
    return fixed


def _modulated(modulation: Any, rng: np.random.Generator, T: int, B: int, net: Model,
               fixed: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """A modulation's draw for a batch, each keyword multiplied by the fixed gain at it."""
    drawn = modulation.gains(rng, T, B, net)
    for key, value in drawn.items():
        if fixed.get(key) is not None and key != "gain":
            drawn[key] = np.asarray(fixed[key], np.float64) * value  # (n,) * (t, b, 1 or n)
    return drawn


def _run_options(net, gain_fn, gain, neuron_gain, noise_std) -> dict[str, Any] | None:
    """The gain and noise options of validation runs, for models whose run() takes them
    (RateRNN, LowRankRNN; an NMRNN's run takes the gain only), else None; raises when such
    options are set for another model."""
    if net.takes_gain:
        return {"gain": gain, "neuron_gain": neuron_gain, "noise_std": noise_std}
    if "gain" in net.run_gains and (neuron_gain is None and noise_std == 0.0):
        return {"gain": gain}
    for name, is_set in (
        ("gain", gain_fn is not None or gain != 1.0),
        ("neuron_gain", neuron_gain is not None),
        ("noise_std", noise_std != 0.0),
    ):
        if is_set:
            raise ValueError(f"{name}: {type(net).__name__} takes no {name}")
    return None


def _validate(net, task, val_rng, val_batch, loss, run_options, gain_fn, seed, done):
    """(accuracy, loss) on a fresh batch of the validation generator."""
    trials = task.batch(val_batch, val_rng, dtype=net.dtype)
    if run_options is not None:
        options = run_options
        if isinstance(gain_fn, (Modulation, Combined)):
            T, B = np.shape(trials.u)[:2]
            options = {**options, **_modulated(gain_fn, val_rng, T, B, net, options)}
        elif gain_fn is not None:
            options = {**options, "gain": _batch_gain(gain_fn, 1.0, val_rng, trials)}
        if net.takes_gain:  # the noise key of a rate network's run
            key = (seed * NOISE_SEED_STRIDE + VALIDATION_NOISE_OFFSET + done) % 2**64
            options = {**options, "seed": key}
        y = net.outputs(trials.u, **options)
    else:
        y = net.outputs(trials.u)
    return float(task.score(y, trials)), task_loss(y, trials, loss)


def task_loss(y: np.ndarray, trials: Any, loss: str | None = None) -> float:
    """The BPTT loss of outputs ``y``: (T, B, n_out) on ``trials``, in float64.

    "mse": sum(mask (y - target)^2) / sum(mask), target (T, B, n_out), mask broadcast to y;
    "cross_entropy": masked mean of logsumexp(y) - y[label], labels (T, B), mask (T, B).
    A missing mask counts every entry; an all-zero mask gives 0. None picks cross-entropy
    for integer targets, MSE otherwise.
    """
    target = np.asarray(trials.target)
    if loss is None:
        loss = "cross_entropy" if target.dtype.kind in "iu" else "mse"
    y = np.asarray(y, dtype=np.float64)
    given = getattr(trials, "mask", None)
    mask = np.asarray(1.0 if given is None else check.loss_weights("mask", given), np.float64)
    return float(masked_loss(y, target, mask, loss))


# arguments without which the saved state cannot be continued (allow_mismatch or not)
_STRUCTURAL = ("model", "dtype", "optimizer", "trainable")


def _load_for_resume(resume, net, params, args, arg_arrays, iters, experiment, allow_mismatch):
    ckpt = load_checkpoint(resume)
    if type(ckpt.net) is not type(net) or ckpt.net.dtype != net.dtype:
        raise ValueError(
            f"resume: the checkpoint holds a {type(ckpt.net).__name__} ({ckpt.net.dtype}), "
            f"not a {type(net).__name__} ({net.dtype})"
        )
    saved = ckpt.net.params()
    for name, arr in params.items():
        if name not in saved or saved[name].shape != arr.shape:
            shape = saved[name].shape if name in saved else "none"
            raise ValueError(
                f"resume: {name} has shape {shape} in the checkpoint, {arr.shape} here"
            )
    if ckpt.net.hyperparameters() != net.hyperparameters():
        raise ValueError(
            f"resume: the checkpoint's network has {ckpt.net.hyperparameters()}, this one "
            f"{net.hyperparameters()}"
        )
    verify_resume(ckpt, args=_jsonable(args), experiment=experiment, arrays=arg_arrays,
                  structural=_STRUCTURAL, allow_mismatch=allow_mismatch)  # fmt: skip
    check_same_structure(ckpt.net, net)
    if ckpt.iteration > iters:
        raise ValueError(f"iters: the checkpoint has already done {ckpt.iteration} > {iters}")
    return ckpt


def _jsonable(value: Any) -> Any:
    """Tuples as lists (as they come back from JSON), recursively."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _non_finite_message(it: int, value: float, grads: dict[str, np.ndarray], saved_at: int) -> str:
    what = f"loss = {value}" if not math.isfinite(value) else "non-finite gradient"
    bad = [name for name, g in grads.items() if not np.isfinite(g).all()]
    where = f" in {', '.join(bad)}" if bad else ""
    last = f"; the last checkpoint (iteration {saved_at}) is intact" if saved_at >= 0 else ""
    return (
        f"bptt: {what}{where} at iteration {it} (after {it} updates). The update was not "
        f"applied{last}. Lower lr, clip gradients (clip_norm=...) or check the task."
    )
