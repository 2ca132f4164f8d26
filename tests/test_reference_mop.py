"""Checks of the NeuroMOP reference (flexrnn.reference.mop) on its own: every piece against a
direct formula, a loop, finite differences or a closed form (no compiled core needed)."""

import numpy as np
import pytest
from flexrnn.reference import mop
from flexrnn.reference.learning import philox_uniform
from flexrnn.reference.phi import dphi, phi
from flexrnn.reference.rng import philox_normal
from hypothesis import given, settings
from hypothesis import strategies as st

numpy_seeds = st.integers(min_value=0, max_value=2**32 - 1)
SMOOTH_PHIS = ("tanh", "softplus", "shifted_tanh", "identity")


# ---------------------------------------------------------------------------------------------
# Helpers: programs and a small chaotic RNN environment


def make_program(atoms, contexts, weights=None, d=2):
    """Program dict from atoms [(kind, (i, j), params)] and one postfix code list per context,
    each a list of (op, arg) pairs."""
    code = [row for rows in contexts for row in rows]
    start = np.cumsum([0] + [len(rows) for rows in contexts])
    params = np.zeros((len(atoms), 4))
    for a, (_, _, p) in enumerate(atoms):
        params[a, : len(p)] = p
    return {
        "code": np.array(code, dtype=np.int32).reshape(-1, 2),
        "start": start.astype(np.int32),
        "kind": np.array([k for k, _, _ in atoms], dtype=np.int32),
        "index": np.array([ij for _, ij, _ in atoms], dtype=np.int64).reshape(-1, 2),
        "params": params,
        "weights": np.zeros((0, d)) if weights is None else np.asarray(weights, dtype=float),
    }


def box_program(half_width, d):
    """|x_0| > w or |x_1| > w (the box task's terminal set)."""
    atoms = [(mop.ABS, (0, 0), (0.0, half_width)), (mop.ABS, (1, 0), (0.0, half_width))]
    return make_program(atoms, [[(mop.PUSH, 0), (mop.PUSH, 1), (mop.OR, 0)]], d=d)


def rnn_env(rng, n=6, n_bits=3, g=2.0, alpha=0.5, rho=1.0, phi_name="tanh"):
    return {
        "kind": "rnn",
        "W": rng.normal(0, g / np.sqrt(n), (n, n)),
        "b": rng.normal(0, 0.1, n),
        "K": rng.uniform(0, 1, (n, n_bits)),
        "rho": rho,
        "alpha": alpha,
        "phi": phi_name,
    }


def random_theta(rng, d_in, hidden, std=0.3):
    return rng.normal(0, std, mop.n_value_parameters(d_in, hidden))


def rollout_setup(seed, agent="mop", eps=0.0, B=5, T=25, **kwargs):
    rng = np.random.default_rng(seed)
    env = rnn_env(rng)
    n = env["W"].shape[0]
    hidden = 8
    options = dict(
        hidden=hidden,
        scale=np.log(8) / (1 - 0.9),
        agent=agent,
        gamma=0.9,
        eps=eps,
        horizon=T,
        x0=rng.normal(0, 0.1, (B, n)),
        context=np.zeros(B, dtype=np.int64),
        program=box_program(0.6, n),
        seed=seed,
        stream0=3 * 2**40,
        p=2,
    )
    options.update(kwargs)
    return env, random_theta(rng, n, hidden), options


# ---------------------------------------------------------------------------------------------
# Actions and environments


@pytest.mark.parametrize("n_bits", [1, 2, 3, 5, 8])
def test_action_bits_enumerate_joint_actions_by_binary_index(n_bits):
    a = mop.action_bits(n_bits)
    assert a.shape == (2**n_bits, n_bits) and a.dtype == np.float64
    assert np.all(a[0] == -1) and np.all(a[-1] == 1)
    for k in range(2**n_bits):
        bits = [(k >> m) & 1 for m in range(n_bits)]
        np.testing.assert_array_equal(a[k], 2 * np.array(bits) - 1)
    assert len({tuple(row) for row in a}) == 2**n_bits


