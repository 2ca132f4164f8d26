"""NeuroMOP agents: the MOP agent (maximum action entropy, docs/neuromop.md) and the
reward-maximising R agent, each a value network V(x) trained by fitted soft (or
epsilon-greedy) value iteration on its own rollouts.

One epoch is one C++ call for any number of agents (``fr.mop.train([a1, a2, ...])``): every
agent's trajectories, the log-sum-exp targets over all 2^M successors of every visited
state, then the Adam updates of every value network. Agent i draws its random numbers from
its own ``seed`` and the epoch number, so its run does not depend on the agents batched with
it, and a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from flexrnn import _core, _validate
from flexrnn._io import NpzReader, atomic_savez, remove_stale_temporaries
from flexrnn._version import __version__
from flexrnn.train.checkpoint import (
    check_allow_mismatch,
    check_checkpoint_folder,
    experiment_mismatches,
    mismatches,
)
from flexrnn.train.fingerprint import fingerprint
from flexrnn.train.history import progress_bar

from .env import CartPole, RNNEnv, _Env
from .terminal import TerminalSet, compile_sets

PathLike = Union[str, Path]
_EPOCH_STREAM = 2**40  # stream0 of epoch e is e 2^40 (docs/internals.md)
_ROLLOUT_STREAM = 2**62  # evaluation rollouts (agent.rollout) draw from streams above this
# the agents' names (MOPAgent.agent, RAgent.agent) -> the core's agent kinds
_AGENT_KIND = {"mop": _core.MopAgentKind.mop, "r": _core.MopAgentKind.reward}


@dataclass
class Rollout:
    """Trajectories of one agent.

    states : (T+1, B, d) visited states, zero past the end; actions : (T, B) joint-action
    indices (-1 past the end; bit m set means a_m = +1); entropy : (T, B) action entropy
    (nats) of the policy at each step; targets, weights : (T+1, B) value targets and their
    fit weights (0: none); lifetime : (B,) steps before a terminal state (T if none);
    terminated : (B,) whether the trajectory ended in a terminal state; context : (B,).
    """

    states: np.ndarray
    actions: np.ndarray
    entropy: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    lifetime: np.ndarray
    terminated: np.ndarray
    context: np.ndarray
    n_bits: int

    @property
    def horizon(self) -> int:
        return self.actions.shape[0]

    def bits(self) -> np.ndarray:
        """Actions as ±1 values (T, B, n_bits), NaN past the end."""
        from .metrics import action_bits

        return action_bits(self.actions, self.n_bits)


class MopHistory:
    """Per-epoch records of a training run.

    lifetime : (epochs, B) lifetime of each trajectory; entropy : (epochs,) mean action
    entropy over the epoch's steps; loss : (epochs,) mean minibatch loss of the epoch's
    updates (value units / scale); eps : (epochs,) the R agent's epsilon (NaN for MOP);
    context : (epochs,); wall_time : (epochs,) seconds since the start (resumed runs
    included).
    """

    FIELDS = ("lifetime", "entropy", "loss", "eps", "context", "wall_time")

    def __init__(self) -> None:
        self._records: dict[str, list] = {k: [] for k in self.FIELDS}

    def _append(self, **values) -> None:
        for k in self.FIELDS:
            self._records[k].append(values[k])

    def __len__(self) -> int:
        return len(self._records["entropy"])

    def __repr__(self) -> str:
        if not len(self):
            return "MopHistory(epochs=0)"
        return (
            f"MopHistory(epochs={len(self)}, mean lifetime {self.mean_lifetime[-1]:.4g}, "
            f"entropy {self._records['entropy'][-1]:.4g} in the last epoch)"
        )

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_") or name not in self.FIELDS:
            raise AttributeError(name)
        return np.array(self._records[name])

    @property
    def mean_lifetime(self) -> np.ndarray:
        """(epochs,) mean lifetime over the epoch's trajectories."""
        return self.lifetime.mean(axis=1) if len(self) else np.zeros(0)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: np.array(self._records[k]) for k in self.FIELDS}

    @classmethod
    def from_dict(cls, arrays: dict[str, np.ndarray]) -> MopHistory:
        h = cls()
        for k in cls.FIELDS:
            h._records[k] = list(arrays[k])
        return h


