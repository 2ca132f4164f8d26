"""Pure-NumPy reference of NeuroMOP (docs/neuromop.md): the environments' successors, the
terminal / reward programs, the value network and its Adam fit, one step's MOP and R-agent
quantities, whole rollouts, and exact soft value iteration on a finite problem.

The contract is docs/internals.md, "NeuroMOP rollouts and value fitting"; the C++ kernel
(cpp/include/flexrnn/mop.hpp) follows the same text. Everything is float64. One network
(index p of the kernel's P) per call; its trajectories run one after the other.

Names: ``A = 2^M`` joint actions (M = ``n_bits``), ``S`` noise samples, ``d`` the state
dimension (n for the RNN, 4 for CartPole), ``H`` the value network's hidden units.

Choices the contract leaves open, fixed here:

- ``sbar`` and ``rbar`` are plain means over the noise samples; only ``Vbar`` is masked by
  ``1 - d`` (a terminal successor has value 0, but its reward and entropy term count).
- The reward program is always evaluated with its context 0.
- The entropy is ``-sum pi ln pi`` with ``ln pi = Q - target`` for MOP (finite even where
  ``pi`` underflows to 0) and ``0 ln 0 = 0`` for the R agent's epsilon-greedy policy.
- ``floor(u A)`` and ``floor(u N)`` are clipped to ``A - 1`` and ``N - 1``: the uniform is
  ``(bits53 + 0.5) 2^-53`` in double, which rounds to exactly 1 for the largest bits53.
- An empty program (``start[c] == start[c+1]``) is never true. CartPole has no noise.
"""

from __future__ import annotations

import numpy as np

from .adam import adam_step  # betas 0.9, 0.999, eps 1e-8, as the C++
from .learning import philox_uniform
from .phi import dphi
from .phi import phi as _phi
from .rng import philox_normal

# CartPole constants (docs/neuromop.md, "Cartpole").
CARTPOLE = {
    "m_cart": 1.0,
    "m_pole": 0.1,
    "l": 1.0,  # distance pivot - centre of mass
    "g": 9.81,
    "dt": 0.02,
    "force": 40.0,
    "max_xd": 6.0,
    "max_thd": 3.0,
}

# Program opcodes and atom kinds (docs/internals.md, "Terminal sets and reward regions").
PUSH, NOT, AND, OR = 0, 1, 2, 3
ENERGY, ABS, LINEAR, ELLIPSE, L1, HEART, CUSTOM = range(7)

NONTERMINAL_WEIGHT = 0.1  # weight of a non-terminal state's target (terminal: 1)
FIT_STREAM_OFFSET = 2**19  # the fit's stream is stream0 + 2^19 (with the network's own seed)
NETWORK_STREAM_STRIDE = 2**20  # trajectory b uses stream0 + p 2^20 + b; the kernel: p = 0


# ---------------------------------------------------------------------------------------------
# Actions and environments


def action_bits(n_bits):
    """Joint actions as rows: (A, n_bits) of +-1, A = 2^n_bits; ``a[k, m] = 2 ((k >> m) & 1) - 1``
    (row 0 all -1, row A-1 all +1)."""
    k = np.arange(2**n_bits)[:, None]
    m = np.arange(n_bits)[None, :]
    return (2 * ((k >> m) & 1) - 1).astype(np.float64)


def rnn_successors(W, b, K, x, *, rho, alpha, phi, xi=None):
    """Successors of x under every joint action of the RNN environment.

    W: (n, n); b: (n,); K: (n, M); x: (n,); xi: None or (n,) the noise already scaled by
    noise_std. ``h_a = W x + b + rho K a (+ xi)``, ``X_a = (1 - alpha) x + alpha phi(h_a)``,
    ``s_a = alpha (-n + sum_i phi'(h_a,i) W_ii)`` (dt Tr grad f, the first-order log-volume
    change of the Euler map). Returns (X (A, n), s (A,)).
    """
    W, b, K, x = (np.asarray(v, dtype=np.float64) for v in (W, b, K, x))
    n, n_bits = K.shape
    a = action_bits(n_bits)  # (A, M)
    h = (W @ x + b)[None, :] + rho * (a @ K.T)  # W x + b is shared by all A successors
    if xi is not None:
        h = h + np.asarray(xi, dtype=np.float64)[None, :]
    X = (1 - alpha) * x[None, :] + alpha * _phi(phi, h)
    s = alpha * (-n + dphi(phi, h) @ np.diag(W))
    return X, s


