"""Pure-NumPy rollouts of every model in docs/models.md: the test oracle and benchmark baseline.

Conventions (docs/internals.md): time-major arrays, u: (T, B, n_in); weights map columns to
rows (W: (n, n), W_in: (n, n_in), W_out: (n_out, n)), applied to a batch of row vectors as
``v @ W.T``. Returned arrays hold the state *after* each step: out["x"][t] is x[t+1] of the
spec. Everything is computed in the dtype of the recurrent weights; inputs are cast once.
The loop over time is deliberately in Python (this is the slow baseline); batch and neurons
are vectorised.
"""

from __future__ import annotations

import functools

import numpy as np

from .names import FORMS, PHI_NAMES, READOUTS
from .phi import phi as _phi
from .phi import sigmoid
from .rng import philox_normal


def _check_option(argument, value, allowed):
    if value not in allowed:
        raise ValueError(f"{argument} must be one of {allowed}, got {value!r}")


def _batch_state(state0, B, dtype):
    """state0: (n,) or (B, n) -> a fresh (B, n) array of dtype."""
    state0 = np.asarray(state0, dtype=dtype)
    return np.array(np.broadcast_to(state0, (B, state0.shape[-1])))


def _per_neuron(gain, T, B, n, dtype):
    """A per-neuron gain: None -> the scalar 1; (n,) or broadcastable to (T, B, n) -> (T, B, n)."""
    if gain is None:
        return dtype.type(1)
    return np.broadcast_to(np.asarray(gain, dtype=dtype), (T, B, n))


def _ng_of_state(ng, t):
    """The slope of phi at the state before step t: ng[t-1] (the previous step's output),
    ng[0] for x0. ng: the scalar 1 or (T, B, n)."""
    return ng if np.ndim(ng) == 0 else ng[max(t - 1, 0)]


def _gain_and_noise(gain, neuron_gain, noise_std, alpha, seed, T, B, n, dtype):
    """gain -> (T, B, 1); ng -> (T, B, n) or the scalar 1; noise(t) -> sqrt(2 alpha) sigma xi[t].

    xi[t] of trial b is philox_normal(seed, stream=b, step=t, n); noise(t) is (B, n) or 0.
    """
    gain = np.broadcast_to(np.asarray(gain, dtype=dtype), (T, B))[..., None]
    ng = _per_neuron(neuron_gain, T, B, n, dtype)
    noise_std = dtype.type(noise_std)
    streams = np.arange(B)

    def noise(t):
        if noise_std == 0:
            return dtype.type(0)
        xi = philox_normal(seed, streams, t, n).astype(dtype)  # drawn in float64, then cast
        return np.sqrt(2 * alpha) * noise_std * xi

    return gain, ng, noise