class _Agent:
    agent = ""  # "mop" or "r"
    # training state, left out of the fingerprint a checkpoint records (the rest of the
    # public attributes: options, seed, x0, the environment and its network, the sets)
    _fingerprint_exclude = ("theta", "adam_m", "adam_v", "adam_step", "epoch")

    def __init__(
        self,
        env: _Env,
        *,
        hidden: int,
        gamma: float,
        mu: float,
        reward: TerminalSet | None,
        lr: float,
        updates: int,
        batch_size: int,
        x0,
        scale: float | None,
        seed: int,
    ) -> None:
        self.epoch = 0
        if not isinstance(env, (RNNEnv, CartPole)):
            raise TypeError(f"env: expected RNNEnv or CartPole, got {type(env).__name__}")
        self.env = env
        self.hidden = _validate.integer("hidden", hidden, minimum=1)
        self.gamma = _validate.scalar("gamma", gamma, nonneg=True)
        if not self.gamma < 1:
            raise ValueError(f"gamma: must be < 1, got {gamma}")
        self.mu = _validate.scalar("mu", mu)
        if reward is not None and not isinstance(reward, TerminalSet):
            raise TypeError(f"reward: expected a flexrnn.mop set, got {type(reward).__name__}")
        if self.mu != 0 and reward is None:
            raise ValueError("reward: mu != 0 needs a reward region")
        self.reward = reward
        self.lr = _validate.scalar("lr", lr, positive=True)
        self.updates = _validate.integer("updates", updates, minimum=0)
        self.batch_size = _validate.integer("batch_size", batch_size, minimum=1)
        self.seed = _validate.seed("seed", seed)
        rng = np.random.default_rng(self.seed)
        if x0 is None:
            x0 = env.default_x0(rng)
        self.x0 = _validate.array("x0", x0, env.dtype, (env.dim,)).copy()
        if env.is_terminal(self.x0[None])[0]:
            raise ValueError("x0: the initial state is terminal")
        ceiling = math.log(env.n_actions) if self.agent == "mop" else 1.0
        self.scale = (
            ceiling / (1 - self.gamma) if scale is None else _validate.scalar("scale", scale)
        )
        # hidden layer as PyTorch initialises a Linear layer, U(-1/sqrt(fan_in), ...)
        d_in, h = self.d_in, self.hidden
        lim1 = 1 / math.sqrt(d_in)
        self.theta = np.concatenate(
            [
                rng.uniform(-lim1, lim1, h * d_in + h),  # W1, b1
                np.zeros(h + 1),  # w2, b2: V = 0 at first, so the first policy is uniform
            ]
        ).astype(env.dtype)
        self.adam_m = np.zeros_like(self.theta)
        self.adam_v = np.zeros_like(self.theta)
        self.adam_step = 0

    # -- shapes and options ----------------------------------------------------------------
    @property
    def d_in(self) -> int:
        """Value-network inputs: the state, plus a one-hot context when there are several."""
        n_ctx = self.env.n_contexts
        return self.env.dim + (n_ctx if n_ctx > 1 else 0)

    def _settings(self, epoch: int) -> dict:
        """The agent's options at an epoch, as plain values (compared across agents)."""
        return {
            "agent": self.agent,
            "gamma": self.gamma,
            "beta": getattr(self, "beta", 0.0),
            "mu": self.mu,
            "eps": self.eps_at(epoch),
            "scale": self.scale,
            "hidden": self.hidden,
            "n_contexts": self.env.n_contexts,
        }

    def _options(self, epoch: int) -> Any:
        """The ``_core.MopAgentOptions`` of the kernels at an epoch."""
        settings = self._settings(epoch)
        return _core.MopAgentOptions(**{**settings, "agent": _AGENT_KIND[settings["agent"]]})

    def eps_at(self, epoch: int) -> float:
        return 0.0

    def _signature(self) -> tuple:
        """What must agree for agents to share one kernel call."""
        return (type(self), self._settings(self.epoch), self.lr, self.updates, self.batch_size)

    def _reward_program(self):
        if self.reward is None or self.mu == 0:
            return None, []
        return compile_sets([self.reward], self.env.dim, "reward")

    # -- evaluation ------------------------------------------------------------------------
    def _inputs(self, states, context) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(np.atleast_2d(np.asarray(states, dtype=self.env.dtype)))
        if x.ndim != 2 or x.shape[1] != self.env.dim:
            raise ValueError(f"states: expected (m, {self.env.dim}), got {np.shape(states)}")
        if not np.all(np.isfinite(x)):
            raise ValueError("states: contains NaN or infinite values")
        ctx = np.broadcast_to(np.asarray(context, dtype=np.int64), (x.shape[0],)).copy()
        if np.any(ctx < 0) or np.any(ctx >= self.env.n_contexts):
            raise ValueError(f"context: must lie in 0..{self.env.n_contexts - 1}")
        return x, ctx

    def value(self, states, context=0) -> np.ndarray:
        """V(x) of states (m, d) (one state: (d,)) -> (m,), in value units (scale included)."""
        x, ctx = self._inputs(states, context)
        if self.env.n_contexts > 1:
            x = np.concatenate([x, np.eye(self.env.n_contexts, dtype=x.dtype)[ctx]], axis=1)
        return self.scale * _core.mop_value(self.theta, x, self.hidden).astype(np.float64)

    def evaluate(self, states, context=0) -> dict[str, np.ndarray]:
        """One step's quantities at non-terminal states (m, d) (noise-free successors):
        ``Q`` (m, A), ``policy`` (m, A), ``target`` (m,) (the value target: log-sum-exp for
        MOP, the epsilon-mix of max and mean for R) and ``entropy`` (m,)."""
        x, ctx = self._inputs(states, context)
        terminal, custom = self.env.programs()
        reward, reward_custom = self._reward_program()
        Q, policy, target, entropy = _core.mop_evaluate(
            self.env.kernel_env([self.env]),
            self._options(self.epoch),
            terminal,
            _shift_custom(reward, len(custom)),
            custom + reward_custom,
            self.theta,
            0,
            x,
            ctx,
        )
        return {"Q": Q, "policy": policy, "target": target, "entropy": entropy}

    def policy(self, states, context=0) -> np.ndarray:
        """The action distribution (m, A) at states (m, d)."""
        return self.evaluate(states, context)["policy"]

    def rollout(
        self, trajectories: int = 10, horizon: int = 1000, context=0, x0=None, seed=None
    ) -> Rollout:
        """Trajectories of the current policy, without learning (see :func:`rollout`)."""
        return rollout([self], trajectories, horizon, context=context, x0=x0, seed=seed)[0]

    def train(
        self,
        epochs: int,
        trajectories: int = 10,
        horizon: int = 1000,
        *,
        contexts=None,
        progress: bool = True,
        checkpoint: PathLike | None = None,
        checkpoint_every: int = 10,
        resume: PathLike | None = None,
        callback: Callable[[int, Sequence[MopHistory]], bool | None] | None = None,
        allow_mismatch: bool = False,
    ) -> MopHistory:
        """Train for ``epochs`` epochs (see :func:`train`); returns the history."""
        return train(
            [self],
            epochs,
            trajectories,
            horizon,
            contexts=contexts,
            progress=progress,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume,
            callback=callback,
            allow_mismatch=allow_mismatch,
        )[0]

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "theta": self.theta,
            "adam_m": self.adam_m,
            "adam_v": self.adam_v,
            "adam_step": np.int64(self.adam_step),
            "epoch": np.int64(self.epoch),
            "x0": self.x0,
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        theta = np.asarray(state["theta"])
        if theta.shape != self.theta.shape:
            raise ValueError(
                f"state: theta has shape {theta.shape}, this agent needs {self.theta.shape}"
            )
        self.theta = theta.astype(self.env.dtype).copy()
        self.adam_m = np.asarray(state["adam_m"]).astype(self.env.dtype).copy()
        self.adam_v = np.asarray(state["adam_v"]).astype(self.env.dtype).copy()
        self.adam_step = int(state["adam_step"])
        self.epoch = int(state["epoch"])
        self.x0 = np.asarray(state["x0"]).astype(self.env.dtype).copy()