@settings(max_examples=25)
@given(
    seed=numpy_seeds,
    n=st.integers(1, 8),
    n_bits=st.integers(1, 4),
    phi_name=st.sampled_from(("tanh", "relu", "softplus")),
    noisy=st.booleans(),
)
def test_rnn_successors_match_a_loop_over_actions(seed, n, n_bits, phi_name, noisy):
    rng = np.random.default_rng(seed)
    env = rnn_env(rng, n=n, n_bits=n_bits, phi_name=phi_name, rho=1.7, alpha=0.3)
    W, b, K = env["W"], env["b"], env["K"]
    x = rng.normal(0, 0.5, n)
    xi = rng.normal(0, 0.1, n) if noisy else None
    X, s = mop.rnn_successors(W, b, K, x, rho=1.7, alpha=0.3, phi=phi_name, xi=xi)
    assert X.shape == (2**n_bits, n) and s.shape == (2**n_bits,)
    for k, a in enumerate(mop.action_bits(n_bits)):
        h = W @ x + b + 1.7 * (K @ a) + (0 if xi is None else xi)
        np.testing.assert_allclose(X[k], 0.7 * x + 0.3 * phi(phi_name, h), rtol=1e-13, atol=1e-14)
        expected_s = 0.3 * (-n + sum(dphi(phi_name, h)[i] * W[i, i] for i in range(n)))
        np.testing.assert_allclose(s[k], expected_s, rtol=1e-12, atol=1e-13)


def test_float32_inputs_are_computed_in_float64():
    rng = np.random.default_rng(8)
    env = rnn_env(rng, n=4, n_bits=2)
    x = rng.normal(0, 0.5, 4)
    args32 = [env[k].astype(np.float32) for k in ("W", "b", "K")] + [x.astype(np.float32)]
    X32, s32 = mop.rnn_successors(*args32, rho=1.0, alpha=0.5, phi="tanh")
    X64, s64 = mop.rnn_successors(
        *[a.astype(np.float64) for a in args32], rho=1.0, alpha=0.5, phi="tanh"
    )
    assert X32.dtype == s32.dtype == np.float64
    np.testing.assert_array_equal(X32, X64)
    np.testing.assert_array_equal(s32, s64)


@settings(max_examples=20)
@given(
    seed=numpy_seeds,
    n=st.integers(1, 7),
    phi_name=st.sampled_from(SMOOTH_PHIS),
    alpha=st.floats(0.05, 1.0),
)
def test_state_entropy_term_is_euler_jacobian_trace_minus_n(seed, n, phi_name, alpha):
    """s_a = Tr(d x'_a / d x) - n: the first-order log-volume change of the Euler map."""
    rng = np.random.default_rng(seed)
    env = rnn_env(rng, n=n, n_bits=2, phi_name=phi_name, alpha=alpha)
    x = rng.normal(0, 0.5, n)
    xi = rng.normal(0, 0.1, n)

    def successors(x_):
        return mop.rnn_successors(
            env["W"], env["b"], env["K"], x_, rho=env["rho"], alpha=alpha, phi=phi_name, xi=xi
        )

    _, s = successors(x)
    h = 1e-6
    trace = np.zeros(s.shape)
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        trace += (successors(x + e)[0][:, j] - successors(x - e)[0][:, j]) / (2 * h)
    np.testing.assert_allclose(s, trace - n, rtol=1e-6, atol=1e-7)


def test_cartpole_step_follows_the_equations_of_motion():
    x = np.array([0.3, -0.5, 0.2, 0.7])
    F = 40.0
    m_tot = 1.1
    temp = (F + 0.1 * 1.0 * 0.7**2 * np.sin(0.2)) / m_tot
    thacc = (9.81 * np.sin(0.2) - np.cos(0.2) * temp) / (4 / 3 - 0.1 * np.cos(0.2) ** 2 / m_tot)
    xacc = temp - 0.1 * thacc * np.cos(0.2) / m_tot
    expected = [0.3 + 0.02 * -0.5, -0.5 + 0.02 * xacc, 0.2 + 0.02 * 0.7, 0.7 + 0.02 * thacc]
    np.testing.assert_allclose(mop.cartpole_step(x, F), expected, rtol=1e-14)


