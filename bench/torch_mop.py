"""PyTorch eager implementation of one NeuroMOP training epoch (the "PyTorch eager" baseline
of the NeuroMOP benchmark), CPU, written the way a careful PyTorch user would.

Only imported when torch is installed (``pip install flexrnn[bench]``). The algorithm is the
one of docs/internals.md ("NeuroMOP rollouts and value fitting") for the MOP agent with
alpha = 1, beta = 0, mu = 0, no noise, one network and the energy terminal set:

- actions: ``A = 2^M`` joint actions, bit m of index k gives ``a_m = 2 ((k >> m) & 1) - 1``;
- dynamics: ``x'_a = (1 - alpha) x + alpha tanh(W x + b + rho K a)``;
- terminal: ``E(x) = sqrt(sum_i (x_i + 1)^2) / n > level``;
- value: ``V(x) = scale (w2 . relu(W1 x + b1) + b2)``, ``scale = ln(A) / (1 - gamma)``,
  ``V = 0`` at terminal successors;
- one step at a non-terminal x: ``Q_a = gamma V(x'_a)``, target ``logsumexp(Q)``, policy
  ``softmax(Q)``, the action sampled from the policy;
- trajectory: for t = 0..T, a terminal x_t ends it (lifetime t, target 0, weight 1), t = T
  ends it alive (lifetime T, no target), otherwise x_t gets its target with weight 0.1;
- fit: ``c = weight / (targets of the trajectory)``; ``updates`` Adam steps (lr, 0.9, 0.999,
  1e-8) on ``batch_size`` rows drawn uniformly with replacement, loss
  ``sum c (v - y / scale)^2 / sum c`` (v the network's output before ``scale``).

Random numbers come from a ``torch.Generator`` seeded with ``seed`` (the actions and the
minibatches): these implementations follow flexrnn's algorithm, not its counter-based draws,
so they reproduce its statistics, not its numbers. :func:`targets_and_policy` has no random
draw and computes, in float64, the same targets and policies as flexrnn at given states.

Two variants of the epoch (same rollout semantics, same fit):

- :func:`epoch_per_trajectory`: a Python loop over trajectories and steps; each step
  evaluates the 2^M successors of one state as one batched product;
- :func:`epoch_batched`: all trajectories stepped together, (active, A, n) tensors; the
  trajectories that have ended are dropped from the step's batch.

Neither changes torch's global settings; the caller sets the thread count.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

DTYPES = {"float32": torch.float32, "float64": torch.float64}
TERMINAL_WEIGHT = 1.0
NONTERMINAL_WEIGHT = 0.1
CENTER = -1.0  # the energy's center: E(x) = |x - CENTER| / n


def torch_dtype(dtype: Any) -> torch.dtype:
    """float32 or float64 from a name, a NumPy dtype or a torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        return dtype
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {name}")
    return DTYPES[name]


