"""Losses of docs/learning_rules.md "BPTT" and their gradient dL/dy: where backward starts.

The one definition of each masked loss in Python: ``masked_mse_loss`` and
``cross_entropy_loss`` (the value; ``flexrnn.train`` computes its validation losses and
FORCE's errors with them), and ``masked_mse`` / ``cross_entropy``, which return
``(loss, dy)`` with dy = dL/dy of y's shape and dtype. Target and mask are cast to y's
dtype. A mask that sums to zero selects nothing: loss 0 and dy 0.
"""

from __future__ import annotations

import numpy as np

from .names import LOSSES


def _mse_arrays(y, target, mask):
    y = np.asarray(y)
    target = np.asarray(target, dtype=y.dtype)
    mask = np.broadcast_to(np.asarray(mask, dtype=y.dtype), y.shape)
    return y, target, mask, mask.sum()


def masked_mse_loss(y, target, mask):
    """loss = sum(mask (y - target)^2) / sum(mask), 0 when sum(mask) = 0: flexrnn's one
    definition of the masked mean squared error (BPTT's validation loss, FORCE's and the
    genetic algorithm's errors use it).

    y: (T, B, n_out); target: (T, B, n_out); mask: broadcastable to y, e.g. (T, B, n_out),
    (T, B, 1) or a scalar. sum(mask) counts the mask broadcast to y's shape, so the loss is
    the mean squared error over the selected entries however the mask is given. target and
    mask are cast to y's dtype (pass y in float64 for a float64 loss).
    Returns a scalar of y's dtype.
    """
    y, target, mask, total = _mse_arrays(y, target, mask)
    if total == 0:
        return y.dtype.type(0)
    error = y - target
    return y.dtype.type((mask * (error * error)).sum() / total)


def masked_mse(y, target, mask):
    """(:func:`masked_mse_loss`, dy) with dy = 2 mask (y - target) / sum(mask).

    Arguments as :func:`masked_mse_loss`. Returns (loss: scalar of y's dtype, dy: y's shape).
    """
    loss = masked_mse_loss(y, target, mask)
    y, target, mask, total = _mse_arrays(y, target, mask)
    if total == 0:
        return loss, np.zeros_like(y)
    return loss, 2 * mask * (y - target) / total


def _check_labels(labels, mask, C):
    """labels: (T, B) class indices -> int array, 0 where the mask is 0 (any value allowed)."""
    labels = np.asarray(labels)
    selected = mask != 0
    if labels.dtype.kind == "f":
        whole = np.where(selected, labels, 0)
        if not np.all(whole == np.round(whole)):
            raise ValueError("labels must be whole class indices where mask is nonzero")
        labels = whole
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    labels = np.where(selected, labels, 0).astype(np.int64)
    if np.any((labels < 0) | (labels >= C)):
        raise ValueError(f"labels must lie in 0..{C - 1} where mask is nonzero")
    return labels


def _ce_arrays(y, labels, mask):
    y = np.asarray(y)
    mask = np.broadcast_to(np.asarray(mask, dtype=y.dtype), y.shape[:-1])
    labels = _check_labels(np.broadcast_to(labels, y.shape[:-1]), mask, y.shape[-1])
    return y, labels, mask, mask.sum()


def cross_entropy_loss(y, labels, mask):
    """Masked softmax cross-entropy over the last axis (classes): flexrnn's one definition.

    y: (T, B, C) logits; labels: (T, B) class indices 0..C-1 (any value where mask is 0, e.g.
    -1); mask: (T, B). loss = sum_{t,b} mask (logsumexp(y[t,b]) - y[t,b,label]) / sum(mask),
    0 when sum(mask) = 0; logsumexp subtracts the max logit, so exp cannot overflow.
    Returns a scalar of y's dtype.
    """
    y, labels, mask, total = _ce_arrays(y, labels, mask)
    if total == 0:
        return y.dtype.type(0)
    top = y.max(axis=-1, keepdims=True)
    log_sum = np.log(np.exp(y - top).sum(axis=-1)) + top[..., 0]
    picked = np.take_along_axis(y, labels[..., None], axis=-1)[..., 0]
    return y.dtype.type((mask * (log_sum - picked)).sum() / total)


def cross_entropy(y, labels, mask):
    """(:func:`cross_entropy_loss`, dy) with dy = mask (softmax(y) - onehot(label)) / sum(mask).

    Arguments as :func:`cross_entropy_loss`. Returns (loss: scalar of y's dtype, dy: (T, B, C)).
    """
    loss = cross_entropy_loss(y, labels, mask)
    y, labels, mask, total = _ce_arrays(y, labels, mask)
    if total == 0:
        return loss, np.zeros_like(y)
    shifted = y - y.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # log softmax
    onehot = np.zeros_like(y)
    np.put_along_axis(onehot, labels[..., None], 1, axis=-1)
    return loss, mask[..., None] * (np.exp(log_p) - onehot) / total


# name -> (the loss, the loss and dL/dy), in the order of LOSSES
_BY_NAME = {
    "mse": (masked_mse_loss, masked_mse),
    "cross_entropy": (cross_entropy_loss, cross_entropy),
}


def _by_name(loss):
    if not isinstance(loss, str) or loss not in _BY_NAME:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return _BY_NAME[loss]


def loss_and_dy(y, target, mask, loss="mse"):
    """(loss, dL/dy) of masked_mse (target: (T, B, n_out)) or cross_entropy (target: labels)."""
    return _by_name(loss)[1](y, target, mask)


def masked_loss(y, target, mask, loss="mse"):
    """The loss alone: :func:`masked_mse_loss` or :func:`cross_entropy_loss`."""
    return _by_name(loss)[0](y, target, mask)