def test_cartpole_is_mirror_symmetric_at_rest_upright_and_clips_velocities():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.5, (10, 4))
    F = rng.normal(0, 20, 10)
    np.testing.assert_allclose(mop.cartpole_step(-x, -F), -mop.cartpole_step(x, F), atol=1e-15)
    np.testing.assert_array_equal(mop.cartpole_step(np.zeros(4), 0.0), np.zeros(4))
    fast = mop.cartpole_step(np.array([0, 5.99, 0, 2.99]), 1e4)
    assert fast[1] == 6.0 and abs(fast[3]) <= 3.0
    X, s = mop.cartpole_successors(np.zeros(4))
    np.testing.assert_array_equal(X, mop.cartpole_step(np.zeros((2, 4)), [-40.0, 40.0]))
    np.testing.assert_array_equal(s, np.zeros(2))


# ---------------------------------------------------------------------------------------------
# Programs


def _score(kind, ij, params, X, weights=None):
    program = make_program([(kind, ij, params)], [[(mop.PUSH, 0)]], weights=weights, d=X.shape[1])
    return mop.evaluate_program(program, X)


def test_program_atoms_match_their_formulas():
    rng = np.random.default_rng(2)
    d = 5
    X = rng.normal(0, 1, (200, d))
    i, j = 1, 3
    xi, xj = X[:, i], X[:, j]
    cases = [
        (mop.ENERGY, (0, 0), (-1.0, 0.5), np.sqrt(((X + 1) ** 2).sum(1)) / d - 0.5),
        (mop.ABS, (i, 0), (0.2, 0.7), np.abs(xi - 0.2) - 0.7),
        (
            mop.ELLIPSE,
            (i, j),
            (0.1, -0.2, 0.8, 1.5),
            ((xi - 0.1) / 0.8) ** 2 + ((xj + 0.2) / 1.5) ** 2 - 1,
        ),
        (mop.L1, (i, j), (0.9, 1.3), np.abs(xi) / 0.9 + np.abs(xj) / 1.3 - 1),
        (mop.HEART, (i, j), (0.5,), (xi**2 + xj**2 - 0.5) ** 3 - xi**2 * xj**3),
    ]
    for kind, ij, params, score in cases:
        assert 0 < (score > 0).mean() < 1, kind  # both outcomes occur
        np.testing.assert_array_equal(_score(kind, ij, params, X), score > 0, err_msg=str(kind))
    weights = rng.normal(0, 1, (2, d))
    linear = _score(mop.LINEAR, (1, 0), (0.3,), X, weights=weights)
    np.testing.assert_array_equal(linear, X @ weights[1] + 0.3 > 0)
    calls = []

    def custom(states):
        calls.append(states.shape)
        return states[:, 0] > states[:, 1]

    program = make_program([(mop.CUSTOM, (1, 0), ())], [[(mop.PUSH, 0)]], d=d)
    result = mop.evaluate_program(program, X, custom=(None, custom))
    np.testing.assert_array_equal(result, X[:, 0] > X[:, 1])
    assert calls == [(200, d)]  # once, on all states


def test_program_operators_follow_boolean_algebra_per_context():
    rng = np.random.default_rng(3)
    X = rng.normal(0, 1, (300, 2))
    p, q, r = X[:, 0] > 0.3, X[:, 1] > -0.2, X[:, 0] + X[:, 1] > 0
    atoms = [
        (mop.LINEAR, (0, 0), (-0.3,)),
        (mop.LINEAR, (1, 0), (0.2,)),
        (mop.LINEAR, (2, 0), (0.0,)),
    ]
    weights = [[1, 0], [0, 1], [1, 1]]
    P, NOT, AND, OR = mop.PUSH, (mop.NOT, 0), (mop.AND, 0), (mop.OR, 0)
    contexts = {
        "p and not q": ([(P, 0), (P, 1), NOT, AND], p & ~q),
        "(p or q) and r": ([(P, 0), (P, 1), OR, (P, 2), AND], (p | q) & r),
        "not (p and (q or r))": ([(P, 0), (P, 1), (P, 2), OR, AND, NOT], ~(p & (q | r))),
        "empty": ([], np.zeros(300, dtype=bool)),
        "r": ([(P, 2)], r),
    }
    program = make_program(atoms, [code for code, _ in contexts.values()], weights=weights)
    for c, (name, (_, expected)) in enumerate(contexts.items()):
        np.testing.assert_array_equal(mop.evaluate_program(program, X, c), expected, name)


# ---------------------------------------------------------------------------------------------
# Value network, loss, Adam


