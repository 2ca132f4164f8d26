"""NeuroMOP: the C++ rollouts, evaluation, terminal programs and value fit against the NumPy
reference (flexrnn.reference.mop), the fitted value against exact value iteration, and the
drivers' invariants (threads, batching, resume) and bad input."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from flexrnn import _core
from flexrnn.mop import agents as agents_module
from flexrnn.mop.terminal import compile_sets
from flexrnn.reference import mop as ref
from hypothesis import given, settings
from hypothesis import strategies as st

ROLLOUT_STREAM = agents_module._ROLLOUT_STREAM


def _env(n=6, n_bits=3, g=1.5, rho=1.0, dt=0.2, seed=0, dtype="float64", **kw):
    kw.setdefault("terminal", fr.mop.Energy(0.52))
    return fr.mop.RNNEnv.random(
        n=n, n_bits=n_bits, g=g, rho=rho, dt=dt, seed=seed, dtype=dtype, **kw
    )


def _ref_env(env):
    return {
        "kind": "rnn",
        "W": env.W,
        "b": env.net.b,
        "K": env.K,
        "rho": env.rho,
        "alpha": env.alpha,
        "phi": env.net.phi,
    }


def _randomise(agent, seed, spread=1.0):
    """A non-trivial fixed value network (the default starts at V = 0)."""
    rng = np.random.default_rng(seed)
    agent.theta = (spread * rng.normal(0, 0.5, agent.theta.shape)).astype(agent.theta.dtype)


def _ref_kwargs(agent):
    program, custom = compile_sets(agent.env.terminal, agent.env.dim)
    reward = None
    if agent.reward is not None and agent.mu != 0:
        reward, _ = compile_sets([agent.reward], agent.env.dim)
    return {
        "hidden": agent.hidden,
        "scale": agent.scale,
        "agent": agent.agent,
        "gamma": agent.gamma,
        "beta": getattr(agent, "beta", 0.0),
        "mu": agent.mu,
        "eps": agent.eps_at(agent.epoch),
        "program": program,
        "reward_program": reward,
        "n_contexts": agent.env.n_contexts,
        "custom": custom,
    }


# ------------------------------------------------------------------------------------------
# Terminal programs


def _sets(draw_index, d):
    i, j = draw_index
    return [
        fr.mop.Energy(0.15),
        fr.mop.Threshold(i, 0.3, center=0.1),
        fr.mop.Readout(np.linspace(-1, 1, d), 0.2),
        fr.mop.Readout(np.linspace(-1, 1, d), 0.2, below=True),
        fr.mop.Box(0.25, neurons=(i, j), center=(0.05, -0.05)),
        fr.mop.Corridor(neurons=(i, j)),
        ~fr.mop.Box(0.05, neurons=(i, j), center=(0.1, 0.1)),
        fr.mop.Energy(0.15) | (fr.mop.Threshold(i, 0.2) & ~fr.mop.Threshold(j, 0.1)),
        *fr.mop.shapes(neurons=(i, j)),
    ]


@settings(max_examples=30, deadline=None)
@given(
    d=st.integers(2, 6),
    m=st.integers(1, 40),
    seed=st.integers(0, 2**31),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_terminal_programs_match_reference(d, m, seed, dtype):
    rng = np.random.default_rng(seed)
    X = (rng.normal(0, 0.25, (m, d))).astype(dtype)
    i, j = rng.choice(d, 2, replace=False)
    sets = _sets((int(i), int(j)), d)
    program, custom = compile_sets(sets, d)
    for c, s in enumerate(sets):
        got = _core.mop_terminal(program, X, c, custom)
        want = ref.evaluate_program(program, X.astype(np.float64), c, custom)
        # an atom whose score rounds differently in float32 may flip: allow none in float64
        if dtype == "float64":
            np.testing.assert_array_equal(got, want, err_msg=repr(s))
        else:
            assert np.mean(got != want) <= 0.05, repr(s)
        np.testing.assert_array_equal(s.contains(X.astype(np.float64)), ref.evaluate_program(
            compile_sets([s], d)[0], X.astype(np.float64), 0, custom))  # fmt: skip


def test_shapes_match_their_formulas():
    g = np.linspace(-0.35, 0.35, 71) + 1.234e-4  # no grid point on a boundary
    x1, x2 = (a.ravel() for a in np.meshgrid(g, g))
    X = np.stack([x1, x2], axis=1)
    lp, lm = 0.2, 0.1
    formulas = {
        "square": (np.abs(x1) > lm) | (np.abs(x2) > lm),
        "plus": (np.abs(x1) > lp) | (np.abs(x2) > lp) | ((np.abs(x1) > lm) & (np.abs(x2) > lm)),
        "circle": np.sqrt(x1**2 + x2**2) > lp,
        "diamond": np.abs(x1) / lp + np.abs(x2) / lp > 1,
        "oval": (x1 / lp) ** 2 + (x2 / lm) ** 2 > 1,
        "heart": (x1**2 + x2**2 - lm) ** 3 - x1**2 * x2**3 > 0,
    }
    for name, want in formulas.items():
        np.testing.assert_array_equal(fr.mop.Shape(name).contains(X), want, err_msg=name)
    inside_corridor = (
        ((x1 + 0.15) ** 2 + x2**2 <= 0.01)
        | ((x1 - 0.15) ** 2 + x2**2 <= 0.01)
        | ((np.abs(x2) <= 0.01) & (np.abs(x1) <= 0.15))
    )
    np.testing.assert_array_equal(fr.mop.Corridor().contains(X), ~inside_corridor)


def test_custom_predicate_is_called_and_composes():
    calls = []

    def right_half(states):
        calls.append(states.shape)
        return states[:, 0] > 0

    s = fr.mop.Custom(right_half) & fr.mop.Threshold(1, 0.5)
    X = np.array([[1.0, 1.0], [-1.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(s.contains(X), [True, False, False])
    assert calls == [(3, 2)]


def test_custom_predicate_errors_reach_python():
    def broken(states):
        if len(states) > 1:  # the successors, not the initial state
            raise RuntimeError("boom")
        return np.zeros(len(states), bool)

    env = _env(terminal=fr.mop.Energy(0.52) | fr.mop.Custom(broken))
    agent = fr.mop.MOPAgent(env, hidden=4, seed=0)
    with pytest.raises(RuntimeError, match="boom"):
        agent.rollout(trajectories=2, horizon=3)
    bad = _env(terminal=fr.mop.Custom(lambda s: np.zeros(3, bool)))
    with pytest.raises(ValueError, match="custom predicate"):
        fr.mop.MOPAgent(bad, hidden=4, seed=0)


# ------------------------------------------------------------------------------------------
# One step and whole rollouts vs the reference


def _agents(env):
    region = ~fr.mop.Box(0.3, neurons=(0, 1), center=(0.1, 0.1))
    return [
        fr.mop.MOPAgent(env, hidden=5, gamma=0.9, seed=3),
        fr.mop.MOPAgent(env, hidden=5, gamma=0.9, beta=0.4, mu=0.7, reward=region, seed=4),
        fr.mop.RAgent(env, hidden=5, gamma=0.9, eps=0.3, seed=5),
        fr.mop.RAgent(env, hidden=5, gamma=0.9, eps=0.2, mu=0.5, reward=region, seed=6),
    ]


@pytest.mark.parametrize("which", range(4))
def test_evaluate_matches_reference(which):
    env = _env()
    agent = _agents(env)[which]
    _randomise(agent, which)
    X = np.random.default_rng(1).normal(0, 0.2, (7, env.dim))
    got = agent.evaluate(X)
    want = ref.evaluate(_ref_env(env), agent.theta, X, **_ref_kwargs(agent))
    for k in ("Q", "policy", "target", "entropy"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(got["policy"].sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("which", range(4))
def test_rollout_matches_reference(which):
    env = _env()
    agent = _agents(env)[which]
    _randomise(agent, 10 + which, spread=0.15)
    roll = agent.rollout(trajectories=6, horizon=40)
    x0 = np.broadcast_to(agent.x0, (6, env.dim))
    want = ref.rollout(
        _ref_env(env), agent.theta, horizon=40, x0=x0, context=np.zeros(6, int),
        seed=agent.seed, stream0=ROLLOUT_STREAM, **_ref_kwargs(agent),
    )  # fmt: skip
    if which != 2:  # the greedy R agent without reward region happens to survive every time
        assert roll.terminated.any() and not roll.terminated.all(), "test needs both endings"
    np.testing.assert_array_equal(roll.actions, want["actions"])
    np.testing.assert_array_equal(roll.lifetime, want["lifetime"])
    np.testing.assert_array_equal(roll.terminated, want["terminated"])
    np.testing.assert_allclose(roll.states, want["states"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(roll.targets, want["targets"], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(roll.entropy, want["entropy"], rtol=1e-11, atol=1e-11)
    np.testing.assert_array_equal(roll.weights, want["weights"])


def test_noisy_rollout_matches_reference():
    env = _env(noise_std=0.1, noise_samples=3)
    agent = fr.mop.MOPAgent(env, hidden=5, gamma=0.9, seed=2)
    _randomise(agent, 2)
    roll = agent.rollout(trajectories=4, horizon=30)
    want = ref.rollout(
        _ref_env(env), agent.theta, horizon=30, x0=np.broadcast_to(agent.x0, (4, env.dim)),
        context=np.zeros(4, int), seed=agent.seed, stream0=ROLLOUT_STREAM, noise_std=0.1,
        noise_samples=3, **_ref_kwargs(agent),
    )  # fmt: skip
    np.testing.assert_array_equal(roll.actions, want["actions"])
    np.testing.assert_allclose(roll.states, want["states"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(roll.targets, want["targets"], rtol=1e-11, atol=1e-11)


def test_float32_follows_float64():
    env64 = _env()
    env32 = _env(dtype="float32")
    a64 = fr.mop.MOPAgent(env64, hidden=5, gamma=0.9, seed=3)
    a32 = fr.mop.MOPAgent(env32, hidden=5, gamma=0.9, seed=3)
    _randomise(a64, 0)
    a32.theta = a64.theta.astype(np.float32)
    X = np.random.default_rng(0).normal(0, 0.2, (5, env64.dim))
    e64, e32 = a64.evaluate(X), a32.evaluate(X)
    np.testing.assert_allclose(e32["target"], e64["target"], rtol=1e-5)
    np.testing.assert_allclose(e32["policy"], e64["policy"], atol=1e-5)


def test_contexts_select_programs_and_inputs():
    env = _env(terminal=fr.mop.shapes(neurons=(0, 1)))
    agent = fr.mop.MOPAgent(env, hidden=5, gamma=0.9, seed=1)
    assert agent.d_in == env.dim + 6
    _randomise(agent, 1)
    for c in (0, 3, 5):
        roll = agent.rollout(trajectories=3, horizon=25, context=c)
        want = ref.rollout(
            _ref_env(env), agent.theta, horizon=25, x0=np.broadcast_to(agent.x0, (3, env.dim)),
            context=np.full(3, c), seed=agent.seed, stream0=ROLLOUT_STREAM,
            **_ref_kwargs(agent),
        )  # fmt: skip
        np.testing.assert_array_equal(roll.actions, want["actions"])
        np.testing.assert_allclose(roll.targets, want["targets"], rtol=1e-11, atol=1e-11)


def test_cartpole_matches_reference():
    rng = np.random.default_rng(0)
    s = rng.normal(0, [0.5, 3, 0.3, 2], (50, 4))
    f = rng.choice([-40.0, 40.0], 50)
    np.testing.assert_allclose(_core.cartpole_step(s, f), ref.cartpole_step(s, f), rtol=1e-13)
    env = fr.mop.CartPole()
    agent = fr.mop.MOPAgent(env, hidden=8, gamma=0.95, seed=0)
    _randomise(agent, 0)
    roll = agent.rollout(trajectories=3, horizon=60)
    want = ref.rollout(
        {"kind": "cartpole"}, agent.theta, horizon=60, x0=np.broadcast_to(agent.x0, (3, 4)),
        context=np.zeros(3, int), seed=agent.seed, stream0=ROLLOUT_STREAM, **_ref_kwargs(agent),
    )  # fmt: skip
    np.testing.assert_array_equal(roll.actions, want["actions"])
    np.testing.assert_allclose(roll.states, want["states"], rtol=1e-12, atol=1e-12)


def test_gym_interface_steps_like_the_kernel():
    env = _env()
    state, info = env.reset(seed=0)
    k = 5
    nxt, reward, terminated, truncated, _ = env.step(k)
    np.testing.assert_allclose(nxt, env.successors(state)[k], rtol=1e-12)
    X, _ = ref.rnn_successors(env.W, env.net.b, env.K, state, rho=env.rho, alpha=env.alpha,
                              phi="tanh")  # fmt: skip
    np.testing.assert_allclose(env.successors(state), X, rtol=1e-12)
    assert reward == (0.0 if terminated else 1.0) and truncated is False
    cart = fr.mop.CartPole()
    s, _ = cart.reset(seed=1)
    s2, *_ = cart.step(np.array([1]))
    np.testing.assert_allclose(s2, ref.cartpole_step(s, 40.0), rtol=1e-13)


# ------------------------------------------------------------------------------------------
# Value network and fit


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 12), d_in=st.integers(1, 6), hidden=st.integers(1, 7),
       seed=st.integers(0, 2**31))  # fmt: skip
def test_value_gradient_matches_reference_and_finite_differences(m, d_in, hidden, seed):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 0.7, hidden * (d_in + 2) + 1)
    Z, y, c = rng.normal(size=(m, d_in)), rng.normal(size=m), rng.uniform(0.1, 1, m)
    loss, grad = _core.mop_value_loss_and_grad(theta, Z, y, c, hidden)
    want_loss, want_grad = ref.value_loss_and_grad(theta, Z, y, c, hidden)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        _core.mop_value(theta, Z, hidden), ref.value_forward(theta, Z, hidden), rtol=1e-12
    )
    h = 1e-6
    fd = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        fd[i] = (
            _core.mop_value_loss_and_grad(theta + e, Z, y, c, hidden)[0]
            - _core.mop_value_loss_and_grad(theta - e, Z, y, c, hidden)[0]
        ) / (2 * h)
    # a ReLU kink inside (theta - h, theta + h) breaks the finite difference; it has
    # probability ~ h per unit and example, so allow none but check loosely
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("agent_cls", [fr.mop.MOPAgent, fr.mop.RAgent])
def test_epoch_fit_matches_reference(agent_cls):
    env = _env()
    agent = agent_cls(env, hidden=6, gamma=0.9, seed=7, updates=5, batch_size=16, lr=1e-2)
    _randomise(agent, 7, spread=0.5)
    theta0 = agent.theta.copy()
    kw = _ref_kwargs(agent)
    agent.train(epochs=1, trajectories=5, horizon=30, progress=False)
    roll = ref.rollout(
        _ref_env(env), theta0, horizon=30, x0=np.broadcast_to(agent.x0, (5, env.dim)),
        context=np.zeros(5, int), seed=agent.seed, stream0=0, **kw,
    )  # fmt: skip
    theta, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    _, step = ref.fit(
        theta, m, v, 0, roll, hidden=6, scale=agent.scale, lr=1e-2, updates=5, batch_size=16,
        seed=agent.seed, fit_stream=2**19, context=np.zeros(5, int),
    )  # fmt: skip
    assert step == agent.adam_step == 5
    np.testing.assert_allclose(agent.theta, theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(agent.adam_v, v, rtol=1e-9, atol=1e-15)


def test_fitted_value_approaches_exact_value_iteration():
    """A 1-unit ReLU network with alpha = 1 moves on the grid x = 0.1 i: x' = max(0, x +
    0.1 (a_1 + 2 a_2)), terminal beyond 1.05. Exact soft value iteration on the 11 grid
    states is the fixed point that fitted value iteration (the agent's training) approaches."""
    net = fr.RateRNN(
        np.ones((1, 1)), np.array([[0.1, 0.2]]), np.zeros((1, 1)), tau=1.0, dt=1.0,
        phi="relu", form="rate",
    )  # fmt: skip
    env = fr.mop.RNNEnv(net, rho=1.0, terminal=fr.mop.Threshold(0, 1.05))
    gamma = 0.7
    steps = np.array([-3, -1, 1, 3])  # the four joint actions, k = 0..3, in grid units
    next_state = np.maximum(0, np.arange(14)[:, None] + steps[None, :])
    next_state = np.minimum(next_state, 13)
    terminal = np.arange(14) > 10
    exact = ref.soft_value_iteration(next_state, terminal, gamma)[:11]
    agent = fr.mop.MOPAgent(env, hidden=64, gamma=gamma, x0=[0.0], seed=0, updates=200,
                            batch_size=128, lr=3e-3)  # fmt: skip
    grid = 0.1 * np.arange(11)[:, None]
    err0 = np.max(np.abs(agent.value(grid) - exact))
    agent.train(epochs=80, trajectories=10, horizon=100, progress=False)
    err = np.abs(agent.value(grid) - exact)
    assert err0 > 2.0
    # x = 1.0 (the last grid state) is visited least and sits on the value's sharpest drop
    assert np.max(err[:10]) < 0.05 * np.max(exact) and err[10] < 0.1 * np.max(exact), err
    # and the kernel's one-step targets at the grid, from the fitted network, agree with
    # the exact Bellman backup to the same accuracy
    target = agent.evaluate(grid)["target"]
    assert np.max(np.abs(target - exact)) < 0.1 * np.max(exact), target - exact


# ------------------------------------------------------------------------------------------
# Driver invariants


def test_results_do_not_depend_on_threads_or_batching():
    env_a, env_b = _env(seed=1), _env(seed=2)
    mk = lambda env, s: fr.mop.MOPAgent(env, hidden=8, gamma=0.9, seed=s, updates=3,  # noqa: E731
                                        batch_size=8)  # fmt: skip
    threads = fr.get_num_threads()
    try:
        fr.set_num_threads(1)
        alone = mk(env_b, 9)
        h_alone = alone.train(epochs=2, trajectories=5, horizon=30, progress=False)
        fr.set_num_threads(2)
        pair = [mk(env_a, 8), mk(env_b, 9)]
        h_pair = fr.mop.train(pair, epochs=2, trajectories=5, horizon=30, progress=False)
    finally:
        fr.set_num_threads(threads)
    np.testing.assert_array_equal(pair[1].theta, alone.theta)
    np.testing.assert_array_equal(h_pair[1].lifetime, h_alone.lifetime)


def test_resume_is_bitwise(tmp_path):
    env = _env()
    mk = lambda: fr.mop.RAgent(env, hidden=8, eps=0.5, eps_decay=0.9, gamma=0.9, seed=4,  # noqa: E731
                               updates=3, batch_size=8)  # fmt: skip
    full = mk()
    h_full = full.train(epochs=4, trajectories=4, horizon=25, progress=False)
    part = mk()
    part.train(epochs=2, trajectories=4, horizon=25, progress=False, checkpoint=tmp_path / "c.npz")
    again = mk()
    h = again.train(epochs=4, trajectories=4, horizon=25, progress=False,
                    resume=tmp_path / "c.npz")  # fmt: skip
    np.testing.assert_array_equal(again.theta, full.theta)
    np.testing.assert_array_equal(h.lifetime, h_full.lifetime)
    np.testing.assert_array_equal(h.eps, h_full.eps)
    assert len(h) == 4


# ------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_named_errors():
    env = _env()
    with pytest.raises(TypeError, match="env"):
        fr.mop.MOPAgent("not an env")
    with pytest.raises(ValueError, match="gamma"):
        fr.mop.MOPAgent(env, gamma=1.0)
    with pytest.raises(ValueError, match="x0"):
        fr.mop.MOPAgent(env, x0=np.zeros(3))
    with pytest.raises(ValueError, match="x0"):
        fr.mop.MOPAgent(env, x0=np.full(env.dim, np.nan))
    with pytest.raises(ValueError, match="x0: the initial state is terminal"):
        fr.mop.MOPAgent(env, x0=np.full(env.dim, 5.0))
    with pytest.raises(ValueError, match="reward"):
        fr.mop.MOPAgent(env, mu=0.5)
    with pytest.raises(ValueError, match="beta"):
        fr.mop.MOPAgent(fr.mop.CartPole(), beta=0.1)
    with pytest.raises(ValueError, match="eps"):
        fr.mop.RAgent(env, eps=1.5)
    agent = fr.mop.MOPAgent(env, hidden=4)
    with pytest.raises(ValueError, match="context"):
        agent.rollout(trajectories=2, horizon=3, context=1)
    with pytest.raises(ValueError, match="states"):
        agent.evaluate(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="trajectories"):
        agent.train(epochs=1, trajectories=0)
    with pytest.raises(ValueError, match="agents"):
        fr.mop.train([agent, fr.mop.MOPAgent(_env(n=5), hidden=4)], epochs=1)
    with pytest.raises(ValueError, match="agents"):
        fr.mop.train([agent, agent], epochs=1)
    with pytest.raises(ValueError, match="neurons"):
        fr.mop.Shape("circle", neurons=(0,))
    with pytest.raises(ValueError, match="name"):
        fr.mop.Shape("triangle")
    with pytest.raises(ValueError, match="Readout"):
        fr.mop.MOPAgent(_env(terminal=fr.mop.Readout(np.ones(3), 1.0)))
    with pytest.raises(ValueError, match="atom coordinate"):
        fr.mop.Threshold(7, 0.1).contains(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="net"):
        fr.mop.RNNEnv(fr.RateRNN.random(5, 2, 1, form="current"))
    with pytest.raises(ValueError, match="resume"):
        agent.train(epochs=1, resume="/nonexistent/file.npz", progress=False)


@settings(max_examples=25, deadline=None)
@given(
    theta_shape=st.integers(0, 60),
    horizon=st.integers(-2, 3),
    bad=st.sampled_from(["nan_x0", "shape_x0", "context", "theta", "none"]),
)
def test_kernel_never_crashes_on_bad_arrays(theta_shape, horizon, bad):
    env = _env()
    agent = fr.mop.MOPAgent(env, hidden=3)
    program, custom = env.programs()
    if bad == "theta" and theta_shape == agent.theta.size:
        theta_shape += 1  # a valid size is not bad input
    theta = np.zeros((1, theta_shape)) if bad == "theta" else agent.theta[None].copy()
    x0 = np.zeros((1, 2, env.dim))
    if bad == "nan_x0":
        x0[0, 0, 0] = np.nan
    if bad == "shape_x0":
        x0 = np.zeros((1, 2, env.dim + 1))
    ctx = np.full((1, 2), 3 if bad == "context" else 0, dtype=np.int64)
    args = (env.kernel_env([env]), agent._options(0), program, None, custom, theta, x0, ctx,
            horizon, np.zeros(1, np.uint64), 0, None)  # fmt: skip
    if bad == "none" and horizon >= 0:
        _core.mop_epoch(*args)
        return
    with pytest.raises(ValueError):
        _core.mop_epoch(*args)


def test_relu_network_rollout_matches_reference():
    env = _env(phi="relu", terminal=fr.mop.Energy(0.5))
    assert env.net.phi == "relu"
    agent = fr.mop.MOPAgent(env, hidden=5, gamma=0.9, beta=0.2, seed=8)
    _randomise(agent, 8, spread=0.15)
    roll = agent.rollout(trajectories=4, horizon=30)
    want = ref.rollout(
        _ref_env(env), agent.theta, horizon=30, x0=np.broadcast_to(agent.x0, (4, env.dim)),
        context=np.zeros(4, int), seed=agent.seed, stream0=ROLLOUT_STREAM, **_ref_kwargs(agent),
    )  # fmt: skip
    np.testing.assert_array_equal(roll.actions, want["actions"])
    np.testing.assert_allclose(roll.states, want["states"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(roll.targets, want["targets"], rtol=1e-11, atol=1e-11)
    # the ReLU default threshold of the spec
    assert fr.mop.RNNEnv.random(n=6, n_bits=2, phi="relu").terminal[0].level == 0.13


def _at_offset(a, offset):
    """A C-contiguous copy of a whose data starts `offset` elements into a fresh buffer."""
    buf = np.empty(a.size + 8, dtype=a.dtype)
    out = buf[offset : offset + a.size].reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_epoch_does_not_depend_on_where_buffers_start(dtype):
    """Vectorised products round differently with the buffer's alignment; the kernel copies
    what it multiplies into aligned storage, so a call's result is the same bit for bit."""
    env = _env(n=40, n_bits=3, g=2.0, dtype=dtype, terminal=fr.mop.Energy(0.3))
    agent = fr.mop.MOPAgent(env, hidden=16, gamma=0.9, seed=1)
    _randomise(agent, 1, spread=0.2)
    program, custom = env.programs()
    net = env.net
    outs = []
    for offset in range(4):
        params = _core.RateRNNParams(_at_offset(net.W, offset), _at_offset(net.W_in, offset),
                                     _at_offset(net.b, offset), net.W_out, net.b_out)  # fmt: skip
        e = _core.MopRnnEnv([params], net._options(), rho=env.rho)
        theta = _at_offset(agent.theta[None], offset)
        x0 = _at_offset(np.broadcast_to(agent.x0, (1, 3, env.dim)).copy(), offset)
        m, v = np.zeros_like(theta), np.zeros_like(theta)
        out = _core.mop_epoch(
            e, agent._options(0), program, None, custom, theta, x0,
            np.zeros((1, 3), np.int64), 60, np.ones(1, np.uint64), 0,
            _core.MopFitOptions(1e-2, 4, 16), m, v, np.zeros(1, np.int64),
        )  # fmt: skip
        outs.append((out, theta.copy()))
    for out, theta in outs[1:]:
        np.testing.assert_array_equal(out["actions"], outs[0][0]["actions"])
        np.testing.assert_array_equal(out["states"], outs[0][0]["states"])
        np.testing.assert_array_equal(out["targets"], outs[0][0]["targets"])
        np.testing.assert_array_equal(theta, outs[0][1])
