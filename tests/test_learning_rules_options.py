"""The learning-rule study's training options: random initial states per update and a fixed
validation set in BPTT, ``x0`` in loss_and_grad; the GA's independent initial population; the
Hebbian variant (Rbar factor, learning from a trial on, clamped bias units); full-FORCE's
variant (teacher never reset, output tanh)."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from conftest import assert_close, dtypes, numpy_seeds, raises_naming
from flexrnn import _core
from flexrnn import reference as ref
from flexrnn.train import gradients
from hypothesis import given, settings
from hypothesis import strategies as st


def small_net(seed=0):
    return fr.RateRNN.random(n=8, n_in=1, n_out=1, g=0.8, seed=seed)


def short_task():
    return fr.tasks.PerceptualDecision(T=20)


def test_loss_and_grad_x0_is_the_initial_state_of_the_trials():
    net = small_net()
    trials = short_task().batch(5, 0)
    x0 = np.random.default_rng(1).normal(size=(5, 8))
    value, _, y = fr.train.loss_and_grad(net, trials, x0=x0, return_output=True)
    np.testing.assert_array_equal(y, net.run(trials.u, x0=x0).y)
    assert value != fr.train.loss_and_grad(net, trials)[0]


def test_bptt_x0_std_draws_new_initial_states_every_update(monkeypatch):
    seen = []
    original = gradients.loss_and_grad

    def spy(net, trials, **kwargs):
        seen.append(kwargs.get("x0"))
        return original(net, trials, **kwargs)

    monkeypatch.setattr(gradients, "loss_and_grad", spy)
    net = small_net()
    x0_before = net.x0.copy()
    fr.train.bptt(net, short_task(), iters=3, batch_size=400, x0_std=0.3, trainable=["W"],
                  val_every=None, progress=False)  # fmt: skip
    assert len(seen) == 3
    for x0 in seen:
        assert x0.shape == (400, 8)
        assert np.std(x0) == pytest.approx(0.3, rel=0.05)
        assert abs(np.mean(x0)) < 0.03
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])
    np.testing.assert_array_equal(net.x0, x0_before)  # not trained (W only)


def test_bptt_with_x0_std_is_reproducible_and_differs_from_the_fixed_start():
    runs = []
    for x0_std in (0.3, 0.3, 0.0):
        net = small_net()
        fr.train.bptt(net, short_task(), iters=3, batch_size=16, x0_std=x0_std,
                      val_every=None, progress=False, seed=4)  # fmt: skip
        runs.append(net.W.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_bptt_validates_on_the_fixed_validation_set():
    task = short_task()
    val = task.batch(300, np.random.default_rng(9))
    net = small_net()
    hist = fr.train.bptt(net, task, iters=4, batch_size=16, val_every=2, val_trials=val,
                         progress=False)  # fmt: skip
    assert len(hist.val_accuracy) == 2
    assert hist.val_accuracy[-1] == pytest.approx(task.score(net.run(val.u).y, val))


def test_bptt_validation_with_x0_std_uses_one_fixed_draw_of_initial_states():
    task = short_task()
    val = task.batch(300, np.random.default_rng(9))
    accuracies = []
    for _ in range(2):
        net = small_net()
        hist = fr.train.bptt(net, task, iters=2, batch_size=16, val_every=1, val_trials=val,
                             x0_std=0.3, schedule=lambda it: 0.0, progress=False)  # fmt: skip
        accuracies.append(hist.val_accuracy)
    # lr 0: the network does not change, nor does the validation (same trials, same states)
    assert accuracies[0][0] == accuracies[0][1] == accuracies[1][0]


def test_bptt_study_options_reject_bad_values():
    net, task = small_net(), short_task()
    with raises_naming("x0_std"):
        fr.train.bptt(net, task, iters=1, x0_std=-1.0, progress=False)
    with raises_naming("val_trials"):
        fr.train.bptt(net, task, iters=1, val_trials=np.zeros(3), progress=False)
    with raises_naming("val_trials"):
        bad = fr.tasks.ContextIntegration(2, T=20).batch(4, 0)
        fr.train.bptt(net, task, iters=1, val_trials=bad, progress=False)
    with raises_naming("x0_std"):
        fr.train.bptt(fr.LSTM.random(4, 1, 1), task, iters=1, x0_std=0.3, progress=False)


# ---------------------------------------------------------------------------------------------
# Genetic algorithm: an independent initial population


def test_genetic_starts_from_the_given_independent_population():
    task = short_task()
    members = [small_net(seed) for seed in range(1, 5)]
    net = small_net(0)
    hist = fr.train.genetic(net, task, generations=1, population=4, survivors=1, sigma=0.0,
                            batch_size=8, initial_population=members, val_every=None,
                            progress=False)  # fmt: skip
    assert len(hist) == 1
    # sigma 0: the best member of generation 1 is one of the given networks, unchanged
    matches = [i for i, m in enumerate(members) if np.array_equal(net.W, m.W)]
    assert len(matches) == 1
    for name in ("W_in", "b", "W_out", "b_out", "x0"):
        np.testing.assert_array_equal(getattr(net, name), getattr(members[matches[0]], name))
    # the given networks themselves are not modified
    np.testing.assert_array_equal(members[0].W, small_net(1).W)


def test_genetic_without_generations_returns_the_first_given_member():
    members = [small_net(seed) for seed in range(1, 4)]
    net = small_net(0)
    fr.train.genetic(net, short_task(), generations=0, population=3, survivors=1,
                     initial_population=members, progress=False)  # fmt: skip
    np.testing.assert_array_equal(net.W, members[0].W)


def test_genetic_initial_population_is_checked():
    net, task = small_net(), short_task()
    with raises_naming("initial_population"):
        fr.train.genetic(net, task, generations=1, population=3, survivors=1,
                         initial_population=[small_net(1)], progress=False)  # fmt: skip
    with raises_naming("initial_population[1]"):
        other = fr.RateRNN.random(n=8, n_in=1, n_out=1, tau=5.0, seed=2)
        fr.train.genetic(net, task, generations=1, population=2, survivors=1,
                         initial_population=[small_net(1), other], progress=False)  # fmt: skip
    with raises_naming("initial_population[0]"):
        bigger = fr.RateRNN.random(n=9, n_in=1, n_out=1, seed=2)
        fr.train.genetic(net, task, generations=1, population=1, survivors=1,
                         initial_population=[bigger], progress=False)  # fmt: skip


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_genetic_validates_the_best_member_on_a_fixed_set(dtype):
    task = short_task()
    val = task.batch(30, 7)  # float64 arrays: converted to the network's dtype once
    net = small_net(0)
    net = fr.RateRNN(net.W, net.W_in, net.W_out, dtype=dtype)
    seen = []

    def record(gen, hist, model):  # the best member after each generation
        seen.append(float(task.score(model.outputs(val.u.astype(dtype)), val)))

    hist = fr.train.genetic(net, task, generations=3, population=4, survivors=2, sigma=0.05,
                            batch_size=8, val_every=1, val_trials=val, callback=record,
                            progress=False)  # fmt: skip
    np.testing.assert_allclose(hist.val_accuracy, seen)
    with raises_naming("val_trials"):
        fr.train.genetic(net, task, generations=1, population=2, survivors=1,
                         val_trials=np.zeros((3, 2, 1)), progress=False)  # fmt: skip


def test_study_genetic_preset_is_the_study_algorithm(monkeypatch):
    from flexrnn.experiments import learning_rules as lr

    given = {}

    def genetic(net, task, **kwargs):
        given.update(kwargs)
        return fr.train.genetic(net, task, **kwargs)

    monkeypatch.setattr(lr, "genetic", genetic)
    task = lr.study_task(None, T=20)
    net, hist = lr.study_genetic(task, n=6, generations=2, population=6, batch_size=10,
                                 val_count=40, dtype="float32", seed=3)  # fmt: skip
    assert (given["sigma"], given["survivors"], given["population"]) == (0.005, 5, 6)
    assert given["trainable"] == ["W", "W_in", "W_out"] and given["val_every"] == 1
    assert given["stop"].window == 10 and given["stop"].threshold == 0.9
    assert len({m.W.tobytes() for m in given["initial_population"]}) == 6  # independent draws
    assert net.dtype == np.float32 and len(hist.val_accuracy) == 2
    val = lr.study_validation_trials(task, 40, seed=3 + 10_000)
    assert hist.val_accuracy[-1] == pytest.approx(float(task.score(net.outputs(val.u), val)))


# ---------------------------------------------------------------------------------------------
# Hebbian variant


def hebbian_options(readout, seed, trial0, learn, rbar_factor, learn_from, units, values, opts):
    options = _core.HebbianOptions(_core.RateOptions(0.2, "tanh", "current", readout),
                                   *opts.values(), seed, trial0, learn)  # fmt: skip
    options.rbar_factor, options.learn_from = rbar_factor, learn_from
    options.clamp_units, options.clamp_values = units, values
    return options


@settings(max_examples=10, deadline=None)
@given(seed=numpy_seeds, n=st.integers(3, 8), B=st.integers(1, 4), dtype=dtypes,
       readout=st.sampled_from(["rate", "state"]), rbar_factor=st.booleans(),
       learn_from=st.integers(0, 6), n_clamped=st.integers(0, 3))  # fmt: skip
def test_hebbian_variant_matches_reference(seed, n, B, dtype, readout, rbar_factor, learn_from,
                                           n_clamped):  # fmt: skip
    rng = np.random.default_rng(seed)
    T, n_out, trial0 = 25, 2, 3
    W = rng.normal(0, 1.5 / np.sqrt(n), (n, n)).astype(dtype)
    W_in = rng.normal(0, 1, (n, 1)).astype(dtype)
    b = rng.normal(0, 0.1, n).astype(dtype)
    W_out = rng.normal(0, 0.3, (n_out, n)).astype(dtype)
    b_out = rng.normal(0, 0.1, n_out).astype(dtype)
    u = rng.normal(size=(T, B, 1)).astype(dtype)
    target = rng.choice([-1.0, 1.0], (B, n_out)).astype(dtype)
    x0 = rng.normal(0, 0.5, (B, n)).astype(dtype)
    condition = rng.integers(0, 2, B).astype(np.int64)
    Rbar = np.array([np.nan, 0.7])
    units = sorted(rng.choice(n, n_clamped, replace=False).tolist())
    values = rng.choice([-1.0, 1.0], n_clamped).tolist()
    W_c, W_ref, Rbar_ref = W.copy(), W.copy(), Rbar.copy()
    opts = dict(kick_prob=0.05, kick_amp=3.0, trace_decay=0.8, eta=0.5, clip=1e-2,
                reward_decay=0.75, window=6)  # fmt: skip
    params = _core.RateRNNParams(W_c, W_in, b, W_out, b_out)
    options = hebbian_options(readout, seed, trial0, True, rbar_factor, learn_from, units,
                              values, opts)  # fmt: skip
    y, R = _core.hebbian_run(params, options, u, target, x0, condition, Rbar)
    y_ref, R_ref = ref.hebbian_run(
        W_ref, W_in, b, W_out, b_out, u, target, x0, condition, Rbar_ref, alpha=0.2, phi="tanh",
        readout=readout, **opts, seed=seed, trial0=trial0, learn=True, rbar_factor=rbar_factor,
        learn_from=learn_from, clamp_units=units, clamp_values=values,
    )  # fmt: skip
    assert_close(y, y_ref, err_msg="y")
    assert_close(R, R_ref, dtype=dtype, err_msg="R")
    assert_close(W_c, W_ref, err_msg="W")
    np.testing.assert_allclose(Rbar, Rbar_ref, rtol=1e-5 if dtype == np.float32 else 1e-12)
    # the rows of clamped units (their inputs) never change; before learn_from nothing does
    np.testing.assert_array_equal(W_c[units], W[units])
    if trial0 + B <= learn_from:
        np.testing.assert_array_equal(W_c, W)


def test_hebbian_variant_options_off_are_the_plain_rule_bitwise():
    rng = np.random.default_rng(0)
    n, B, T = 6, 3, 30
    W = rng.normal(0, 0.5, (n, n))
    args = (rng.normal(0, 1, (n, 1)), rng.normal(0, 0.1, n), rng.normal(0, 0.3, (1, n)),
            np.zeros(1))  # fmt: skip
    u = rng.normal(size=(T, B, 1))
    target = np.ones((B, 1))
    x0 = rng.normal(0, 0.5, (B, n))
    opts = dict(kick_prob=0.05, kick_amp=3.0, trace_decay=0.05, eta=0.5, clip=1e-2,
                reward_decay=0.75, window=6)  # fmt: skip
    results = []
    for variant in (False, True):
        W_c, Rbar = W.copy(), np.array([0.5])
        options = _core.HebbianOptions(_core.RateOptions(0.2, "tanh", "current", "rate"),
                                       *opts.values(), 7, 0, True)  # fmt: skip
        if variant:  # the variant's fields set to their neutral values
            options.rbar_factor, options.learn_from = False, 0
            options.clamp_units, options.clamp_values = [], []
        y, R = _core.hebbian_run(_core.RateRNNParams(W_c, *args), options, u, target, x0, None,
                                 Rbar)  # fmt: skip
        results.append((y, R, W_c))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_hebbian_rbar_factor_scales_the_update_by_the_running_error():
    rng = np.random.default_rng(1)
    n, B, T = 5, 1, 20
    W = rng.normal(0, 0.5, (n, n))
    args = (rng.normal(0, 1, (n, 1)), np.zeros(n), rng.normal(0, 0.3, (1, n)), np.zeros(1))
    u, target, x0 = rng.normal(size=(T, B, 1)), np.ones((B, 1)), rng.normal(0, 0.5, (B, n))
    opts = dict(kick_prob=0.1, kick_amp=3.0, trace_decay=0.05, eta=1e-3, clip=1.0,
                reward_decay=0.75, window=6)  # fmt: skip
    changes = []
    for factor in (False, True):
        W_c, Rbar = W.copy(), np.array([0.4])
        options = hebbian_options("rate", 3, 0, True, factor, 0, [], [], opts)
        options.rate = _core.RateOptions(0.2, "tanh", "current", "rate")
        _core.hebbian_run(_core.RateRNNParams(W_c, *args), options, u, target, x0, None, Rbar)
        changes.append(W_c - W)
    # no clipping (clip 1): the variant's change is Rbar (0.4, before its update) times the plain
    np.testing.assert_allclose(changes[1], 0.4 * changes[0], rtol=1e-6)
    assert np.abs(changes[0]).max() > 0


def test_hebbian_driver_variant_holds_bias_units_and_learns_from_a_trial_on():
    task = fr.tasks.PerceptualDecision(T=40)
    net = fr.RateRNN.random(n=12, n_in=1, n_out=1, g=1.2, seed=2)
    clamp = {0: 1.0, 9: 1.0, 10: -1.0}
    fr.train.hold_units(net, clamp)
    held = net.run(task.batch(3, 0).u).x
    np.testing.assert_allclose(
        held[:, :, [0, 9, 10]], np.broadcast_to([1.0, 1.0, -1.0], (40, 3, 3)), atol=1e-12
    )
    W0 = net.W.copy()
    fr.train.hebbian(net, task, iters=2, batch_size=5, learn_from=10, clamp=clamp,
                     rbar_factor=True, val_every=None, progress=False)  # fmt: skip
    np.testing.assert_array_equal(net.W, W0)  # 10 trials, none learned from
    fr.train.hebbian(net, task, iters=4, batch_size=5, learn_from=10, clamp=clamp,
                     rbar_factor=True, kick_prob=0.2, eta=10.0, val_every=None,
                     progress=False)  # fmt: skip
    assert not np.array_equal(net.W, W0)
    np.testing.assert_array_equal(net.W[[0, 9, 10]], 0.0)  # the bias units' inputs stay 0
    with raises_naming("clamp"):
        fr.train.hebbian(net, task, iters=1, clamp={12: 1.0}, progress=False)
    with raises_naming("learn_from"):
        fr.train.hebbian(net, task, iters=1, learn_from=-1, progress=False)


# ---------------------------------------------------------------------------------------------
# full-FORCE variant: teacher never reset, its own input weights, RLS from a step on


def full_force_arrays(rng, n, n_in, n_out, n_hint, T, B, dtype):
    return {
        "J": rng.normal(0, 1.0 / np.sqrt(n), (n, n)).astype(dtype),
        "W_in": rng.normal(0, 1, (n, n_in)).astype(dtype),
        "b": rng.normal(0, 0.1, n).astype(dtype),
        "W_out": rng.normal(0, 0.3, (n_out, n)).astype(dtype),
        "b_out": rng.normal(0, 0.1, n_out).astype(dtype),
        "J_D": rng.normal(0, 1.0 / np.sqrt(n), (n, n)).astype(dtype),
        "w_f": rng.uniform(-1, 1, (n, n_out)).astype(dtype),
        "w_h": rng.uniform(-1, 1, (n, n_hint)).astype(dtype),
        "W_in_D": rng.normal(0, 0.25, (n, n_in)).astype(dtype),
        "u": rng.normal(size=(T, B, n_in)).astype(dtype),
        "f": rng.choice([-1.0, 1.0], (T, B, n_out)).astype(dtype),
        "hint": rng.normal(size=(T, B, n_hint)).astype(dtype),
        "x": rng.normal(0, 0.5, (B, n)).astype(dtype),
        "x_D": rng.normal(0, 0.5, (B, n)).astype(dtype),
    }


def core_full_force(a, dtype, carry, rls_from, own_inputs, x_D=None):
    """One call of the C++ kernel on copies of a's arrays: (y, updates, J, W_out, P, x, x_D)."""
    J, W_out = a["J"].copy(), a["W_out"].copy()
    n = J.shape[0]
    P = (np.eye(n) / 2.0).astype(dtype)
    x, xD = a["x"].copy(), (a["x_D"] if x_D is None else x_D).copy()
    params = _core.RateRNNParams(J, a["W_in"], a["b"], W_out, a["b_out"])
    options = _core.ForceOptions(rate=_core.RateOptions(0.2, "tanh", "current", "rate"),
                                 update_every=2, step0=1, learn=True)  # fmt: skip
    y, updates = _core.full_force_run(
        params=params, options=options, J_D=a["J_D"], w_f=a["w_f"], w_h=a["w_h"], P=P,
        u=a["u"], f=a["f"], hint=a["hint"], mask=None, x=x, x_D=xD,
        W_in_D=a["W_in_D"] if own_inputs else None, carry_teacher=carry, rls_from=rls_from,
    )  # fmt: skip
    return y, updates, J, W_out, P, x, xD