def cartpole_step(x, force):
    """One Euler step of the frictionless cart-pole. x: (..., 4) = (x, xd, th, thd);
    force: (...). Velocities are clipped after the step (xd to +-6, thd to +-3).
    Returns (..., 4)."""
    c = CARTPOLE
    x = np.asarray(x, dtype=np.float64)
    force = np.asarray(force, dtype=np.float64)
    pos, xd, th, thd = x[..., 0], x[..., 1], x[..., 2], x[..., 3]
    m_tot = c["m_cart"] + c["m_pole"]
    sin, cos = np.sin(th), np.cos(th)
    temp = (force + c["m_pole"] * c["l"] * thd**2 * sin) / m_tot
    thacc = (c["g"] * sin - cos * temp) / (c["l"] * (4.0 / 3.0 - c["m_pole"] * cos**2 / m_tot))
    xacc = temp - c["m_pole"] * c["l"] * thacc * cos / m_tot
    dt = c["dt"]
    return np.stack(
        [
            pos + dt * xd,  # Euler with the old velocities
            np.clip(xd + dt * xacc, -c["max_xd"], c["max_xd"]),
            th + dt * thd,
            np.clip(thd + dt * thacc, -c["max_thd"], c["max_thd"]),
        ],
        axis=-1,
    )


def cartpole_successors(x):
    """Successors of x (4,) under the forces 40 a, a = -1, +1. Returns (X (2, 4), s zeros(2))
    (no state-entropy term for CartPole)."""
    force = CARTPOLE["force"] * action_bits(1)[:, 0]
    X = cartpole_step(np.broadcast_to(np.asarray(x, dtype=np.float64), (2, 4)), force)
    return X, np.zeros(2)


def _n_actions(env):
    return 2 if env["kind"] == "cartpole" else 2 ** np.shape(env["K"])[1]


def _successors(env, x, xi):
    """(X (A, d), s (A,)) of the environment dict at x (d,); xi: None or (n,) scaled noise."""
    if env["kind"] == "cartpole":
        if xi is not None:
            raise ValueError("the cartpole environment has no noise")
        return cartpole_successors(x)
    if env["kind"] != "rnn":
        raise ValueError(f"env kind must be 'rnn' or 'cartpole', got {env['kind']!r}")
    return rnn_successors(
        env["W"], env["b"], env["K"], x, rho=env["rho"], alpha=env["alpha"], phi=env["phi"], xi=xi
    )


# ---------------------------------------------------------------------------------------------
# Terminal sets and reward regions: a postfix stack machine over atoms


def atom_score(program, atom, X, custom=()):
    """Score of atom ``atom`` on the states X (m, d) -> (m,); the atom is true where > 0.
    For a custom atom the score is the callable's bool result as 1.0 / 0.0 (true where 1)."""
    kind = int(program["kind"][atom])
    i, j = (int(v) for v in program["index"][atom])
    p = np.asarray(program["params"][atom], dtype=np.float64)
    d = X.shape[1]
    if kind == ENERGY:  # sqrt(sum_i (x_i - c)^2) / d - L
        return np.sqrt(((X - p[0]) ** 2).sum(axis=1)) / d - p[1]
    if kind == ABS:  # |x_i - c| - L
        return np.abs(X[:, i] - p[0]) - p[1]
    if kind == LINEAR:  # w . x + b, w the row i of "weights"
        w = np.asarray(program["weights"], dtype=np.float64)[i]
        return X @ w + p[0]
    if kind == ELLIPSE:  # ((x_i-ci)/si)^2 + ((x_j-cj)/sj)^2 - 1
        return ((X[:, i] - p[0]) / p[2]) ** 2 + ((X[:, j] - p[1]) / p[3]) ** 2 - 1
    if kind == L1:  # |x_i|/si + |x_j|/sj - 1
        return np.abs(X[:, i]) / p[0] + np.abs(X[:, j]) / p[1] - 1
    if kind == HEART:  # (x_i^2 + x_j^2 - c)^3 - x_i^2 x_j^3
        xi, xj = X[:, i], X[:, j]
        return (xi**2 + xj**2 - p[0]) ** 3 - xi**2 * xj**3
    if kind == CUSTOM:  # custom[i](states (m, d)) -> (m,) bool
        return np.asarray(custom[i](X), dtype=bool).reshape(X.shape[0]).astype(np.float64)
    raise ValueError(f"unknown atom kind {kind}")


