"""Loss and gradient of any model on a batch of trials: forward, loss and BPTT in one C++ call."""

from __future__ import annotations

from typing import Any

import numpy as np

from flexrnn import _core
from flexrnn import _validate as check
from flexrnn.models import Model, qr_factor
from flexrnn.reference.names import LOSSES

LOSS = _core.Loss.__members__  # the core's loss enum by the names of reference/names.py

# the per-trial initial-state gradients the core returns, summed over the batch here because
# the model's initial state is one (n,) vector shared by every trial
_INITIAL_STATES = ("x0", "z0", "h0", "c0")
# the gains whose gradients loss_and_grad gives when asked (wrt=...), rate networks only
GAINS_WRT = ("gain", "pre_gain", "post_gain", "neuron_gain")


def _sum_to_shape(full: np.ndarray, shape: tuple) -> np.ndarray:
    """The gradient of an array of ``shape`` broadcast to ``full.shape``: ``full`` summed over
    the axes the broadcast added or stretched."""
    lead = full.ndim - len(shape)
    g = full.sum(axis=tuple(range(lead))) if lead else full
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _wrt_names(wrt: Any) -> tuple[str, ...]:
    if isinstance(wrt, str):
        wrt = (wrt,)
    try:
        names = tuple(wrt)
    except TypeError as err:
        raise TypeError(
            f"wrt: expected a sequence of names among {GAINS_WRT}, got {wrt!r}"
        ) from err
    for name in names:
        if name not in GAINS_WRT:
            raise ValueError(f"wrt: unknown name {name!r}; gradients of gains: {GAINS_WRT}")
    return tuple(dict.fromkeys(names))


def _loss_arrays(trials: Any, loss: str | None, T: int, B: int, n_out: int, dtype: np.dtype):
    """(loss, target, mask) in the form the core takes: mse -> float (T, B, n_out) target and
    mask; cross_entropy -> int64 labels (T, B) and a float (T, B) mask."""
    target = np.asarray(trials.target)
    if loss is None:
        loss = "cross_entropy" if np.issubdtype(target.dtype, np.integer) else "mse"
    loss = check.choice("loss", loss, LOSSES)
    mask = getattr(trials, "mask", None)
    shape = (T, B, n_out) if loss == "mse" else (T, B)
    if loss == "mse":
        target = check.array("target", target, dtype, shape)
    else:
        if target.shape != shape:
            raise ValueError(
                f"target: expected integer class labels of shape {shape} for cross_entropy, "
                f"got {target.shape}"
            )
        if not np.issubdtype(target.dtype, np.integer):
            raise TypeError(f"target: cross_entropy needs integer labels, got {target.dtype}")
        target = np.ascontiguousarray(target, dtype=np.int64)
    if mask is None:
        mask = np.ones(shape, dtype)
    else:
        mask = check.loss_weights("mask", mask)
        try:
            mask = np.broadcast_to(mask, shape)
        except ValueError as err:
            raise ValueError(
                f"mask: expected an array broadcastable to {shape}, got {mask.shape}"
            ) from err
        mask = check.array("mask", mask, dtype, shape)
    return loss, target, mask


def qr_backward(Q: np.ndarray, R: np.ndarray, dQ: np.ndarray) -> np.ndarray:
    """Gradient with respect to A of a loss that depends on A (n, k), n >= k, only through
    Q of its reduced QR ``A = Q R`` (Q (n, k) orthonormal columns, R (k, k) upper
    triangular, invertible), given ``dQ`` = dLoss/dQ (n, k)::

        M  = -dQ^T Q
        dA = (dQ + Q copyltu(M)) R^{-T},   copyltu(M) = tril(M) + tril(M, -1)^T

    (the reverse-mode rule of the QR with dLoss/dR = 0, as in JAX and PyTorch). Independent
    of the signs LAPACK chose. Raises ValueError when R is singular to rounding (A
    rank-deficient: Q is then not a differentiable function of A).
    """
    diag = np.abs(np.diagonal(R))
    if diag.size and not diag.min() > np.finfo(R.dtype).eps * max(Q.shape) * diag.max():
        raise ValueError(
            "U: the raw factor is rank-deficient (its R has a zero on the diagonal, to "
            "rounding), so the gradient through its QR is undefined"
        )
    M = -(dQ.T @ Q)
    lower = np.tril(M, -1)
    B = dQ + Q @ (lower + lower.T + np.diag(np.diagonal(M)))
    # B R^{-T}: solve R X = B^T (R upper triangular)
    return np.ascontiguousarray(np.linalg.solve(R, B.T).T, dtype=dQ.dtype)