@settings(max_examples=10, deadline=None)
@given(seed=numpy_seeds, n=st.integers(2, 7), B=st.integers(1, 3), dtype=dtypes,
       carry=st.booleans(), rls_from=st.integers(0, 8), own_inputs=st.booleans())  # fmt: skip
def test_full_force_variant_matches_reference(seed, n, B, dtype, carry, rls_from, own_inputs):
    rng = np.random.default_rng(seed)
    a = full_force_arrays(rng, n, 2, 1, 1, 12, B, dtype)
    y, updates, J, W_out, P, x, xD = core_full_force(a, dtype, carry, rls_from, own_inputs)
    J_r, W_out_r = a["J"].copy(), a["W_out"].copy()
    P_r, x_r, xD_r = (np.eye(n) / 2.0).astype(dtype), a["x"].copy(), a["x_D"].copy()
    y_r, updates_r = ref.full_force_run(
        J_r, a["W_in"], a["b"], W_out_r, a["b_out"], a["J_D"], a["w_f"], a["w_h"], P_r, a["u"],
        a["f"], a["hint"], None, x_r, xD_r, alpha=0.2, phi="tanh", update_every=2, step0=1,
        learn=True, W_in_D=a["W_in_D"] if own_inputs else None, carry_teacher=carry,
        rls_from=rls_from,
    )  # fmt: skip
    assert updates == updates_r
    for got, want, name in ((y, y_r, "y"), (J, J_r, "J"), (W_out, W_out_r, "W_out"),
                            (x, x_r, "x"), (xD, xD_r, "x_D")):  # fmt: skip
        assert_close(got, want, err_msg=name)


