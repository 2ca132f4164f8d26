"""FORCE and full-FORCE training (docs/learning_rules.md): recursive least squares in C++.

>>> hist = fr.train.force(net, target, alpha=1.0, epochs=10)      # target: (T, n_out)
>>> y, x = fr.train.feedback_run(net, hist.W_fb, T=2000, x0=hist.x)   # learning off
>>> hist = fr.train.full_force(net, task, iters=300, hint=fr.train.integration_hint(task))

The whole time loop, the output feedback and every RLS update run in C++; Python cuts the
run into chunks (for the progress bar and the history) and draws batches. P is kept in the
returned history (``hist.P``) so that a run can be continued (``P=hist.P``).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from flexrnn import _core
from flexrnn import _validate as check
from flexrnn.models import RateRNN
from flexrnn.reference.losses import masked_mse_loss

from .history import History, StopCriterion
from .loop import LoopOptions, Rule, check_task_sizes
from .loop import run as run_loop


class ForceHistory(History):
    """History of a FORCE / full-FORCE run, plus the state needed to use or continue it.

    Per record (one chunk of steps, or one batch of trials): ``loss`` is the mean squared
    a priori error of the output over the chunk's learning steps (masked steps for tasks),
    ``weight_change`` the Frobenius norm of the change of the trained weights over the
    chunk, ``alpha`` the RLS regulariser (P0 = I / alpha). (``grad_norm`` and ``lr``, which
    held the last two in earlier versions, are deprecated aliases.)

    Attributes: ``P`` (n, n), ``W_fb`` (n, n_out) (FORCE) or the teacher (``J_D``, ``w_f``,
    ``w_h``; full-FORCE) and ``output`` (full-FORCE's, "linear" or "tanh"), ``x`` (n,) the
    final state and ``z`` (n_out,) the last output fed back (FORCE on a target:
    ``feedback_run(net, W_fb, T=..., x0=hist.x, z0=hist.z)`` continues the run exactly),
    ``updates``.
    """

    def __init__(self, rule: str = "force") -> None:
        super().__init__(rule)
        self.P: np.ndarray | None = None
        self.W_fb: np.ndarray | None = None
        self.x: np.ndarray | None = None
        self.z: np.ndarray | None = None
        self.teacher: dict[str, np.ndarray] = {}
        self.teacher_state: np.ndarray | None = None  # full-FORCE, carry_teacher: (n,)
        self.output = "linear"  # full-FORCE: "tanh" when the output is tanh(W_out r + b_out)
        self.updates = 0


def _check_net(net: Any, rule: str, kernel: str = "force") -> RateRNN:
    """``net``, checked: a model with the rule's kernel (a RateRNN)."""
    if kernel not in getattr(net, "kernels", {}):
        raise TypeError(f"net: {rule} trains a RateRNN, got {type(net).__name__}")
    net._check_shapes()
    return net


def _own(net: RateRNN, name: str) -> np.ndarray:
    """The parameter array, C-contiguous in the model's dtype, set back on the model: the C++
    kernel updates it in place."""
    arr = np.ascontiguousarray(getattr(net, name), dtype=net.dtype)
    if not arr.flags.writeable:
        arr = arr.copy()
    setattr(net, name, arr)
    return arr


def _task_like(obj: Any) -> bool:
    return callable(getattr(obj, "batch", None))


def feedback_run(
    net: RateRNN,
    W_fb: Any,
    u: Any = None,
    *,
    T: int | None = None,
    x0: Any = None,
    z0: Any = None,
    pre_gain: Any = None,
    post_gain: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``net`` with output feedback ``W_fb`` (n, n_out) and learning off (as FORCE runs
    it): ``drive = W s + W_fb z + W_in u[t] + b`` with z the current output.

    u : (T, B, n_in) inputs, or None with ``T`` steps (zero input, one trial).
    x0 : None (the model's x0), (n,) or (B, n).
    z0 : None (the readout of x0) or (n_out,) / (B, n_out): the output fed back at the first
        step (``hist.z`` after FORCE on a target continues that run).
    pre_gain, post_gain : None or (n,): constant gains of the sending and receiving neurons
        (the recurrent matrix ``diag(post_gain) W diag(pre_gain)``, see ``RateRNN.run``).
    Returns (y (T, B, n_out), x (B, n) the final states).
    """
    net = _check_net(net, "feedback_run")
    dt = net.dtype
    if u is None:
        if T is None:
            raise ValueError("T: give u or the number of steps T")
        T = check.integer("T", T, minimum=0)
        u = np.zeros((T, 1, net.n_in), dtype=dt)
    u = check.inputs(u, net.n_in, dt)
    B = u.shape[1]
    x = np.array(check.initial_state("x0", x0, net.x0, B), dtype=dt)
    W_fb = check.array("W_fb", W_fb, dt, (net.n, net.n_out))
    z = None
    if z0 is not None:
        z = check.real_array("z0", z0)
        if z.shape == (net.n_out,):
            z = np.array(np.broadcast_to(z, (B, net.n_out)))
        z = np.array(check.array("z0", z, dt, (B, net.n_out)))  # a copy: the core writes it
    _own(net, "W_out")  # the kernel takes it writeable
    options = _core.ForceOptions(rate=net._options(), update_every=1, step0=0, learn=False)
    P_unused = np.zeros((0, 0), dt)  # no learning: P is not read
    params = net._map_kernel(net._check_shapes(), pre_gain, post_gain)
    y, _ = _force_kernel(net, params, options, W_fb=W_fb, P=P_unused, u=u, target=None,
                         mask=None, x=x, z=z)  # fmt: skip
    return y, x


def _force_kernel(
    net: RateRNN,
    params: Any,
    options: Any,
    *,
    W_fb: np.ndarray,
    P: np.ndarray,
    u: np.ndarray,
    target: np.ndarray | None,
    mask: np.ndarray | None,
    x: np.ndarray,
    z: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """The one call of the FORCE kernel (``net.kernels["force"]``), every array by name:
    params (the bound ``net._kernel()``, W_out trained in place), options
    (``_core.ForceOptions``), W_fb (n, n_out), P (n, n) updated in place, u (T, B, n_in),
    target (T, B, n_out) or None, mask (T, B) or None, x (B, n) states in and out, z
    (B, n_out) or None the output fed back first. Returns (y (T, B, n_out), updates)."""
    return net.kernels["force"](params=params, options=options, W_fb=W_fb, P=P, u=u,
                                target=target, mask=mask, x=x, z=z)  # fmt: skip


def force(
    net: RateRNN,
    task_or_target: Any,
    *,
    u: Any = None,
    alpha: float = 1.0,
    update_every: int = 1,
    W_fb: Any = None,
    fb_scale: float = 1.0,
    P: Any = None,
    epochs: int = 1,
    chunk: int = 1000,
    x0: Any = None,
    iters: int = 100,
    batch_size: int = 8,
    val_every: int | None = 10,
    val_batch: int = 256,
    stop: StopCriterion | None = None,
    progress: bool = True,
    seed: int = 0,
    pre_gain: Any = None,
    post_gain: Any = None,
) -> ForceHistory:
    """Train the readout ``W_out`` of ``net`` by FORCE (Sussillo & Abbott 2009).

    The network runs with output feedback, ``drive = W s + W_fb z + W_in u + b``
    (``z = W_out h + b_out`` the current output, h = r or x by the readout), and every
    ``update_every`` steps an RLS step on h updates ``W_out`` (one ``P`` for all outputs,
    ``P0 = I / alpha``); ``b_out`` stays fixed.

    Parameters
    ----------
    net : RateRNN (any form, readout); ``W_out`` is updated in place.
    task_or_target : a target array (T, n_out) or (T,), presented ``epochs`` times in a row
        as one continuous run (state carried over), with inputs ``u`` (T, n_in) or none;
        or a task (``batch``/``score``): ``iters`` batches of ``batch_size`` trials, each
        trial from ``x0``, learning at the steps where the task's mask is nonzero.
    alpha : RLS regulariser (P0 = I / alpha), > 0; ignored when ``P`` is given.
    update_every : steps between RLS updates.
    W_fb : (n, n_out) feedback weights; default ``fb_scale * U(-1, 1)`` from ``seed``.
    P : (n, n) initial inverse correlation matrix (to continue a run: ``hist.P``).
    epochs, chunk : target mode: passes over the target, and steps per C++ call (one
        history record each; the output fed back is carried across calls, so ``chunk``
        changes the records, not the run).
    x0 : initial state: None (the model's), (n,). Target mode: when the model's x0, its
        bias and the inputs are all zero, the network would sit at its zero fixed point and
        learn nothing; it then starts from ``0.5 N(0, 1)`` drawn from ``seed`` (as Sussillo
        and Abbott do).
    iters, batch_size, val_every, val_batch, stop : task mode, as in :func:`bptt`
        (validation runs with feedback and learning off).
    progress : tqdm bar.
    seed : feedback weights, task batches.
    pre_gain, post_gain : None or (n,): constant gains of the sending and receiving neurons
        while training and validating, the recurrent matrix ``diag(post_gain) W
        diag(pre_gain)`` (see ``RateRNN.run``); W itself is not trained by FORCE.

    Returns
    -------
    ForceHistory: records, plus ``P``, ``W_fb``, ``x`` (final state, target mode).
    """
    net = _check_net(net, "force")
    dt = net.dtype
    n, n_out = net.n, net.n_out
    alpha = check.scalar("alpha", alpha, positive=True)
    update_every = check.integer("update_every", update_every, minimum=1)
    seed = check.seed("seed", seed)
    fb_scale = check.scalar("fb_scale", fb_scale, nonneg=True)
    if W_fb is None:
        W_fb = fb_scale * np.random.default_rng([seed, 2]).uniform(-1, 1, (n, n_out))
    W_fb = check.array("W_fb", W_fb, dt, (n, n_out))
    P = (np.eye(n) / alpha).astype(dt) if P is None else check.array("P", P, dt, (n, n)).copy()
    _own(net, "W_out")  # updated in place by the kernel
    # the bound parameters (W with the gains folded in): W_out is trained in place through them
    p = net._map_kernel(net._check_shapes(), pre_gain, post_gain)
    hist = ForceHistory()
    hist.P, hist.W_fb = P, W_fb
    common = {"rate": net._options(), "update_every": update_every}  # ForceOptions but step0, learn

    if not _task_like(task_or_target):
        return _force_on_target(net, p, hist, task_or_target, u, x0, epochs, chunk, alpha,
                                common, seed, progress)  # fmt: skip

    task = task_or_target
    check_task_sizes(task, net)
    iters = check.integer("iters", iters, minimum=0)
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    loop = LoopOptions.checked(val_every=val_every, val_batch=val_batch, stop=stop)
    task_step = _ForceTaskStep(net, p, hist, task, batch_size, x0, loop.val_batch, alpha, common)
    task_step.site_gains = {"pre_gain": pre_gain, "post_gain": post_gain}
    return run_loop(task_step, iters=iters, seed=seed, options=loop,  # type: ignore[return-value]
                    desc=f"force {getattr(task, 'name', '')}", progress=progress,
                    history=hist)  # fmt: skip


def _force_on_target(net, p, hist, target, u, x0, epochs, chunk, alpha, common, seed, progress):
    """FORCE on a target array presented ``epochs`` times as one continuous run."""
    n, n_out, dt = net.n, net.n_out, net.dtype
    target = check.real_array("target", target)
    if target.ndim == 1 and n_out == 1:
        target = target[:, None]
    target = check.array("target", target, dt, (None, n_out))
    T = target.shape[0]
    if target.size == 0:
        raise ValueError(
            f"target: empty (shape {target.shape}); FORCE needs at least one step of at "
            "least one output"
        )
    epochs = check.integer("epochs", epochs, minimum=1)
    chunk = check.integer("chunk", chunk, minimum=1)
    if u is None:
        u = np.zeros((T, net.n_in), dt)
    u = check.array("u", u, dt, (T, net.n_in))
    if x0 is None and not (np.any(net.x0) or np.any(net.b) or np.any(u)):
        x0 = 0.5 * np.random.default_rng([seed, 4]).standard_normal(n)
    x = np.array(check.initial_state("x0", x0, net.x0, 1), dtype=dt)
    target_step = _ForceTargetStep(net, p, hist, target, u, x, epochs * T, chunk, alpha, common)
    run_loop(target_step, iters=-(-epochs * T // chunk), seed=seed, options=_NO_VALIDATION,
             desc="force", progress=progress, history=hist, total=epochs * T)  # fmt: skip
    z = target_step.z
    hist.x, hist.z = x[0], (None if z is None else z[0])
    if hist.updates and not np.any(hist._records["weight_change"]):
        warnings.warn(
            "force: W_out did not change in any update (the states fed to RLS are zero); "
            "give x0 or an input that moves the network off its fixed point",
            RuntimeWarning,
            stacklevel=3,
        )
    return hist


# target mode: no validation, stopping, callback or checkpoints
_NO_VALIDATION = LoopOptions(None, 1, None, 1, False, None, None)


class _ForceTargetStep(Rule):
    """FORCE on a target: one chunk of the continuous run (``chunk`` steps) per update."""

    rule = "force"
    label = "mse"
    unit = "step"

    def __init__(self, net, p, hist, target, u, x, total, chunk, rls_alpha, common) -> None:
        self.net, self.p, self.hist, self.target, self.u, self.x = net, p, hist, target, u, x
        self.total, self.chunk, self.rls_alpha, self.common = total, chunk, rls_alpha, common
        self.z = None  # the output fed back first: the readout of x0, then the last call's

    def _indices(self, it: int) -> np.ndarray:
        start = it * self.chunk
        return np.arange(start, min(start + self.chunk, self.total)) % self.target.shape[0]

    def step(self, it: int) -> tuple[float, float, float]:
        p, W_out, hist = self.p, self.net.W_out, self.hist
        idx = self._indices(it)
        before = W_out.copy()
        y, updates = _force_kernel(
            self.net, p, _core.ForceOptions(**self.common, step0=it * self.chunk, learn=True),
            W_fb=hist.W_fb, P=hist.P, u=np.ascontiguousarray(self.u[idx][:, None]),
            target=np.ascontiguousarray(self.target[idx][:, None]), mask=None, x=self.x,
            z=self.z,
        )  # fmt: skip
        self.z = np.array(y[-1])  # (1, n_out): the a priori output of the last step
        hist.updates += int(updates)
        err = float(masked_mse_loss(y[:, 0].astype(np.float64), self.target[idx], 1.0))
        change = float(np.linalg.norm((W_out - before).astype(np.float64)))
        if not np.isfinite(err):
            raise FloatingPointError(f"force: the output diverged at step {it * self.chunk}")
        return err, change, self.rls_alpha

    def advance(self, it: int) -> int:
        return len(self._indices(it))


class _ForceTaskStep(Rule):
    """FORCE on a task: one batch of trials, each from x0, learning where the mask is set."""

    rule = "force"
    label = "mse"

    def __init__(self, net, p, hist, task, batch_size, x0, val_batch, rls_alpha, common):
        self.net, self.p, self.hist, self.task, self.batch_size = net, p, hist, task, batch_size
        self.x0, self.val_batch, self.rls_alpha, self.common = x0, val_batch, rls_alpha, common
        self.steps = 0  # time steps run: the key of the RLS schedule
        self.site_gains: dict[str, Any] = {}  # pre_gain / post_gain of the validation runs

    def step(self, it: int) -> tuple[float, float, float]:
        net, hist, dt = self.net, self.hist, self.net.dtype
        p, W_out = self.p, net.W_out
        trials = self.task.batch(self.batch_size, self.rng, dtype=dt)
        target, mask = _target_and_mask(trials, net.n_out, dt)
        x = np.array(check.initial_state("x0", self.x0, net.x0, self.batch_size), dtype=dt)
        before = W_out.copy()
        options = _core.ForceOptions(**self.common, step0=self.steps, learn=True)
        u = np.ascontiguousarray(trials.u, dt)
        y, updates = _force_kernel(net, p, options, W_fb=hist.W_fb, P=hist.P, u=u, target=target,
                                   mask=mask, x=x)  # fmt: skip
        self.steps += trials.u.shape[0] * self.batch_size
        hist.updates += int(updates)
        err = _masked_mse(y, target, mask)
        change = float(np.linalg.norm((W_out - before).astype(np.float64)))
        return err, change, self.rls_alpha

    def validate(self, done: int) -> tuple[float, float]:
        vt = self.task.batch(self.val_batch, self.val_rng, dtype=self.net.dtype)
        vy, _ = feedback_run(self.net, self.hist.W_fb, vt.u, x0=self.x0, **self.site_gains)
        vtarget, vmask = _target_and_mask(vt, self.net.n_out, self.net.dtype)
        return float(self.task.score(vy, vt)), _masked_mse(vy, vtarget, vmask)


def _target_and_mask(trials: Any, n_out: int, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Float target (T, B, n_out) and a (T, B) mask: steps where any output counts."""
    T, B = trials.u.shape[:2]
    target = check.array("target", trials.target, dt, (T, B, n_out))
    if target.size == 0:
        raise ValueError(f"target: the task's trials have an empty target {target.shape}")
    mask = getattr(trials, "mask", None)
    if mask is None:
        return target, np.ones((T, B), dt)
    mask = np.broadcast_to(check.loss_weights("mask", mask), (T, B, n_out))
    return target, np.ascontiguousarray((mask != 0).any(axis=-1), dtype=dt)


def _masked_mse(y: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """The masked MSE (flexrnn.reference.masked_mse_loss) in float64 of y (T, B, n_out) and
    target against a per-step mask (T, B)."""
    return float(masked_mse_loss(y.astype(np.float64), target, mask[..., None]))


# --------------------------------------------------------------------------------------------
# full-FORCE
# --------------------------------------------------------------------------------------------


def integration_hint(task: Any, scale: float | None = None) -> Callable[[Any], np.ndarray]:
    """The hint of the evidence-integration tasks: the running sum of the relevant evidence
    (PerceptualDecision: the input; ContextIntegration: the cued channel), ``(T, B, 1)``,
    scaled by ``scale`` (default ``2 / (coherence_max * T)``, so that the hint ends near
    +-1 for a typical coherence)."""
    n_in = getattr(task, "n_in", None)
    N = getattr(task, "N", None)
    if not (n_in == 1 or (N is not None and n_in == 2 * N)):
        raise ValueError(
            f"task: integration_hint knows PerceptualDecision and ContextIntegration, got "
            f"{getattr(task, 'name', type(task).__name__)}"
        )
    if scale is None:
        scale = 2.0 / (max(getattr(task, "coherence_max", 0.1857), 1e-12) * task.T)
    scale = check.scalar("scale", scale)

    def hint(trials: Any) -> np.ndarray:
        u = np.asarray(trials.u, dtype=np.float64)
        evidence = u if N is None else (u[..., :N] * u[..., N:]).sum(axis=-1, keepdims=True)
        return scale * np.cumsum(evidence, axis=0)

    return hint


def full_force(
    net: RateRNN,
    task: Any,
    *,
    iters: int,
    batch_size: int = 8,
    hint: Callable[[Any], Any] | None = None,
    alpha: float = 1.0,
    update_every: int = 1,
    g_teacher: float = 1.5,
    teacher: dict[str, Any] | None = None,
    target_scale: float = 1.0,
    hint_scale: float = 1.0,
    response_steps: int | None = None,
    P: Any = None,
    val_every: int | None = 10,
    val_batch: int = 256,
    stop: StopCriterion | None = None,
    progress: bool = True,
    seed: int = 0,
    teacher_input_std: float | None = None,
    carry_teacher: bool = False,
    rls_from: int = 0,
    output: str = "linear",
    output_clip: float = 0.95,
) -> ForceHistory:
    """Train the whole recurrent matrix ``W`` and the readout ``W_out`` of ``net`` by
    full-FORCE (DePasquale et al. 2018), one shared P.

    A teacher network (``J_D ~ N(0, g_teacher^2 / n)``, the student's ``W_in`` and ``b``)
    is driven by the input, the target ``f`` (through ``w_f ~ target_scale U(-1, 1)``) and
    the hint (through ``w_h ~ hint_scale U(-1, 1)``); RLS makes the student's recurrent
    input ``W r`` follow the teacher's ``J_D r_D + w_f f + w_h h`` at every step and the
    readout follow ``f`` where the task's mask is nonzero. Trials of a batch run in order;
    each starts from the model's x0 (student and teacher).

    Parameters
    ----------
    net : RateRNN with ``form="current"``, ``readout="rate"``; W and W_out change in place.
    task : ``batch(B, rng, dtype=)``, ``score(y, trials)``; float targets (T, B, n_out).
    iters, batch_size : batches, and trials per batch.
    hint : None, or ``hint(trials) -> (T, B, n_hint)`` (e.g. :func:`integration_hint`).
    alpha, update_every : RLS regulariser (P0 = I / alpha) and steps between updates.
    g_teacher, teacher : the teacher's gain, or its arrays ``{"J_D", "w_f", "w_h"}``
        (e.g. ``hist.teacher`` to continue a run, with ``P=hist.P``).
    target_scale, hint_scale : scales of the teacher's ``w_f`` and ``w_h``.
    response_steps : None (the task's target and mask as they are), or L: the final target
        is held over the last L steps, which also count for the readout. The teacher is fed
        the target at every step and the student learns to reproduce its recurrent input,
        so a target set at the last step only (PerceptualDecision, ContextIntegration) is an
        impulse the student cannot anticipate: the online updates of W at that step then
        leak the answer into the last state, and the readout learns from that leak (it
        scored below chance on PerceptualDecision). A response period avoids this.
    val_every, val_batch, stop, progress, seed : as in :func:`bptt` (validation: the
        student alone, ``net.run``).
    teacher_input_std, carry_teacher, rls_from : the learning-rule study's variant (McMahan
        et al. 2021). ``teacher_input_std``: the teacher gets its own input weights
        ``W_in ~ N(0, teacher_input_std²)`` (``teacher["W_in"]``; default: the student's
        W_in). ``carry_teacher``: the teacher is never reset: each trial starts it from the
        previous trial's final teacher state, across batches (the first trial of the run from
        x0); ``hist.teacher_state`` holds the last one. ``rls_from`` > 0: RLS updates only
        after the first step of a trial and from in-trial step ``rls_from`` on.
    output, output_clip : ``"linear"`` (the output is ``y = W_out r + b_out``) or ``"tanh"``
        (the study's: the output is ``tanh(y)``). With ``"tanh"`` RLS fits the pre-tanh
        output ``y`` to ``atanh(clip(f, -output_clip, output_clip))`` (a least-squares fit
        on the pre-tanh scale; ``atanh(±1)`` is infinite, hence the clip), while the teacher
        is still driven by ``f`` itself; the recurrent W learns exactly as with ``"linear"``
        (its RLS errors do not involve the readout). The model's readout stays linear: its
        ``y`` is the pre-tanh output, and the training errors and validation are of
        ``tanh(y)``. For targets ``±1`` W_out is ``atanh(output_clip)`` times the linear
        one, so the sign of the output (a decision) is the same.
    """
    net = _check_net(net, "full_force", "full_force")
    if net.form != "current" or net.readout != "rate":
        raise ValueError(
            f"net: full_force needs form='current' and readout='rate', got form={net.form!r}, "
            f"readout={net.readout!r}"
        )
    if not _task_like(task):
        raise TypeError(f"task: expected a task with batch(), got {type(task).__name__}")
    check_task_sizes(task, net)
    dt = net.dtype
    n, n_out = net.n, net.n_out
    iters = check.integer("iters", iters, minimum=0)
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    alpha = check.scalar("alpha", alpha, positive=True)
    update_every = check.integer("update_every", update_every, minimum=1)
    g_teacher = check.scalar("g_teacher", g_teacher, nonneg=True)
    seed = check.seed("seed", seed)
    loop = LoopOptions.checked(val_every=val_every, val_batch=val_batch, stop=stop)
    if hint is not None and not callable(hint):
        raise TypeError(f"hint: expected a callable trials -> (T, B, n_hint), got {hint!r}")
    if response_steps is not None:
        response_steps = check.integer("response_steps", response_steps, minimum=1)
    if teacher_input_std is not None:
        teacher_input_std = check.scalar("teacher_input_std", teacher_input_std, nonneg=True)
    if not isinstance(carry_teacher, (bool, np.bool_)):
        raise TypeError(f"carry_teacher: expected True or False, got {carry_teacher!r}")
    rls_from = check.integer("rls_from", rls_from, minimum=0)
    if output not in ("linear", "tanh"):
        raise ValueError(f"output: expected 'linear' or 'tanh', got {output!r}")
    output_clip = check.scalar("output_clip", output_clip, positive=True)
    if output_clip >= 1.0:
        raise ValueError(f"output_clip: expected a value in (0, 1), got {output_clip}")

    probe = task.batch(1, np.random.default_rng([seed, 3]), dtype=dt)
    n_hint = 0 if hint is None else np.asarray(hint(probe)).shape[-1]
    if teacher is None:
        trng = np.random.default_rng([seed, 2])
        teacher = {
            "J_D": trng.standard_normal((n, n)) * g_teacher / np.sqrt(n),
            "w_f": target_scale * trng.uniform(-1, 1, (n, n_out)),
            "w_h": hint_scale * trng.uniform(-1, 1, (n, n_hint)),
        }
        if teacher_input_std is not None:  # drawn after the others: their draws unchanged
            teacher["W_in"] = trng.normal(0.0, teacher_input_std, (n, net.n_in))
    # copies: the teacher must not share memory with the student trained in place
    J_D = check.array("teacher['J_D']", teacher.get("J_D"), dt, (n, n)).copy()
    w_f = check.array("teacher['w_f']", teacher.get("w_f"), dt, (n, n_out)).copy()
    w_h = check.array("teacher['w_h']", teacher.get("w_h"), dt, (n, n_hint)).copy()
    P = (np.eye(n) / alpha).astype(dt) if P is None else check.array("P", P, dt, (n, n)).copy()
    _own(net, "W"), _own(net, "W_out")  # updated in place by the kernel
    hist = ForceHistory("full_force")
    hist.P, hist.teacher = P, {"J_D": J_D, "w_f": w_f, "w_h": w_h}
    if teacher.get("W_in") is not None:
        W_in_D = check.array("teacher['W_in']", teacher["W_in"], dt, (n, net.n_in)).copy()
        hist.teacher["W_in"] = W_in_D
    hist.teacher_state = None

    step = _FullForceStep(net, hist, task, batch_size, hint, n_hint, response_steps, alpha,
                          update_every, loop.val_batch)  # fmt: skip
    step.carry_teacher, step.rls_from = bool(carry_teacher), rls_from
    step.output, step.output_clip = output, output_clip
    hist.output = output
    return run_loop(step, iters=iters, seed=seed, options=loop,  # type: ignore[return-value]
                    desc=f"full-force {getattr(task, 'name', '')}", progress=progress,
                    history=hist)  # fmt: skip


class _FullForceStep(Rule):
    """full-FORCE: one batch of trials, in order, student and teacher from the model's x0."""

    rule = "full_force"
    label = "mse"
    carry_teacher = False
    rls_from = 0
    output = "linear"
    output_clip = 0.95

    def __init__(self, net, hist, task, batch_size, hint, n_hint, response_steps, rls_alpha,
                 update_every, val_batch):  # fmt: skip
        self.net, self.hist, self.task, self.batch_size = net, hist, task, batch_size
        self.hint, self.n_hint, self.response_steps = hint, n_hint, response_steps
        self.rls_alpha, self.update_every, self.val_batch = rls_alpha, update_every, val_batch
        self.p = net._kernel()  # W (= J) and W_out are trained in place through it
        self.steps = 0  # time steps run: the key of the RLS schedule

    def _batch(self) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray | None]:
        """trials, target (T, B, n_out), mask (T, B) with the response period, hint or None."""
        dt, B = self.net.dtype, self.batch_size
        trials = self.task.batch(B, self.rng, dtype=dt)
        target, mask = _target_and_mask(trials, self.net.n_out, dt)
        if self.response_steps is not None:
            target = target.copy()
            target[-self.response_steps :] = target[-1]
            mask = mask.copy()
            mask[-self.response_steps :] = 1
        h = None
        if self.hint is not None:
            T = trials.u.shape[0]
            h = check.array("hint", self.hint(trials), dt, (T, B, self.n_hint))
        return trials, target, mask, h

    def step(self, it: int) -> tuple[float, float, float]:
        net, hist, p, dt = self.net, self.hist, self.p, self.net.dtype
        trials, target, mask, h = self._batch()
        J, W_out, teacher = net.W, net.W_out, hist.teacher
        x = np.array(check.initial_state("x0", None, net.x0, self.batch_size), dtype=dt)
        before = (J.copy(), W_out.copy())
        options = _core.ForceOptions(
            rate=net._options(), update_every=self.update_every, step0=self.steps, learn=True
        )
        x_D = x.copy()
        variant = {}
        if self.carry_teacher or self.rls_from or "W_in" in teacher:
            variant = {"W_in_D": teacher.get("W_in"), "carry_teacher": self.carry_teacher,
                       "rls_from": self.rls_from}  # fmt: skip
            if self.carry_teacher and hist.teacher_state is not None:
                x_D[0] = hist.teacher_state
        w_f, w_h, f = teacher["w_f"], teacher["w_h"], target
        if self.output == "tanh":
            # the readout's RLS target is atanh of the clipped target; the teacher gets the
            # target itself through the hint channel (w_f f moved into w_h h)
            f = np.arctanh(np.clip(target, -self.output_clip, self.output_clip)).astype(dt)
            h = target if h is None else np.concatenate([h, target], axis=-1)
            w_h = np.ascontiguousarray(np.concatenate([w_h, w_f], axis=1))
            w_f = np.zeros_like(w_f)
        y, updates = net.kernels["full_force"](
            params=p, options=options, J_D=teacher["J_D"], w_f=w_f, w_h=w_h, P=hist.P,
            u=np.ascontiguousarray(trials.u, dt), f=f, hint=h, mask=mask, x=x, x_D=x_D,
            **variant,
        )  # fmt: skip
        if self.output == "tanh":
            y = np.tanh(y)
        if self.carry_teacher:
            hist.teacher_state = x_D[-1].copy()
        self.steps += trials.u.shape[0] * self.batch_size
        hist.updates += int(updates)
        err = _masked_mse(y, target, mask)
        change = float(
            np.sqrt(sum(np.sum((a - b).astype(np.float64) ** 2) for a, b in
                        zip((J, W_out), before)))
        )  # fmt: skip
        if not np.isfinite(err):
            raise FloatingPointError(f"full_force: the output diverged at iteration {it}")
        return err, change, self.rls_alpha

    def validate(self, done: int) -> tuple[float, float]:
        vt = self.task.batch(self.val_batch, self.val_rng, dtype=self.net.dtype)
        vy = self.net.outputs(vt.u)
        if self.output == "tanh":
            vy = np.tanh(vy)
        vtarget, vmask = _target_and_mask(vt, self.net.n_out, self.net.dtype)
        return float(self.task.score(vy, vt)), _masked_mse(vy, vtarget, vmask)
