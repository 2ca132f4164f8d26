"""Pure-NumPy learning rules of docs/learning_rules.md: RLS / FORCE, full-FORCE, the genetic
algorithm's population loss and mutation, reward-modulated Hebbian learning.

Each function is the literal, readable version of a C++ kernel (cpp/include/flexrnn/force.hpp,
evolution.hpp, hebbian.hpp) with the same arguments and the same order of operations; the
arrays the kernel updates in place (W_out, P, x, J, W) are updated in place here too. P is
updated the naive way, ``P -= c * outer(k, k)``: this is also the benchmark's baseline.
"""

from __future__ import annotations

import numpy as np

from .losses import masked_mse_loss
from .models import rate_rnn
from .phi import phi as _phi
from .rng import _MASK32, _uniform, philox4x32, philox_normal


def philox_uniform(seed, stream, step, n):
    """Uniforms in (0, 1): uniform(seed, stream, step, i), i < n, the words philox_normal
    turns into normals (block i // 2; i even: first pair of words, odd: second pair)."""
    seed = int(seed) % 2**64
    key = np.array([seed & _MASK32, seed >> 32], dtype=np.uint32)
    stream, step = int(stream), int(step)
    n_pairs = (n + 1) // 2
    counter = np.zeros((n_pairs, 4), dtype=np.uint64)
    counter[:, 0] = np.arange(n_pairs)
    counter[:, 1] = step & _MASK32
    counter[:, 2] = stream & _MASK32
    counter[:, 3] = stream >> 32
    w = philox4x32(counter.astype(np.uint32), key).astype(np.uint64)
    out = np.stack([_uniform(w[:, 0], w[:, 1]), _uniform(w[:, 2], w[:, 3])], axis=-1)
    return out.reshape(-1)[:n]


def rls_step(P, h):
    """One RLS step: k = P h, c = 1 / (1 + h^T k), P -= c k k^T (P updated in place).
    Returns (k, c)."""
    k = P @ h
    c = 1.0 / (1.0 + h @ k)
    P -= c * np.outer(k, k)
    return k, c


def _step(x, r, drive, alpha, phi, form):
    """Euler step of one trial from its complete drive -> (x, r)."""
    if form == "rate":
        drive = _phi(phi, drive)
    x = (1 - alpha) * x + alpha * drive
    return x, _phi(phi, x)


def force_run(
    W, W_in, b, W_out, b_out, W_fb, P, u, target, mask, x,
    *, alpha, phi, form, readout, update_every, step0, learn, z=None,
):  # fmt: skip
    """FORCE with output feedback over the trials of u (T, B, n_in), run in order.

    drive[t] = W s + W_fb z + W_in u[t] + b (s = r or x by form), z the output of the state
    before the step; after step t, when (step0 + b T + t + 1) % update_every == 0 and
    mask[t, b] != 0: RLS step on h (r or x by readout), W_out -= c e k^T, e = y[t] - target[t].
    W_out, P, x (B, n) are updated in place. z: None, or (B, n_out) the output fed back at
    the first step (in) and the last a priori output (out), in place.
    Returns (y (T, B, n_out), updates).
    """
    dtype = W.dtype
    alpha = dtype.type(alpha)
    T, B = u.shape[:2]
    y = np.empty((T, B, W_out.shape[0]), dtype=dtype)
    updates = 0
    for b_ in range(B):
        xs = x[b_].copy()
        r = _phi(phi, xs)
        zb = W_out @ (r if readout == "rate" else xs) + b_out if z is None else z[b_].copy()
        for t in range(T):
            drive = W @ (r if form == "current" else xs) + W_fb @ zb + W_in @ u[t, b_] + b
            xs, r = _step(xs, r, drive, alpha, phi, form)
            h = r if readout == "rate" else xs
            zb = W_out @ h + b_out
            y[t, b_] = zb
            due = (step0 + b_ * T + t + 1) % update_every == 0
            if learn and due and (mask is None or mask[t, b_] != 0):
                k, c = rls_step(P, h)
                e = zb - target[t, b_]
                W_out -= np.outer(c * e, k)
                updates += 1
        x[b_] = xs
        if z is not None:
            z[b_] = zb
    return y, updates