def rate_rnn(
    u,
    W,
    W_in,
    b,
    W_out,
    b_out,
    x0,
    *,
    alpha,
    phi="tanh",
    form="current",
    readout="rate",
    gain=1.0,
    neuron_gain=None,
    pre_gain=None,
    post_gain=None,
    noise_std=0.0,
    seed=0,
):
    """Continuous-time rate RNN, both forms of docs/models.md "RateRNN".

    u: (T, B, n_in); W: (n, n); W_in: (n, n_in); b: (n,); W_out: (n_out, n); b_out: (n_out,);
    x0: (n,) or (B, n); gain: scalar or broadcastable to (T, B); neuron_gain (slope of phi),
    pre_gain (W diag(pre)), post_gain (diag(post) W): None, (n,) or broadcastable to (T, B, n).
    The recurrent drive of step t is gain[t] post[t] * ((pre[t] * s) @ W.T), s = r or x; the
    rates stored at step t are phi(ng[t] x[t+1]) (r[0] = phi(ng[0] x0)).
    Returns {"x": (T, B, n), "r": (T, B, n), "y": (T, B, n_out)}.
    """
    _check_option("phi", phi, PHI_NAMES)
    _check_option("form", form, FORMS)
    _check_option("readout", readout, READOUTS)
    phi = functools.partial(_phi, phi)
    dtype = W.dtype
    u = np.asarray(u, dtype=dtype)
    T, B = u.shape[:2]
    n = W.shape[0]
    alpha = dtype.type(alpha)
    x = _batch_state(x0, B, dtype)
    gain, ng, noise = _gain_and_noise(gain, neuron_gain, noise_std, alpha, seed, T, B, n, dtype)
    pre = _per_neuron(pre_gain, T, B, n, dtype)
    post = _per_neuron(post_gain, T, B, n, dtype)

    def at(a, t):
        return a if np.ndim(a) == 0 else a[t]

    xs = np.empty((T, B, n), dtype=dtype)
    rs = np.empty((T, B, n), dtype=dtype)
    r = phi(_ng_of_state(ng, 0) * x)
    for t in range(T):
        ng_t, pre_t, post_t = at(ng, t), at(pre, t), at(post, t)
        if form == "current":
            rec = gain[t] * (post_t * ((pre_t * r) @ W.T))
            x = (1 - alpha) * x + alpha * (rec + u[t] @ W_in.T + b) + noise(t)
        else:
            rec = gain[t] * (post_t * ((pre_t * x) @ W.T))
            x = (1 - alpha) * x + alpha * phi(ng_t * (rec + u[t] @ W_in.T + b)) + noise(t)
        r = phi(ng_t * x)
        xs[t], rs[t] = x, r
    y = (rs if readout == "rate" else xs) @ W_out.T + b_out
    return {"x": xs, "r": rs, "y": y}


def low_rank_rnn(
    u,
    U,
    V,
    W_in,
    b,
    W_out,
    b_out,
    x0,
    *,
    alpha,
    phi="tanh",
    readout="rate",
    gain=1.0,
    neuron_gain=None,
    pre_gain=None,
    post_gain=None,
    noise_std=0.0,
    seed=0,
):
    """Low-rank RNN, W = U V^T / n in the "current" form, applied as U (V^T r) / n.

    u: (T, B, n_in); U, V: (n, rank); other arguments (gains included) and the result as in
    rate_rnn.
    """
    _check_option("phi", phi, PHI_NAMES)
    _check_option("readout", readout, READOUTS)
    phi = functools.partial(_phi, phi)
    dtype = U.dtype
    u = np.asarray(u, dtype=dtype)
    T, B = u.shape[:2]
    n = U.shape[0]
    alpha = dtype.type(alpha)
    x = _batch_state(x0, B, dtype)
    gain, ng, noise = _gain_and_noise(gain, neuron_gain, noise_std, alpha, seed, T, B, n, dtype)
    pre = _per_neuron(pre_gain, T, B, n, dtype)
    post = _per_neuron(post_gain, T, B, n, dtype)

    def at(a, t):
        return a if np.ndim(a) == 0 else a[t]

    xs = np.empty((T, B, n), dtype=dtype)
    rs = np.empty((T, B, n), dtype=dtype)
    r = phi(_ng_of_state(ng, 0) * x)
    for t in range(T):
        W_r = ((at(pre, t) * r) @ V) @ U.T / n  # never form W: O(n rank) per trial
        x = (1 - alpha) * x + alpha * (gain[t] * (at(post, t) * W_r) + u[t] @ W_in.T + b) + noise(t)
        r = phi(at(ng, t) * x)
        xs[t], rs[t] = x, r
    y = (rs if readout == "rate" else xs) @ W_out.T + b_out
    return {"x": xs, "r": rs, "y": y}