class MOPAgent(_Agent):
    """The maximum-occupancy agent: V(x) = ln sum_a exp(gamma V(x'_a) + beta s_a + mu r_a),
    V = 0 at terminal states, policy the exact softmax over the 2^M successors.

    env : RNNEnv or CartPole. hidden : value-network ReLU units. gamma : discount.
    beta : weight of the state-entropy term ``s_a = dt Tr grad f`` (RNN only). mu, reward :
    weight and region (a set, e.g. ``~Box(0.05, center=(0.1, 0.1))``) of an extrinsic reward
    1 for successors inside it. lr, updates, batch_size : Adam steps per epoch on
    minibatches of visited states. x0 : the fixed initial state (default: drawn from seed).
    scale : the value network's output scale (default ``ln(A) / (1 - gamma)``, V's ceiling).
    """

    agent = "mop"

    def __init__(
        self,
        env: _Env,
        *,
        hidden: int = 128,
        gamma: float = 0.98,
        beta: float = 0.0,
        mu: float = 0.0,
        reward: TerminalSet | None = None,
        lr: float = 1e-3,
        updates: int = 100,
        batch_size: int = 256,
        x0=None,
        scale: float | None = None,
        seed: int = 0,
    ) -> None:
        self.beta = _validate.scalar("beta", beta)
        if self.beta != 0 and not getattr(env, "state_entropy", False):
            raise ValueError("beta: the state-entropy term is defined for RNNEnv only")
        super().__init__(
            env, hidden=hidden, gamma=gamma, mu=mu, reward=reward, lr=lr, updates=updates,
            batch_size=batch_size, x0=x0, scale=scale, seed=seed,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"MOPAgent({self.env!r}, hidden={self.hidden}, gamma={self.gamma}, "
            f"beta={self.beta}, mu={self.mu}, epoch={self.epoch})"
        )


