"""A run warns when its state explodes (finite but huge), not only when it turns non-finite."""

import warnings

import flexrnn as fr
import numpy as np
import pytest
from flexrnn.models import EXPLOSION_THRESHOLD


def _growing_relu_network(n=10, dtype="float64"):
    W = np.full((n, n), 2.0 / n)  # all-positive, spectral radius 2: relu grows without bound
    return fr.RateRNN(W=W, W_in=np.zeros((n, 0)), W_out=np.ones((1, n)), x0=np.ones(n),
                      tau=1.0, dt=1.0, phi="relu", dtype=dtype)  # fmt: skip


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exploding_finite_state_warns_with_the_first_step_over_the_threshold(dtype):
    net = _growing_relu_network(dtype=dtype)
    steps = 100 if dtype == "float64" else 60  # 2^100 ~ 1e30: finite in both dtypes
    with pytest.warns(RuntimeWarning, match="magnitude exceeded 1e\\+06 at step") as record:
        out = net.run(np.zeros((steps, 2, 0), dtype))
    assert np.isfinite(out.x).all() and np.abs(out.x[-1]).max() > EXPLOSION_THRESHOLD
    step = int(str(record[0].message).split("at step ")[1].split()[0])
    assert np.abs(out.x[step]).max() > EXPLOSION_THRESHOLD
    assert np.abs(out.x[step - 1]).max() <= EXPLOSION_THRESHOLD
    assert len(record) == 1


def test_large_but_bounded_state_does_not_warn():
    net = _growing_relu_network()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = net.run(np.zeros((15, 2, 0)))  # 2^15 ~ 3e4: large, under the threshold
    assert np.abs(out.x[-1]).max() > 1e4


def test_non_finite_state_gives_only_the_non_finite_warning():
    net = _growing_relu_network()
    with pytest.warns(RuntimeWarning) as record:
        net.run(np.zeros((1200, 1, 0)))  # 2^1200 overflows float64
    assert [str(w.message) for w in record if "non-finite" in str(w.message)]
    assert not [w for w in record if "magnitude" in str(w.message)]


# ------------------------------------------------------------------------------------------
# Batch-major input


def test_batch_first_runs_batch_major_input_and_returns_batch_major_arrays():
    net = fr.RateRNN.random(n=12, n_in=2, n_out=3, g=1.5, seed=0)
    u = np.random.default_rng(1).normal(0, 1, (20, 5, 2))  # (T, B, n_in)
    gain = np.linspace(0.5, 2.0, 5)[None, :] * np.ones((20, 1))  # (T, B)
    ref = net.run(u, gain=gain, noise_std=0.1, seed=3)
    out = net.run(u.transpose(1, 0, 2), gain=gain.T, noise_std=0.1, seed=3, batch_first=True)
    assert out.x.shape == (5, 20, 12) and out.y.shape == (5, 20, 3)
    np.testing.assert_array_equal(out.x, ref.x.transpose(1, 0, 2))
    np.testing.assert_array_equal(out.r, ref.r.transpose(1, 0, 2))
    np.testing.assert_array_equal(out.y, ref.y.transpose(1, 0, 2))
    # a per-trial gain given as (B, 1) under batch_first
    per_trial = net.run(u.transpose(1, 0, 2), gain=gain[0][:, None], batch_first=True)
    np.testing.assert_array_equal(per_trial.x, net.run(u, gain=gain[0]).x.transpose(1, 0, 2))


