"""flexrnn.reference BPTT (backward.py) and losses (losses.py) against central finite differences.

Every entry of every parameter and of the initial states is checked, in float64, on small
random models (n 3-6, LSTM 3-4; T 4-8; B 2-3), for every model, form, phi, readout and loss.
"""

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    FORMS,
    PHI_NAMES,
    READOUTS,
    gain_options,
    noise_options,
    numpy_seeds,
    raises_naming,
)
from flexrnn.reference import (
    cross_entropy,
    loss_and_dy,
    low_rank_rnn,
    low_rank_rnn_loss_and_grad,
    lstm,
    lstm_loss_and_grad,
    masked_mse,
    nmrnn,
    nmrnn_loss_and_grad,
    rate_rnn,
    rate_rnn_loss_and_grad,
)
from hypothesis import assume, given
from hypothesis import strategies as st

STEP = 1e-6  # central differences: truncation ~STEP^2, rounding ~eps |loss| / STEP ~ 1e-10
RTOL = 1e-5
ATOL = 1e-7  # times max(1, |loss|, the largest gradient entry)
RELU_MARGIN = 1e-4  # relu arguments closer to 0 than this could cross the kink under a STEP

model_sizes = st.integers(3, 6)
time_steps = st.integers(4, 8)
trial_counts = st.integers(2, 3)
input_counts = st.integers(1, 3)
output_counts = st.integers(2, 3)  # cross-entropy needs two classes at least
alphas = st.floats(0.1, 0.5)


def finite_difference(loss_of, params, name):
    """Central differences of loss_of(params) in every entry of params[name], in place."""
    value = params[name]
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        saved = value[index]
        value[index] = saved + STEP
        up = loss_of(params)
        value[index] = saved - STEP
        down = loss_of(params)
        value[index] = saved
        grad[index] = (up - down) / (2 * STEP)
    return grad


def assert_gradient_matches_finite_differences(loss_and_grad, loss_of, params, states):
    """loss_and_grad(params) -> (loss, grads, y) against central differences of loss_of(params),
    the forward reference followed by the loss. states: names of the initial states, whose
    gradient is per trial (B, n) and is summed over trials when params holds a shared (n,)."""
    loss, grads, _ = loss_and_grad(params)
    assert loss == loss_of(params)
    assert set(grads) == set(params)
    for name in params:
        expected = finite_difference(loss_of, params, name)
        actual = grads[name]
        if name in states:
            assert actual.ndim == 2, f"{name}: per-trial gradient expected"
            if params[name].ndim == 1:
                actual = actual.sum(axis=0)
        assert actual.shape == params[name].shape, f"{name}: shape {actual.shape}"
        assert actual.dtype == np.float64, f"{name}: dtype {actual.dtype}"
        scale = max(1.0, abs(float(loss)), float(np.max(np.abs(actual), initial=0)))
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale, err_msg=name)


@st.composite
def loss_problems(draw, rng, T, B, n_out):
    """target, mask and loss name: masked MSE (mask (T, B, n_out) or (T, B, 1)) or
    cross-entropy (labels (T, B), -1 where the mask is 0)."""
    loss = draw(st.sampled_from(["mse", "cross_entropy"]))
    if loss == "mse":
        mask_shape = draw(st.sampled_from([(T, B, n_out), (T, B, 1)]))
        target = rng.normal(0, 1, (T, B, n_out))
        mask = rng.integers(0, 2, mask_shape).astype(float)
    else:
        mask = rng.integers(0, 2, (T, B)).astype(float)
        target = np.where(mask == 0, -1, rng.integers(0, n_out, (T, B)))
    return {"target": target, "mask": mask, "loss": loss}


def _loss(y, problem):
    return loss_and_dy(y, problem["target"], problem["mask"], problem["loss"])[0]


def _initial_state(draw, rng, B, n):
    """(n,) shared by every trial or (B, n)."""
    shared = draw(st.booleans())
    return rng.normal(0, 0.5, n if shared else (B, n))


def _away_from_relu_kink(arguments):
    return min(float(np.min(np.abs(a))) for a in arguments) > RELU_MARGIN


# ---------------------------------------------------------------------------------------------
# RateRNN and LowRankRNN


