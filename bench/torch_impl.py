"""PyTorch eager implementation of the RateRNN rollout (the "PyTorch eager" baseline).

Only imported when torch is installed (``pip install flexrnn[bench]``). It computes what
``flexrnn.RateRNN.run`` computes for ``form="current"``, ``phi="tanh"``, ``readout="rate"``,
unit gain and no noise, written the way a PyTorch user would: a Python loop over time, one
eager op per term, under ``torch.no_grad()``::

    x = (1 - alpha) x + alpha (r @ W.T + u[t] @ W_in.T + b),   r = tanh(x)
    y = r @ W_out.T + b_out

Like the C++ core and the NumPy reference it stores x and r of every step (time-major).
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