def full_force_run(
    J, W_in, b, W_out, b_out, J_D, w_f, w_h, P, u, f, hint, mask, x, x_D,
    *, alpha, phi, update_every, step0, learn, W_in_D=None, carry_teacher=False, rls_from=0,
):  # fmt: skip
    """full-FORCE over the trials of u (T, B, n_in), run in order (form "current").

    teacher: x_D <- (1-alpha) x_D + alpha (J_D r_D + w_f f[t] + w_h hint[t] + W_in u[t] + b)
    student: x   <- (1-alpha) x   + alpha (J r + W_in u[t] + b)
    After step t, when an update is due, with r = r[t+1]: k = P r, c = 1 / (1 + r^T k),
    P -= c k k^T; J -= c (J r - (J_D r_D + w_f f[t+1] + w_h hint[t+1])) k^T if t + 1 < T;
    W_out -= c (W_out r + b_out - f[t]) k^T if mask[t] != 0.
    J, W_out, P, x (B, n) are updated in place. Returns (y (T, B, n_out), updates).

    The learning-rule study's variant: W_in_D (n, n_in) replaces W_in in the teacher;
    carry_teacher: trial b > 0 starts the teacher from trial b - 1's final teacher state and
    x_D receives each trial's final teacher state (in place); rls_from > 0: updates only after
    steps t = 0 and t >= rls_from.
    """
    dtype = J.dtype
    W_in_teacher = W_in if W_in_D is None else W_in_D
    carried = None  # the teacher state carried from trial to trial (carry_teacher)
    alpha = dtype.type(alpha)
    T, B = u.shape[:2]
    y = np.empty((T, B, W_out.shape[0]), dtype=dtype)
    updates = 0

    def teacher_input(rD, t, b_):
        out = J_D @ rD + w_f @ f[t, b_]
        if w_h.shape[1]:
            out = out + w_h @ hint[t, b_]
        return out

    for b_ in range(B):
        xs = x[b_].copy()
        r = _phi(phi, xs)
        if learn:
            xD = (carried if carry_teacher and b_ > 0 else x_D[b_]).copy()
            rD = _phi(phi, xD)
        for t in range(T):
            drive = J @ r + W_in @ u[t, b_] + b
            if learn:
                xD, rD = _step(xD, rD, teacher_input(rD, t, b_) + W_in_teacher @ u[t, b_] + b,
                               alpha, phi, "current")  # fmt: skip
            xs, r = _step(xs, r, drive, alpha, phi, "current")
            z = W_out @ r + b_out
            y[t, b_] = z
            if not learn or (step0 + b_ * T + t + 1) % update_every != 0:
                continue
            if rls_from > 0 and t != 0 and t < rls_from:
                continue
            train_J = t + 1 < T
            train_out = mask is None or mask[t, b_] != 0
            if not (train_J or train_out):
                continue
            if train_J:
                e_J = J @ r - teacher_input(rD, t + 1, b_)
            k, c = rls_step(P, r)
            if train_J:
                J -= np.outer(c * e_J, k)
            if train_out:
                W_out -= np.outer(c * (z - f[t, b_]), k)
            updates += 1
        x[b_] = xs
        if learn and carry_teacher:
            carried = xD
            x_D[b_] = xD
    return y, updates


def population_loss(W, W_in, b, W_out, b_out, x0, u, target, mask, *, alpha, phi, form, readout):
    """Masked MSE of each member (arrays stacked along axis 0) on the batch u (T, B, n_in),
    members evaluated one by one with :func:`rate_rnn`. Returns (loss (P,), y (P, T, B, n_out))."""
    losses, ys = [], []
    weight = np.ones(target.shape) if mask is None else np.asarray(mask, dtype=np.float64)
    for p in range(W.shape[0]):
        y = rate_rnn(u, W[p], W_in[p], b[p], W_out[p], b_out[p], x0[p], alpha=alpha, phi=phi,
                     form=form, readout=readout)["y"]  # fmt: skip
        losses.append(float(masked_mse_loss(y.astype(np.float64), target, weight)))
        ys.append(y)
    return np.array(losses), np.stack(ys)


