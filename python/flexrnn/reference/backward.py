"""Pure-NumPy BPTT (loss and gradient) of every model: the oracle of the C++ backward pass.

Each ``<model>_loss_and_grad`` runs the forward reference of models.py, takes dy = dL/dy from
losses.py and runs the adjoint recursion of the same update backwards in time (the loop over t
in Python, batch and neurons vectorised). It returns ``(loss, grads, y)``: grads is keyed by the
model's parameter names, each gradient of its parameter's shape, except the initial states,
whose gradients are per trial, (B, n): the caller sums over the batch when x0 is shared.
Everything is computed in the dtype of the weights.

Notation of docs/models.md, with x[t] the state *before* step t (x[0] = x0; the forward's
out["x"][t] is x[t+1]). The adjoint g = dL/dx[t+1] collects the readout of step t and the
pull-back from step t+1; after the last step it is 0. Noise is additive, so it enters only
through the stored states.

Readout (all models, all t at once: it does not feed back), y[t] = W_out q[t+1] + b_out:
    dW_out = sum_t dy[t]^T q[t+1];  db_out = sum_{t,b} dy[t];  g += dy[t] W_out * dq/dx
    with q = r = phi(ng x) (dq/dx = ng phi'(ng x[t+1])) or q = x (dq/dx = 1).
RateRNN, form="current":
    x[t+1] = (1-alpha) x[t] + alpha (gain[t] post * W (pre * r[t]) + W_in u[t] + b)
    (post, pre: post_gain[t], pre_gain[t], or 1; ng of r[t] is ng[t-1], ng[0] for t = 0)
    da = alpha g;  z = W (pre r[t])
    dW += (gain[t] post da)^T (pre r[t]);  dW_in += da^T u[t];  db += sum_b da
    J = gain[t] (post da) W;  g_prev = (1-alpha) g + ng phi'(ng x[t]) * (pre J)
    dgain[t] = sum(post da z);  dpost[t] = gain[t] da z;  dpre[t] = J r[t]
RateRNN, form="rate":  x[t+1] = (1-alpha) x[t] + alpha phi(ng[t] h[t]),
    h = gain[t] post * W (pre * x) + W_in u + b
    dh = alpha g * ng[t] phi'(ng[t] h[t]);  then as "current" with da = dh, r[t] -> x[t] and
    g_prev = (1-alpha) g + pre J
LowRankRNN, W = U V^T / n (current form), W never formed, p = pre r[t]:
    da = alpha g;  dU += (gain[t] post da)^T (p V) / n;  dV += p^T ((gain[t] post da) U) / n
    J = ((gain[t] post da) U) V^T / n;  g_prev, the gains' gradients and dW_in, db as RateRNN
NMRNN, gx = dL/dx[t+1], gz = dL/dz[t+1], p = V^T tanh(x[t]) (rank,):
    dax = alpha_x gx;  dm = dax U / n_scale  (dL/d(s[t+1] p))
    dU += dax^T (s[t+1] p) / n_scale;  dV += tanh(x[t])^T (dm s[t+1]);  dB_x += dax^T u[t]
    gx_prev = (1-alpha_x) gx + tanh'(x[t]) * ((dm s[t+1]) V^T)
    dpre_s = dm p s[t+1] (1 - s[t+1]), 0 on clamped components (s held constant there)
    dA_z += dpre_s^T z[t+1];  dc_z += sum_b dpre_s;  gz += dpre_s A_z
    daz = alpha_z gz;  dW_z += daz^T tanh(z[t]);  dB_z += daz^T u[t];  db_z += sum_b daz
    gz_prev = (1-alpha_z) gz + tanh'(z[t]) * (daz W_z)
    with x->z feedback: dW_zx += daz^T tanh(x[t]);  gx_prev += tanh'(x[t]) * (daz W_zx)
LSTM, gh = dL/dh[t+1], gc = dL/dc[t+1], gates i, f, g, o of step t recomputed from h[t]:
    do = gh tanh(c[t+1]);  gc += gh o tanh'(c[t+1])
    di = gc g;  df = gc c[t];  dg = gc i;  gc_prev = gc f
    dpre = [di i (1-i), df f (1-f), dg (1-g^2), do o (1-o)]   (PyTorch order i, f, g, o)
    dW_ih += dpre^T u[t];  dW_hh += dpre^T h[t];  db += sum_b dpre;  gh_prev = dpre W_hh
"""