@st.composite
def rate_cases(draw, low_rank=False):
    rng = np.random.default_rng(draw(numpy_seeds))
    n, T, B = draw(model_sizes), draw(time_steps), draw(trial_counts)
    n_in, n_out = draw(input_counts), draw(output_counts)
    if low_rank:
        rank = draw(st.integers(1, 3))
        recurrent = {"U": rng.normal(0, 0.8, (n, rank)), "V": rng.normal(0, 1, (n, rank))}
    else:
        recurrent = {"W": rng.normal(0, 0.9 / np.sqrt(n), (n, n))}
    params = {
        **recurrent,
        "W_in": rng.normal(0, 1 / np.sqrt(n_in), (n, n_in)),
        "b": rng.normal(0, 0.2, n),
        "W_out": rng.normal(0, 1 / np.sqrt(n), (n_out, n)),
        "b_out": rng.normal(0, 0.1, n_out),
        "x0": _initial_state(draw, rng, B, n),
    }
    options = {
        "alpha": draw(alphas),
        "phi": draw(st.sampled_from(PHI_NAMES)),
        "readout": draw(st.sampled_from(READOUTS)),
        **draw(gain_options(T, B, rng)),
        **draw(noise_options(rng)),
    }
    if not low_rank:
        options["form"] = draw(st.sampled_from(FORMS))
    if draw(st.booleans()):
        options["neuron_gain"] = rng.uniform(0.5, 1.5, n)
    u = rng.normal(0, 1, (T, B, n_in))
    return u, params, options, draw(loss_problems(rng, T, B, n_out))


def _rate_phi_arguments(u, params, options):
    """Every argument of phi in a rate_rnn rollout: ng x[t] for t = 0..T, and in the rate
    form ng h[t] with h = gain[t] W x[t] + W_in u[t] + b."""
    out = rate_rnn(u, **params, **options)
    T, B = u.shape[:2]
    x = np.concatenate([np.broadcast_to(params["x0"], (1, B, len(params["b"]))), out["x"]])
    ng = options.get("neuron_gain", 1.0)
    arguments = [ng * x]
    if options.get("form") == "rate":
        gain = np.broadcast_to(options.get("gain", 1.0), (T, B))[..., None]
        h = gain * (x[:-1] @ params["W"].T) + u @ params["W_in"].T + params["b"]
        arguments.append(ng * h)
    return arguments


@given(rate_cases())
def test_rate_rnn_gradient_matches_finite_differences(case):
    u, params, options, problem = case
    if options["phi"] == "relu":
        assume(_away_from_relu_kink(_rate_phi_arguments(u, params, options)))

    def loss_and_grad(p):
        return rate_rnn_loss_and_grad(
            u, problem["target"], problem["mask"], **p, **options, loss=problem["loss"]
        )

    def loss_of(p):
        return _loss(rate_rnn(u, **p, **options)["y"], problem)

    assert_gradient_matches_finite_differences(loss_and_grad, loss_of, params, states=("x0",))


@given(rate_cases(low_rank=True))
def test_low_rank_rnn_gradient_matches_finite_differences(case):
    u, params, options, problem = case
    if options["phi"] == "relu":
        out = low_rank_rnn(u, **params, **options)
        ng = options.get("neuron_gain", 1.0)
        assume(_away_from_relu_kink([ng * params["x0"], ng * out["x"]]))

    def loss_and_grad(p):
        return low_rank_rnn_loss_and_grad(
            u, problem["target"], problem["mask"], **p, **options, loss=problem["loss"]
        )

    def loss_of(p):
        return _loss(low_rank_rnn(u, **p, **options)["y"], problem)

    assert_gradient_matches_finite_differences(loss_and_grad, loss_of, params, states=("x0",))


# ---------------------------------------------------------------------------------------------
# NMRNN and LSTM