def mutate_population(src, parent, mutate, sigma, seed, generation):
    """Children: member i of array a is src[a][parent[i]] + sigma * normal(seed,
    i * len(src) + a, generation, .) (rounded once to the dtype), or the exact copy when
    mutate[i] is 0."""
    out = []
    for a, arr in enumerate(src):
        child = arr[parent].copy()
        for i in range(len(parent)):
            if mutate[i]:
                xi = philox_normal(seed, i * len(src) + a, generation, arr[0].size)
                child[i] += (sigma * xi).astype(arr.dtype).reshape(arr.shape[1:])
        out.append(child)
    return out


def hebbian_run(
    W, W_in, b, W_out, b_out, u, target, x0, condition, Rbar,
    *, alpha, phi, readout, kick_prob, kick_amp, trace_decay, eta, clip, reward_decay, window,
    seed, trial0, learn, rbar_factor=False, learn_from=0, clamp_units=(), clamp_values=(),
):  # fmt: skip
    """Reward-modulated Hebbian learning (Miconi 2017) over the trials of u, run in order.

    Per step: drive = W r + W_in u[t] + b + kicks (neuron i kicked by kick_amp (2 v_i - 1)
    when w_i < kick_prob, (w, v) = philox_uniform(seed, trial0 + b, t, 2n)); Euler step;
    e_ij += (r_j[t-1] (x_i - xbar_i))^3 with xbar the running average of the earlier steps,
    then xbar <- trace_decay xbar + (1 - trace_decay) x.
    Per trial: R = mean ``|y - target|`` over the last `window` steps; Rbar = Rbar[condition[b]]
    (condition None: 0), set to R on the condition's first trial (NaN);
    W += clip(-eta e (R - Rbar), +-clip); Rbar <- reward_decay Rbar + (1-reward_decay) R.
    W and Rbar (n_conditions,) are updated in place. Returns (y (T, B, n_out), R (B,)).

    The learning-rule study's variant: rbar_factor: W += clip(-eta Rbar e (R - Rbar), +-clip);
    learn_from: W changes only on trials trial0 + b >= learn_from (Rbar tracked on all);
    clamp_units, clamp_values: x of those units set to the values at the start of a trial and
    after every step (r = phi(value)).
    """
    dtype = W.dtype
    units = np.asarray(clamp_units, dtype=np.int64)
    values = np.asarray(clamp_values, dtype=np.float64).astype(dtype)
    alpha = dtype.type(alpha)
    T, B = u.shape[:2]
    n = W.shape[0]
    window = min(max(window, 1), T)
    y = np.empty((T, B, W_out.shape[0]), dtype=dtype)
    R = np.empty(B)
    for b_ in range(B):
        x = x0[b_].copy()
        x[units] = values
        r = _phi(phi, x)
        xbar = x.copy()
        e = np.zeros((n, n), dtype=dtype)
        for t in range(T):
            drive = W @ r + W_in @ u[t, b_] + b
            w = philox_uniform(seed, trial0 + b_, t, 2 * n)
            kicked = w[:n] < kick_prob
            drive[kicked] += (kick_amp * (2 * w[n:][kicked] - 1)).astype(dtype)
            x_new, r_new = _step(x, r, drive, alpha, phi, "current")
            x_new[units] = values
            r_new[units] = _phi(phi, values)
            if learn:
                e += np.outer(x_new - xbar, r) ** 3
            xbar = dtype.type(trace_decay) * xbar + dtype.type(1 - trace_decay) * x_new
            x, r = x_new, r_new
            y[t, b_] = W_out @ (r if readout == "rate" else x) + b_out
        err = np.abs(y[T - window :, b_].astype(np.float64) - target[b_])
        R[b_] = float(err.mean()) if err.size else 0.0
        if not learn:
            continue
        c = 0 if condition is None else condition[b_]
        if not np.isfinite(Rbar[c]):
            Rbar[c] = R[b_]
        if trial0 + b_ >= learn_from:
            lim = dtype.type(clip)
            factor = Rbar[c] if rbar_factor else 1.0
            W += np.clip(dtype.type(-eta * factor * (R[b_] - Rbar[c])) * e, -lim, lim)
        Rbar[c] = reward_decay * Rbar[c] + (1 - reward_decay) * R[b_]
    return y, R