def test_full_force_teacher_never_reset_runs_trials_as_one_stretch():
    """With carry_teacher, trials [0, 1] in one call equal trial 0, then trial 1 started from
    trial 0's final teacher state; without it, trial 1's teacher starts afresh."""
    rng = np.random.default_rng(3)
    a = full_force_arrays(rng, 6, 1, 1, 1, 15, 2, np.float64)
    both = core_full_force(a, np.float64, True, 0, True)
    first = {**a, **{k: a[k][:, :1] for k in ("u", "f", "hint")}, "x": a["x"][:1]}
    y0, _, J0, W_out0, P0, _, xD0 = core_full_force(first, np.float64, True, 0, True,
                                                     x_D=a["x_D"][:1])  # fmt: skip
    second = {**a, **{k: a[k][:, 1:] for k in ("u", "f", "hint")}, "x": a["x"][1:],
              "J": J0, "W_out": W_out0}  # fmt: skip
    # the second call's P must continue the first's
    J1, W_out1 = second["J"].copy(), second["W_out"].copy()
    params = _core.RateRNNParams(J1, a["W_in"], a["b"], W_out1, a["b_out"])
    options = _core.ForceOptions(rate=_core.RateOptions(0.2, "tanh", "current", "rate"),
                                 update_every=2, step0=1 + 15, learn=True)  # fmt: skip
    xD1 = xD0.copy()
    y1, _ = _core.full_force_run(
        params=params, options=options, J_D=a["J_D"], w_f=a["w_f"], w_h=a["w_h"], P=P0,
        u=second["u"], f=second["f"], hint=second["hint"], mask=None, x=second["x"].copy(),
        x_D=xD1, W_in_D=a["W_in_D"], carry_teacher=True,
    )  # fmt: skip
    np.testing.assert_array_equal(both[0][:, :1], y0)
    np.testing.assert_array_equal(both[0][:, 1:], y1)
    np.testing.assert_array_equal(both[2], J1)
    np.testing.assert_array_equal(both[6][1], xD1[0])
    reset = core_full_force(a, np.float64, False, 0, True)
    np.testing.assert_array_equal(reset[0][:, :1], y0)  # trial 0 is the same
    assert not np.array_equal(reset[0][:, 1:], y1)  # the reset teacher trains differently