class RAgent(_Agent):
    """The reward-maximising agent: reward 1 for every non-terminal successor (plus
    ``mu`` inside ``reward``), epsilon-greedy policy over the successors' values, value
    target ``(1 - eps) max_a Q + eps mean_a Q`` with ``Q = r + gamma V(x'_a)``.

    eps : exploration at epoch 0; eps_decay : factor per epoch (spec: 0.9 for the box task,
    1 for a fixed eps); eps_min : floor. Other arguments as :class:`MOPAgent` (default
    scale ``1 / (1 - gamma)``).
    """

    agent = "r"

    def __init__(
        self,
        env: _Env,
        *,
        eps: float = 0.3,
        eps_decay: float = 1.0,
        eps_min: float = 0.0,
        hidden: int = 128,
        gamma: float = 0.98,
        mu: float = 0.0,
        reward: TerminalSet | None = None,
        lr: float = 1e-3,
        updates: int = 100,
        batch_size: int = 256,
        x0=None,
        scale: float | None = None,
        seed: int = 0,
    ) -> None:
        self.eps = _validate.scalar("eps", eps, nonneg=True)
        self.eps_decay = _validate.scalar("eps_decay", eps_decay, positive=True)
        self.eps_min = _validate.scalar("eps_min", eps_min, nonneg=True)
        if self.eps > 1 or self.eps_min > 1:
            raise ValueError("eps, eps_min: must be <= 1")
        super().__init__(
            env, hidden=hidden, gamma=gamma, mu=mu, reward=reward, lr=lr, updates=updates,
            batch_size=batch_size, x0=x0, scale=scale, seed=seed,
        )  # fmt: skip

    def eps_at(self, epoch: int) -> float:
        return max(self.eps_min, min(1.0, self.eps * self.eps_decay**epoch))

    def __repr__(self) -> str:
        return (
            f"RAgent({self.env!r}, eps={self.eps}, eps_decay={self.eps_decay}, "
            f"hidden={self.hidden}, gamma={self.gamma}, epoch={self.epoch})"
        )


