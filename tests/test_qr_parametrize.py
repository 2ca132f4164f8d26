"""parametrize="qr": a raw factor U stored and trained, its Q used by the network."""

from __future__ import annotations

import json

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.models import qr_factor
from flexrnn.train.gradients import qr_backward
from hypothesis import given, settings
from hypothesis import strategies as st


def _trials(n_in, T=12, B=3, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((T, B, n_in))
    target = rng.standard_normal((T, B, 1)) * 0.5
    return fr.tasks.Trials(u, target, np.ones_like(target))


def _nmrnn(seed=0, dtype="float64"):
    return fr.NMRNN.random(n=9, rank=3, n_mod=4, n_in=2, n_out=1, tau_x=4.0, tau_z=8.0,
                           parametrize="qr", seed=seed, dtype=dtype)  # fmt: skip


def _low_rank(seed=0, dtype="float64"):
    return fr.LowRankRNN.random(n=8, rank=2, n_in=2, n_out=1, tau=4.0, parametrize="qr",
                                seed=seed, dtype=dtype)  # fmt: skip


MODELS = {"NMRNN": _nmrnn, "LowRankRNN": _low_rank}


@settings(max_examples=25)
@given(n=st.integers(1, 8), k=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_qr_backward_matches_finite_differences_of_numpy_qr(n, k, seed):
    k = min(n, k)
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, k)) + 2 * np.eye(n, k)  # well conditioned
    G = rng.standard_normal((n, k))  # loss = sum(G * Q)
    Q, R = qr_factor(A)
    grad = qr_backward(Q, R, G)
    numeric = np.zeros_like(A)
    h = 1e-6
    for idx in np.ndindex(*A.shape):
        E = np.zeros_like(A)
        E[idx] = h
        numeric[idx] = np.sum(G * np.linalg.qr(A + E)[0]) - np.sum(G * np.linalg.qr(A - E)[0])
    numeric /= 2 * h
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", MODELS)
def test_gradient_of_the_raw_factor_matches_finite_differences(name):
    net = MODELS[name]()
    trials = _trials(net.n_in)
    _, grads = fr.train.loss_and_grad(net, trials)
    numeric = np.zeros_like(net.U)
    h = 1e-6
    for idx in np.ndindex(*net.U.shape):
        keep = net.U[idx]
        net.U[idx] = keep + h
        plus = fr.train.loss_and_grad(net, trials)[0]
        net.U[idx] = keep - h
        minus = fr.train.loss_and_grad(net, trials)[0]
        net.U[idx] = keep
        numeric[idx] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(grads["U"], numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", MODELS)
def test_network_uses_q_of_the_raw_factor(name):
    net = MODELS[name]()
    Q = np.linalg.qr(net.U)[0]
    np.testing.assert_array_equal(net.factor(), Q)
    np.testing.assert_allclose(Q.T @ Q, np.eye(net.rank), atol=1e-12)
    explicit = type(net)(**net.effective_params(), **{**net.hyperparameters(), "parametrize": None})
    np.testing.assert_array_equal(explicit.U, Q)
    u = _trials(net.n_in).u
    np.testing.assert_array_equal(explicit.run(u).y, net.run(u).y)
    # gradients of every other parameter are those of the explicit model
    trials = _trials(net.n_in)
    _, raw = fr.train.loss_and_grad(net, trials)
    _, direct = fr.train.loss_and_grad(explicit, trials)
    for key in raw:
        if key != "U":
            np.testing.assert_array_equal(raw[key], direct[key], err_msg=key)
    # the raw gradient is dQ pulled back through the QR
    Q, R = qr_factor(net.U)
    np.testing.assert_allclose(raw["U"], qr_backward(Q, R, direct["U"]), rtol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_raw_factor_scale_does_not_change_the_network(name):
    net = MODELS[name]()
    u = _trials(net.n_in).u
    scaled = net.copy()
    scaled.U *= 3.0  # Q is unchanged by a positive column scaling
    np.testing.assert_allclose(scaled.run(u).y, net.run(u).y, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_keeps_the_parametrisation(name, tmp_path):
    net = MODELS[name]()
    net.save(tmp_path / "net.npz")
    back = fr.load(tmp_path / "net.npz")
    assert back.parametrize == "qr"
    np.testing.assert_array_equal(back.U, net.U)
    u = _trials(net.n_in).u
    np.testing.assert_array_equal(back.run(u).y, net.run(u).y)
    assert net.copy().parametrize == "qr" and net.astype("float32").parametrize == "qr"


def test_files_written_before_the_option_load_unparametrised(tmp_path):
    net = fr.NMRNN.random(n=6, rank=2, n_mod=2, n_in=1, n_out=1)
    path = tmp_path / "old.npz"
    net.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["__meta__"]))
    del meta["hyperparameters"]["parametrize"]
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    back = fr.load(path)
    assert back.parametrize is None
    np.testing.assert_array_equal(back.U, net.U)


def test_bptt_trains_the_raw_factor_and_float32_works():
    task = fr.tasks.MeasureWaitGo(channels=1, intervals=[12], measure_times=[10, 11])
    net = fr.NMRNN.random(n=9, rank=3, n_mod=4, n_in=1, n_out=1, parametrize="qr",
                          dtype="float32")  # fmt: skip
    before = net.U.copy()
    hist = fr.train.bptt(net, task, iters=5, batch_size=2, lr=1e-2, val_every=None,
                         progress=False)  # fmt: skip
    assert not np.array_equal(net.U, before) and np.isfinite(hist.loss).all()
    assert net.factor().dtype == np.float32


def test_bad_parametrisations_are_named():
    with raises_naming("parametrize"):
        fr.NMRNN.random(n=4, rank=2, n_mod=2, n_in=1, n_out=1, parametrize="svd")
    with raises_naming("parametrize"):
        fr.LowRankRNN(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 1)), np.ones((1, 2)),
                      parametrize="qr")  # fmt: skip
    net = _low_rank()
    net.U[:, 1] = net.U[:, 0]  # rank-deficient: Q is not differentiable
    with raises_naming("U"):
        fr.train.loss_and_grad(net, _trials(net.n_in))