def test_full_force_driver_carries_the_teacher_across_batches():
    task = fr.tasks.PerceptualDecision(T=30)
    runs = []
    for carry in (True, False):
        net = fr.RateRNN.random(n=10, n_in=1, n_out=1, g=1.0, seed=1)
        hist = fr.train.full_force(net, task, iters=3, batch_size=2, alpha=1.0,
                                   teacher_input_std=0.25, carry_teacher=carry, rls_from=5,
                                   val_every=None, progress=False)  # fmt: skip
        runs.append((net.W.copy(), hist))
    (W_carry, h_carry), (W_reset, h_reset) = runs
    assert h_carry.teacher_state.shape == (10,)
    assert h_reset.teacher_state is None
    assert h_carry.teacher["W_in"].shape == (10, 1)
    assert np.std(h_carry.teacher["W_in"]) < 0.5
    assert not np.array_equal(W_carry, W_reset)
    with raises_naming("rls_from"):
        fr.train.full_force(net, task, iters=1, rls_from=-1, progress=False)
    with raises_naming("teacher_input_std"):
        fr.train.full_force(net, task, iters=1, teacher_input_std=-1.0, progress=False)


# ---------------------------------------------------------------------------------------------
# full-FORCE's output tanh(w·r): RLS on the pre-tanh output, target atanh(clipped target)