# ------------------------------------------------------------------------------------------
# Batched epochs


def _shift_custom(program: dict | None, offset: int) -> dict | None:
    """A reward program whose custom atoms follow the terminal program's in one list."""
    if program is None or offset == 0:
        return program
    out = dict(program)
    out["index"] = program["index"].copy()
    out["index"][program["kind"] == 6, 0] += offset
    return out


def _check_agents(agents) -> list[_Agent]:
    agents = list(agents) if isinstance(agents, (list, tuple)) else [agents]
    if not agents:
        raise ValueError("agents: need at least one agent")
    for a in agents:
        if not isinstance(a, _Agent):
            raise TypeError(f"agents: expected MOPAgent or RAgent, got {type(a).__name__}")
    first = agents[0]
    for a in agents[1:]:
        if not first.env.compatible(a.env) or a._signature() != first._signature():
            raise ValueError(
                "agents: all agents of one call need the same class, options and environment "
                "sizes (network weights and seeds may differ)"
            )
        if repr(a.env.terminal) != repr(first.env.terminal) or repr(a.reward) != repr(first.reward):
            raise ValueError("agents: all agents of one call need the same terminal sets")
    if len({id(a) for a in agents}) != len(agents):
        raise ValueError("agents: an agent appears twice")
    return agents


def _call(agents, *, trajectories, horizon, contexts, x0s, seeds, stream0, epoch, fit):
    first = agents[0]
    env = first.env
    terminal, custom = env.programs()
    reward, reward_custom = first._reward_program()
    P = len(agents)
    theta = np.ascontiguousarray(np.stack([a.theta for a in agents]))
    kwargs = {}
    if fit:
        kwargs = {
            "adam_m": np.ascontiguousarray(np.stack([a.adam_m for a in agents])),
            "adam_v": np.ascontiguousarray(np.stack([a.adam_v for a in agents])),
            "adam_step": np.array([a.adam_step for a in agents], dtype=np.int64),
        }
    out = _core.mop_epoch(
        env.kernel_env([a.env for a in agents]),
        first._options(epoch),
        terminal,
        _shift_custom(reward, len(custom)),
        custom + reward_custom,
        theta,
        np.ascontiguousarray(x0s, dtype=env.dtype),
        np.ascontiguousarray(np.broadcast_to(contexts, (P, trajectories)), dtype=np.int64),
        horizon,
        np.asarray(seeds, dtype=np.uint64),
        stream0,
        _core.MopFitOptions(lr=first.lr, updates=first.updates, batch_size=first.batch_size)
        if fit
        else None,
        **kwargs,
    )
    if fit:
        for p, a in enumerate(agents):
            a.theta = theta[p].copy()
            a.adam_m = kwargs["adam_m"][p].copy()
            a.adam_v = kwargs["adam_v"][p].copy()
            a.adam_step = int(kwargs["adam_step"][p])
    return out


def _rollouts(out: dict, contexts: np.ndarray, n_bits: int) -> list[Rollout]:
    return [
        Rollout(
            states=out["states"][p],
            actions=out["actions"][p],
            entropy=out["entropy"][p],
            targets=out["targets"][p],
            weights=out["weights"][p],
            lifetime=out["lifetime"][p],
            terminated=out["terminated"][p],
            context=contexts[p],
            n_bits=n_bits,
        )
        for p in range(out["lifetime"].shape[0])
    ]


def _x0s(agents, x0, trajectories) -> np.ndarray:
    env = agents[0].env
    if x0 is None:
        base = np.stack([a.x0 for a in agents])[:, None, :]
        return np.broadcast_to(base, (len(agents), trajectories, env.dim))
    arr = np.asarray(x0, dtype=env.dtype)
    for shape in ((env.dim,), (trajectories, env.dim), (len(agents), trajectories, env.dim)):
        if arr.shape == shape:
            return np.broadcast_to(arr, (len(agents), trajectories, env.dim))
    raise ValueError(
        f"x0: expected ({env.dim},), ({trajectories}, {env.dim}) or "
        f"({len(agents)}, {trajectories}, {env.dim}), got {arr.shape}"
    )