def evaluate_program(program, X, context=0, custom=()):
    """Truth of context ``context``'s program on each state of X (m, d) -> bool (m,).

    program: dict of "code" int32 (L, 2) rows (op, arg) in postfix order (op 0 push atom
    `arg`, 1 NOT, 2 AND, 3 OR), "start" int32 (n_contexts + 1,) (context c's code is
    code[start[c]:start[c+1]]), "kind" int32 (n_atoms,), "index" int64 (n_atoms, 2),
    "params" float64 (n_atoms, 4), "weights" float64 (n_w, d). An empty program is false.
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    code = np.asarray(program["code"]).reshape(-1, 2)
    start = np.asarray(program["start"])
    stack = []
    for op, arg in code[int(start[context]) : int(start[context + 1])]:
        if op == PUSH:
            stack.append(atom_score(program, int(arg), X, custom) > 0)
        elif op == NOT:
            stack.append(~stack.pop())
        elif op in (AND, OR):
            right, left = stack.pop(), stack.pop()
            stack.append(left & right if op == AND else left | right)
        else:
            raise ValueError(f"unknown opcode {op}")
    if not stack:
        return np.zeros(X.shape[0], dtype=bool)
    if len(stack) != 1:
        raise ValueError(f"program of context {context} leaves {len(stack)} values on the stack")
    return stack[0]


# ---------------------------------------------------------------------------------------------
# Value network and its fit


def _unpack(theta, d_in, hidden):
    """Views W1 (H, d_in), b1 (H,), w2 (H,), b2 (scalar) of the flat parameters."""
    H = hidden
    W1 = theta[: H * d_in].reshape(H, d_in)
    b1 = theta[H * d_in : H * d_in + H]
    w2 = theta[H * d_in + H : H * d_in + 2 * H]
    b2 = theta[H * d_in + 2 * H]
    return W1, b1, w2, b2


def n_value_parameters(d_in, hidden):
    """Length of theta: H d_in + 2 H + 1."""
    return hidden * d_in + 2 * hidden + 1


def value_inputs(X, context, n_contexts):
    """Network inputs Z = [x; onehot(context)] (the one-hot only when n_contexts > 1).
    X: (m, d); context: int or (m,) ints. Returns (m, d) or (m, d + n_contexts)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if n_contexts <= 1:
        return X
    onehot = np.zeros((X.shape[0], n_contexts))
    onehot[np.arange(X.shape[0]), np.broadcast_to(np.asarray(context), X.shape[0])] = 1.0
    return np.concatenate([X, onehot], axis=1)


def value_forward(theta, Z, hidden):
    """Network output before ``scale``: v = w2 . relu(W1 z + b1) + b2.
    theta: flat [W1 (H, d_in) row-major, b1 (H), w2 (H), b2]; Z: (m, d_in). Returns (m,)."""
    theta = np.asarray(theta, dtype=np.float64)
    Z = np.atleast_2d(np.asarray(Z, dtype=np.float64))
    W1, b1, w2, b2 = _unpack(theta, Z.shape[1], hidden)
    return np.maximum(Z @ W1.T + b1, 0) @ w2 + b2


def value_loss_and_grad(theta, Z, y, c, hidden):
    """Weighted squared error and its gradient by backpropagation.

    loss = sum_i c_i (v_i - y_i)^2 / sum_i c_i, v = value_forward(theta, Z); y (m,) already
    divided by scale; c (m,) the sample weights. Returns (loss, grad like theta); (0, 0) when
    sum c = 0.
    """
    theta = np.asarray(theta, dtype=np.float64)
    Z = np.atleast_2d(np.asarray(Z, dtype=np.float64))
    y, c = np.asarray(y, dtype=np.float64), np.asarray(c, dtype=np.float64)
    W1, b1, w2, b2 = _unpack(theta, Z.shape[1], hidden)
    total = c.sum()
    if total == 0:
        return 0.0, np.zeros_like(theta)
    pre = Z @ W1.T + b1  # (m, H)
    hid = np.maximum(pre, 0)
    v = hid @ w2 + b2
    err = v - y
    loss = float((c * err * err).sum() / total)
    dv = 2 * c * err / total  # dloss / dv
    dpre = dv[:, None] * w2[None, :] * (pre > 0)  # relu'(0) = 0
    grad = np.concatenate([(dpre.T @ Z).reshape(-1), dpre.sum(axis=0), hid.T @ dv, [dv.sum()]])
    return loss, grad


