"""The NM-RNN's training-step kernels: the C++ QR backward against flexrnn.reference, the
forward and BPTT against the reference over batch sizes that cross the batch-chunk rules,
independence of the thread count, and the cached QR of a raw factor following in-place
updates."""

from __future__ import annotations

from types import SimpleNamespace

import flexrnn as fr
import numpy as np
import pytest
from conftest import DTYPES, assert_close, numpy_seeds, raises_naming, random_nmrnn
from flexrnn import _core
from flexrnn import reference as ref
from flexrnn.models import qr_factor
from flexrnn.train import loss_and_grad
from flexrnn.train.gradients import qr_backward
from hypothesis import given, settings
from hypothesis import strategies as st

NAMES = ("W_z", "B_z", "b_z", "A_z", "c_z", "U", "V", "B_x", "C", "d", "x0", "z0")


@given(n=st.integers(1, 40), k=st.integers(1, 6), seed=numpy_seeds, dtype=st.sampled_from(DTYPES))
def test_core_qr_backward_matches_the_reference(n, k, seed, dtype):
    k = min(n, k)
    rng = np.random.default_rng(seed)
    A = (rng.standard_normal((n, k)) + 2 * np.eye(n, k)).astype(dtype)
    Q, R = qr_factor(A)
    dQ = rng.standard_normal((n, k)).astype(dtype)
    got = qr_backward(Q, R, dQ)
    expected = ref.qr_backward(Q.astype(np.float64), R.astype(np.float64), dQ.astype(np.float64))
    assert got.dtype == np.dtype(dtype) and got.shape == (n, k)
    assert_close(got, expected, dtype=dtype)


def test_core_qr_backward_names_a_misshapen_argument():
    Q, R = qr_factor(np.random.default_rng(0).standard_normal((5, 2)))
    with raises_naming("dQ"):
        _core.qr_backward(Q, R, np.ones((5, 3)))
    with raises_naming("R"):
        _core.qr_backward(Q, np.eye(3), np.ones((5, 2)))
    with raises_naming("Q"):
        _core.qr_backward(np.ones((2, 5)), np.eye(5), np.ones((2, 5)))
    with raises_naming("dQ"):
        _core.qr_backward(Q, R, np.full((5, 2), np.nan))


def _trials(rng, T, B, n_in=2, n_out=2):
    return SimpleNamespace(
        u=rng.normal(0, 1, (T, B, n_in)),
        target=rng.normal(0, 1, (T, B, n_out)),
        mask=(rng.random((T, B, n_out)) < 0.7).astype(float),
    )


def _reference(net, trials, **gains):
    p = {k: np.asarray(v, np.float64) for k, v in net.effective_params().items()}
    value, grads, y = ref.nmrnn_loss_and_grad(
        np.asarray(trials.u, np.float64), trials.target, trials.mask, *(p[k] for k in NAMES),
        W_zx=p.get("W_zx"), alpha_x=net.alpha_x, alpha_z=net.alpha_z, n_scale=net.n_scale,
        **gains,
    )  # fmt: skip
    return value, {k: g.sum(axis=0) if k in ("x0", "z0") else g for k, g in grads.items()}, y


# batch sizes below, at and above the chunk rules (2 chunks below 32, multiples of 4 above)
@settings(max_examples=30)
@given(
    B=st.sampled_from([1, 2, 3, 15, 16, 31, 32, 33, 40, 63, 64, 100, 130]),
    seed=numpy_seeds,
    dtype=st.sampled_from(DTYPES),
    feedback=st.booleans(),
    gained=st.booleans(),
)
def test_forward_and_gradients_match_reference_over_batch_chunkings(
    B, seed, dtype, feedback, gained
):
    rng = np.random.default_rng(seed)
    n, T = 17, 6
    net = random_nmrnn(rng, n, 3, 4, 2, 2, feedback=feedback, dtype=dtype)
    trials = _trials(rng, T, B)
    gains = {}
    if gained:
        gains = {"gain": rng.uniform(0.5, 1.5, (T, B)), "pre_gain": rng.uniform(0.5, 1.5, n),
                 "post_gain": rng.uniform(0.5, 1.5, (T, B, n))}  # fmt: skip
    value, grads, y = loss_and_grad(net, trials, return_output=True, **gains)
    ref_value, expected, ref_y = _reference(net, trials, **gains)
    assert_close(y, ref_y)
    rtol = 1e-9 if dtype == np.float64 else 2e-3
    assert value == pytest.approx(ref_value, rel=rtol, abs=rtol)
    scale = max(1e-12, *(float(np.abs(g).max()) for g in expected.values() if g.size))
    for name, g in expected.items():
        np.testing.assert_allclose(grads[name], g, rtol=rtol, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("B", [40, 100])
def test_forward_and_gradients_do_not_depend_on_the_thread_count(B, restore_threads):
    rng = np.random.default_rng(B)
    net = random_nmrnn(rng, 30, 3, 5, 2, 2, feedback=True)
    trials = _trials(rng, 20, B)
    results = []
    for threads in (1, 2, 3):
        fr.set_num_threads(threads)
        results.append(loss_and_grad(net, trials, return_output=True))
    for value, grads, y in results[1:]:
        assert value == results[0][0]
        np.testing.assert_array_equal(y, results[0][2])
        for name in grads:
            np.testing.assert_array_equal(grads[name], results[0][1][name], err_msg=name)


def test_gradient_through_the_qr_follows_in_place_updates_of_the_raw_factor():
    rng = np.random.default_rng(1)
    net = random_nmrnn(rng, 12, 3, 4, 2, 2)
    net.parametrize = "qr"
    trials = _trials(rng, 8, 5)
    loss_and_grad(net, trials)  # factorises the current U
    net.U += 0.3 * rng.standard_normal(net.U.shape)  # in place, as an optimiser does
    value, grads = loss_and_grad(net, trials)
    fresh = net.copy()  # no factorisation kept
    expected_value, expected = loss_and_grad(fresh, trials)
    assert value == expected_value
    for name in grads:
        np.testing.assert_array_equal(grads[name], expected[name], err_msg=name)
    np.testing.assert_array_equal(net.factor(), np.linalg.qr(net.U)[0])