def loss_and_grad(
    net: Model,
    trials: Any,
    *,
    loss: str | None = None,
    gain: Any = 1.0,
    neuron_gain: Any = None,
    pre_gain: Any = None,
    post_gain: Any = None,
    noise_std: float = 0.0,
    seed: int = 0,
    wrt: Any = (),
    return_output: bool = False,
    x0: Any = None,
):
    """Loss of ``net`` on a batch and its gradient with respect to every parameter.

    The forward pass, the loss and backpropagation through time run in one C++ call
    (docs/learning_rules.md, "BPTT").

    Parameters
    ----------
    net : RateRNN, LowRankRNN, NMRNN or LSTM.
    trials : anything with ``u`` (T, B, n_in), ``target`` and ``mask`` (e.g. ``task.batch``):
        for ``loss="mse"`` a float ``target`` (T, B, n_out) and a ``mask`` broadcastable to it;
        for ``loss="cross_entropy"`` integer class labels ``target`` (T, B) and a ``mask``
        broadcastable to (T, B). ``mask`` may be missing (all ones).
    loss : "mse" (masked mean squared error, ``sum(mask (y - target)^2) / sum(mask)``) or
        "cross_entropy" (over the n_out outputs as logits, mask-weighted mean over steps and
        trials); None picks cross_entropy for integer targets, mse otherwise.
    gain, neuron_gain, pre_gain, post_gain, noise_std, seed : as in ``RateRNN.run`` (rate
        networks); an NMRNN takes gain, pre_gain and post_gain (as in ``NMRNN.run``: on its
        low-rank recurrent term).
    wrt : names among "gain", "pre_gain", "post_gain", "neuron_gain" (rate networks only):
        their gradients
        are added to ``grads``, each of the shape the gain was given in (a float for a scalar
        ``gain``; (n,) for a per-neuron gain left at None, i.e. ones), so that a learned
        modulation can be trained.
    return_output : also return the outputs ``y`` (T, B, n_out) of the forward pass.
    x0 : initial states of a rate network's trials: None (its ``x0``), (n,) or (B, n); the
        gradient ``grads["x0"]`` is then that of the model's ``x0`` as if it were used.

    Returns
    -------
    (loss, grads) or (loss, grads, y): ``grads`` maps every parameter name to an array of the
    parameter's shape and dtype. For ``parametrize="qr"`` models, ``grads["U"]`` is with
    respect to the stored raw factor: the kernels take its Q and :func:`qr_backward` applies
    the chain rule through the QR.
    """
    u = getattr(trials, "u", None)
    if u is None or not hasattr(trials, "target"):
        raise TypeError("trials: expected an object with u, target and mask (see task.batch)")
    if not isinstance(net, Model):
        raise TypeError(f"net: expected a flexrnn model, got {type(net).__name__}")
    wrt = _wrt_names(wrt)
    if net.takes_gain:
        args = net._kernel_args(
            u, x0, gain, neuron_gain, noise_std, seed, pre_gain=pre_gain, post_gain=post_gain
        )
    else:
        defaults = {"gain": 1.0, "neuron_gain": None, "pre_gain": None, "post_gain": None}
        given = {"gain": gain, "neuron_gain": neuron_gain, "pre_gain": pre_gain}
        given.update({"post_gain": post_gain, "noise_std": noise_std, "x0": x0})
        defaults.update({"noise_std": 0.0, "x0": None})
        taken = {name: given[name] for name in net.run_gains}  # an NMRNN's gains
        for name, value in given.items():
            if name in taken:
                continue
            if not (value is defaults[name] or (np.ndim(value) == 0 and value == defaults[name])):
                raise ValueError(f"{name}: only rate networks take it, not {type(net).__name__}")
        if wrt:
            raise ValueError(
                f"wrt: only rate networks give gradients of gains, not {type(net).__name__}"
            )
        args = net._kernel_args(u, **taken)
    T, B = np.shape(u)[:2]  # u has been checked to be (T, B, n_in)
    loss, target, mask = _loss_arrays(trials, loss, T, B, net.n_out, net.dtype)
    extra = (list(wrt),) if wrt else ()
    value, grads, y = net.kernels["loss_and_grad"](*args, LOSS[loss], target, mask, *extra)
    for name in _INITIAL_STATES:
        if name in grads:
            grads[name] = grads[name].sum(axis=0)
    if getattr(net, "parametrize", None) == "qr":  # grads["U"] is dLoss/dQ; the stored U is raw
        Q, R = qr_factor(net.U)
        grads["U"] = qr_backward(Q, R, grads["U"])
    if not np.isfinite(value):
        raise FloatingPointError(
            "loss: the forward pass diverged or produced non-finite outputs (loss is "
            f"{value}); lower the learning rate or the gain"
        )
    given = {"gain": gain, "pre_gain": pre_gain, "post_gain": post_gain}
    given["neuron_gain"] = neuron_gain
    gain_grads = {}
    for name in wrt:
        shape = (net.n,) if given[name] is None else np.shape(given[name])
        g = _sum_to_shape(grads[name], shape)
        gain_grads[name] = float(g) if shape == () else g.reshape(shape)
    grads = {name: grads[name] for name in net.params()}  # the model's parameter order
    grads.update(gain_grads)
    return (value, grads, y) if return_output else (value, grads)