def rollout(
    agents, trajectories: int = 10, horizon: int = 1000, *, context=0, x0=None, seed=None
) -> list[Rollout]:
    """Trajectories of each agent's current policy, without learning, in one C++ call.

    trajectories, horizon : B trajectories of at most T steps each. context : int or (B,)
    contexts. x0 : None (each agent's own x0), (d,), (B, d) or (P, B, d). seed : None
    (the agent's seed) or an int; evaluation streams never coincide with training's.
    Returns one :class:`Rollout` per agent.
    """
    agents = _check_agents(agents)
    trajectories = _validate.integer("trajectories", trajectories, minimum=1)
    horizon = _validate.integer("horizon", horizon, minimum=0)
    contexts = _contexts(agents, context, trajectories)
    seeds = [a.seed if seed is None else _validate.seed("seed", seed) for a in agents]
    out = _call(
        agents, trajectories=trajectories, horizon=horizon, contexts=contexts,
        x0s=_x0s(agents, x0, trajectories), seeds=seeds, stream0=_ROLLOUT_STREAM,
        epoch=agents[0].epoch, fit=False,
    )  # fmt: skip
    return _rollouts(out, contexts, agents[0].env.n_bits)


def _contexts(agents, context, trajectories) -> np.ndarray:
    n_ctx = agents[0].env.n_contexts
    c = np.broadcast_to(np.asarray(context, dtype=np.int64), (trajectories,))
    if np.any(c < 0) or np.any(c >= n_ctx):
        raise ValueError(f"context: must lie in 0..{n_ctx - 1}")
    return np.broadcast_to(c, (len(agents), trajectories)).copy()


def train(
    agents,
    epochs: int,
    trajectories: int = 10,
    horizon: int = 1000,
    *,
    contexts=None,
    progress: bool = True,
    checkpoint: PathLike | None = None,
    checkpoint_every: int = 10,
    resume: PathLike | None = None,
    callback: Callable[[int, Sequence[MopHistory]], bool | None] | None = None,
    allow_mismatch: bool = False,
) -> list[MopHistory]:
    """Train agents together, one C++ call per epoch (rollouts, targets, Adam updates).

    agents : MOPAgent or RAgent objects of one class with the same options (their networks,
        initial states and seeds may differ). epochs : the total number of epochs (a
        resumed run continues up to it). trajectories, horizon : per epoch, B trajectories
        from each agent's x0 of at most T steps.
    contexts : for environments with several terminal sets, the context of each epoch:
        None (epoch e uses e mod n_contexts), an int, or a sequence (one per epoch).
    progress : tqdm bar. checkpoint, checkpoint_every : write every agent's state and the
        histories every k epochs (and at the end) to this ``.npz``. resume : continue from
        such a file (the agents must be built as for the first run: their options, seeds,
        initial states, environments with their networks, and terminal and reward sets are
        fingerprinted in the checkpoint and verified, a difference being a ValueError naming
        it); the continuation is bitwise identical to an uninterrupted run.
        callback(epoch, histories) : called after each epoch; returning True stops.
    allow_mismatch : resume even when the agents, environments or arguments differ from
        the checkpoint's (a RuntimeWarning lists the differences); the number of agents and
        their value networks' sizes must still match.
    Returns one :class:`MopHistory` per agent.
    """
    agents = _check_agents(agents)
    epochs = _validate.integer("epochs", epochs, minimum=0)
    trajectories = _validate.integer("trajectories", trajectories, minimum=1)
    horizon = _validate.integer("horizon", horizon, minimum=1)
    checkpoint_every = _validate.integer("checkpoint_every", checkpoint_every, minimum=1)
    checkpoint = check_checkpoint_folder(checkpoint)
    allow_mismatch = check_allow_mismatch(allow_mismatch)
    n_ctx = agents[0].env.n_contexts
    schedule = _epoch_contexts(contexts, epochs, n_ctx)
    args = {"epochs": epochs, "trajectories": trajectories, "horizon": horizon}
    histories = [MopHistory() for _ in agents]
    elapsed = 0.0
    if resume is not None:
        histories, elapsed = _load(resume, agents, args, allow_mismatch)
    start = agents[0].epoch
    if any(a.epoch != start for a in agents):
        raise ValueError("agents: all agents of one call must be at the same epoch")
    bar = progress_bar(progress, epochs, f"{agents[0].agent.upper()} agents", "epoch", start)
    t0 = time.perf_counter() - elapsed
    saved_at = start
    try:
        for epoch in range(start, epochs):
            ctx = schedule[epoch]
            out = _call(
                agents, trajectories=trajectories, horizon=horizon,
                contexts=np.full((len(agents), trajectories), ctx, dtype=np.int64),
                x0s=_x0s(agents, None, trajectories), seeds=[a.seed for a in agents],
                stream0=epoch * _EPOCH_STREAM, epoch=epoch, fit=True,
            )  # fmt: skip
            wall = time.perf_counter() - t0
            for p, (agent, hist) in enumerate(zip(agents, histories)):
                agent.epoch = epoch + 1
                steps = out["actions"][p] >= 0
                hist._append(
                    lifetime=out["lifetime"][p].copy(),
                    entropy=float(out["entropy"][p][steps].mean()) if steps.any() else 0.0,
                    loss=float(out["losses"][p].mean()) if out["losses"].shape[1] else 0.0,
                    eps=agent.eps_at(epoch) if agent.agent == "r" else float("nan"),
                    context=ctx,
                    wall_time=wall,
                )
            if bar is not None:
                bar.update(1)
                life = np.mean([h.lifetime[-1].mean() for h in histories])
                bar.set_postfix(lifetime=f"{life:.0f}", entropy=f"{histories[0].entropy[-1]:.2f}")
            stop = bool(callback(epoch + 1, histories)) if callback is not None else False
            done = epoch + 1
            if checkpoint is not None and (done % checkpoint_every == 0 or stop):
                _save(checkpoint, agents, histories, args, wall)
                saved_at = done
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None and saved_at != agents[0].epoch:
        _save(checkpoint, agents, histories, args, time.perf_counter() - t0)
    return histories