def nmrnn(
    u,
    W_z,
    B_z,
    b_z,
    A_z,
    c_z,
    U,
    V,
    B_x,
    C,
    d,
    x0,
    z0,
    *,
    alpha_x,
    alpha_z,
    n_scale=1.0,
    W_zx=None,
    s_clamp=None,
    gain=1.0,
    pre_gain=None,
    post_gain=None,
):
    """Neuromodulated low-rank RNN, docs/models.md "NMRNN".

    u: (T, B, n_in); W_z: (n_mod, n_mod); B_z: (n_mod, n_in); b_z: (n_mod,); A_z: (rank, n_mod);
    c_z: (rank,); U, V: (n, rank); B_x: (n, n_in); C: (n_out, n); d: (n_out,);
    x0: (n,) or (B, n); z0: (n_mod,) or (B, n_mod); W_zx: None or (n_mod, n) x->z feedback;
    s_clamp: None or (rank,), NaN = free, a finite value replaces that component of s;
    gain (scalar or broadcastable to (T, B)), pre_gain, post_gain (None, (n,) or broadcastable
    to (T, B, n)): the low-rank term of step t is gain[t] post[t] * (U diag(s) V^T (pre[t] *
    tanh(x[t]))) / n_scale.
    Returns {"x": (T, B, n), "z": (T, B, n_mod), "s": (T, B, rank), "y": (T, B, n_out)}.
    """
    dtype = U.dtype
    u = np.asarray(u, dtype=dtype)
    T, B = u.shape[:2]
    n, rank = U.shape
    n_mod = W_z.shape[0]
    az, ax = dtype.type(alpha_z), dtype.type(alpha_x)
    n_scale = dtype.type(n_scale)
    x = _batch_state(x0, B, dtype)
    z = _batch_state(z0, B, dtype)
    if s_clamp is not None:
        s_clamp = np.asarray(s_clamp, dtype=dtype)
        s_free = np.isnan(s_clamp)
    gain = np.broadcast_to(np.asarray(gain, dtype=dtype), (T, B))[..., None]
    pre = np.broadcast_to(_per_neuron(pre_gain, T, B, n, dtype), (T, B, n))
    post = np.broadcast_to(_per_neuron(post_gain, T, B, n, dtype), (T, B, n))

    xs = np.empty((T, B, n), dtype=dtype)
    zs = np.empty((T, B, n_mod), dtype=dtype)
    ss = np.empty((T, B, rank), dtype=dtype)
    for t in range(T):
        z_drive = np.tanh(z) @ W_z.T + u[t] @ B_z.T + b_z
        if W_zx is not None:
            z_drive = z_drive + np.tanh(x) @ W_zx.T
        z = (1 - az) * z + az * z_drive
        s = sigmoid(z @ A_z.T + c_z)
        if s_clamp is not None:
            s = np.where(s_free, s, s_clamp)
        low_rank = (((pre[t] * np.tanh(x)) @ V) * s) @ U.T / n_scale
        x = (1 - ax) * x + ax * (gain[t] * post[t] * low_rank + u[t] @ B_x.T)
        xs[t], zs[t], ss[t] = x, z, s
    y = xs @ C.T + d
    return {"x": xs, "z": zs, "s": ss, "y": y}


def lstm(u, W_ih, W_hh, b, C, d, h0, c0):
    """LSTM without peepholes, gate blocks in PyTorch's order (i, f, g, o).

    u: (T, B, n_in); W_ih: (4n, n_in); W_hh: (4n, n); b: (4n,); C: (n_out, n); d: (n_out,);
    h0, c0: (n,) or (B, n). Returns {"h": (T, B, n), "c": (T, B, n), "y": (T, B, n_out)}.
    """
    dtype = W_hh.dtype
    u = np.asarray(u, dtype=dtype)
    T, B = u.shape[:2]
    n = W_hh.shape[1]
    h = _batch_state(h0, B, dtype)
    c = _batch_state(c0, B, dtype)

    hs = np.empty((T, B, n), dtype=dtype)
    cs = np.empty((T, B, n), dtype=dtype)
    for t in range(T):
        pre = u[t] @ W_ih.T + h @ W_hh.T + b
        i, f, g, o = np.split(pre, 4, axis=-1)
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        c = f * c + i * g
        h = o * np.tanh(c)
        hs[t], cs[t] = h, c
    y = hs @ C.T + d
    return {"h": hs, "c": cs, "y": y}