from __future__ import annotations

import functools

import numpy as np

from .losses import loss_and_dy
from .models import _batch_state, _ng_of_state, _per_neuron, low_rank_rnn, lstm, nmrnn, rate_rnn
from .phi import dphi as _dphi
from .phi import phi as _phi
from .phi import sigmoid


def _states_before(state0, states):
    """state0: (n,) or (B, n); states: (T, B, n) after each step -> x[t] for t = 0..T-1."""
    T, B = states.shape[:2]
    first = _batch_state(state0, B, states.dtype)
    return np.concatenate([first[None], states[:-1]])[:T]


def _gains(gain, neuron_gain, T, B, n, dtype):
    """gain -> (T, B, 1); ng -> (T, B, n) or the scalar 1 (as in the forward reference)."""
    gain = np.broadcast_to(np.asarray(gain, dtype=dtype), (T, B))[..., None]
    return gain, _per_neuron(neuron_gain, T, B, n, dtype)


def _at(a, t):
    """Step t of a per-neuron gain: the scalar 1 or (T, B, n)[t]."""
    return a if np.ndim(a) == 0 else a[t]


class _GainGrads:
    """Per-step gradients of the gains named in wrt: gain (T, B), pre_gain, post_gain and
    neuron_gain (T, B, n)."""

    def __init__(self, wrt, T, B, n, dtype, phi_name):
        self.wrt = tuple(wrt)
        shapes = {"gain": (T, B), "pre_gain": (T, B, n), "post_gain": (T, B, n)}
        shapes["neuron_gain"] = (T, B, n)
        self.grads = {name: np.zeros(shapes[name], dtype) for name in self.wrt}
        self._dphi = functools.partial(_dphi, phi_name)

    def slope(self, t, adjoint, ng_t, v):
        """dL/d ng[t] += adjoint * phi'(ng[t] v) * v for a term phi(ng[t] v) whose gradient
        is ``adjoint``."""
        if "neuron_gain" in self.grads:
            self.grads["neuron_gain"][t] += adjoint * self._dphi(ng_t * v) * v

    def step(self, t, gain_t, post_t, da, z, J, s):
        """da = dL/d(drive), z = W (pre s), J = gain post da W, s the source of step t."""
        if "gain" in self.grads:
            self.grads["gain"][t] = (post_t * da * z).sum(axis=-1)
        if "post_gain" in self.grads:
            self.grads["post_gain"][t] = gain_t * da * z
        if "pre_gain" in self.grads:
            self.grads["pre_gain"][t] = J * s


def _readout_grad(dy, q, W_out):
    """y = q W_out^T + b_out. dy: (T, B, n_out); q: (T, B, n).
    Returns dW_out: (n_out, n), db_out: (n_out,), dL/dq: (T, B, n)."""
    dW_out = np.tensordot(dy, q, axes=([0, 1], [0, 1]))
    return dW_out, dy.sum(axis=(0, 1)), dy @ W_out


def _zeros(dtype, *params):
    return [np.zeros(np.shape(p), dtype=dtype) for p in params]