def _epoch_contexts(contexts, epochs: int, n_ctx: int) -> np.ndarray:
    if contexts is None:
        return np.arange(epochs) % n_ctx
    c = np.asarray(contexts, dtype=np.int64)
    if c.ndim == 0:
        c = np.full(epochs, int(c))
    if c.shape != (epochs,):
        raise ValueError(f"contexts: expected an int or {epochs} values, got shape {c.shape}")
    if np.any(c < 0) or np.any(c >= n_ctx):
        raise ValueError(f"contexts: must lie in 0..{n_ctx - 1}")
    return c


# ------------------------------------------------------------------------------------------
# Checkpoints: every agent's state and history in one .npz, written atomically.

_FORMAT = "flexrnn-mop-checkpoint"
_FORMAT_VERSION = 2  # 2: fingerprints of the agents (1: files without format_version)


def _experiment(agents) -> dict:
    return {f"agent{p}": a for p, a in enumerate(agents)}


def _save(path: PathLike, agents, histories, args: dict, wall: float) -> None:
    path = Path(path)
    meta = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "flexrnn_version": __version__,
        "agents": [repr(a) for a in agents],
        "seeds": [a.seed for a in agents],
        "args": args,
        "wall_time": wall,
        "experiment": {k: fingerprint(v) for k, v in _experiment(agents).items()},
    }
    content = {"__meta__": np.array(json.dumps(meta))}
    for p, (a, h) in enumerate(zip(agents, histories)):
        content.update({f"agent{p}/{k}": v for k, v in a.state_dict().items()})
        content.update({f"hist{p}/{k}": v for k, v in h.as_dict().items()})
    atomic_savez(path, content)


