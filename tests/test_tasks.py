"""Built-in tasks: the Trials contract, reproducibility, statistics, known numbers, scores."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import raises_naming
from flexrnn import tasks
from hypothesis import given, settings
from hypothesis import strategies as st

ALL_TASKS = {
    "PerceptualDecision": lambda: tasks.PerceptualDecision(T=60),
    "ContextIntegration": lambda: tasks.ContextIntegration(N=3, T=60),
    "MeasureWaitGo": tasks.MeasureWaitGo,
    "IntervalRamp": tasks.IntervalRamp,
    "ElementFinder": tasks.ElementFinder,
    "MultiTask": lambda: tasks.MultiTask(sigma=0.1),
    "MeasureWaitGo1": lambda: tasks.MeasureWaitGo(channels=1),
    "MultiTaskStudy": lambda: tasks.MultiTask(convention="study"),
}
DECISION_TASKS = ("PerceptualDecision", "ContextIntegration")


def make(name):
    return ALL_TASKS[name]()


# ---------------------------------------------------------------------------------------------
# The contract every trainer relies on.


def check_contract(task, trials, B, dtype):
    T, dtype = task.T, np.dtype(dtype)
    assert task.loss in tasks.LOSSES
    assert trials.u.shape == (T, B, task.n_in) and trials.u.dtype == dtype
    assert trials.target.shape == (T, B, task.n_out) and trials.target.dtype == dtype
    assert trials.mask.shape == (T, B, task.n_out) and trials.mask.dtype == dtype
    assert np.isfinite(trials.u).all() and np.isfinite(trials.target).all()
    assert (trials.mask >= 0).all() and trials.mask.sum() > 0
    assert trials.T == T and trials.batch_size == B
    for key, value in trials.info.items():
        assert np.shape(value)[0] == B, key


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ALL_TASKS)
def test_batch_follows_the_trials_contract(name, dtype):
    task = make(name)
    assert task.loss == "mse"
    assert isinstance(task.name, str) and task.dt > 0
    check_contract(task, task.batch(9, np.random.default_rng(0), dtype=dtype), 9, dtype)


@settings(max_examples=20)
@given(name=st.sampled_from(sorted(ALL_TASKS)), B=st.integers(1, 40), seed=st.integers(0, 2**63))
def test_any_batch_follows_the_contract_and_its_target_scores_one(name, B, seed):
    task = make(name)
    trials = task.batch(B, seed)
    check_contract(task, trials, B, np.float64)
    correct = task.per_trial_correct(trials.target, trials)
    assert correct.shape == (B,) and correct.dtype == bool and correct.all()
    assert task.score(trials.target, trials) == 1.0


@pytest.mark.parametrize("name", ALL_TASKS)
def test_same_seed_gives_the_same_batch(name):
    task = make(name)
    a, b = task.batch(16, 123), task.batch(16, np.random.default_rng(123))
    for x, y in ((a.u, b.u), (a.target, b.target), (a.mask, b.mask)):
        np.testing.assert_array_equal(x, y)
    assert a.info.keys() == b.info.keys()
    for key in a.info:
        np.testing.assert_array_equal(a.info[key], b.info[key])
    c = task.batch(16, 124)
    assert not (np.array_equal(a.u, c.u) and np.array_equal(a.target, c.target))


@pytest.mark.parametrize("name", ALL_TASKS)
def test_float32_batch_is_the_float64_batch_rounded(name):
    task = make(name)
    a, b = task.batch(8, 5, dtype=np.float64), task.batch(8, 5, dtype=np.float32)
    np.testing.assert_array_equal(a.u.astype(np.float32), b.u)
    np.testing.assert_array_equal(a.target.astype(np.float32), b.target)


def test_a_generator_advances_between_batches():
    task = tasks.PerceptualDecision(T=20)
    rng = np.random.default_rng(0)
    assert not np.array_equal(task.batch(4, rng).u, task.batch(4, rng).u)


# ---------------------------------------------------------------------------------------------
# Decision tasks.


@pytest.mark.parametrize("name", DECISION_TASKS)
def test_decision_output_with_the_target_sign_scores_one_and_negated_scores_zero(name):
    task = make(name)
    trials = task.batch(50, 1)
    y = np.zeros((task.T, 50, 1))
    y[-1, :, 0] = 0.01 * trials.info["sign"]  # only the sign of the last output counts
    assert task.score(y, trials) == 1.0
    assert task.score(-y, trials) == 0.0
    assert task.score(-trials.target, trials) == 0.0
    assert task.score(np.zeros_like(y), trials) == 0.0  # no sign, no answer


def test_perceptual_decision_input_mean_is_signed_coherence():
    sigma, T, B = 0.5, 750, 200
    task = tasks.PerceptualDecision(sigma=sigma, T=T)
    trials = task.batch(B, 2)
    mu, s = trials.info["coherence"], trials.info["sign"]
    assert ((mu >= 0) & (mu <= 0.1857)).all() and set(np.unique(s)) == {-1.0, 1.0}
    mean = trials.u[:, :, 0].mean(axis=0)
    standard_error = sigma / np.sqrt(T)
    assert np.all(np.abs(mean - s * mu) < 5 * standard_error)
    residual = trials.u[:, :, 0] - s * mu
    assert abs(residual.std() - sigma) < 0.01


def test_perceptual_decision_target_and_mask_only_at_first_and_last_step():
    task = tasks.PerceptualDecision(T=30)
    trials = task.batch(10, 3)
    np.testing.assert_array_equal(trials.target[-1, :, 0], trials.info["sign"])
    assert not trials.target[:-1].any()
    np.testing.assert_array_equal(np.flatnonzero(trials.mask[:, 0, 0]), [0, 29])


def test_context_integration_cues_one_channel_whose_sign_is_the_target():
    N, sigma, T, B = 4, 0.5, 750, 100
    task = tasks.ContextIntegration(N=N, sigma=sigma, T=T)
    trials = task.batch(B, 4)
    assert task.n_in == 2 * N and task.name == "ContextIntegration(N=4)"
    context, signs = trials.info["context"], trials.info["signs"]
    cue = trials.u[:, :, N:]
    np.testing.assert_array_equal(cue, np.broadcast_to(np.eye(N)[context], (T, B, N)))
    np.testing.assert_array_equal(trials.info["sign"], signs[np.arange(B), context])
    np.testing.assert_array_equal(trials.target[-1, :, 0], trials.info["sign"])
    mean = trials.u[:, :, :N].mean(axis=0)
    expected = signs * trials.info["coherence"][:, None]  # one coherence, independent signs
    assert np.all(np.abs(mean - expected) < 5 * sigma / np.sqrt(T))
    assert len(np.unique(context)) == N


# ---------------------------------------------------------------------------------------------
# Timing tasks.


def test_measure_wait_go_constant_and_per_step_mean_predictors_match_the_spec():
    target = tasks.MeasureWaitGo().training_set().target[:, :, 0]  # (T, 40)
    constant_mse = np.mean((target - target.mean()) ** 2)  # the best constant predictor
    per_step_mse = np.mean((target - target.mean(axis=1, keepdims=True)) ** 2)
    assert round(constant_mse, 3) == 0.227
    assert round(per_step_mse, 4) == 0.0095


@pytest.mark.parametrize("channels", [3, 1])
def test_measure_wait_go_has_three_pulses_and_a_ramp_over_the_interval(channels):
    task = tasks.MeasureWaitGo(channels=channels)
    trials = task.training_set()
    assert task.n_in == channels and trials.u.shape == (task.T, 40, channels)
    interval, t_m, t_go = (trials.info[k] for k in ("interval", "t_m", "t_go"))
    assert trials.batch_size == 40 and len(set(zip(interval, t_m))) == 40
    np.testing.assert_array_equal(t_go, t_m + interval + 15)
    b = np.arange(40)
    for k, cue in enumerate((t_m, t_m + interval, t_go)):  # measure, wait, go
        channel = k if channels == 3 else 0
        np.testing.assert_array_equal(trials.u[cue, b, channel], 10.0)
        if channels == 3:
            assert (trials.u[:, :, channel] != 0).sum() == 40  # one pulse per channel
    assert (trials.u != 0).sum() == 3 * 40
    target = trials.target[:, :, 0]
    t = np.arange(task.T)[:, None]
    assert np.all(target[t <= t_go] == -0.5)
    assert np.all(target[t >= t_go + interval] == 0.5)
    np.testing.assert_allclose(target[t_go + interval // 2, b], 0.0)
    in_ramp = (t[:-1] >= t_go) & (t[:-1] < t_go + interval)
    slope = np.diff(target, axis=0)
    np.testing.assert_allclose(slope[in_ramp], np.broadcast_to(1 / interval, slope.shape)[in_ramp])
    assert (trials.mask == 1).all()


def test_timing_batches_draw_from_the_training_set_and_test_set_extrapolates():
    task = tasks.MeasureWaitGo()
    trials = task.batch(500, 0)
    assert set(np.unique(trials.info["interval"])) == {12, 14, 16, 18}
    assert set(np.unique(trials.info["t_m"])) == set(range(10, 20))
    test = task.test_set()
    np.testing.assert_array_equal(test.info["interval"], np.arange(4, 27, 2))
    assert (test.info["t_m"] == 15).all()
    assert np.all(test.target[-1] == 0.5)  # every ramp ends inside the trial


def test_interval_ramp_cues_the_interval_and_has_no_input_during_the_ramp():
    ramp, mwg = tasks.IntervalRamp(), tasks.MeasureWaitGo()
    trials = ramp.test_set()
    interval, t_go = trials.info["interval"], trials.info["t_go"]
    t = np.arange(ramp.T)[:, None]
    context = np.where(t < t_go, interval / 26, 0.0)
    np.testing.assert_allclose(trials.u[:, :, 0], context)
    go = np.zeros((ramp.T, interval.size))
    go[t_go, np.arange(interval.size)] = 10.0
    np.testing.assert_array_equal(trials.u[:, :, 1], go)
    assert not trials.u[t > t_go].any()
    np.testing.assert_array_equal(trials.target, mwg.test_set().target)


@pytest.mark.parametrize("task", [tasks.MeasureWaitGo(), tasks.IntervalRamp()])
def test_timing_score_accepts_small_shifts_and_rejects_large_ones(task):
    trials = task.trials_for([4, 12, 30], 15)
    target = trials.target
    assert task.score(target, trials) == 1.0
    assert task.score(np.roll(target, 2, axis=0), trials) == 1.0  # within max(2, 0.1 I)
    late = task.per_trial_correct(np.roll(target, 3, axis=0), trials)
    np.testing.assert_array_equal(late, [False, False, True])  # tolerance 2, 2, 3
    assert task.score(np.full_like(target, -0.5), trials) == 0.0  # never crosses
    assert task.score(np.full_like(target, 0.5), trials) == 0.0  # starts above 0


def test_first_upward_crossing_interpolates_between_steps():
    from flexrnn.tasks.timing import first_upward_crossing

    y = np.array([[-1.0, 1.0, 0.5], [-0.5, 2.0, -0.5], [0.5, 3.0, 0.5]])
    crossing = first_upward_crossing(y)
    np.testing.assert_allclose(crossing[[0, 2]], [1.5, 1.5])
    assert np.isnan(crossing[1])


# ---------------------------------------------------------------------------------------------
# ElementFinder.


def test_element_finder_target_is_the_queried_element():
    task = tasks.ElementFinder()
    trials = task.batch(300, 6)
    q = trials.info["query"]
    assert task.T == 26 and q.min() >= 0 and q.max() <= 24
    np.testing.assert_array_equal(trials.u[0, :, 0], q)
    elements = trials.u[1:, :, 0]
    assert elements.min() >= -10 and elements.max() <= 10
    np.testing.assert_array_equal(elements, np.round(elements))
    np.testing.assert_array_equal(trials.target[-1, :, 0], trials.u[q + 1, np.arange(300), 0])
    assert not trials.target[:-1].any() and trials.mask.sum() == 300


def test_element_finder_zero_predictor_mse_is_36_67():
    task = tasks.ElementFinder()
    assert abs(task.zero_predictor_mse - 36.67) < 0.005
    trials = task.batch(20000, 7)
    mse = np.sum(trials.mask * trials.target**2) / trials.mask.sum()
    assert abs(mse - 110 / 3) < 1.0  # 4 standard errors


def test_element_finder_score_rounds_to_the_answer():
    task = tasks.ElementFinder()
    trials = task.batch(20, 8)
    assert task.score(trials.target + 0.4, trials) == 1.0
    assert task.score(trials.target + 0.6, trials) == 0.0


# ---------------------------------------------------------------------------------------------
# MultiTask.


def test_anti_targets_are_pro_targets_rotated_by_pi():
    for pro, anti in (("DelayPro", "DelayAnti"), ("MemoryPro", "MemoryAnti")):
        a = tasks.MultiTask(tasks=(pro,)).batch(32, 9)
        b = tasks.MultiTask(tasks=(anti,)).batch(32, 9)
        np.testing.assert_array_equal(a.info["theta"], b.info["theta"])  # same draws
        np.testing.assert_array_equal(a.u[:, :, :3], b.u[:, :, :3])
        np.testing.assert_array_equal(a.target[:, :, 0], b.target[:, :, 0])
        np.testing.assert_array_equal(b.target[:, :, 1:], -a.target[:, :, 1:])
        angle = np.mod(b.info["response_angle"] - a.info["response_angle"], 2 * np.pi)
        np.testing.assert_allclose(angle, np.pi)


def test_multitask_epochs_inputs_and_targets():
    task = tasks.MultiTask()
    B = 400
    trials = task.batch(B, 10)
    info = trials.info
    task_index, fix_off, stim_on, stim_off = (
        info[k] for k in ("task", "fix_off", "stim_on", "stim_off")
    )
    assert task.n_in == 7 and task.n_out == 3
    counts = np.bincount(task_index, minlength=4)
    assert counts.min() > 70  # a uniform mix of the four tasks
    t = np.arange(task.T)[:, None]
    np.testing.assert_array_equal(trials.u[:, :, 0], t < fix_off)
    np.testing.assert_array_equal(
        trials.u[:, :, 3:], np.broadcast_to(np.eye(4)[task_index], (task.T, B, 4))
    )
    shown = np.hypot(trials.u[:, :, 1], trials.u[:, :, 2]) > 0.5
    np.testing.assert_array_equal(shown, (t >= stim_on) & (t < stim_off))
    memory = task_index >= 2
    assert np.all(stim_off[~memory] == task.T)  # Delay: the stimulus stays on
    assert np.all(stim_off[memory] < fix_off[memory])  # Memory: removed before fix-off
    np.testing.assert_allclose(trials.target[:, :, 0], 0.8 * (t < fix_off))
    assert not trials.target[:, :, 1:][t < fix_off].any()
    grace = (t >= fix_off) & (t < fix_off + 5)
    np.testing.assert_array_equal(trials.mask[:, :, 0], ~grace)
    theta = info["theta"]
    direction = np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    sign = np.where(task_index % 2 == 1, -1.0, 1.0)[:, None]
    np.testing.assert_allclose(trials.target[-1, :, 1:], sign * direction)


def test_multitask_study_convention_draws_epochs_in_seconds_and_rescales_them():
    task = tasks.MultiTask(convention="study")
    B = 400
    trials = task.batch(B, 10)
    info = trials.info
    # the same generator calls, in seconds, as the study's sample_* functions
    rng = np.random.default_rng(10)
    task_index = rng.integers(0, 4, size=B)
    rng.uniform(0.0, 2 * np.pi, size=B)
    stim_on, stim_len, memory_delay, delay_go, response = (
        rng.uniform(lo, hi, size=B)
        for lo, hi in ((0.3, 0.7), (0.2, 1.6), (0.2, 1.6), (0.2, 1.5), (0.3, 0.7))
    )
    memory = task_index >= 2
    stim_off = stim_on + stim_len
    fix_off = np.where(memory, stim_off + memory_delay, stim_on + delay_go)
    scale = task.T / (fix_off + response)
    t = np.arange(task.T)[:, None]
    np.testing.assert_array_equal(info["task"], task_index)
    np.testing.assert_array_equal(trials.u[:, :, 0], t < fix_off * scale)
    shown = np.hypot(trials.u[:, :, 1], trials.u[:, :, 2]) > 0.5
    on = t >= stim_on * scale
    np.testing.assert_array_equal(shown, np.where(memory, on & (t < stim_off * scale), on))
    np.testing.assert_allclose(trials.target[:, :, 0], 0.8 * (t < fix_off * scale))
    assert (trials.mask == 1).all()  # no grace period
    assert task.grace == 0 and task.decode == "arctan"


def test_multitask_study_score_decodes_the_angle_modulo_pi_like_the_study():
    study = tasks.MultiTask(convention="study")
    full = tasks.MultiTask(convention="study", decode="atan2")
    trials = study.batch(64, 3)
    flipped = trials.target.copy()
    flipped[:, :, 1:] *= -1  # every response at theta + pi
    assert study.score(trials.target, trials) == full.score(trials.target, trials) == 1.0
    assert study.score(flipped, trials) == 1.0  # arctan(sin / cos) cannot tell them apart
    assert full.score(flipped, trials) == 0.0


def test_multitask_subset_uses_the_full_rule_layout():
    task = tasks.MultiTask(tasks="MemoryAnti")
    trials = task.batch(10, 0)
    assert (trials.info["task"] == 3).all() and (trials.u[:, :, 6] == 1).all()


def test_multitask_score_needs_fixation_and_the_right_final_direction():
    task = tasks.MultiTask()
    trials = task.batch(64, 11)
    y = trials.target.copy()
    assert task.score(y, trials) == 1.0
    broken = y.copy()
    broken[trials.info["fix_off"] - 1, np.arange(64), 0] = 0.4  # breaks fixation just before go
    assert task.score(broken, trials) == 0.0

    def rotated(angle):
        out = y.copy()
        a = trials.info["response_angle"] + angle
        out[-1, :, 1], out[-1, :, 2] = np.sin(a), np.cos(a)
        return out

    assert task.score(rotated(0.09 * np.pi), trials) == 1.0
    assert task.score(rotated(-0.09 * np.pi), trials) == 1.0
    assert task.score(rotated(0.11 * np.pi), trials) == 0.0
    assert task.score(-y, trials) == 0.0


# ---------------------------------------------------------------------------------------------
# Bad arguments.

BAD_ARGUMENTS = [
    (lambda: tasks.PerceptualDecision(sigma=-1), "sigma"),
    (lambda: tasks.PerceptualDecision(T=1), "T"),
    (lambda: tasks.PerceptualDecision(coherence_max=np.nan), "coherence_max"),
    (lambda: tasks.PerceptualDecision(dt=0), "dt"),
    (lambda: tasks.ContextIntegration(N=0), "N"),
    (lambda: tasks.ContextIntegration(N=2.5), "N"),
    (lambda: tasks.MeasureWaitGo(T=60), "T"),
    (lambda: tasks.MeasureWaitGo(intervals=[12, 0]), "intervals"),
    (lambda: tasks.MeasureWaitGo(intervals=[12.5]), "intervals"),
    (lambda: tasks.MeasureWaitGo(measure_times=[]), "measure_times"),
    (lambda: tasks.MeasureWaitGo(delay=0), "delay"),
    (lambda: tasks.MeasureWaitGo(pulse="high"), "pulse"),
    (lambda: tasks.IntervalRamp(interval_max=0), "interval_max"),
    (lambda: tasks.MeasureWaitGo().trials_for(60, 15), "interval"),
    (lambda: tasks.MeasureWaitGo().trials_for([12, 14], [10, 11, 12]), "t_m"),
    (lambda: tasks.ElementFinder(length=0), "length"),
    (lambda: tasks.ElementFinder(max_value=-1), "max_value"),
    (lambda: tasks.MultiTask(tasks=("DelayPro", "Go")), "tasks"),
    (lambda: tasks.MultiTask(tasks=()), "tasks"),
    (lambda: tasks.MultiTask(tasks=("DelayPro", "DelayPro")), "tasks"),
    (lambda: tasks.MultiTask(T=10), "T"),
    (lambda: tasks.MultiTask(grace=40), "grace"),
    (lambda: tasks.MultiTask(sigma=-0.1), "sigma"),
    (lambda: tasks.MultiTask(convention="yang"), "convention"),
    (lambda: tasks.MultiTask(convention="study", grace=3), "grace"),
    (lambda: tasks.MultiTask(decode="atan"), "decode"),
    (lambda: tasks.MeasureWaitGo(channels=2), "channels"),
    (lambda: tasks.ElementFinder().batch(0), "B"),
    (lambda: tasks.ElementFinder().batch(4, rng="seed"), "rng"),
    (lambda: tasks.ElementFinder().batch(4, rng=-1), "rng"),
    (lambda: tasks.ElementFinder().batch(4, dtype=np.int32), "dtype"),
    (lambda: tasks.MeasureWaitGo().training_set(dtype="float16"), "dtype"),
]


@pytest.mark.parametrize("call, name", BAD_ARGUMENTS, ids=[n for _, n in BAD_ARGUMENTS])
def test_bad_arguments_raise_naming_the_argument(call, name):
    with raises_naming(name):
        call()


@pytest.mark.parametrize("name", ALL_TASKS)
def test_score_of_a_wrong_output_shape_names_y(name):
    task = make(name)
    trials = task.batch(3, 0)
    with raises_naming("y", ValueError):
        task.score(np.zeros((task.T, 4, task.n_out)), trials)
    with raises_naming("y", ValueError):
        task.score(np.zeros((task.T, 3)), trials)
    with raises_naming("trials", TypeError):
        task.score(trials.target, trials.u)


def test_from_neurogym_without_neurogym_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "neurogym", None)  # makes `import neurogym` fail
    with pytest.raises(ImportError, match=r"flexrnn\[neurogym\]"):
        tasks.from_neurogym("PerceptualDecisionMaking-v0")