class FixedTrials(fr.tasks.base.Task):
    """The same trials every batch (the driver's own draws do not matter): inputs, targets
    and a mask of ones given as arrays (T, B, ·)."""

    loss = "mse"

    def __init__(self, u, target):
        self.u, self.target = u, target
        self.T, self.n_in, self.n_out, self.dt = u.shape[0], u.shape[2], target.shape[2], 1.0
        self.name = "FixedTrials"

    def _generate(self, B, rng, dtype):
        return fr.tasks.base.Trials(self.u[:, :B].astype(dtype), self.target[:, :B].astype(dtype),
                                    np.ones_like(self.target[:, :B], dtype=dtype), {})  # fmt: skip

    def _correct(self, y, trials):
        return np.abs(y[-1, :, 0] - trials.target[-1, :, 0]) < 0.5


def full_force_tanh_reference(net, teacher, u, f, *, alpha, clip):
    """full-FORCE written out from its definition, with the output tanh(W_out r + b_out):
    the teacher is driven by f, RLS fits the pre-tanh output to atanh(clip(f)); every step,
    trials in order from x0 = 0. Returns (J, W_out)."""
    J, W_out = net.W.copy(), net.W_out.copy()
    W_in, b, b_out, a = net.W_in, net.b, net.b_out, net.alpha
    J_D, w_f, w_h = teacher["J_D"], teacher["w_f"], teacher["w_h"]
    P = np.eye(net.n) / alpha
    f_out = np.arctanh(np.clip(f, -clip, clip))
    T, B = u.shape[:2]
    for trial in range(B):
        x, xD = np.zeros(net.n), np.zeros(net.n)
        for t in range(T):
            xD = (1 - a) * xD + a * (J_D @ np.tanh(xD) + w_f @ f[t, trial] + W_in @ u[t, trial] + b)
            x = (1 - a) * x + a * (J @ np.tanh(x) + W_in @ u[t, trial] + b)
            r = np.tanh(x)
            k = P @ r
            c = 1.0 / (1.0 + r @ k)
            P -= c * np.outer(k, k)
            if t + 1 < T:
                target_J = J_D @ np.tanh(xD) + w_f @ f[t + 1, trial]
                J -= c * np.outer(J @ r - target_J, k)
            W_out -= c * np.outer(W_out @ r + b_out - f_out[t, trial], k)
    assert w_h.shape[1] == 0  # no hint here
    return J, W_out


