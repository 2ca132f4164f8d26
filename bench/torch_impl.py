"""PyTorch eager implementations of the RateRNN rollout and of its loss and gradient (the
"PyTorch eager" baselines of the forward and backward benchmark sections).

Only imported when torch is installed (``pip install flexrnn[bench]``). :func:`rate_rnn`
computes what ``flexrnn.RateRNN.run`` computes for ``form="current"``, ``phi="tanh"``,
``readout="rate"``, unit gain and no noise, written the way a PyTorch user would: a Python
loop over time, one eager op per term, under ``torch.no_grad()``::

    x = (1 - alpha) x + alpha (r @ W.T + u[t] @ W_in.T + b),   r = tanh(x)
    y = r @ W_out.T + b_out

Like the C++ core and the NumPy reference it stores x and r of every step (time-major).

:func:`rate_rnn_loss_and_grad` is the same model trained with autograd, as a PyTorch user
writes it: parameters are leaf tensors with ``requires_grad`` (x0 included), the graph is built
by a Python loop over time, and ``loss.backward()`` fills ``.grad``.
"""

from __future__ import annotations

import numpy as np
import torch


def version() -> str:
    return str(torch.__version__)


def set_num_threads(n: int) -> None:
    """Give PyTorch's intra-op pool the thread count flexrnn uses."""
    torch.set_num_threads(int(n))


def get_num_threads() -> int:
    return int(torch.get_num_threads())


def as_tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """NumPy arrays -> tensors sharing their memory (no copy, same dtype)."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


def rate_rnn(
    u: torch.Tensor,
    W: torch.Tensor,
    W_in: torch.Tensor,
    b: torch.Tensor,
    W_out: torch.Tensor,
    b_out: torch.Tensor,
    x0: torch.Tensor,
    *,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """u: (T, B, n_in); W: (n, n); W_in: (n, n_in); b: (n,); W_out: (n_out, n); b_out: (n_out,);
    x0: (n,) or (B, n). Returns x, r: (T, B, n) and y: (T, B, n_out)."""
    with torch.no_grad():
        T, B = u.shape[0], u.shape[1]
        n = W.shape[0]
        x = x0.expand(B, n).clone()
        r = torch.tanh(x)
        xs = torch.empty((T, B, n), dtype=W.dtype)
        rs = torch.empty((T, B, n), dtype=W.dtype)
        decay = 1.0 - alpha
        for t in range(T):
            x = decay * x + alpha * (r @ W.T + u[t] @ W_in.T + b)
            r = torch.tanh(x)
            xs[t] = x
            rs[t] = r
        y = rs @ W_out.T + b_out
    return xs, rs, y


def leaf_parameters(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """NumPy arrays -> leaf tensors with ``requires_grad`` (copies: training would update them
    in place, which must not touch the caller's arrays)."""
    return {k: torch.tensor(np.asarray(v)).requires_grad_(True) for k, v in arrays.items()}


def rate_rnn_loss(
    u: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    W: torch.Tensor,
    W_in: torch.Tensor,
    b: torch.Tensor,
    W_out: torch.Tensor,
    b_out: torch.Tensor,
    x0: torch.Tensor,
    *,
    alpha: float,
) -> torch.Tensor:
    """Masked MSE of the rollout of :func:`rate_rnn`, built as an autograd graph.

    u: (T, B, n_in); target, mask: (T, B, n_out); parameters as in :func:`rate_rnn` with x0
    (n,) shared by the trials. loss = sum(mask (y - target)^2) / sum(mask), as
    ``flexrnn.train.loss_and_grad(..., loss="mse")``.
    """
    B, n = u.shape[1], W.shape[0]
    x = x0.expand(B, n)
    r = torch.tanh(x)
    decay = 1.0 - alpha
    rates = []
    for t in range(u.shape[0]):
        x = decay * x + alpha * (r @ W.T + u[t] @ W_in.T + b)
        r = torch.tanh(x)
        rates.append(r)
    y = torch.stack(rates) @ W_out.T + b_out  # readout of every step in one product
    return (mask * (y - target) ** 2).sum() / mask.sum()


def rate_rnn_loss_and_grad(
    params: dict[str, torch.Tensor],
    u: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    *,
    alpha: float,
) -> tuple[float, dict[str, torch.Tensor]]:
    """One training iteration's loss and gradients: ``params`` from :func:`leaf_parameters`
    (keys W, W_in, b, W_out, b_out, x0); gradients reset (``grad = None``, as
    ``optimizer.zero_grad()`` does), forward graph, ``loss.backward()``.
    Returns (loss, {name: gradient tensor of the parameter's shape})."""
    for p in params.values():
        p.grad = None
    loss = rate_rnn_loss(u, target, mask, **params, alpha=alpha)
    loss.backward()
    return float(loss.detach()), {k: p.grad for k, p in params.items()}