def test_value_forward_is_a_one_hidden_layer_relu_network():
    rng = np.random.default_rng(4)
    d_in, H = 3, 5
    theta = random_theta(rng, d_in, H)
    Z = rng.normal(0, 1, (7, d_in))
    W1, b1 = theta[: H * d_in].reshape(H, d_in), theta[H * d_in : H * d_in + H]
    w2, b2 = theta[H * d_in + H : -1], theta[-1]
    expected = [w2 @ np.maximum(W1 @ z + b1, 0) + b2 for z in Z]
    np.testing.assert_allclose(mop.value_forward(theta, Z, H), expected, rtol=1e-13)


def test_value_inputs_append_a_one_hot_context_only_for_several_contexts():
    X = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(mop.value_inputs(X, 0, 1), X)
    Z = mop.value_inputs(X, np.array([2, 0, 1]), 3)
    np.testing.assert_array_equal(Z[:, 2:], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(mop.value_inputs(X, 1, 2)[:, 2:], [[0, 1]] * 3)


@settings(max_examples=20)
@given(seed=numpy_seeds, d_in=st.integers(1, 5), hidden=st.integers(1, 6), m=st.integers(1, 9))
def test_value_gradient_matches_finite_differences(seed, d_in, hidden, m):
    rng = np.random.default_rng(seed)
    theta = random_theta(rng, d_in, hidden, std=1.0)
    Z, y, c = rng.normal(0, 1, (m, d_in)), rng.normal(0, 1, m), rng.uniform(0.1, 1, m)
    loss, grad = mop.value_loss_and_grad(theta, Z, y, c, hidden)
    v = mop.value_forward(theta, Z, hidden)
    assert loss == pytest.approx((c * (v - y) ** 2).sum() / c.sum(), rel=1e-13)
    h = 1e-6
    numeric = np.zeros_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        plus = mop.value_loss_and_grad(theta + e, Z, y, c, hidden)[0]
        minus = mop.value_loss_and_grad(theta - e, Z, y, c, hidden)[0]
        numeric[k] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_adam_matches_two_hand_written_steps():
    theta = np.array([1.0, -2.0, 0.5])
    m, v = np.zeros(3), np.zeros(3)
    g1, g2 = np.array([0.1, -0.3, 0.0]), np.array([-0.2, 0.4, 1e-3])
    lr = 0.01
    expected = theta.copy()
    # step 1: m_hat = g1, v_hat = g1^2, so the step is lr * sign(g1) (up to eps)
    expected -= lr * g1 / (np.abs(g1) + 1e-8)
    mop.adam_step(theta, g1, m, v, 1, lr)
    np.testing.assert_allclose(theta, expected, rtol=1e-15)
    m2 = 0.9 * 0.1 * g1 + 0.1 * g2
    v2 = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    expected -= lr * (m2 / (1 - 0.9**2)) / (np.sqrt(v2 / (1 - 0.999**2)) + 1e-8)
    mop.adam_step(theta, g2, m, v, 2, lr)
    np.testing.assert_allclose(theta, expected, rtol=1e-14)
    np.testing.assert_allclose(m, m2, rtol=1e-14)
    np.testing.assert_allclose(v, v2, rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# Soft value iteration


@pytest.mark.parametrize("A", [1, 2, 5])
def test_soft_value_one_step_before_termination_is_log_A(A):
    next_state = np.array([[1] * A, [1] * A])
    V = mop.soft_value_iteration(next_state, np.array([False, True]), 0.9)
    np.testing.assert_allclose(V, [np.log(A), 0.0], rtol=1e-15)


def test_soft_value_closed_forms_of_loops():
    gamma, A = 0.8, 3
    # every action loops: V = ln A + gamma V
    V = mop.soft_value_iteration(np.zeros((1, A), dtype=int), np.array([False]), gamma)
    np.testing.assert_allclose(V, np.log(A) / (1 - gamma), rtol=1e-10)
    # two states swapping under every action: the same value
    V = mop.soft_value_iteration(np.array([[1] * A, [0] * A]), np.array([False] * 2), gamma)
    np.testing.assert_allclose(V, [np.log(A) / (1 - gamma)] * 2, rtol=1e-10)
    # one action loops, the others terminate: V = ln(A - 1 + exp(gamma V)), solved by bisection
    next_state = np.array([[0, 1, 1], [1, 1, 1]])
    V = mop.soft_value_iteration(next_state, np.array([False, True]), gamma)
    lo, hi = 0.0, 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.log(A - 1 + np.exp(gamma * mid)) > mid else (lo, mid)
    np.testing.assert_allclose(V[0], lo, rtol=1e-10)


@settings(max_examples=20)
@given(
    seed=numpy_seeds,
    n_states=st.integers(1, 12),
    A=st.integers(1, 4),
    gamma=st.floats(0.0, 0.95),
    rewarded=st.booleans(),
)
def test_soft_value_iteration_satisfies_the_bellman_equation(seed, n_states, A, gamma, rewarded):
    rng = np.random.default_rng(seed)
    next_state = rng.integers(0, n_states, (n_states, A))
    terminal = rng.uniform(size=n_states) < 0.3
    reward = rng.normal(0, 1, (n_states, A)) if rewarded else None
    V = mop.soft_value_iteration(next_state, terminal, gamma, reward=reward)
    r = np.zeros((n_states, A)) if reward is None else reward
    bellman = np.log(np.exp(r + gamma * V[next_state]).sum(axis=1))
    np.testing.assert_allclose(V, np.where(terminal, 0.0, bellman), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# One step


def _evaluate_setup(seed, **kwargs):
    rng = np.random.default_rng(seed)
    env = rnn_env(rng, n=5, n_bits=3)
    theta = random_theta(rng, 5, 6)
    X = rng.normal(0, 0.1, (4, 5))
    options = dict(hidden=6, scale=np.log(8) / 0.1, gamma=0.9, program=box_program(0.6, 5))
    options.update(kwargs)
    return env, theta, X, options


@settings(max_examples=15)
@given(seed=numpy_seeds, beta=st.floats(0, 1), mu=st.floats(0, 1), noise_samples=st.integers(0, 3))
def test_mop_target_is_logsumexp_of_q_and_policy_is_its_softmax(seed, beta, mu, noise_samples):
    env, theta, X, options = _evaluate_setup(seed)
    reward = make_program([(mop.L1, (2, 3), (0.3, 0.3))], [[(mop.PUSH, 0), (mop.NOT, 0)]], d=5)
    noise = None
    if noise_samples:
        noise = 0.1 * np.random.default_rng(seed).normal(size=(noise_samples, 4, 5))
    out = mop.evaluate(
        env, theta, X, agent="mop", beta=beta, mu=mu, reward_program=reward, noise=noise, **options
    )
    Q, policy = out["Q"], out["policy"]
    assert Q.shape == policy.shape == (4, 8)
    close = {"rtol": 1e-12, "atol": 1e-13}  # Q and the target can be near 0
    np.testing.assert_allclose(out["target"], np.log(np.exp(Q).sum(axis=1)), **close)
    np.testing.assert_allclose(policy.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(policy, np.exp(Q) / np.exp(Q).sum(axis=1, keepdims=True), **close)
    entropy = -(policy * np.log(policy)).sum(axis=1)
    np.testing.assert_allclose(out["entropy"], entropy, **close)


def test_mop_q_is_built_from_value_entropy_and_reward_of_each_successor():
    env, theta, X, options = _evaluate_setup(5)
    reward = make_program([(mop.ABS, (2, 0), (0.0, 0.05))], [[(mop.PUSH, 0)]], d=5)
    noise = 0.2 * np.random.default_rng(0).normal(size=(2, 4, 5))
    out = mop.evaluate(
        env, theta, X, agent="mop", beta=0.3, mu=0.7, reward_program=reward, noise=noise, **options
    )
    r_out = mop.evaluate(
        env, theta, X, agent="r", mu=0.7, eps=0.25, reward_program=reward, noise=noise, **options
    )
    for i, x in enumerate(X):
        Vbar, sbar, rbar, dbar = 0, 0, 0, 0
        for s in range(2):
            succ, s_a = mop.rnn_successors(
                env["W"],
                env["b"],
                env["K"],
                x,
                rho=env["rho"],
                alpha=env["alpha"],
                phi="tanh",
                xi=noise[s, i],
            )
            done = mop.evaluate_program(options["program"], succ)
            V = options["scale"] * mop.value_forward(theta, succ, options["hidden"])
            Vbar = Vbar + np.where(done, 0.0, V) / 2
            sbar = sbar + s_a / 2
            rbar = rbar + mop.evaluate_program(reward, succ) / 2
            dbar = dbar + done / 2
        np.testing.assert_allclose(out["Q"][i], 0.9 * Vbar + 0.3 * sbar + 0.7 * rbar, rtol=1e-12)
        Q_r = (1 - dbar) + 0.9 * Vbar + 0.7 * rbar
        np.testing.assert_allclose(r_out["Q"][i], Q_r, rtol=1e-12)
        np.testing.assert_allclose(
            r_out["target"][i], 0.75 * Q_r.max() + 0.25 * Q_r.mean(), rtol=1e-12
        )
        greedy = np.full(8, 0.25 / 8)
        greedy[np.argmax(Q_r)] += 0.75
        np.testing.assert_allclose(r_out["policy"][i], greedy, rtol=1e-14)


def test_zero_value_network_gives_uniform_mop_policy():
    env, theta, X, options = _evaluate_setup(6)
    out = mop.evaluate(env, np.zeros_like(theta), X, agent="mop", **options)
    np.testing.assert_array_equal(out["Q"], 0.0)
    np.testing.assert_allclose(out["policy"], 1 / 8, rtol=1e-15)
    np.testing.assert_allclose(out["target"], np.log(8), rtol=1e-15)
    np.testing.assert_allclose(out["entropy"], np.log(8), rtol=1e-14)


def test_cartpole_evaluate_has_two_actions():
    theta = random_theta(np.random.default_rng(7), 4, 3)
    terminal = make_program(
        [(mop.ABS, (0, 0), (0.0, 1.8)), (mop.ABS, (2, 0), (0.0, 0.62))],
        [[(mop.PUSH, 0), (mop.PUSH, 1), (mop.OR, 0)]],
        d=4,
    )
    out = mop.evaluate(
        {"kind": "cartpole"},
        theta,
        np.zeros((3, 4)),
        hidden=3,
        scale=10.0,
        agent="mop",
        gamma=0.99,
        program=terminal,
    )
    X, _ = mop.cartpole_successors(np.zeros(4))
    np.testing.assert_allclose(out["Q"][0], 0.99 * 10 * mop.value_forward(theta, X, 3))


# ---------------------------------------------------------------------------------------------
# Rollouts and fit


def test_rollout_is_reproducible_from_its_seed():
    env, theta, options = rollout_setup(11, noise_std=0.05, noise_samples=2)
    first = mop.rollout(env, theta, **options)
    second = mop.rollout(env, theta, **options)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    other = mop.rollout(env, theta, **{**options, "seed": 12})
    assert not np.array_equal(first["actions"], other["actions"])


@pytest.mark.parametrize("agent", ["mop", "r"])
def test_trajectories_stop_at_their_first_terminal_state(agent):
    env, theta, options = rollout_setup(
        13, agent=agent, eps=0.3, B=6, T=25, program=box_program(0.95, 6)
    )
    out = mop.rollout(env, theta, **options)
    T, program = options["horizon"], options["program"]
    assert out["terminated"].any() and not out["terminated"].all()  # both endings occur
    for b in range(6):
        L = out["lifetime"][b]
        done = mop.evaluate_program(program, out["states"][: L + 1, b])
        assert not done[:L].any()
        assert done[L] == out["terminated"][b] and (L == T or out["terminated"][b])
        expected_weights = np.zeros(T + 1)
        expected_weights[:L] = 0.1
        expected_weights[L] = 1.0 if out["terminated"][b] else 0.0
        np.testing.assert_array_equal(out["weights"][:, b], expected_weights)
        assert out["targets"][L, b] == 0.0
        np.testing.assert_array_equal(out["states"][L + 1 :, b], 0.0)
        np.testing.assert_array_equal(out["actions"][L:, b], -1)
        assert np.all(out["actions"][:L, b] >= 0)


def test_rollout_steps_match_evaluate_and_the_chosen_successor():
    env, theta, options = rollout_setup(17, B=3, T=12, beta=0.2)
    out = mop.rollout(env, theta, **options)
    keys = ("hidden", "scale", "agent", "gamma", "beta", "program")
    for b in range(3):
        stream = options["stream0"] + options["p"] * 2**20 + b
        for t in range(out["lifetime"][b]):
            x = out["states"][t, b]
            step = mop.evaluate(env, theta, x[None], **{k: options[k] for k in keys})
            np.testing.assert_allclose(out["targets"][t, b], step["target"][0], rtol=1e-14)
            np.testing.assert_allclose(out["entropy"][t, b], step["entropy"][0], rtol=1e-14)
            u = philox_uniform(options["seed"], stream, 2 * t, 1)[0]
            a = out["actions"][t, b]
            cumsum = np.cumsum(step["policy"][0])
            assert cumsum[a] >= u and (a == 0 or cumsum[a - 1] < u)
            succ, _ = mop.rnn_successors(
                env["W"], env["b"], env["K"], x, rho=env["rho"], alpha=env["alpha"], phi=env["phi"]
            )
            np.testing.assert_array_equal(out["states"][t + 1, b], succ[a])


def test_noisy_rollout_moves_with_the_extra_noise_sample():
    S, std = 2, 0.05
    env, theta, options = rollout_setup(19, B=2, T=6, noise_std=std, noise_samples=S)
    out = mop.rollout(env, theta, **options)
    n = env["W"].shape[0]
    stream = options["stream0"] + options["p"] * 2**20 + 1
    for t in range(out["lifetime"][1]):
        xi = std * philox_normal(options["seed"], stream, 2 * t + 1, (S + 1) * n)
        x, a = out["states"][t, 1], out["actions"][t, 1]
        succ, _ = mop.rnn_successors(
            env["W"],
            env["b"],
            env["K"],
            x,
            rho=env["rho"],
            alpha=env["alpha"],
            phi=env["phi"],
            xi=xi[S * n :],
        )
        np.testing.assert_array_equal(out["states"][t + 1, 1], succ[a])


def test_r_agent_actions_are_uniform_when_eps_is_one():
    env, theta, options = rollout_setup(
        23, agent="r", eps=1.0, B=4, T=100, program=box_program(1e9, 6)
    )
    out = mop.rollout(env, theta, **options)
    assert np.all(out["lifetime"] == 100)
    counts = np.bincount(out["actions"].ravel(), minlength=8)
    expected = out["actions"].size / 8
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 30  # 7 degrees of freedom: P(chi2 > 30) ~ 1e-4
    np.testing.assert_allclose(out["entropy"][:100], np.log(8), rtol=1e-14)


def test_fit_decreases_the_loss_on_a_fixed_dataset():
    env, theta, options = rollout_setup(29, B=4, T=30)
    out = mop.rollout(env, theta, **options)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    fit_options = dict(
        hidden=options["hidden"],
        scale=options["scale"],
        lr=1e-2,
        updates=150,
        batch_size=16,
        seed=5,
        fit_stream=2**19,
        context=options["context"],
    )
    losses, step = mop.fit(theta, m, v, 0, out, **fit_options)
    assert step == 150 and losses.shape == (150,)
    assert losses[-20:].mean() < 0.5 * losses[:5].mean()
    losses_again, step = mop.fit(theta, m, v, step, out, **{**fit_options, "updates": 3})
    assert step == 153 and losses_again.shape == (3,)
    empty = {**out, "weights": np.zeros_like(out["weights"])}
    losses_none, step = mop.fit(theta, m, v, step, empty, **fit_options)
    assert losses_none.shape == (0,) and step == 153


def test_fit_samples_its_rows_with_the_fit_stream():
    env, theta, options = rollout_setup(31, B=3, T=10)
    out = mop.rollout(env, theta, **options)
    hidden, scale = options["hidden"], options["scale"]
    theta_copy = theta.copy()
    losses, _ = mop.fit(
        theta,
        np.zeros_like(theta),
        np.zeros_like(theta),
        0,
        out,
        hidden=hidden,
        scale=scale,
        lr=1e-3,
        updates=1,
        batch_size=7,
        seed=9,
        fit_stream=77,
        context=options["context"],
    )
    t, b = np.nonzero(out["weights"] > 0)
    counts = (out["weights"] > 0).sum(axis=0)
    rows = np.floor(philox_uniform(9, 77, 0, 7) * t.size).astype(int)
    c = out["weights"][t, b][rows] / counts[b[rows]]
    y = out["targets"][t, b][rows] / scale
    expected, _ = mop.value_loss_and_grad(theta_copy, out["states"][t, b][rows], y, c, hidden)
    assert losses[0] == pytest.approx(expected, rel=1e-14)