@st.composite
def nmrnn_cases(draw):
    rng = np.random.default_rng(draw(numpy_seeds))
    n, T, B = draw(model_sizes), draw(time_steps), draw(trial_counts)
    n_in, n_out = draw(input_counts), draw(output_counts)
    rank, n_mod = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    n_scale = draw(st.sampled_from([1.0, float(n)]))
    params = {
        "W_z": rng.normal(0, 1 / np.sqrt(n_mod), (n_mod, n_mod)),
        "B_z": rng.normal(0, 1 / np.sqrt(n_in), (n_mod, n_in)),
        "b_z": rng.normal(0, 0.2, n_mod),
        "A_z": rng.normal(0, 1, (rank, n_mod)),
        "c_z": rng.normal(0, 0.2, rank),
        "U": rng.normal(0, 1 / np.sqrt(n) if n_scale == 1.0 else 1.0, (n, rank)),
        "V": rng.normal(0, 1, (n, rank)),
        "B_x": rng.normal(0, 1 / np.sqrt(n_in), (n, n_in)),
        "C": rng.normal(0, 1 / np.sqrt(n), (n_out, n)),
        "d": rng.normal(0, 0.1, n_out),
        "x0": _initial_state(draw, rng, B, n),
        "z0": _initial_state(draw, rng, B, n_mod),
    }
    if draw(st.booleans()):
        params["W_zx"] = rng.normal(0, 1 / np.sqrt(n), (n_mod, n))
    options = {"alpha_x": draw(alphas), "alpha_z": draw(st.floats(0.05, 0.3)), "n_scale": n_scale}
    if draw(st.booleans()):  # hold one component of s at a value in [0, 1]
        s_clamp = np.full(rank, np.nan)
        s_clamp[draw(st.integers(0, rank - 1))] = rng.uniform(0, 1)
        options["s_clamp"] = s_clamp
    u = rng.normal(0, 1, (T, B, n_in))
    return u, params, options, draw(loss_problems(rng, T, B, n_out))


@given(nmrnn_cases())
def test_nmrnn_gradient_matches_finite_differences(case):
    u, params, options, problem = case

    def loss_and_grad(p):
        return nmrnn_loss_and_grad(
            u, problem["target"], problem["mask"], **p, **options, loss=problem["loss"]
        )

    def loss_of(p):
        return _loss(nmrnn(u, **p, **options)["y"], problem)

    assert_gradient_matches_finite_differences(loss_and_grad, loss_of, params, states=("x0", "z0"))


@st.composite
def lstm_cases(draw):
    rng = np.random.default_rng(draw(numpy_seeds))
    n, T, B = draw(st.integers(3, 4)), draw(time_steps), draw(trial_counts)  # 4n gate rows
    n_in, n_out = draw(input_counts), draw(output_counts)
    k = 1 / np.sqrt(n)
    params = {
        "W_ih": rng.uniform(-k, k, (4 * n, n_in)),
        "W_hh": rng.uniform(-k, k, (4 * n, n)),
        "b": rng.uniform(-k, k, 4 * n),
        "C": rng.uniform(-k, k, (n_out, n)),
        "d": rng.normal(0, 0.1, n_out),
        "h0": _initial_state(draw, rng, B, n),
        "c0": _initial_state(draw, rng, B, n),
    }
    u = rng.normal(0, 1, (T, B, n_in))
    return u, params, draw(loss_problems(rng, T, B, n_out))


@given(lstm_cases())
def test_lstm_gradient_matches_finite_differences(case):
    u, params, problem = case

    def loss_and_grad(p):
        return lstm_loss_and_grad(u, problem["target"], problem["mask"], **p, loss=problem["loss"])

    def loss_of(p):
        return _loss(lstm(u, **p)["y"], problem)

    assert_gradient_matches_finite_differences(loss_and_grad, loss_of, params, states=("h0", "c0"))


def _small_nmrnn(rng, n=5, rank=2, n_mod=3, n_in=2, n_out=2, T=6, B=2, feedback=False):
    params = {
        "W_z": rng.normal(0, 0.5, (n_mod, n_mod)),
        "B_z": rng.normal(0, 0.5, (n_mod, n_in)),
        "b_z": rng.normal(0, 0.2, n_mod),
        "A_z": rng.normal(0, 1, (rank, n_mod)),
        "c_z": rng.normal(0, 0.2, rank),
        "U": rng.normal(0, 0.5, (n, rank)),
        "V": rng.normal(0, 1, (n, rank)),
        "B_x": rng.normal(0, 0.5, (n, n_in)),
        "C": rng.normal(0, 0.5, (n_out, n)),
        "d": rng.normal(0, 0.1, n_out),
        "x0": rng.normal(0, 0.5, n),
        "z0": rng.normal(0, 0.5, n_mod),
    }
    if feedback:
        params["W_zx"] = rng.normal(0, 0.5, (n_mod, n))
    u = rng.normal(0, 1, (T, B, n_in))
    target = rng.normal(0, 1, (T, B, n_out))
    return u, target, np.ones((T, B, n_out)), params


def test_fully_clamped_gains_cut_every_gradient_into_the_modulator():
    u, target, mask, params = _small_nmrnn(np.random.default_rng(3))
    _, grads, _ = nmrnn_loss_and_grad(
        u, target, mask, **params, alpha_x=0.3, alpha_z=0.1, s_clamp=np.array([0.7, 0.2])
    )
    for name in ("W_z", "B_z", "b_z", "A_z", "c_z", "z0"):
        assert not np.any(grads[name]), name
    assert np.any(grads["U"]) and np.any(grads["x0"])