@pytest.mark.parametrize("clip", [0.9, 0.99])
def test_full_force_tanh_output_fits_atanh_of_the_clipped_target(clip):
    rng = np.random.default_rng(4)
    n, T, B = 7, 15, 2
    u = rng.normal(size=(T, B, 1))
    f = 1.3 * np.sin(np.linspace(0, 3, T))[:, None, None] * np.array([1.0, -0.7])[None, :, None]
    task = FixedTrials(u, f)  # targets beyond ±clip and in between
    W, W_in = rng.normal(0, 0.3, (n, n)), rng.normal(0, 1, (n, 1))
    W_out = rng.normal(0, 0.3, (1, n))
    net = fr.RateRNN(W, W_in, W_out, b=rng.normal(0, 0.1, n), b_out=np.array([0.1]), tau=5.0,
                     dt=1.0)  # fmt: skip
    teacher = {"J_D": rng.normal(0, 0.4, (n, n)), "w_f": rng.uniform(-1, 1, (n, 1)),
               "w_h": np.zeros((n, 0))}  # fmt: skip
    J_ref, W_out_ref = full_force_tanh_reference(net, teacher, u, f, alpha=2.0, clip=clip)
    hist = fr.train.full_force(net, task, iters=1, batch_size=B, alpha=2.0, teacher=teacher,
                               output="tanh", output_clip=clip, val_every=None,
                               progress=False)  # fmt: skip
    np.testing.assert_allclose(net.W, J_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(net.W_out, W_out_ref, rtol=1e-9, atol=1e-12)
    assert hist.output == "tanh"


def test_full_force_tanh_output_scales_the_linear_readout_for_sign_targets():
    """With ±1 targets the tanh output's W_out is atanh(clip) times the linear one and W (the
    teacher, the recurrent RLS) is the same: the decisions do not change; the recorded errors
    are of tanh(y)."""
    task = fr.tasks.PerceptualDecision(T=40)
    runs = {}
    for output in ("linear", "tanh"):
        net = fr.RateRNN(np.zeros((12, 12)), np.random.default_rng(0).normal(0, 0.5, (12, 1)),
                         np.zeros((1, 12)), tau=10.0, dt=1.0)  # fmt: skip
        hist = fr.train.full_force(
            net, task, iters=3, batch_size=3, hint=lambda tr: np.broadcast_to(
                tr.info["sign"][None, :, None], (40, tr.u.shape[1], 1)).copy(),
            alpha=1.0, g_teacher=1.0, teacher_input_std=0.25, carry_teacher=True, rls_from=5,
            response_steps=40, output=output, output_clip=0.95, val_every=1, val_batch=20,
            progress=False, seed=2,
        )  # fmt: skip
        runs[output] = (net, hist)
    (lin, h_lin), (th, h_th) = runs["linear"], runs["tanh"]
    np.testing.assert_allclose(th.W, lin.W, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(th.W_out, np.arctanh(0.95) * lin.W_out, rtol=1e-9, atol=1e-13)
    assert np.abs(lin.W_out).max() > 1e-3
    # the same teacher (its drive summed in another order: equal to rounding)
    np.testing.assert_allclose(h_th.teacher_state, h_lin.teacher_state, rtol=1e-12, atol=1e-14)
    trials = task.batch(50, 1)
    np.testing.assert_array_equal(np.sign(th.run(trials.u).y), np.sign(lin.run(trials.u).y))
    np.testing.assert_allclose(h_th.val_accuracy, h_lin.val_accuracy)
    # the linear run's output is unbounded, the tanh run's errors are of outputs in (-1, 1)
    assert not np.allclose(h_th.loss, h_lin.loss)


def test_full_force_output_options_are_checked():
    task, net = short_task(), small_net()
    with raises_naming("output"):
        fr.train.full_force(net, task, iters=1, output="sigmoid", progress=False)
    for clip in (0.0, 1.0, 1.5):
        with raises_naming("output_clip"):
            fr.train.full_force(net, task, iters=1, output="tanh", output_clip=clip,
                                progress=False)  # fmt: skip
