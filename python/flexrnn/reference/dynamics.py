"""Pure-NumPy reference of the dynamics kernels (docs/dynamics_analysis.md): a network at constant
input as an autonomous map ``x -> F(x)``, the fixed-point objective ``q(x) = ½||F(x) - x||²``
with its gradient ``(J - I)^T (F(x) - x)``, the Jacobian ``J`` of F, a batched Adam minimiser
of q, and the Lyapunov spectrum by the QR method.

States are rows: ``X: (K, n)``. The maps are the rollouts of :mod:`.models` without noise
(docs/models.md), written out once more so that they can be held beside the C++ header
``cpp/include/flexrnn/dynamics.hpp``:

- RateRNN, ``c = W_in u + b``:
  current: ``F(x) = (1-alpha) x + alpha (gain W phi(ng x) + c)``,
  ``J = (1-alpha) I + alpha gain W diag(ng phi'(ng x))``;
  rate: ``F(x) = (1-alpha) x + alpha phi(ng (gain W x + c))``,
  ``J = (1-alpha) I + alpha gain diag(ng phi'(ng (gain W x + c))) W``.
  A LowRankRNN is the current form with ``W = U V^T / n``.
- NMRNN, joint state ``[x, z]`` (n + n_mod), ``cz = B_z u + b_z``, ``cx = B_x u``:
  ``z' = (1-az) z + az (W_z tanh z + cz [+ W_zx tanh x])``, ``s' = sigmoid(A_z z' + c_z)``,
  ``x' = (1-ax) x + ax (U diag(s') V^T tanh(x) / n_scale + cx)``.
"""

from __future__ import annotations

import numpy as np

from .adam import adam_step
from .phi import dphi, phi, sigmoid
from .rng import philox_normal


def _ng(neuron_gain, dtype):
    return dtype.type(1) if neuron_gain is None else np.asarray(neuron_gain, dtype=dtype)


def rate_map(X, W, W_in, b, u, *, alpha, phi_name="tanh", form="current", gain=1.0,
             neuron_gain=None):  # fmt: skip
    """F(X) of a RateRNN at constant input. X: (K, n); W: (n, n); W_in: (n, n_in); b: (n,);
    u: (n_in,); neuron_gain: None or (n,). Returns (K, n)."""
    dtype = W.dtype
    X = np.asarray(X, dtype=dtype)
    a, g, ng = dtype.type(alpha), dtype.type(gain), _ng(neuron_gain, dtype)
    c = W_in @ np.asarray(u, dtype=dtype) + b
    if form == "current":
        return (1 - a) * X + a * (g * (phi(phi_name, ng * X) @ W.T) + c)
    return (1 - a) * X + a * phi(phi_name, ng * (g * (X @ W.T) + c))


def rate_map_jacobian(X, W, W_in, b, u, *, alpha, phi_name="tanh", form="current", gain=1.0,
                      neuron_gain=None):  # fmt: skip
    """Jacobians of F at the rows of X: (K, n, n), ``J[k, i, j] = dF_i / dx_j``."""
    dtype = W.dtype
    X = np.asarray(X, dtype=dtype)
    a, g, ng = dtype.type(alpha), dtype.type(gain), _ng(neuron_gain, dtype)
    n = W.shape[0]
    if form == "current":
        D = ng * dphi(phi_name, ng * X)  # (K, n)
        J = a * g * W[None, :, :] * D[:, None, :]  # W diag(d)
    else:
        c = W_in @ np.asarray(u, dtype=dtype) + b
        D = ng * dphi(phi_name, ng * (g * (X @ W.T) + c))
        J = a * g * D[:, :, None] * W[None, :, :]  # diag(d) W
    return J + (1 - a) * np.eye(n, dtype=dtype)


def nmrnn_map(X, W_z, B_z, b_z, A_z, c_z, U, V, B_x, u, *, alpha_x, alpha_z, n_scale=1.0,
              W_zx=None):  # fmt: skip
    """F of an NMRNN's joint state. X: (K, n + n_mod) = [x, z]; parameters as in
    :func:`flexrnn.reference.nmrnn`; u: (n_in,). Returns (K, n + n_mod)."""
    dtype = U.dtype
    X = np.asarray(X, dtype=dtype)
    n = U.shape[0]
    u = np.asarray(u, dtype=dtype)
    ax, az, scale = dtype.type(alpha_x), dtype.type(alpha_z), dtype.type(n_scale)
    x, z = X[:, :n], X[:, n:]
    z_drive = np.tanh(z) @ W_z.T + B_z @ u + b_z
    if W_zx is not None:
        z_drive = z_drive + np.tanh(x) @ W_zx.T
    z_new = (1 - az) * z + az * z_drive
    s = sigmoid(z_new @ A_z.T + c_z)
    x_new = (1 - ax) * x + ax * (((np.tanh(x) @ V) * s) @ U.T / scale + B_x @ u)
    return np.concatenate([x_new, z_new], axis=1)