def test_gradients_are_keyed_and_shaped_like_the_model_parameters():
    rng = np.random.default_rng(4)
    T, B, n, n_in, n_out = 3, 2, 4, 2, 2
    u, target, mask = rng.normal(size=(T, B, n_in)), rng.normal(size=(T, B, n_out)), 1.0
    rate = {"W": rng.normal(size=(n, n)), "W_in": rng.normal(size=(n, n_in)), "b": np.zeros(n)}
    rate |= {"W_out": rng.normal(size=(n_out, n)), "b_out": np.zeros(n_out), "x0": np.zeros(n)}
    _, grads, y = rate_rnn_loss_and_grad(u, target, mask, **rate, alpha=0.2)
    assert tuple(grads) == fr.RateRNN._params and y.shape == (T, B, n_out)
    low_rank = {k: v for k, v in rate.items() if k != "W"}
    low_rank |= {"U": rng.normal(size=(n, 1)), "V": rng.normal(size=(n, 1))}
    _, grads, _ = low_rank_rnn_loss_and_grad(u, target, mask, **low_rank, alpha=0.2)
    assert set(grads) == set(fr.LowRankRNN._params)
    for with_feedback in (False, True):
        u, target, mask, params = _small_nmrnn(rng, feedback=with_feedback)
        _, grads, _ = nmrnn_loss_and_grad(u, target, mask, **params, alpha_x=0.3, alpha_z=0.1)
        expected = set(fr.NMRNN._params) - ({"W_zx"} if not with_feedback else set())
        assert set(grads) == expected
        assert grads["x0"].shape == (u.shape[1], 5) and grads["z0"].shape == (u.shape[1], 3)
    lstm = {"W_ih": rng.normal(size=(4 * n, n_in)), "W_hh": rng.normal(size=(4 * n, n))}
    lstm |= {"b": np.zeros(4 * n), "C": rng.normal(size=(n_out, n)), "d": np.zeros(n_out)}
    lstm |= {"h0": np.zeros(n), "c0": np.zeros(n)}
    u = rng.normal(size=(T, B, n_in))
    _, grads, _ = lstm_loss_and_grad(u, target[:T], 1.0, **lstm)
    assert tuple(grads) == fr.LSTM._params
    assert grads["h0"].shape == grads["c0"].shape == (B, n)


@pytest.mark.parametrize("form", FORMS)
def test_float32_weights_give_float32_gradients_close_to_float64(form):
    rng = np.random.default_rng(5)
    T, B, n, n_in, n_out = 6, 3, 5, 2, 2
    params = {
        "W": rng.normal(0, 0.4, (n, n)),
        "W_in": rng.normal(0, 0.7, (n, n_in)),
        "b": rng.normal(0, 0.2, n),
        "W_out": rng.normal(0, 0.4, (n_out, n)),
        "b_out": rng.normal(0, 0.1, n_out),
        "x0": rng.normal(0, 0.5, n),
    }
    u, target, mask = rng.normal(size=(T, B, n_in)), rng.normal(size=(T, B, n_out)), 1.0
    options = {"alpha": 0.2, "form": form, "gain": 0.9, "noise_std": 0.1, "seed": 7}
    loss64, grads64, _ = rate_rnn_loss_and_grad(u, target, mask, **params, **options)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss32, grads32, y32 = rate_rnn_loss_and_grad(u, target, mask, **params32, **options)
    assert loss32.dtype == y32.dtype == np.float32
    np.testing.assert_allclose(loss32, loss64, rtol=1e-5)
    for name, grad in grads32.items():
        assert grad.dtype == np.float32, name
        np.testing.assert_allclose(grad, grads64[name], rtol=1e-4, atol=1e-5, err_msg=name)


# ---------------------------------------------------------------------------------------------
# Losses


def _loss_finite_difference(loss, y):
    grad = np.zeros_like(y)
    for index in np.ndindex(y.shape):
        saved = y[index]
        y[index] = saved + STEP
        up = loss(y)
        y[index] = saved - STEP
        down = loss(y)
        y[index] = saved
        grad[index] = (up - down) / (2 * STEP)
    return grad