def rate_rnn_loss_and_grad(
    u,
    target,
    mask,
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
    loss="mse",
    wrt=(),
):
    """Loss and BPTT gradient of reference.rate_rnn (both forms, both readouts).

    u: (T, B, n_in); target, mask: as for losses.loss_and_dy with y: (T, B, n_out); the other
    arguments as in rate_rnn. Returns (loss, grads, y) with grads keyed W, W_in, b, W_out, b_out
    (their shapes) and x0: (B, n), plus the gains named in wrt (gain: (T, B); pre_gain,
    post_gain: (T, B, n), per step and trial), and y: (T, B, n_out) the forward's output.
    """
    out = rate_rnn(
        u,
        W,
        W_in,
        b,
        W_out,
        b_out,
        x0,
        alpha=alpha,
        phi=phi,
        form=form,
        readout=readout,
        gain=gain,
        neuron_gain=neuron_gain,
        pre_gain=pre_gain,
        post_gain=post_gain,
        noise_std=noise_std,
        seed=seed,
    )
    dtype = W.dtype
    u = np.asarray(u, dtype=dtype)
    T, B = u.shape[:2]
    n = W.shape[0]
    alpha = dtype.type(alpha)
    gain, ng = _gains(gain, neuron_gain, T, B, n, dtype)
    pre = _per_neuron(pre_gain, T, B, n, dtype)
    post = _per_neuron(post_gain, T, B, n, dtype)
    gains = _GainGrads(wrt, T, B, n, dtype, phi)
    dphi = functools.partial(_dphi, phi)
    phi = functools.partial(_phi, phi)
    loss_value, dy = loss_and_dy(out["y"], target, mask, loss)

    x = _states_before(x0, out["x"])
    dW_out, db_out, dq = _readout_grad(dy, out["r"] if readout == "rate" else out["x"], W_out)
    if readout == "rate":
        for t in range(T):
            gains.slope(t, dq[t], _at(ng, t), out["x"][t])
        dq = dq * ng * dphi(ng * out["x"])
    dW, dW_in, db = _zeros(dtype, W, W_in, b)
    g = np.zeros((B, n), dtype=dtype)
    for t in reversed(range(T)):
        g = g + dq[t]  # dL/dx[t+1]
        ng_s, pre_t, post_t = _ng_of_state(ng, t), _at(pre, t), _at(post, t)
        s = phi(ng_s * x[t]) if form == "current" else x[t]
        z = (pre_t * s) @ W.T
        if form == "current":
            da = alpha * g
        else:
            h = gain[t] * (post_t * z) + u[t] @ W_in.T + b
            da = alpha * g * _at(ng, t) * dphi(_at(ng, t) * h)
            gains.slope(t, alpha * g, _at(ng, t), h)
        dW += (gain[t] * post_t * da).T @ (pre_t * s)
        dW_in += da.T @ u[t]
        db += da.sum(axis=0)
        J = (gain[t] * post_t * da) @ W
        gains.step(t, gain[t], post_t, da, z, J, s)
        if form == "current":
            gains.slope(max(t - 1, 0), pre_t * J, ng_s, x[t])
            g = (1 - alpha) * g + ng_s * dphi(ng_s * x[t]) * (pre_t * J)
        else:
            g = (1 - alpha) * g + pre_t * J
    grads = {"W": dW, "W_in": dW_in, "b": db, "W_out": dW_out, "b_out": db_out, "x0": g}
    grads.update(gains.grads)
    return loss_value, grads, out["y"]