def _load(
    path: PathLike, agents, args: dict, allow_mismatch: bool = False
) -> tuple[list[MopHistory], float]:
    """Read a MOP checkpoint into ``agents`` (their state) after verifying that it was
    written by these agents; returns the histories and the elapsed wall time. Every
    malformed file is a ValueError naming it; array shapes are checked from the headers
    against the agents before any data is read."""
    path = Path(path)
    remove_stale_temporaries(path)
    if not path.is_file():
        raise ValueError(f"resume: no checkpoint file at {path}")
    with NpzReader(path, "flexrnn MOP checkpoint") as f:
        meta = f.meta()
        version = f.check_format(meta, _FORMAT, _FORMAT_VERSION)
        for key, kind in (("agents", list), ("seeds", list), ("args", dict)):
            if not isinstance(meta.get(key), kind):
                f.fail(f"has no {key} in its metadata")
        if not isinstance(meta.get("wall_time"), (int, float)):
            f.fail("has no wall_time in its metadata")
        if len(meta["agents"]) != len(agents):
            raise ValueError(
                f"resume: the checkpoint holds {len(meta['agents'])} agents, not {len(agents)}"
            )
        experiment = meta.get("experiment") if version >= 2 else None
        if version >= 2 and not (
            isinstance(experiment, dict)
            and all(isinstance(v, dict) and "sha256" in v for v in experiment.values())
        ):
            f.fail("has malformed agent fingerprints in its metadata")
        lines = [line for key, line in mismatches(meta["args"], args) if key != "epochs"]
        if meta["seeds"] != [a.seed for a in agents]:
            lines.append(
                f"seeds: {meta['seeds']} in the checkpoint, {[a.seed for a in agents]} now"
            )
        found = experiment_mismatches(experiment, _experiment(agents))
        if found is None:
            warnings.warn(
                f"resume: the MOP checkpoint {path} (format 1) records no fingerprint of the "
                "agents and environments: it cannot be verified that they are those of the "
                "interrupted run",
                RuntimeWarning,
                stacklevel=3,
            )
        lines.extend(found or [])
        if lines:
            text = f"the MOP checkpoint {path} was written by other agents: " + "; ".join(lines)
            if not allow_mismatch:
                raise ValueError(f"resume: {text}. Pass allow_mismatch=True to continue anyway.")
            warnings.warn(f"resume: {text} (continuing: allow_mismatch=True)", RuntimeWarning,
                          stacklevel=3)  # fmt: skip
        _check_declared(f, agents)
        histories = []
        states = []
        for p, a in enumerate(agents):
            states.append({k: f.read(f"agent{p}/{k}") for k in a.state_dict()})
            histories.append(
                MopHistory.from_dict({k: f.read(f"hist{p}/{k}") for k in MopHistory.FIELDS})
            )
    for a, state in zip(agents, states):
        a.load_state_dict(state)
    return histories, float(meta["wall_time"])


def _check_declared(f: NpzReader, agents) -> None:
    """Every array of a MOP checkpoint, from its header: the names, and shapes that fit the
    agents (theta and Adam's moments of the value network's size, x0 of the state's, one
    history row per epoch and a lifetime per trajectory)."""
    expected: dict[str, tuple] = {}
    for p, a in enumerate(agents):
        expected.update({f"agent{p}/{k}": np.shape(v) for k, v in a.state_dict().items()})
    records = [f"hist{p}/{k}" for p in range(len(agents)) for k in MopHistory.FIELDS]
    extra = [k for k in f.members if k != "__meta__" and k not in expected and k not in records]
    missing = [k for k in [*expected, *records] if k not in f.members]
    if missing or extra:
        f.fail(f"does not fit these agents: missing {missing}, unexpected {extra}")
    for key, shape in expected.items():
        f.check_dtype(key, ("f", "i", "u") if shape == () else agents[0].env.dtype)
        f.check_shape(key, shape)
    for p in range(len(agents)):
        epochs = f.members[f"hist{p}/entropy"].shape[:1] or (0,)
        for k in MopHistory.FIELDS:
            key = f"hist{p}/{k}"
            f.check_dtype(key, ("f", "i", "u", "b"))
            if k == "lifetime" and epochs != (0,):
                f.check_shape(key, (*epochs, None))
            else:
                f.check_shape(key, epochs)