def test_batch_major_looking_input_warns_with_the_fix():
    net = fr.RateRNN.random(n=8, n_in=3, n_out=1, seed=0)
    u = np.zeros((16, 400, 3))  # as (B, T, n_in) would be
    with pytest.warns(UserWarning, match=r"read time-major, as T = 16 steps of B = 400 trials; "
                      r"if the first axis is the batch, pass batch_first=True"):  # fmt: skip
        out = net.run(u)
    assert out.x.shape == (16, 400, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.run(u, batch_first=False)  # said to be time-major: no warning
        net.run(np.zeros((400, 16, 3)))  # the usual time-major shape: no warning
        net.run(np.zeros((2, 40, 3)))  # short runs of few trials: no warning


def test_batch_first_bad_input_names_the_argument():
    net = fr.RateRNN.random(n=8, n_in=3, n_out=1, seed=0)
    with pytest.raises(TypeError, match="batch_first"):
        net.run(np.zeros((2, 5, 3)), batch_first="yes")
    with pytest.raises(ValueError, match=r"u: expected \(B, T, n_in\)"):
        net.run(np.zeros((5, 3)), batch_first=True)
    with pytest.raises(ValueError, match=r"gain: .*\(B, T\) = \(2, 5\)"):
        net.run(np.zeros((2, 5, 3)), gain=np.ones(3), batch_first=True)


def test_calls_from_flexrnn_modules_do_not_warn():
    # the trainers and analysis run task batches, time-major by construction, of any shape
    net = fr.RateRNN.random(n=8, n_in=3, n_out=1, seed=0)
    scope = {"__name__": "flexrnn.train.some_trainer", "net": net, "u": np.zeros((8, 256, 3))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec("out = net.run(u)", scope)
    assert scope["out"].x.shape == (8, 256, 8)


def _nmrnn_and_lstm():
    return [
        fr.NMRNN.random(n=10, rank=2, n_mod=3, n_in=2, n_out=3, seed=0),
        fr.LSTM.random(n=6, n_in=2, n_out=3, seed=0),
    ]


@pytest.mark.parametrize("net", _nmrnn_and_lstm(), ids=["NMRNN", "LSTM"])
def test_nmrnn_and_lstm_batch_first_return_every_array_batch_major(net):
    u = np.random.default_rng(1).normal(0, 1, (20, 5, 2))  # (T, B, n_in)
    ref = net.run(u)
    out = net.run(u.transpose(1, 0, 2), batch_first=True)
    fields = ["x", "r", "z", "s", "y"] if isinstance(net, fr.NMRNN) else ["h", "c", "y"]
    for name in fields:
        time_major = getattr(ref, name)
        assert getattr(out, name).shape == (5, 20) + time_major.shape[2:], name
        np.testing.assert_array_equal(getattr(out, name), time_major.transpose(1, 0, 2))
    # the other arguments keep their meaning: per-trial initial states stay (B, ·)
    if isinstance(net, fr.NMRNN):
        x0 = np.random.default_rng(2).normal(0, 0.5, (5, 10))
        moved = net.run(u.transpose(1, 0, 2), x0=x0, ablate=[1], batch_first=True)
        np.testing.assert_array_equal(moved.x, net.run(u, x0=x0, ablate=[1]).x.swapaxes(0, 1))
    else:
        h0 = np.random.default_rng(2).normal(0, 0.5, (5, 6))
        moved = net.run(u.transpose(1, 0, 2), h0=h0, batch_first=True)
        np.testing.assert_array_equal(moved.h, net.run(u, h0=h0).h.swapaxes(0, 1))


@pytest.mark.parametrize("net", _nmrnn_and_lstm(), ids=["NMRNN", "LSTM"])
def test_nmrnn_and_lstm_warn_on_batch_major_looking_input_like_the_rate_models(net):
    u = np.zeros((16, 400, 2))  # as (B, T, n_in) would be
    with pytest.warns(UserWarning, match=r"read time-major, as T = 16 steps of B = 400 trials; "
                      r"if the first axis is the batch, pass batch_first=True"):  # fmt: skip
        net.run(u)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.run(u, batch_first=False)
    with pytest.raises(TypeError, match="batch_first"):
        net.run(np.zeros((2, 5, 2)), batch_first="yes")
    with pytest.raises(ValueError, match=r"u: expected \(B, T, n_in\)"):
        net.run(np.zeros((5, 2)), batch_first=True)