def joint_actions(n_bits: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(2^n_bits, n_bits) +-1: row k is the joint action of index k (bit m -> a_m)."""
    k = torch.arange(2**n_bits)[:, None]
    return (2 * ((k >> torch.arange(n_bits)) & 1) - 1).to(dtype)


def init_theta(n: int, hidden: int, seed: int = 0) -> np.ndarray:
    """Flat value-net parameters [W1 (H, n) row-major, b1 (H), w2 (H), b2] with
    ``nn.Linear``'s default initialisation (uniform in +-1/sqrt(fan_in)), float64."""
    rng = np.random.default_rng(seed)
    k1, k2 = 1 / math.sqrt(n), 1 / math.sqrt(hidden)
    return np.concatenate(
        [
            rng.uniform(-k1, k1, hidden * n),
            rng.uniform(-k1, k1, hidden),
            rng.uniform(-k2, k2, hidden),
            rng.uniform(-k2, k2, 1),
        ]
    )


def value_net(theta: np.ndarray, n: int, hidden: int, dtype: torch.dtype) -> nn.Sequential:
    """Linear(n, H) -> ReLU -> Linear(H, 1) holding a copy of the flat parameters ``theta``."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (hidden * n + 2 * hidden + 1,):
        raise ValueError(
            f"theta: expected shape ({hidden * n + 2 * hidden + 1},) for n={n}, "
            f"hidden={hidden}, got {theta.shape}"
        )
    net = nn.Sequential(nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, 1)).to(dtype)
    sizes = [hidden * n, hidden, hidden, 1]
    W1, b1, w2, b2 = np.split(theta, np.cumsum(sizes)[:-1])
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(W1.reshape(hidden, n)))
        net[0].bias.copy_(torch.from_numpy(b1))
        net[2].weight.copy_(torch.from_numpy(w2.reshape(1, hidden)))
        net[2].bias.copy_(torch.from_numpy(b2))
    return net


def flat_theta(net: nn.Sequential) -> np.ndarray:
    """The value net's parameters, flat in the order of :func:`value_net`, float64."""
    parts = [net[0].weight, net[0].bias, net[2].weight, net[2].bias]
    return torch.cat([p.detach().reshape(-1) for p in parts]).double().numpy()


class Problem:
    """The fixed tensors of one NeuroMOP problem: the RNN, the actions' currents, the value
    net and the constants. ``drive[k] = rho K a_k`` (A, n) is the only part of the input that
    depends on the action, computed once."""

    def __init__(self, W, K, b, theta, *, rho, alpha, level, gamma, hidden, dtype):
        self.dtype = torch_dtype(dtype)
        self.W = torch.tensor(np.asarray(W), dtype=self.dtype)
        self.K = torch.tensor(np.asarray(K), dtype=self.dtype)
        self.b = torch.tensor(np.asarray(b), dtype=self.dtype)
        n, n_bits = self.K.shape
        if self.W.shape != (n, n) or self.b.shape != (n,):
            raise ValueError(
                f"W, K, b: expected shapes (n, n), (n, M), (n,), got "
                f"{tuple(self.W.shape)}, {tuple(self.K.shape)}, {tuple(self.b.shape)}"
            )
        self.n, self.n_bits, self.n_actions = n, n_bits, 2**n_bits
        self.alpha, self.level, self.gamma = float(alpha), float(level), float(gamma)
        self.scale = math.log(self.n_actions) / (1.0 - self.gamma)
        self.drive = float(rho) * joint_actions(n_bits, self.dtype) @ self.K.T  # (A, n)
        self.net = value_net(theta, n, int(hidden), self.dtype)

    def terminal(self, x: torch.Tensor) -> torch.Tensor:
        """(..., n) -> (...) bool: E(x) > level."""
        return torch.linalg.vector_norm(x - CENTER, dim=-1) / self.n > self.level

    def successors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (m, n) non-terminal states -> successors (m, A, n) and Q (m, A).

        1. h_a = W x + b + rho K a: the recurrent part once per state, the drive per action;
        2. x'_a = (1 - alpha) x + alpha tanh(h_a);
        3. V(x'_a) for all m A successors in one pass of the net, 0 where x'_a is terminal;
        4. Q_a = gamma V(x'_a).
        """
        m = x.shape[0]
        h = (x @ self.W.T + self.b)[:, None, :] + self.drive  # (m, A, n)
        x_next = (1.0 - self.alpha) * x[:, None, :] + self.alpha * torch.tanh(h)
        v = self.net(x_next.reshape(m * self.n_actions, self.n)).reshape(m, self.n_actions)
        V = (self.scale * v).masked_fill(self.terminal(x_next), 0.0)
        return x_next, self.gamma * V


def targets_and_policy(
    W: np.ndarray,
    K: np.ndarray,
    b: np.ndarray,
    theta: np.ndarray,
    X: np.ndarray,
    *,
    rho: float,
    alpha: float,
    level: float,
    gamma: float,
    hidden: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Value targets and policies at given states, float64.

    W: (n, n); K: (n, M); b: (n,); theta: flat value-net parameters (see module docstring);
    X: (m, n). Returns target (m,) = ``logsumexp_a gamma V(x'_a)`` and policy (m, A) =
    ``softmax_a gamma V(x'_a)``, with V = 0 at terminal successors. The formula is applied to
    every row, terminal or not (in a rollout a terminal state's target is 0 instead).
    """
    prob = Problem(
        W,
        K,
        b,
        theta,
        rho=rho,
        alpha=alpha,
        level=level,
        gamma=gamma,
        hidden=hidden,
        dtype=torch.float64,
    )
    X = torch.tensor(np.asarray(X), dtype=torch.float64)
    if X.ndim != 2 or X.shape[1] != prob.n:
        raise ValueError(f"X: expected shape (m, {prob.n}), got {tuple(X.shape)}")
    with torch.no_grad():
        _, Q = prob.successors(X)
        return torch.logsumexp(Q, dim=1).numpy(), torch.softmax(Q, dim=1).numpy()


# ---------------------------------------------------------------------------------------------
# Rollouts: both return the rows of the fit, (states (N, n), targets (N,), weights (N,),
# trajectory (N,)), and lifetime (B,), terminated (B,).


def _rollout_per_trajectory(prob: Problem, x0, trajectories, horizon, gen):
    rows_x, rows_y, rows_w, rows_b = [], [], [], []
    lifetime = np.full(trajectories, horizon, dtype=np.int64)
    terminated = np.zeros(trajectories, dtype=bool)
    with torch.no_grad():
        for traj in range(trajectories):
            x = x0.clone()
            for t in range(horizon + 1):
                if prob.terminal(x):
                    rows_x.append(x)
                    rows_y.append(0.0)
                    rows_w.append(TERMINAL_WEIGHT)
                    rows_b.append(traj)
                    lifetime[traj], terminated[traj] = t, True
                    break
                if t == horizon:
                    break  # alive at T: x_T gets no target
                x_next, Q = prob.successors(x[None])
                rows_x.append(x)
                rows_y.append(float(torch.logsumexp(Q[0], dim=0)))
                rows_w.append(NONTERMINAL_WEIGHT)
                rows_b.append(traj)
                a = torch.multinomial(torch.softmax(Q[0], dim=0), 1, generator=gen)
                x = x_next[0, a[0]]
    if not rows_x:
        return torch.empty((0, prob.n), dtype=prob.dtype), [], [], [], lifetime, terminated
    return torch.stack(rows_x), rows_y, rows_w, rows_b, lifetime, terminated


def _rollout_batched(prob: Problem, x0, trajectories, horizon, gen):
    rows_x, rows_y, rows_w, rows_b = [], [], [], []
    lifetime = np.full(trajectories, horizon, dtype=np.int64)
    terminated = np.zeros(trajectories, dtype=bool)
    x = x0.expand(trajectories, prob.n).clone()
    active = torch.arange(trajectories)  # the trajectories still running
    with torch.no_grad():
        for t in range(horizon + 1):
            xa = x[active]
            ends = prob.terminal(xa)
            if ends.any():
                done = active[ends]
                rows_x.append(xa[ends])
                rows_y.append(torch.zeros(len(done), dtype=prob.dtype))
                rows_w.append(torch.full((len(done),), TERMINAL_WEIGHT, dtype=prob.dtype))
                rows_b.append(done)
                lifetime[done.numpy()], terminated[done.numpy()] = t, True
                active, xa = active[~ends], xa[~ends]
            if t == horizon or len(active) == 0:
                break
            x_next, Q = prob.successors(xa)
            rows_x.append(xa)
            rows_y.append(torch.logsumexp(Q, dim=1))
            rows_w.append(torch.full((len(active),), NONTERMINAL_WEIGHT, dtype=prob.dtype))
            rows_b.append(active)
            a = torch.multinomial(torch.softmax(Q, dim=1), 1, generator=gen)[:, 0]
            x[active] = x_next[torch.arange(len(active)), a]
    if not rows_x:
        return torch.empty((0, prob.n), dtype=prob.dtype), [], [], [], lifetime, terminated
    return (
        torch.cat(rows_x),
        torch.cat(rows_y),
        torch.cat(rows_w),
        torch.cat(rows_b),
        lifetime,
        terminated,
    )


# ---------------------------------------------------------------------------------------------
# Fit


def _fit(prob: Problem, X, y, weight, traj, trajectories, *, lr, updates, batch_size, gen):
    """``updates`` Adam steps on minibatches of the rows (targets frozen). Returns the losses.

    1. c = weight / (number of rows of the row's trajectory);
    2. each update draws ``batch_size`` rows uniformly with replacement;
    3. loss = sum c (v - y / scale)^2 / sum c, v the net's output before ``scale``.
    """
    y = torch.as_tensor(y, dtype=prob.dtype) / prob.scale
    weight = torch.as_tensor(weight, dtype=prob.dtype)
    traj = torch.as_tensor(traj, dtype=torch.int64)
    rows_per_trajectory = torch.bincount(traj, minlength=trajectories).to(prob.dtype)
    c = weight / rows_per_trajectory[traj]
    optimizer = torch.optim.Adam(prob.net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    N = X.shape[0]
    if N == 0:
        return losses
    for _ in range(updates):
        idx = torch.randint(N, (batch_size,), generator=gen)
        v = prob.net(X[idx])[:, 0]
        cb = c[idx]
        loss = (cb * (v - y[idx]) ** 2).sum() / cb.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def _epoch(
    rollout,
    W,
    K,
    b,
    x0,
    theta,
    *,
    rho,
    alpha,
    level,
    gamma,
    hidden,
    trajectories,
    horizon,
    lr,
    updates,
    batch_size,
    seed,
    dtype="float32",
):
    prob = Problem(
        W, K, b, theta, rho=rho, alpha=alpha, level=level, gamma=gamma, hidden=hidden, dtype=dtype
    )
    x0 = torch.tensor(np.asarray(x0), dtype=prob.dtype)
    if x0.shape != (prob.n,):
        raise ValueError(f"x0: expected shape ({prob.n},), got {tuple(x0.shape)}")
    gen = torch.Generator().manual_seed(int(seed))
    X, y, weight, traj, lifetime, terminated = rollout(prob, x0, trajectories, horizon, gen)
    losses = _fit(
        prob,
        X,
        y,
        weight,
        traj,
        trajectories,
        lr=lr,
        updates=updates,
        batch_size=batch_size,
        gen=gen,
    )
    return {
        "lifetime": lifetime,
        "terminated": terminated,
        "losses": np.asarray(losses),
        "states_visited": int(np.sum(lifetime + 1)),
        "targets": int(X.shape[0]),
        "theta": flat_theta(prob.net),
    }


def epoch_per_trajectory(W, K, b, x0, theta, **options: Any) -> dict[str, Any]:
    """One NeuroMOP epoch, a Python loop over trajectories and steps (each step's 2^M
    successors in one batched product): rollout of ``trajectories`` trajectories from x0 for
    up to ``horizon`` steps, then ``updates`` Adam steps on the value net.

    W: (n, n); K: (n, M); b: (n,); x0: (n,); theta: flat value-net parameters
    [W1 (H, n) row-major, b1 (H), w2 (H), b2] (copied, never modified). A fresh Adam starts
    here (step count 0, as in flexrnn's first epoch). Keyword options (all required but
    ``dtype``): rho, alpha, level, gamma, hidden, trajectories, horizon, lr, updates,
    batch_size, seed, dtype (float32 or float64, default float32).

    Returns a dict: lifetime (B,) int64, terminated (B,) bool, losses (updates,) float,
    states_visited (int, sum of lifetime + 1), targets (int, the rows of the fit),
    theta (the updated flat parameters, float64).
    """
    return _epoch(_rollout_per_trajectory, W, K, b, x0, theta, **options)


def epoch_batched(W, K, b, x0, theta, **options: Any) -> dict[str, Any]:
    """One NeuroMOP epoch, all trajectories stepped together ((active, 2^M, n) tensors; the
    trajectories that have ended leave the batch). Arguments and result as
    :func:`epoch_per_trajectory`."""
    return _epoch(_rollout_batched, W, K, b, x0, theta, **options)


def energy_task(n=100, n_bits=8, hidden=128, seed=0, *, optimistic=False) -> dict[str, Any]:
    """The energy task's random problem: W ~ N(0, g^2 / n) with g = 2, K ~ U(0, 1), b = 0,
    x0 ~ N(0, 0.1^2), theta with nn.Linear's default initialisation.

    An untrained net's values are O(scale) of either sign, so the agent often prefers the
    terminal successors (V = 0) and dies within a few steps. ``optimistic``: the output bias
    b2 = 1, so V ~ scale (the value's ceiling) at every non-terminal state, as after
    training: the agent avoids the terminal set and trajectories run long, which is the cost
    that matters in later epochs."""
    rng = np.random.default_rng(seed)
    theta = init_theta(n, hidden, seed + 1)
    if optimistic:
        theta[-1] = 1.0
    return {
        "W": rng.normal(0, 2 / math.sqrt(n), (n, n)),
        "K": rng.uniform(0, 1, (n, n_bits)),
        "b": np.zeros(n),
        "x0": rng.normal(0, 0.1, n),
        "theta": theta,
    }


def main(repeats: int = 3) -> None:
    """Seconds per epoch of both variants at the energy task's size (float32, 2 threads)."""
    torch.set_num_threads(2)
    options = {
        "rho": 2.0,
        "alpha": 0.1,
        "level": 0.11,
        "gamma": 0.98,
        "hidden": 128,
        "trajectories": 10,
        "horizon": 1000,
        "lr": 1e-3,
        "updates": 10,
        "batch_size": 256,
        "dtype": "float32",
    }
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; n=100 M=8 H=128 "
        f"B={options['trajectories']} T={options['horizon']} updates={options['updates']} "
        f"batch={options['batch_size']} {options['dtype']}; median of {repeats} epochs "
        "(seeds 0..), after a warm-up epoch"
    )
    variants = (("per_trajectory", epoch_per_trajectory), ("batched", epoch_batched))
    for optimistic in (False, True):
        problem = energy_task(n=100, n_bits=8, hidden=options["hidden"], optimistic=optimistic)
        label = "optimistic value net (b2 = 1)" if optimistic else "untrained value net"
        print(f"-- {label}")
        for name, epoch in variants:
            epoch(**problem, **{**options, "horizon": 20}, seed=99)  # warm-up
            times, lifetimes, steps = [], [], []
            for seed in range(repeats):
                t0 = time.perf_counter()
                out = epoch(**problem, **options, seed=seed)
                times.append(time.perf_counter() - t0)
                lifetimes.append(out["lifetime"].mean())
                steps.append(int(out["lifetime"].sum()))
            dt, n_steps = float(np.median(times)), float(np.mean(steps))
            print(
                f"{name:15s} {dt:8.3f} s/epoch (min {min(times):.3f}), mean lifetime "
                f"{np.mean(lifetimes):7.1f}, {n_steps:7.0f} steps/epoch, "
                f"{1e6 * dt / max(n_steps, 1):7.1f} us/step"
            )


if __name__ == "__main__":
    main()