def low_rank_rnn_loss_and_grad(
    u,
    target,
    mask,
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
    loss="mse",
    wrt=(),
):
    """Loss and BPTT gradient of reference.low_rank_rnn (W = U V^T / n, never formed).

    U, V: (n, rank); other arguments as in rate_rnn_loss_and_grad. Returns (loss, grads, y)
    with grads keyed U, V, W_in, b, W_out, b_out (their shapes) and x0: (B, n), plus the gains
    named in wrt as in rate_rnn_loss_and_grad.
    """
    out = low_rank_rnn(
        u,
        U,
        V,
        W_in,
        b,
        W_out,
        b_out,
        x0,
        alpha=alpha,
        phi=phi,
        readout=readout,
        gain=gain,
        neuron_gain=neuron_gain,
        pre_gain=pre_gain,
        post_gain=post_gain,
        noise_std=noise_std,
        seed=seed,
    )
    dtype = U.dtype
    u = np.asarray(u, dtype=dtype)
    T, B = u.shape[:2]
    n = U.shape[0]
    alpha = dtype.type(alpha)
    gain, ng = _gains(gain, neuron_gain, T, B, n, dtype)
    pre = _per_neuron(pre_gain, T, B, n, dtype)
    post = _per_neuron(post_gain, T, B, n, dtype)
    gains = _GainGrads(wrt, T, B, n, dtype, phi)
    dphi = functools.partial(_dphi, phi)
    phi = functools.partial(_phi, phi)
    loss_value, dy = loss_and_dy(out["y"], target, mask, loss)

    x = _states_before(x0, out["x"])
    dW_out, db_out, dq = _readout_grad(dy, out["r"] if readout == "rate" else out["x"], W_out)
    if readout == "rate":
        for t in range(T):
            gains.slope(t, dq[t], _at(ng, t), out["x"][t])
        dq = dq * ng * dphi(ng * out["x"])
    dU, dV, dW_in, db = _zeros(dtype, U, V, W_in, b)
    g = np.zeros((B, n), dtype=dtype)
    for t in reversed(range(T)):
        g = g + dq[t]  # dL/dx[t+1]
        ng_s, pre_t, post_t = _ng_of_state(ng, t), _at(pre, t), _at(post, t)
        r = phi(ng_s * x[t])
        p = pre_t * r
        da = alpha * g
        dd = gain[t] * post_t * da
        da_U = dd @ U  # (B, rank)
        dU += dd.T @ (p @ V) / n
        dV += p.T @ da_U / n
        dW_in += da.T @ u[t]
        db += da.sum(axis=0)
        J = da_U @ V.T / n
        gains.step(t, gain[t], post_t, da, (p @ V) @ U.T / n, J, r)
        gains.slope(max(t - 1, 0), pre_t * J, ng_s, x[t])
        g = (1 - alpha) * g + ng_s * dphi(ng_s * x[t]) * (pre_t * J)
    grads = {"U": dU, "V": dV, "W_in": dW_in, "b": db, "W_out": dW_out, "b_out": db_out, "x0": g}
    grads.update(gains.grads)
    return loss_value, grads, out["y"]


def nmrnn_loss_and_grad(
    u,
    target,
    mask,
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
    W_zx=None,
    *,
    alpha_x,
    alpha_z,
    n_scale=1.0,
    s_clamp=None,
    loss="mse",
    gain=1.0,
    pre_gain=None,
    post_gain=None,
):
    """Loss and BPTT gradient of reference.nmrnn (modulator z, gains s, low-rank x).

    Arguments as in nmrnn (s_clamp: None or (rank,), NaN = free; gain, pre_gain, post_gain
    on the low-rank term, constants here: no gradient of theirs); target, mask as for
    losses.loss_and_dy. Returns (loss, grads, y) with grads keyed W_z, B_z, b_z, A_z, c_z, U, V,
    B_x, C, d (their shapes), x0: (B, n), z0: (B, n_mod), and W_zx when it is given. Clamped
    components of s are constants: no gradient reaches A_z, c_z or z through them.
    """
    out = nmrnn(
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
        alpha_x=alpha_x,
        alpha_z=alpha_z,
        n_scale=n_scale,
        W_zx=W_zx,
        s_clamp=s_clamp,
        gain=gain,
        pre_gain=pre_gain,
        post_gain=post_gain,
    )
    dtype = U.dtype
    u = np.asarray(u, dtype=dtype)
    T, B = u.shape[:2]
    n, n_mod = U.shape[0], W_z.shape[0]
    ax, az = dtype.type(alpha_x), dtype.type(alpha_z)
    n_scale = dtype.type(n_scale)
    s_free = np.ones(U.shape[1], dtype=dtype)
    if s_clamp is not None:
        s_free = np.isnan(np.asarray(s_clamp, dtype=dtype)).astype(dtype)
    loss_value, dy = loss_and_dy(out["y"], target, mask, loss)
    gain = np.broadcast_to(np.asarray(gain, dtype=dtype), (T, B))[..., None]
    pre = np.broadcast_to(_per_neuron(pre_gain, T, B, n, dtype), (T, B, n))
    post = np.broadcast_to(_per_neuron(post_gain, T, B, n, dtype), (T, B, n))

    x, z = _states_before(x0, out["x"]), _states_before(z0, out["z"])
    s = out["s"]  # s[t] here is s[t+1] of the spec, the gain used by step t
    dC, dd, dq = _readout_grad(dy, out["x"], C)
    dW_z, dB_z, db_z, dA_z, dc_z, dU, dV, dB_x = _zeros(dtype, W_z, B_z, b_z, A_z, c_z, U, V, B_x)
    if W_zx is not None:
        (dW_zx,) = _zeros(dtype, W_zx)
    gx = np.zeros((B, n), dtype=dtype)
    gz = np.zeros((B, n_mod), dtype=dtype)
    for t in reversed(range(T)):
        gx = gx + dq[t]  # dL/dx[t+1]
        tanh_x = np.tanh(x[t])
        sent = pre[t] * tanh_x  # what the sending neurons pass through V
        p = sent @ V  # (B, rank)
        dax = ax * gx
        dm = gain[t] * (post[t] * dax) @ U / n_scale  # dL/d(s * p)
        dU += (post[t] * dax).T @ (gain[t] * p * s[t]) / n_scale
        dV += sent.T @ (dm * s[t])
        dB_x += dax.T @ u[t]
        gx = (1 - ax) * gx + (1 - tanh_x * tanh_x) * pre[t] * ((dm * s[t]) @ V.T)

        dpre_s = dm * p * s[t] * (1 - s[t]) * s_free
        dA_z += dpre_s.T @ out["z"][t]
        dc_z += dpre_s.sum(axis=0)
        gz = gz + dpre_s @ A_z  # dL/dz[t+1]

        tanh_z = np.tanh(z[t])
        daz = az * gz
        dW_z += daz.T @ tanh_z
        dB_z += daz.T @ u[t]
        db_z += daz.sum(axis=0)
        gz = (1 - az) * gz + (1 - tanh_z * tanh_z) * (daz @ W_z)
        if W_zx is not None:
            dW_zx += daz.T @ tanh_x
            gx = gx + (1 - tanh_x * tanh_x) * (daz @ W_zx)
    grads = {
        "W_z": dW_z,
        "B_z": dB_z,
        "b_z": db_z,
        "A_z": dA_z,
        "c_z": dc_z,
        "U": dU,
        "V": dV,
        "B_x": dB_x,
        "C": dC,
        "d": dd,
        "x0": gx,
        "z0": gz,
    }
    if W_zx is not None:
        grads["W_zx"] = dW_zx
    return loss_value, grads, out["y"]