def fit(
    theta, m, v, step, rollout_out,
    *, hidden, scale, lr, updates, batch_size, seed, fit_stream, n_contexts=1, context,
):  # fmt: skip
    """The epoch's value updates on one rollout's targets (theta, m, v updated in place).

    Rows: the (t, b) with weights[t, b] > 0, in (t, b) order (t outer); sample weight
    c = weight / (number of rows of trajectory b). Update k (0-based) draws batch_size rows
    ``floor(u_i N)``, u = philox_uniform(seed, fit_stream, k, batch_size), and takes one Adam
    step on sum c (v - y / scale)^2 / sum c. context: (B,) ints. The kernel's fit_stream is
    stream0 + FIT_STREAM_OFFSET (2^19, above every trajectory's b), drawn with the network's
    own seed.
    Returns (losses (updates,) each minibatch's loss before its step, the new step count);
    with no rows, no update is made (losses empty).
    """
    states = np.asarray(rollout_out["states"], dtype=np.float64)  # (T+1, B, d)
    targets = np.asarray(rollout_out["targets"], dtype=np.float64)
    weights = np.asarray(rollout_out["weights"], dtype=np.float64)
    context = np.asarray(context)
    t_rows, b_rows = np.nonzero(weights > 0)  # row-major: (t, b) order
    N = t_rows.size
    if N == 0 or updates == 0:
        return np.zeros(0), step
    rows_per_trajectory = (weights > 0).sum(axis=0)  # (B,)
    Z = value_inputs(states[t_rows, b_rows], context[b_rows], n_contexts)
    y = targets[t_rows, b_rows] / scale
    c = weights[t_rows, b_rows] / rows_per_trajectory[b_rows]
    losses = np.zeros(updates)
    for k in range(updates):
        u = philox_uniform(seed, fit_stream, k, batch_size)
        batch = np.minimum(np.floor(u * N).astype(np.int64), N - 1)
        losses[k], grad = value_loss_and_grad(theta, Z[batch], y[batch], c[batch], hidden)
        step += 1
        adam_step(theta, grad, m, v, step, lr)
    return losses, step


# ---------------------------------------------------------------------------------------------
# One step: Q values, target, policy


def _logsumexp(Q):
    Q_max = Q.max(axis=-1, keepdims=True)
    return (Q_max + np.log(np.exp(Q - Q_max).sum(axis=-1, keepdims=True)))[..., 0]


def _state_step(env, theta, x, xi, *, hidden, scale, agent, gamma, beta, mu, eps, program,
                reward_program, context, n_contexts, custom):  # fmt: skip
    """One step's quantities at the non-terminal state x (d,). xi: None (S = 1, no noise) or
    (S, n) scaled noise. Returns (Q (A,), target, policy (A,), entropy)."""
    samples = [None] if xi is None else list(xi)
    S = len(samples)
    X_s, s_s = zip(*(_successors(env, x, xi_s) for xi_s in samples))
    X = np.stack(X_s)  # (S, A, d)
    s = np.stack(s_s)  # (S, A)
    A, d = X.shape[1:]
    flat = X.reshape(S * A, d)  # all successors in one call per program (custom atoms)
    done = evaluate_program(program, flat, context, custom).reshape(S, A).astype(np.float64)
    if reward_program is None:
        reward = np.zeros((S, A))
    else:
        reward = evaluate_program(reward_program, flat, 0, custom).reshape(S, A)
        reward = reward.astype(np.float64)
    V = scale * value_forward(theta, value_inputs(flat, context, n_contexts), hidden)
    Vbar = ((1 - done) * V.reshape(S, A)).mean(axis=0)  # terminal successors have V = 0
    sbar, rbar, dbar = s.mean(axis=0), reward.mean(axis=0), done.mean(axis=0)

    if agent == "mop":
        Q = gamma * Vbar + beta * sbar + mu * rbar
        target = _logsumexp(Q)
        Q_max = Q.max()
        e = np.exp(Q - Q_max)
        policy = e / e.sum()
        entropy = -(policy * (Q - target)).sum()  # ln pi = Q - target
    elif agent == "r":
        Q = (1 - dbar) + gamma * Vbar + mu * rbar  # survival reward 1
        target = (1 - eps) * Q.max() + eps * Q.mean()
        policy = np.full(A, eps / A)
        policy[np.argmax(Q)] += 1 - eps  # the first argmax
        positive = policy > 0
        entropy = -(policy[positive] * np.log(policy[positive])).sum()
    else:
        raise ValueError(f"agent must be 'mop' or 'r', got {agent!r}")
    return Q, float(target), policy, float(entropy)