def nmrnn_map_jacobian(X, W_z, B_z, b_z, A_z, c_z, U, V, B_x, u, *, alpha_x, alpha_z,
                       n_scale=1.0, W_zx=None):  # fmt: skip
    """Jacobians of the NMRNN map at the rows of X: (K, N, N), N = n + n_mod, blocks
    ``[[dx'/dx, dx'/dz], [dz'/dx, dz'/dz]]``."""
    dtype = U.dtype
    X = np.asarray(X, dtype=dtype)
    n, m = U.shape[0], W_z.shape[0]
    u = np.asarray(u, dtype=dtype)
    ax, az, scale = dtype.type(alpha_x), dtype.type(alpha_z), dtype.type(n_scale)
    x, z = X[:, :n], X[:, n:]
    tx, tz = np.tanh(x), np.tanh(z)
    dx, dz = 1 - tx**2, 1 - tz**2
    z_drive = tz @ W_z.T + B_z @ u + b_z
    if W_zx is not None:
        z_drive = z_drive + tx @ W_zx.T
    z_new = (1 - az) * z + az * z_drive
    s = sigmoid(z_new @ A_z.T + c_z)  # (K, rank)
    kappa = tx @ V / scale  # (K, rank)
    K = X.shape[0]
    J = np.zeros((K, n + m, n + m), dtype=dtype)
    # z' = (1-az) z + az (W_z tanh z + W_zx tanh x + cz)
    dzz = (1 - az) * np.eye(m, dtype=dtype) + az * W_z[None] * dz[:, None, :]
    dzx = az * W_zx[None] * dx[:, None, :] if W_zx is not None else np.zeros((K, m, n), dtype)
    # s' = sigmoid(A_z z' + c_z): ds'/d(.) = diag(s'(1-s')) A_z dz'/d(.)
    ds_dz = (s * (1 - s))[:, :, None] * np.einsum("rm,kmj->krj", A_z, dzz)
    ds_dx = (s * (1 - s))[:, :, None] * np.einsum("rm,kmj->krj", A_z, dzx)
    # x' = (1-ax) x + ax (U (s' * kappa) + cx),  kappa = V^T tanh(x) / n_scale
    dxx = (1 - ax) * np.eye(n, dtype=dtype) + ax * np.einsum(
        "ir,kr,jr,kj->kij", U, s, V, dx / scale
    )
    dxx = dxx + ax * np.einsum("ir,kr,krj->kij", U, kappa, ds_dx)
    dxz = ax * np.einsum("ir,kr,krj->kij", U, kappa, ds_dz)
    J[:, :n, :n], J[:, :n, n:] = dxx, dxz
    J[:, n:, :n], J[:, n:, n:] = dzx, dzz
    return J


def q_and_gradient(X, FX, J):
    """q = ½||F(x) - x||² (K,) and its gradient (J - I)^T (F(x) - x) (K, n) from the states
    X (K, n), their images FX (K, n) and Jacobians J (K, n, n)."""
    R = FX - X
    q = 0.5 * np.sum(R * R, axis=1)
    G = np.einsum("kij,ki->kj", J, R) - R
    return q, G


def minimize_q(map_fn, jacobian_fn, X0, *, iters, lr, tol=0.0):
    """Adam on q from every row of X0 (K, n), each state with its own moments
    (beta1 = 0.9, beta2 = 0.999, eps = 1e-12): the C++ minimiser's algorithm. map_fn(X) ->
    F(X) and jacobian_fn(X) -> J (K, n, n). Stops when every q is below tol (the C++ stops
    per chunk of 16 states; equal for K <= 16). Returns (X, q, steps)."""
    X = np.array(X0)
    m, v, work = np.zeros_like(X), np.zeros_like(X), np.empty_like(X)
    step = 0
    for step in range(iters + 1):
        q, G = q_and_gradient(X, map_fn(X), jacobian_fn(X))
        if step == iters or q.max() < tol:
            break
        adam_step(X, G, m, v, step + 1, float(lr), eps=1e-12, work=work)
    return X, q, np.full(X.shape[0], step, dtype=np.int32)


def lyapunov_spectrum(map_fn, jacobian_fn, x0, *, k, steps, transient, reorthonormalize=1,
                      seed=0, stream=0):  # fmt: skip
    """The k largest Lyapunov exponents per step of the map from x0 (n,) by the QR method.

    The initial tangent vectors are the rows ``philox_normal(seed, stream, i, n)``,
    i = 0..k-1 (the C++ draws trial b's from stream b). Tangent vectors are rows Q (k, n),
    advanced as ``Q J^T``; a QR every ``reorthonormalize`` steps, at the end of the
    transient and at the last step; logs of ``|diag R|`` summed after the transient, divided by
    ``steps``. Returns (k,) float64.
    """
    x = np.asarray(x0)[None, :]
    n = x.shape[1]
    Q = philox_normal(seed, stream, np.arange(k), n).astype(x.dtype)

    def orthonormalize(Q):
        Qm, R = np.linalg.qr(Q.T)  # columns: tangent vectors
        return Qm.T, np.log(np.abs(np.diag(R)).astype(np.float64))

    Q, _ = orthonormalize(Q)
    total = transient + steps
    sums = np.zeros(k)
    for t in range(total):
        J = jacobian_fn(x)[0]
        Q = Q @ J.T
        x = map_fn(x)
        if (t + 1) % reorthonormalize == 0 or t + 1 == transient or t + 1 == total:
            Q, logs = orthonormalize(Q)
            if t >= transient:
                sums += logs
    return sums / steps
