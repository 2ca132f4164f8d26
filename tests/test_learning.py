"""Learning rules (docs/learning_rules.md): the C++ kernels against flexrnn.reference, the
invariants of RLS, FORCE on a target it can represent, GA elitism, Hebbian learning, and the
drivers' checkpoints and argument checks."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from conftest import DTYPES, assert_close, dtypes, numpy_seeds, raises_naming
from flexrnn import _core
from flexrnn import reference as ref
from flexrnn.tasks.base import Trials
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=12)


def _rate_arrays(rng, n, n_in, n_out, dtype, g=1.2):
    return {
        "W": rng.normal(0, g / np.sqrt(n), (n, n)).astype(dtype),
        "W_in": rng.normal(0, 1, (n, n_in)).astype(dtype),
        "b": rng.normal(0, 0.1, n).astype(dtype),
        "W_out": rng.normal(0, 0.3, (n_out, n)).astype(dtype),
        "b_out": rng.normal(0, 0.1, n_out).astype(dtype),
    }


# --------------------------------------------------------------------------------------------
# RLS


@FAST
@given(seed=numpy_seeds, n=st.integers(1, 30), steps=st.integers(1, 20), dtype=dtypes)
def test_rls_matches_reference_step_for_step(seed, n, steps, dtype):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    P = (A @ A.T / n + np.eye(n)).astype(dtype)  # any symmetric positive definite start
    H = rng.normal(size=(steps, n)).astype(dtype)
    P_ref = P.copy()
    k, c = _core.rls_steps(P, H)
    for s in range(steps):
        k_ref, c_ref = ref.rls_step(P_ref, H[s])
        assert_close(k[s], k_ref, err_msg=f"k at step {s}")
        assert_close(c[s], c_ref, err_msg=f"c at step {s}")
    assert_close(P, P_ref, err_msg="P")


def test_rls_keeps_P_symmetric_positive_definite_and_equal_to_the_inverse():
    # after steps on h_1..h_m from P0 = I / alpha, P = (alpha I + sum h h^T)^-1 exactly
    rng = np.random.default_rng(3)
    n, steps, alpha = 25, 400, 0.5
    H = rng.normal(size=(steps, n))
    P = np.eye(n) / alpha
    for chunk in np.array_split(H, 7):
        _core.rls_steps(P, chunk)
        assert np.array_equal(P, P.T), "P must stay exactly symmetric"
        assert np.linalg.eigvalsh(P).min() > 0
    expected = np.linalg.inv(alpha * np.eye(n) + H.T @ H)
    np.testing.assert_allclose(P, expected, rtol=1e-8, atol=1e-12)
    P32 = (np.eye(n) / alpha).astype(np.float32)
    _core.rls_steps(P32, H.astype(np.float32))
    assert np.array_equal(P32, P32.T) and np.linalg.eigvalsh(P32.astype(np.float64)).min() > 0


# --------------------------------------------------------------------------------------------
# FORCE


@FAST
@given(
    seed=numpy_seeds,
    n=st.integers(1, 12),
    n_in=st.integers(0, 2),
    n_out=st.integers(1, 2),
    T=st.integers(1, 15),
    B=st.integers(1, 3),
    form=st.sampled_from(["current", "rate"]),
    readout=st.sampled_from(["rate", "state"]),
    update_every=st.integers(1, 3),
    step0=st.integers(0, 5),
    masked=st.booleans(),
    learn=st.booleans(),
    dtype=dtypes,
)
def test_force_run_matches_reference(
    seed, n, n_in, n_out, T, B, form, readout, update_every, step0, masked, learn, dtype
):
    rng = np.random.default_rng(seed)
    a = _rate_arrays(rng, n, n_in, n_out, dtype)
    W_fb = rng.uniform(-1, 1, (n, n_out)).astype(dtype)
    P = (np.eye(n) / rng.uniform(0.5, 5)).astype(dtype)
    u = rng.normal(size=(T, B, n_in)).astype(dtype)
    target = rng.normal(size=(T, B, n_out)).astype(dtype)
    mask = (rng.random((T, B)) < 0.6).astype(dtype) if masked else None
    x = rng.normal(0, 0.5, (B, n)).astype(dtype)
    mine = [a["W_out"].copy(), P.copy(), x.copy()]
    theirs = [a["W_out"].copy(), P.copy(), x.copy()]
    params = _core.RateRNNParams(a["W"], a["W_in"], a["b"], mine[0], a["b_out"])
    options = _core.ForceOptions(_core.RateOptions(0.3, "tanh", form, readout), update_every,
                                 step0, learn)  # fmt: skip
    y, updates = _core.force_run(params, options, W_fb, mine[1], u, target, mask, mine[2])
    y_ref, updates_ref = ref.force_run(
        a["W"], a["W_in"], a["b"], theirs[0], a["b_out"], W_fb, theirs[1], u, target, mask,
        theirs[2], alpha=0.3, phi="tanh", form=form, readout=readout,
        update_every=update_every, step0=step0, learn=learn,
    )  # fmt: skip
    assert updates == updates_ref
    assert_close(y, y_ref, err_msg="y")
    for name, got, want in zip(("W_out", "P", "x"), mine, theirs):
        assert_close(got, want, err_msg=name)


def test_force_fits_a_target_that_is_a_linear_readout_of_the_network():
    # no feedback: the trajectory does not depend on W_out, and the target w* r(t) is exactly
    # representable; RLS with a weak regulariser must find w* and drive the error to zero
    rng = np.random.default_rng(0)
    n, T = 20, 600
    net = fr.RateRNN.random(n=n, n_in=2, n_out=1, g=1.2, tau=5.0, seed=1)
    net.W_out[:] = 0
    u = rng.normal(size=(T, 2))
    x0 = rng.normal(0, 0.5, n)
    w_star = rng.normal(0, 1, (1, n))
    r = net.run(u[:, None], x0=x0).r[:, 0]
    target = r @ w_star.T
    hist = fr.train.force(net, target, u=u, x0=x0, alpha=1e-6, fb_scale=0.0, chunk=100,
                          progress=False)  # fmt: skip
    np.testing.assert_allclose(net.W_out, w_star, rtol=0, atol=1e-5)
    assert hist.loss[-1] < 1e-12 < hist.loss[0]
    assert hist.updates == T
    y, _ = fr.train.feedback_run(net, hist.W_fb, u[:, None], x0=x0)
    np.testing.assert_allclose(y[:, 0], target, atol=1e-5)


def test_feedback_run_is_force_without_learning():
    rng = np.random.default_rng(5)
    net = fr.RateRNN.random(n=15, n_in=1, n_out=2, g=1.5, seed=2)
    W_fb = rng.uniform(-1, 1, (15, 2))
    u = rng.normal(size=(40, 3, 1))
    y, x = fr.train.feedback_run(net, W_fb, u)
    xs = np.zeros((3, 15))
    y_ref, _ = ref.force_run(net.W, net.W_in, net.b, net.W_out.copy(), net.b_out, W_fb, None,
                             u, None, None, xs, alpha=net.alpha, phi=net.phi, form=net.form,
                             readout=net.readout, update_every=1, step0=0, learn=False)  # fmt: skip
    assert_close(y, y_ref)
    assert_close(x, xs)


# --------------------------------------------------------------------------------------------
# full-FORCE


@FAST
@given(
    seed=numpy_seeds,
    n=st.integers(1, 10),
    n_in=st.integers(0, 2),
    n_out=st.integers(1, 2),
    n_hint=st.integers(0, 2),
    T=st.integers(1, 12),
    B=st.integers(1, 3),
    update_every=st.integers(1, 3),
    masked=st.booleans(),
    dtype=dtypes,
)
def test_full_force_run_matches_reference(
    seed, n, n_in, n_out, n_hint, T, B, update_every, masked, dtype
):
    rng = np.random.default_rng(seed)
    a = _rate_arrays(rng, n, n_in, n_out, dtype)
    J_D = rng.normal(0, 1.5 / np.sqrt(n), (n, n)).astype(dtype)
    w_f = rng.uniform(-1, 1, (n, n_out)).astype(dtype)
    w_h = rng.uniform(-1, 1, (n, n_hint)).astype(dtype)
    P = np.eye(n, dtype=dtype)
    u = rng.normal(size=(T, B, n_in)).astype(dtype)
    f = rng.normal(size=(T, B, n_out)).astype(dtype)
    hint = rng.normal(size=(T, B, n_hint)).astype(dtype)
    mask = (rng.random((T, B)) < 0.5).astype(dtype) if masked else None
    x = rng.normal(0, 0.5, (B, n)).astype(dtype)
    x_D = rng.normal(0, 0.5, (B, n)).astype(dtype)
    mine = [a["W"].copy(), a["W_out"].copy(), P.copy(), x.copy()]
    theirs = [a["W"].copy(), a["W_out"].copy(), P.copy(), x.copy()]
    params = _core.RateRNNParams(mine[0], a["W_in"], a["b"], mine[1], a["b_out"])
    options = _core.ForceOptions(_core.RateOptions(0.2, "tanh"), update_every, 0, True)
    y, updates = _core.full_force_run(params, options, J_D, w_f, w_h, mine[2], u, f, hint, mask,
                                      mine[3], x_D)  # fmt: skip
    y_ref, updates_ref = ref.full_force_run(
        theirs[0], a["W_in"], a["b"], theirs[1], a["b_out"], J_D, w_f, w_h, theirs[2], u, f,
        hint, mask, theirs[3], x_D, alpha=0.2, phi="tanh", update_every=update_every, step0=0,
        learn=True,
    )  # fmt: skip
    assert updates == updates_ref
    assert_close(y, y_ref, err_msg="y")
    for name, got, want in zip(("J", "W_out", "P", "x"), mine, theirs):
        assert_close(got, want, err_msg=name)


def test_full_force_learns_perceptual_decision_quickly():
    task = fr.tasks.PerceptualDecision(T=200)
    net = fr.RateRNN.random(n=30, n_in=1, n_out=1, g=1.0, seed=0)
    hist = fr.train.full_force(net, task, iters=12, batch_size=5, alpha=10.0, g_teacher=1.0,
                               hint=fr.train.integration_hint(task), response_steps=50,
                               val_every=12, val_batch=200, progress=False)  # fmt: skip
    assert hist.updates > 0 and hist.val_accuracy[-1] >= 0.8


# --------------------------------------------------------------------------------------------
# Genetic algorithm


def _population(rng, P, n, n_in, n_out, dtype):
    return {
        "W": rng.normal(0, 1 / np.sqrt(n), (P, n, n)).astype(dtype),
        "W_in": rng.normal(size=(P, n, n_in)).astype(dtype),
        "b": rng.normal(0, 0.1, (P, n)).astype(dtype),
        "W_out": rng.normal(0, 0.5, (P, n_out, n)).astype(dtype),
        "b_out": rng.normal(0, 0.1, (P, n_out)).astype(dtype),
        "x0": rng.normal(0, 0.5, (P, n)).astype(dtype),
    }


@FAST
@given(
    seed=numpy_seeds,
    P=st.integers(1, 5),
    n=st.integers(1, 10),
    n_in=st.integers(0, 2),
    n_out=st.integers(1, 2),
    T=st.integers(1, 10),
    B=st.integers(1, 4),
    form=st.sampled_from(["current", "rate"]),
    masked=st.booleans(),
    dtype=dtypes,
)
def test_population_loss_matches_reference(seed, P, n, n_in, n_out, T, B, form, masked, dtype):
    rng = np.random.default_rng(seed)
    pop = _population(rng, P, n, n_in, n_out, dtype)
    u = rng.normal(size=(T, B, n_in)).astype(dtype)
    target = rng.normal(size=(T, B, n_out)).astype(dtype)
    mask = (rng.random((T, B, n_out)) < 0.5).astype(dtype) if masked else None
    args = [pop[k] for k in ("W", "W_in", "b", "W_out", "b_out", "x0")]
    options = _core.RateOptions(0.2, "tanh", form, "rate")
    loss, y = _core.population_loss(*args, u, target, mask, options, True)
    loss_ref, y_ref = ref.population_loss(*args, u, target, mask, alpha=0.2, phi="tanh",
                                          form=form, readout="rate")  # fmt: skip
    assert_close(y, y_ref)
    assert_close(loss, loss_ref, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_population_loss_does_not_depend_on_the_thread_count(dtype, restore_threads):
    rng = np.random.default_rng(1)
    pop = _population(rng, 6, 40, 2, 1, dtype)
    u = rng.normal(size=(60, 16, 2)).astype(dtype)
    target = rng.normal(size=(60, 16, 1)).astype(dtype)
    args = [pop[k] for k in ("W", "W_in", "b", "W_out", "b_out", "x0")]
    results = []
    for threads in (1, 2):
        fr.set_num_threads(threads)
        options = _core.RateOptions(0.1, "tanh", "current", "rate")
        results.append(_core.population_loss(*args, u, target, None, options, True))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])


@FAST
@given(seed=numpy_seeds, P=st.integers(1, 6), dtype=dtypes, sigma=st.floats(0, 1))
def test_mutate_population_matches_reference(seed, P, dtype, sigma):
    rng = np.random.default_rng(seed)
    src = [rng.normal(size=(4, 3, 5)).astype(dtype), rng.normal(size=(4, 2)).astype(dtype)]
    parent = rng.integers(0, 4, P).astype(np.int64)
    mutate = (rng.random(P) < 0.7).astype(np.uint8)
    out = _core.mutate_population(src, parent, mutate, sigma, seed, 7)
    out_ref = ref.mutate_population(src, parent, mutate, sigma, seed, 7)
    for got, want in zip(out, out_ref):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert_close(got, want)
    for i in np.flatnonzero(mutate == 0):
        assert np.array_equal(out[0][i], src[0][parent[i]])


class FixedBatch:
    """A task that hands out the same trials whatever the generator."""

    def __init__(self, trials, base):
        self.trials, self.base = trials, base
        self.n_in, self.n_out, self.name = base.n_in, base.n_out, "fixed"

    def batch(self, B, rng=None, dtype=np.float64):
        t = self.trials
        info = {k: v[:B] for k, v in t.info.items()}
        cast = [a[:, :B].astype(dtype) for a in (t.u, t.target, t.mask)]
        return Trials(*cast, info)

    def score(self, y, trials):
        return self.base.score(y, trials)


def test_genetic_elitism_never_loses_the_best_fitness_on_a_fixed_batch():
    base = fr.tasks.PerceptualDecision(T=60)
    task = FixedBatch(base.batch(16, 0), base)
    net = fr.RateRNN.random(n=12, n_in=1, n_out=1, g=1.0, seed=0)
    hist = fr.train.genetic(net, task, generations=15, population=10, survivors=3, sigma=0.05,
                            batch_size=16, val_every=None, progress=False)  # fmt: skip
    assert np.all(np.diff(hist.loss) <= 0), hist.loss
    assert hist.loss[-1] < hist.loss[0]
    # net holds the best member: its loss on the batch is the last best loss
    trials = task.batch(16)
    assert_close(fr.train.task_loss(net.run(trials.u).y, trials), hist.loss[-1])


def test_genetic_resume_is_bitwise_identical(tmp_path):
    task = fr.tasks.PerceptualDecision(T=40)
    kwargs = dict(population=6, survivors=2, sigma=0.02, batch_size=8, val_every=2,
                  val_batch=16, progress=False, seed=4)  # fmt: skip
    full = fr.RateRNN.random(n=8, n_in=1, n_out=1, seed=0)
    h_full = fr.train.genetic(full, task, generations=6, **kwargs)
    part = fr.RateRNN.random(n=8, n_in=1, n_out=1, seed=0)
    ckpt = tmp_path / "ga.npz"
    fr.train.genetic(part, task, generations=3, checkpoint=ckpt, **kwargs)
    resumed = fr.RateRNN.random(n=8, n_in=1, n_out=1, seed=0)
    h_res = fr.train.genetic(resumed, task, generations=6, resume=ckpt, **kwargs)
    for name in ("W", "W_in", "W_out"):
        assert np.array_equal(getattr(full, name), getattr(resumed, name)), name
    assert np.array_equal(h_full.loss, h_res.loss)
    assert np.array_equal(h_full.val_accuracy, h_res.val_accuracy)


# --------------------------------------------------------------------------------------------
# Reward-modulated Hebbian


def test_philox_uniform_matches_reference():
    for seed, stream, step, n in [(0, 0, 0, 1), (3, 5, 7, 11), (2**64 - 1, 2**40, 2**31, 8)]:
        got = _core.philox_uniform(seed, stream, step, n)
        want = ref.philox_uniform(seed, stream, step, n)
        np.testing.assert_array_equal(got, want)
        assert ((got > 0) & (got < 1)).all()


@settings(max_examples=8)
@given(seed=numpy_seeds, n=st.integers(1, 8), B=st.integers(1, 3), dtype=dtypes,
       readout=st.sampled_from(["rate", "state"]), learn=st.booleans())  # fmt: skip
def test_hebbian_matches_reference_for_a_short_fixed_seed_run(seed, n, B, dtype, readout, learn):
    rng = np.random.default_rng(seed)
    T, n_out = 25, 2
    a = _rate_arrays(rng, n, 1, n_out, dtype, g=1.5)
    u = rng.normal(size=(T, B, 1)).astype(dtype)
    target = rng.choice([-1.0, 1.0], (B, n_out)).astype(dtype)
    x0 = rng.normal(0, 0.5, (B, n)).astype(dtype)
    condition = rng.integers(0, 2, B).astype(np.int64)
    Rbar = np.array([np.nan, 0.7])
    W, W_ref, Rbar_ref = a["W"].copy(), a["W"].copy(), Rbar.copy()
    opts = dict(kick_prob=0.05, kick_amp=3.0, trace_decay=0.8, eta=0.5, clip=1e-2,
                reward_decay=0.75, window=6)  # fmt: skip
    params = _core.RateRNNParams(W, a["W_in"], a["b"], a["W_out"], a["b_out"])
    options = _core.HebbianOptions(_core.RateOptions(0.2, "tanh", "current", readout),
                                   *opts.values(), seed, 3, learn)  # fmt: skip
    y, R = _core.hebbian_run(params, options, u, target, x0, condition, Rbar)
    y_ref, R_ref = ref.hebbian_run(
        W_ref, a["W_in"], a["b"], a["W_out"], a["b_out"], u, target, x0, condition, Rbar_ref,
        alpha=0.2, phi="tanh", readout=readout, **opts, seed=seed, trial0=3, learn=learn,
    )  # fmt: skip
    assert_close(y, y_ref, err_msg="y")
    assert_close(R, R_ref, dtype=dtype, err_msg="R")
    assert_close(W, W_ref, err_msg="W")
    np.testing.assert_allclose(Rbar, Rbar_ref, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert learn or np.array_equal(W, a["W"])


@pytest.mark.parametrize("trace_decay", [0.0, 0.05, 0.8])
def test_hebbian_kick_enters_the_eligibility_as_its_whole_jump(trace_decay):
    """Miconi's x - xbar compares x[t] with the running average of the *earlier* steps. A
    network at rest (W = 0, x0 = b, no input) kicked once, at the last step, on neuron k by
    a: x_k jumps by alpha a, so e_kj = (r_j alpha a)^3 and nothing else, whatever the decay.
    (Averaging x[t] in first scaled every kick by trace_decay^3: with 0.05 the rule was off,
    with 0.8 the slow average let the network's own drift into e.)"""
    n, T, alpha, kick_prob, kick_amp = 3, 4, 0.2, 0.15, 30.0
    for seed in range(1000):  # a kick stream with exactly one kick, at the last step
        w = np.array([_core.philox_uniform(seed, 0, t, 2 * n) for t in range(T)])
        kicked = w[:, :n] < kick_prob
        if kicked.sum() == 1 and kicked[-1].any():
            break
    k = int(np.flatnonzero(kicked[-1])[0])
    a = kick_amp * (2 * w[-1, n + k] - 1)
    b = np.array([0.5, -0.8, 1.2])
    want = np.zeros((n, n))
    want[k] = (np.tanh(b) * alpha * a) ** 3
    args = (np.zeros((n, 1)), b, np.zeros((1, n)), np.zeros(1), np.zeros((T, 1, 1)),
            np.ones((1, 1)), b[None].copy(), np.zeros(1, np.int64))  # fmt: skip
    # W_out = 0, target 1: R = 1; Rbar = 0, eta 1, no clip: W changes by -e
    W, Rbar = np.zeros((n, n)), np.zeros(1)
    options = _core.HebbianOptions(_core.RateOptions(alpha, "tanh", "current", "rate"),
                                   kick_prob, kick_amp, trace_decay, 1.0, 1e30, 0.75, 1, seed, 0,
                                   True)  # fmt: skip
    _core.hebbian_run(_core.RateRNNParams(W, *args[:4]), options, *args[4:], Rbar)
    np.testing.assert_allclose(-W, want, rtol=1e-12, atol=1e-12)
    W_ref, Rbar_ref = np.zeros((n, n)), np.zeros(1)
    ref.hebbian_run(
        W_ref, *args, Rbar_ref, alpha=alpha, phi="tanh", readout="rate", kick_prob=kick_prob,
        kick_amp=kick_amp, trace_decay=trace_decay, eta=1.0, clip=1e30, reward_decay=0.75,
        window=1, seed=seed, trial0=0, learn=True,
    )  # fmt: skip
    np.testing.assert_allclose(-W_ref, want, rtol=1e-12, atol=1e-12)


def test_hebbian_driver_changes_W_and_resumes_bitwise(tmp_path):
    task = fr.tasks.PerceptualDecision(T=50)
    kwargs = dict(batch_size=3, kick_prob=0.05, window=10, val_every=2, val_batch=8,
                  progress=False, seed=1)  # fmt: skip
    full = fr.RateRNN.random(n=10, n_in=1, n_out=1, g=1.5, tau=30.0, seed=0)
    W0 = full.W.copy()
    h_full = fr.train.hebbian(full, task, iters=4, **kwargs)
    assert not np.array_equal(full.W, W0) and len(h_full) == 4
    part = fr.RateRNN.random(n=10, n_in=1, n_out=1, g=1.5, tau=30.0, seed=0)
    fr.train.hebbian(part, task, iters=2, checkpoint=tmp_path / "h.npz", **kwargs)
    resumed = fr.RateRNN.random(n=10, n_in=1, n_out=1, g=1.5, tau=30.0, seed=0)
    h_res = fr.train.hebbian(resumed, task, iters=4, resume=tmp_path / "h.npz", **kwargs)
    assert np.array_equal(full.W, resumed.W)
    assert np.array_equal(h_full.loss, h_res.loss)


# --------------------------------------------------------------------------------------------
# Bad input


def test_learning_rules_reject_bad_arguments_naming_them():
    net = fr.RateRNN.random(n=6, n_in=1, n_out=1, seed=0)
    task = fr.tasks.PerceptualDecision(T=20)
    with raises_naming("alpha"):
        fr.train.force(net, np.zeros(10), alpha=-1.0, progress=False)
    with raises_naming("target"):
        fr.train.force(net, np.zeros((10, 3)), progress=False)
    with raises_naming("update_every"):
        fr.train.force(net, np.zeros(10), update_every=0, progress=False)
    with raises_naming("W_fb"):
        fr.train.feedback_run(net, np.zeros((5, 1)), T=3)
    with raises_naming("net"):
        fr.train.force(fr.LSTM.random(4, n_in=1, n_out=1), np.zeros(10), progress=False)
    with raises_naming("net"):
        rate_form = fr.RateRNN.random(n=6, n_in=1, n_out=1, form="rate", seed=0)
        fr.train.full_force(rate_form, task, iters=1, progress=False)
    with raises_naming("survivors"):
        fr.train.genetic(net, task, generations=1, population=3, survivors=4, progress=False)
    with raises_naming("trainable"):
        fr.train.genetic(net, task, generations=1, trainable=["V"], progress=False)
    with raises_naming("trace_decay"):
        fr.train.hebbian(net, task, iters=1, trace_decay=1.5, progress=False)
    with raises_naming("task"):
        fr.train.hebbian(net, fr.tasks.ContextIntegration(2, T=20), iters=1, progress=False)


def test_core_learning_kernels_validate_shapes_naming_the_argument():
    P = np.eye(4)
    with raises_naming("P"):
        _core.rls_steps(np.eye(3), np.zeros((2, 4)))
    with raises_naming("H"):
        _core.rls_steps(P, np.zeros(4))
    with pytest.raises(TypeError):  # a converted copy would be updated instead of P
        _core.rls_steps(np.eye(4, dtype=np.float32), np.zeros((2, 4)))
    with raises_naming("W_in"):
        _core.population_loss(np.zeros((2, 3, 3)), np.zeros((2, 3, 2)), np.zeros((2, 3)),
                              np.zeros((2, 1, 3)), np.zeros((2, 1)), np.zeros((2, 3)),
                              np.zeros((4, 1, 1)), np.zeros((4, 1, 1)), None,
                              _core.RateOptions(0.1, "tanh", "current", "rate"), False)  # fmt: skip
    with raises_naming("parent"):
        _core.mutate_population([np.zeros((2, 3))], np.array([0, 5]), np.ones(2, np.uint8),
                                0.1, 0, 0)  # fmt: skip
    with raises_naming("condition"):
        params = _core.RateRNNParams(np.zeros((3, 3)), np.zeros((3, 1)), np.zeros(3),
                                     np.zeros((1, 3)), np.zeros(1))  # fmt: skip
        options = _core.HebbianOptions(_core.RateOptions(0.1, "tanh", "current", "rate"), 0.0,
                                       1.0, 0.8, 0.1, 1e-3, 0.75, 2, 0, 0, True)  # fmt: skip
        _core.hebbian_run(params, options, np.zeros((4, 2, 1)), np.zeros((2, 1)),
                          np.zeros((2, 3)), np.array([0, 3]), np.zeros(2))  # fmt: skip


def test_exploratory_run_without_kicks_is_the_plain_rollout():
    rng = np.random.default_rng(0)
    net = fr.RateRNN.random(n=9, n_in=2, n_out=2, g=1.5, tau=30.0, seed=3)
    u = rng.normal(size=(30, 4, 2))
    np.testing.assert_allclose(fr.train.exploratory_run(net, u, kick_prob=0.0), net.run(u).y,
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    kicked = fr.train.exploratory_run(net, u, kick_prob=0.2, kick_amp=30.0, seed=1)
    assert not np.allclose(kicked, net.run(u).y)
    assert np.array_equal(kicked, fr.train.exploratory_run(net, u, kick_prob=0.2, seed=1))


def test_force_on_a_task_trains_the_readout_and_validates_with_feedback():
    task = fr.tasks.PerceptualDecision(T=60)
    net = fr.RateRNN.random(n=20, n_in=1, n_out=1, g=1.2, seed=0)
    W_out = net.W_out.copy()
    hist = fr.train.force(net, task, iters=4, batch_size=3, val_every=2, val_batch=16,
                          progress=False)  # fmt: skip
    assert len(hist) == 4 and list(hist.val_iteration) == [2, 4]
    assert hist.updates == 4 * 3 * 2  # the mask counts the first and the last step
    assert not np.array_equal(net.W_out, W_out)
    assert np.array_equal(hist.P, hist.P.T)