def evaluate(
    env, theta, X,
    *, hidden, scale, agent, gamma, beta=0.0, mu=0.0, eps=0.0, program, reward_program=None,
    context=0, n_contexts=1, custom=(), noise=None,
):  # fmt: skip
    """One step's quantities at each state of X (m, d), assumed non-terminal.

    noise: None (S = 1, no noise) or (S, m, n) the scaled noise of each sample and state
    (Vbar, sbar, rbar, dbar are then means over s). MOP: Q_a = gamma Vbar_a + beta sbar_a +
    mu rbar_a, target ln sum_a exp Q_a, policy softmax(Q). R agent: Q_a = (1 - dbar_a) +
    gamma Vbar_a + mu rbar_a, target (1 - eps) max Q + eps mean Q, policy epsilon-greedy
    (1 - eps on the first argmax, eps / A everywhere).
    Returns dict Q (m, A), target (m,), policy (m, A), entropy (m,).
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    theta = np.asarray(theta, dtype=np.float64)
    m, A = X.shape[0], _n_actions(env)
    noise = None if noise is None else np.asarray(noise, dtype=np.float64)  # (S, m, n)
    out = {"Q": np.zeros((m, A)), "target": np.zeros(m), "policy": np.zeros((m, A))}
    out["entropy"] = np.zeros(m)
    for i in range(m):
        xi = None if noise is None else noise[:, i]
        Q, target, policy, entropy = _state_step(
            env, theta, X[i], xi, hidden=hidden, scale=scale, agent=agent, gamma=gamma,
            beta=beta, mu=mu, eps=eps, program=program, reward_program=reward_program,
            context=context, n_contexts=n_contexts, custom=custom,
        )  # fmt: skip
        out["Q"][i], out["target"][i] = Q, target
        out["policy"][i], out["entropy"][i] = policy, entropy
    return out


def choose_action(agent, Q, policy, u0, u1, eps):
    """The action index from the step's uniforms u0, u1.

    MOP: the first k with cumsum(policy)_k >= u0 (the last action if rounding leaves u0 above
    the sum). R agent: floor(u1 A) if u0 < eps, else the first argmax of Q.
    """
    A = Q.size
    if agent == "mop":
        reached = np.nonzero(np.cumsum(policy) >= u0)[0]
        return int(reached[0]) if reached.size else A - 1
    if u0 < eps:
        return min(int(np.floor(u1 * A)), A - 1)
    return int(np.argmax(Q))


# ---------------------------------------------------------------------------------------------
# Rollouts


def rollout(
    env, theta,
    *, hidden, scale, agent, gamma, beta=0.0, mu=0.0, eps=0.0, horizon, x0, context,
    n_contexts=1, program, reward_program=None, seed, stream0, p=0, noise_std=0.0,
    noise_samples=1, custom=(),
):  # fmt: skip
    """B trajectories of network p, one after the other.

    Trajectory b uses stream = stream0 + p 2^20 + b (the kernel gives every network its own
    seed and uses p = 0, which is what the tests pass). For t = 0..T (T = horizon): if x_t is
    terminal the trajectory ends (lifetime t, target 0, weight 1); if t = T it ends alive
    (lifetime T, no target); else x_t gets the step's target with weight 0.1 and the agent
    acts with u = philox_uniform(seed, stream, 2t, 2). With noise_std > 0, sample s < S uses
    xi_j = noise_std normal(seed, stream, 2t + 1, s n + j) and the next state is the chosen
    action's successor under sample S; otherwise S = 1 and no normals are drawn. Whether x_t
    is terminal is evaluated on x_t itself each step (custom atoms: once on x_t, once on
    the successors per program).
    x0: (B, d); context: (B,) ints.
    Returns dict states (T+1, B, d) (zero past the end), actions (T, B) int64 (-1 past the
    end), entropy (T, B), targets (T+1, B), weights (T+1, B) (0 where no target), lifetime
    (B,) int64, terminated (B,) bool.
    """
    T = int(horizon)
    theta = np.asarray(theta, dtype=np.float64)
    x0 = np.atleast_2d(np.asarray(x0, dtype=np.float64))
    context = np.broadcast_to(np.asarray(context, dtype=np.int64), x0.shape[:1])
    B, d = x0.shape
    noisy = noise_std != 0
    if noisy and env["kind"] != "rnn":
        raise ValueError("noise_std must be 0 for the cartpole environment")
    S = int(noise_samples) if noisy else 1
    if S < 1:
        raise ValueError(f"noise_samples must be at least 1, got {noise_samples}")
    out = {
        "states": np.zeros((T + 1, B, d)),
        "actions": np.full((T, B), -1, dtype=np.int64),
        "entropy": np.zeros((T, B)),
        "targets": np.zeros((T + 1, B)),
        "weights": np.zeros((T + 1, B)),
        "lifetime": np.zeros(B, dtype=np.int64),
        "terminated": np.zeros(B, dtype=bool),
    }
    for b in range(B):
        stream = stream0 + p * NETWORK_STREAM_STRIDE + b
        x = x0[b]
        for t in range(T + 1):
            out["states"][t, b] = x
            if evaluate_program(program, x[None, :], context[b], custom)[0]:
                out["lifetime"][b], out["terminated"][b] = t, True
                out["weights"][t, b] = 1.0  # target 0
                break
            if t == T:
                out["lifetime"][b] = T
                break
            xi = None
            if noisy:
                n = np.shape(env["W"])[0]
                normals = philox_normal(seed, stream, 2 * t + 1, (S + 1) * n)
                xi = noise_std * normals.reshape(S + 1, n)  # rows: samples 0..S
            Q, target, policy, entropy = _state_step(
                env, theta, x, None if xi is None else xi[:S], hidden=hidden, scale=scale,
                agent=agent, gamma=gamma, beta=beta, mu=mu, eps=eps, program=program,
                reward_program=reward_program, context=context[b], n_contexts=n_contexts,
                custom=custom,
            )  # fmt: skip
            out["targets"][t, b], out["weights"][t, b] = target, NONTERMINAL_WEIGHT
            out["entropy"][t, b] = entropy
            u0, u1 = philox_uniform(seed, stream, 2 * t, 2)
            action = choose_action(agent, Q, policy, u0, u1, eps)
            out["actions"][t, b] = action
            x = _successors(env, x, None if xi is None else xi[S])[0][action]
    return out


# ---------------------------------------------------------------------------------------------
# Exact values on a finite deterministic problem


def soft_value_iteration(next_state, terminal, gamma, *, reward=None, tol=1e-12,
                         max_iter=100000):  # fmt: skip
    """Exact MOP value of a finite deterministic problem by fixed-point iteration.

    next_state: (S, A) ints, the successor of state s under action a; terminal: (S,) bool;
    reward: None or (S, A). V(s) = ln sum_a exp(r(s, a) + gamma V(next(s, a))) (max-shifted),
    V = 0 at terminal states; iterated from V = 0 until max |dV| < tol.
    Returns V (S,); raises RuntimeError without convergence in max_iter sweeps.
    """
    next_state = np.asarray(next_state, dtype=np.int64)
    terminal = np.asarray(terminal, dtype=bool)
    r = np.zeros(next_state.shape) if reward is None else np.asarray(reward, dtype=np.float64)
    V = np.zeros(terminal.shape)
    for _ in range(max_iter):
        V_new = np.where(terminal, 0.0, _logsumexp(r + gamma * V[next_state]))
        if np.max(np.abs(V_new - V), initial=0.0) < tol:
            return V_new
        V = V_new
    raise RuntimeError(f"soft value iteration did not converge in {max_iter} sweeps")
