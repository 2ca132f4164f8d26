"""FORCE and full-FORCE runs split over calls, shared memory and degenerate starts: a run
cut into chunks is the run in one piece; the teacher is never trained; a network at its zero
fixed point is moved off it."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from conftest import dtypes, numpy_seeds
from flexrnn import _core
from flexrnn import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st


def _sines(T, period=60):
    t = np.arange(T)
    return 0.5 * np.sin(2 * np.pi * t / period) + 0.25 * np.sin(4 * np.pi * t / period)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("update_every", [1, 3])
def test_force_on_a_target_does_not_depend_on_the_chunk_size(dtype, update_every):
    """The output fed back at a chunk's first step is the previous chunk's last a priori
    output, as in one call: W_out, P, the final state and the outputs are bitwise equal."""
    T = 240
    target = _sines(T)
    runs = []
    for chunk in (T, 7, 100):
        net = fr.RateRNN.random(n=40, n_in=0, n_out=1, g=1.5, tau=5.0, seed=2, dtype=dtype)
        x0 = np.random.default_rng(0).normal(0, 0.5, 40)
        hist = fr.train.force(net, target, x0=x0, epochs=2, chunk=chunk,
                              update_every=update_every, progress=False)  # fmt: skip
        y, _ = fr.train.feedback_run(net, hist.W_fb, T=50, x0=hist.x, z0=hist.z)
        runs.append((net.W_out.copy(), hist.P.copy(), hist.x.copy(), y))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


@settings(max_examples=10)
@given(seed=numpy_seeds, split=st.integers(1, 11), dtype=dtypes, learn=st.booleans())
def test_force_run_split_in_two_calls_equals_one_call(seed, split, dtype, learn):
    """The kernel's z in/out argument, in C++ and in the reference."""
    rng = np.random.default_rng(seed)
    n, T = 6, 12
    W = rng.normal(0, 1.2 / np.sqrt(n), (n, n)).astype(dtype)
    W_in, b = np.zeros((n, 0), dtype), rng.normal(0, 0.1, n).astype(dtype)
    W_out0 = rng.normal(0, 0.3, (1, n)).astype(dtype)
    b_out, W_fb = np.zeros(1, dtype), rng.uniform(-1, 1, (n, 1)).astype(dtype)
    target = rng.normal(size=(T, 1, 1)).astype(dtype)
    x0 = rng.normal(0, 0.5, (1, n)).astype(dtype)
    u = np.zeros((T, 1, 0), dtype)
    args = (0.3, "tanh", "current", "rate", 2)
    results = []
    for impl in ("core", "reference"):
        for parts in ([(0, T)], [(0, split), (split, T)]):
            W_out, P, x = W_out0.copy(), np.eye(n, dtype=dtype), x0.copy()
            z, ys = None, []
            for a, b_ in parts:
                z_io = z
                if impl == "core":
                    params = _core.RateRNNParams(W, W_in, b, W_out, b_out)
                    options = _core.ForceOptions(_core.RateOptions(*args[:4]), args[4], a, learn)
                    y, _ = _core.force_run(
                        params, options, W_fb, P, u[a:b_], target[a:b_], None, x, z_io
                    )
                else:
                    y, _ = ref.force_run(
                        W, W_in, b, W_out, b_out, W_fb, P, u[a:b_], target[a:b_], None, x,
                        alpha=0.3, phi="tanh", form="current", readout="rate", update_every=2,
                        step0=a, learn=learn, z=z_io,
                    )  # fmt: skip
                z = np.array(y[-1])
                ys.append(y)
            results.append((np.concatenate(ys), W_out, P, x))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for got in results[1:]:
        for a, b_ in zip(results[0], got):
            np.testing.assert_allclose(a, b_, rtol=0, atol=tol)


def test_full_force_never_trains_the_teacher_even_when_it_is_the_student():
    """A student started as the teacher (J_D = net.W, the same buffer): the teacher's weights
    are copied, so the student's in-place training leaves them as they were."""
    net = fr.RateRNN.random(n=30, n_in=1, n_out=1, g=1.0, tau=10.0, seed=0)
    task = fr.tasks.PerceptualDecision(sigma=0.5, T=100)
    teacher = {"J_D": net.W, "w_f": np.ones((30, 1)), "w_h": np.zeros((30, 0))}
    J_D_before = net.W.copy()
    hist = fr.train.full_force(net, task, teacher=teacher, iters=2, batch_size=2,
                               val_every=None, progress=False)  # fmt: skip
    np.testing.assert_array_equal(hist.teacher["J_D"], J_D_before)
    assert not np.shares_memory(hist.teacher["J_D"], net.W)
    assert np.abs(net.W - J_D_before).max() > 0  # the student did learn


def test_force_moves_a_network_at_its_zero_fixed_point():
    """RateRNN.random has x0 = 0 and b = 0: with no input it would stay at 0 and FORCE would
    see zero states. The run starts from 0.5 N(0, 1) instead and learns."""
    net = fr.RateRNN.random(n=100, n_in=0, n_out=1, g=1.5, tau=10.0, seed=0)
    assert not np.any(net.x0) and not np.any(net.b)
    target = _sines(600, period=200)
    hist = fr.train.force(net, target, alpha=1.0, update_every=2, epochs=2, chunk=200,
                          progress=False)  # fmt: skip
    assert np.all(hist.grad_norm > 0)
    assert hist.loss[-1] < 0.05 * np.var(target)  # a priori error of the last 200 steps


def test_force_warns_when_rls_sees_only_zero_states():
    net = fr.RateRNN.random(n=20, n_in=0, n_out=1, g=1.5, tau=10.0, seed=0)
    with pytest.warns(RuntimeWarning, match="did not change"):
        fr.train.force(net, _sines(50), x0=np.zeros(20), chunk=25, progress=False)