@given(numpy_seeds, st.sampled_from(["full", "per_step", "float"]))
def test_masked_mse_gradient_matches_finite_differences(seed, mask_kind):
    rng = np.random.default_rng(seed)
    y, target = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
    mask = {
        "full": rng.integers(0, 2, (4, 3, 2)),
        "per_step": rng.integers(0, 2, (4, 3, 1)),
        "float": rng.uniform(0, 1, (4, 3, 2)),
    }[mask_kind].astype(float)
    loss, dy = masked_mse(y, target, mask)
    expected = _loss_finite_difference(lambda v: masked_mse(v, target, mask)[0], y)
    assert dy.shape == y.shape
    np.testing.assert_allclose(dy, expected, rtol=RTOL, atol=ATOL)


def test_masked_mse_known_values():
    y = np.zeros((2, 2, 3))
    loss, dy = masked_mse(y, y + 1, np.ones((2, 2, 3)))
    assert loss == 1.0 and np.allclose(dy, -2 / 12)
    mask = np.zeros((2, 2, 1))
    mask[1, 0] = 1  # selects 3 entries: the mean over them, whatever the mask's shape
    target = np.arange(12.0).reshape(2, 2, 3)
    loss, _ = masked_mse(y, target, mask)
    assert loss == np.mean(target[1, 0] ** 2)
    assert loss == masked_mse(y, target, np.broadcast_to(mask, y.shape))[0]
    loss, dy = masked_mse(y, target, 0 * mask)
    assert loss == 0 and not np.any(dy)


@given(numpy_seeds, st.integers(2, 5))
def test_cross_entropy_gradient_matches_finite_differences(seed, C):
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 2, (4, 3, C))
    mask = rng.uniform(0, 1, (4, 3)) * rng.integers(0, 2, (4, 3))
    labels = np.where(mask == 0, -1, rng.integers(0, C, (4, 3)))
    loss, dy = cross_entropy(y, labels, mask)
    expected = _loss_finite_difference(lambda v: cross_entropy(v, labels, mask)[0], y)
    assert dy.shape == y.shape
    np.testing.assert_allclose(dy, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dy.sum(axis=-1), 0, atol=1e-15)  # softmax - onehot sums to 0


def test_cross_entropy_known_values():
    for C in (2, 3, 7):
        loss, dy = cross_entropy(np.zeros((2, 3, C)), np.ones((2, 3), dtype=int), np.ones((2, 3)))
        np.testing.assert_allclose(loss, np.log(C))
        np.testing.assert_allclose(dy[..., 0], 1 / C / 6)
    y = np.array([[[1000.0, 0.0, -1000.0]]])  # huge logits: exp must not overflow
    with np.errstate(over="raise", invalid="raise"):
        assert cross_entropy(y, np.array([[0]]), np.ones((1, 1)))[0] == 0.0
        np.testing.assert_allclose(cross_entropy(y, np.array([[1]]), np.ones((1, 1)))[0], 1000.0)
    loss, dy = cross_entropy(np.ones((2, 2, 3)), -np.ones((2, 2), dtype=int), np.zeros((2, 2)))
    assert loss == 0 and not np.any(dy)
    loss, _ = cross_entropy(np.zeros((1, 2, 2)), np.array([[0.0, 1.0]]), np.ones((1, 2)))
    np.testing.assert_allclose(loss, np.log(2))  # whole-valued float labels are accepted


def test_out_of_range_labels_are_rejected_where_the_mask_selects_them():
    y, mask = np.zeros((2, 1, 3)), np.array([[1.0], [0.0]])
    cross_entropy(y, np.array([[2], [-1]]), mask)  # -1 ignored: mask 0
    for bad in ([[3], [0]], [[-1], [0]]):
        with raises_naming("labels", ValueError):
            cross_entropy(y, np.array(bad), mask)
    with raises_naming("labels", ValueError):
        cross_entropy(y, np.array([[0.5], [0.0]]), mask)


def test_loss_and_dy_dispatches_by_name():
    rng = np.random.default_rng(6)
    y, target, mask = rng.normal(size=(3, 2, 2)), rng.normal(size=(3, 2, 2)), np.ones((3, 2, 2))
    assert loss_and_dy(y, target, mask)[0] == masked_mse(y, target, mask)[0]
    labels = np.zeros((3, 2), dtype=int)
    ce = loss_and_dy(y, labels, mask[..., 0], loss="cross_entropy")[0]
    assert ce == cross_entropy(y, labels, mask[..., 0])[0]
    with raises_naming("loss", ValueError):
        loss_and_dy(y, target, mask, loss="mae")