def lstm_loss_and_grad(u, target, mask, W_ih, W_hh, b, C, d, h0, c0, *, loss="mse"):
    """Loss and BPTT gradient of reference.lstm (gate blocks i, f, g, o).

    Arguments as in lstm; target, mask as for losses.loss_and_dy. Returns (loss, grads, y) with
    grads keyed W_ih, W_hh, b, C, d (their shapes), h0: (B, n) and c0: (B, n).
    """
    out = lstm(u, W_ih, W_hh, b, C, d, h0, c0)
    dtype = W_hh.dtype
    u = np.asarray(u, dtype=dtype)
    T, B = u.shape[:2]
    n = W_hh.shape[1]
    loss_value, dy = loss_and_dy(out["y"], target, mask, loss)

    h, c = _states_before(h0, out["h"]), _states_before(c0, out["c"])
    dC, dd, dq = _readout_grad(dy, out["h"], C)
    dW_ih, dW_hh, db = _zeros(dtype, W_ih, W_hh, b)
    gh = np.zeros((B, n), dtype=dtype)
    gc = np.zeros((B, n), dtype=dtype)
    for t in reversed(range(T)):
        gh = gh + dq[t]  # dL/dh[t+1]
        pre = u[t] @ W_ih.T + h[t] @ W_hh.T + b
        i, f, g, o = np.split(pre, 4, axis=-1)
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        tanh_c = np.tanh(out["c"][t])
        do = gh * tanh_c
        gc = gc + gh * o * (1 - tanh_c * tanh_c)  # dL/dc[t+1]
        di, df, dg = gc * g, gc * c[t], gc * i
        dpre = np.concatenate(
            [di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=-1
        )
        dW_ih += dpre.T @ u[t]
        dW_hh += dpre.T @ h[t]
        db += dpre.sum(axis=0)
        gh = dpre @ W_hh
        gc = gc * f
    grads = {"W_ih": dW_ih, "W_hh": dW_hh, "b": db, "C": dC, "d": dd, "h0": gh, "c0": gc}
    return loss_value, grads, out["y"]
