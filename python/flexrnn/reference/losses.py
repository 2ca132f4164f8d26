"""Losses of docs/learning_rules.md "BPTT" and their gradient dL/dy: where backward starts.

Each loss returns ``(loss, dy)`` with dy = dL/dy of y's shape and dtype; target and mask are
cast to y's dtype. A mask that sums to zero selects nothing: loss 0 and dy 0.
"""

from __future__ import annotations

import numpy as np

LOSSES = ("mse", "cross_entropy")


def masked_mse(y, target, mask):
    """loss = sum(mask (y - target)^2) / sum(mask);  dy = 2 mask (y - target) / sum(mask).

    y: (T, B, n_out); target: (T, B, n_out); mask: broadcastable to y, e.g. (T, B, n_out) or
    (T, B, 1). sum(mask) counts the mask broadcast to y's shape, so the loss is the mean
    squared error over the selected entries however the mask is given.
    Returns (loss: scalar of y's dtype, dy: y's shape).
    """
    y = np.asarray(y)
    target = np.asarray(target, dtype=y.dtype)
    mask = np.broadcast_to(np.asarray(mask, dtype=y.dtype), y.shape)
    total = mask.sum()
    if total == 0:
        return y.dtype.type(0), np.zeros_like(y)
    error = y - target
    loss = (mask * error * error).sum() / total
    dy = 2 * mask * error / total
    return y.dtype.type(loss), dy


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


def cross_entropy(y, labels, mask):
    """Masked softmax cross-entropy over the last axis (classes).

    y: (T, B, C) logits; labels: (T, B) class indices 0..C-1 (any value where mask is 0, e.g.
    -1); mask: (T, B). loss = sum_{t,b} mask (logsumexp(y[t,b]) - y[t,b,label]) / sum(mask);
    dy = mask (softmax(y) - onehot(label)) / sum(mask). Subtracting the max logit keeps exp
    from overflowing. Returns (loss: scalar of y's dtype, dy: (T, B, C)).
    """
    y = np.asarray(y)
    C = y.shape[-1]
    mask = np.broadcast_to(np.asarray(mask, dtype=y.dtype), y.shape[:-1])
    labels = _check_labels(np.broadcast_to(labels, y.shape[:-1]), mask, C)
    total = mask.sum()
    if total == 0:
        return y.dtype.type(0), np.zeros_like(y)
    shifted = y - y.max(axis=-1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    log_p = shifted - log_sum  # log softmax, <= 0
    log_p_label = np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    loss = -(mask * log_p_label).sum() / total
    onehot = np.zeros_like(y)
    np.put_along_axis(onehot, labels[..., None], 1, axis=-1)
    dy = mask[..., None] * (np.exp(log_p) - onehot) / total
    return y.dtype.type(loss), dy


def loss_and_dy(y, target, mask, loss="mse"):
    """(loss, dL/dy) of masked_mse (target: (T, B, n_out)) or cross_entropy (target: labels)."""
    if loss == "mse":
        return masked_mse(y, target, mask)
    if loss == "cross_entropy":
        return cross_entropy(y, target, mask)
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
