"""NeuroMOP metrics (flexrnn.mop.metrics): known answers on hand-made rollouts, the padding
past each trajectory's end never read, bad shapes named."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import numpy_seeds, raises_naming
from flexrnn.mop import metrics
from hypothesis import given
from hypothesis import strategies as st

n_bits_range = st.integers(1, 8)


def random_rollout(rng, T, B, d, n_bits, *, pad=0.0):
    """A rollout in the drivers' conventions with random lifetimes; ``pad`` fills the states
    and the entropy past each end (actions get -1 there)."""
    lifetime = rng.integers(0, T + 1, B)
    lifetime[rng.integers(B)] = T  # one trajectory lives to the end
    states = rng.normal(-0.8, 0.3, (T + 1, B, d))
    actions = rng.integers(0, 2**n_bits, (T, B))
    entropy = rng.uniform(0, n_bits * np.log(2), (T, B))
    visited = metrics.state_mask(lifetime, T)
    taken = metrics.step_mask(lifetime, T)
    states[~visited] = pad
    actions[~taken] = -1
    entropy[~taken] = pad
    return states, actions, entropy, lifetime


def sinusoid_states(amplitude, period, n_samples, phase):
    """(n_samples, 1, d): amplitude_i sin(2 pi t / period + phase_i) at t = 0 .. n_samples - 1."""
    t = np.arange(n_samples)[:, None]
    return (amplitude * np.sin(2 * np.pi * t / period + phase))[:, None, :]


# ---------------------------------------------------------------------------------------------
# Building blocks


@given(numpy_seeds, n_bits_range)
def test_action_bits_follow_the_index_convention(seed, n_bits):
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 2**n_bits, (7, 3))
    bits = metrics.action_bits(actions, n_bits)
    assert bits.shape == (7, 3, n_bits)
    assert set(np.unique(bits)) <= {-1.0, 1.0}
    # bit m of k is (a_m + 1) / 2
    rebuilt = (((bits + 1) / 2) * 2.0 ** np.arange(n_bits)).sum(axis=-1)
    np.testing.assert_array_equal(rebuilt, actions)
    ends = metrics.action_bits(np.array([[0, 2**n_bits - 1]]), n_bits)
    np.testing.assert_array_equal(ends[0, 0], -np.ones(n_bits))
    np.testing.assert_array_equal(ends[0, 1], np.ones(n_bits))


def test_action_bits_are_nan_past_the_end():
    bits = metrics.action_bits(np.array([[5, -1], [-1, -1]]), 3)
    np.testing.assert_array_equal(bits[0, 0], [1.0, -1.0, 1.0])
    assert np.isnan(bits[0, 1]).all() and np.isnan(bits[1]).all()


@given(numpy_seeds, st.integers(0, 12), st.integers(1, 6))
def test_masks_mark_the_visited_states_and_the_taken_steps(seed, T, B):
    lifetime = np.random.default_rng(seed).integers(0, T + 1, B)
    steps = metrics.step_mask(lifetime, T)
    states = metrics.state_mask(lifetime, T)
    assert steps.shape == (T, B) and states.shape == (T + 1, B)
    np.testing.assert_array_equal(steps.sum(axis=0), lifetime)
    np.testing.assert_array_equal(states.sum(axis=0), lifetime + 1)
    # a step is taken from a visited state to a visited state
    assert not np.any(steps & ~states[:-1]) and not np.any(steps & ~states[1:])


# ---------------------------------------------------------------------------------------------
# Energy and the threshold region


def test_energy_is_the_distance_to_the_center_over_d():
    d = 4
    x = np.full((2, 3, d), -1.0)
    x[1, 0, 2] = -1.0 + 0.8  # one coordinate 0.8 away: E = 0.8 / 4
    x[1, 1] = -1.0 + 0.5  # all four 0.5 away: E = sqrt(4 * 0.25) / 4
    x[1, 2] = 0.0
    E = metrics.energy(x)
    np.testing.assert_allclose(E[0], 0.0)
    np.testing.assert_allclose(E[1], [0.2, 0.25, 0.5])
    np.testing.assert_allclose(metrics.energy(x, center=0.0)[1, 2], 0.0)


def test_near_threshold_picks_exactly_the_hand_made_states():
    level, width, d, T = 0.11, 0.001, 4, 6

    def state(E):  # a state of energy E: one coordinate E d away from the center -1
        x = np.full(d, -1.0)
        x[1] += E * d
        return x

    energies = np.array(
        [
            [0.05, 0.1095, 0.1092, 0.1085, 0.112, 0.0, 0.0],  # ends at t = 4 (E > L)
            [0.1098, 0.100, 0.1091, 0.1099, 0.1094, 0.1097, 0.1093],  # lives to T
            [0.1096, 0.1096, 0.0, 0.0, 0.0, 0.0, 0.0],  # padding after t = 1
        ]
    ).T  # (T + 1, B)
    lifetime = np.array([4, T, 1])
    states = np.stack([[state(E) for E in row] for row in energies])
    states[~metrics.state_mask(lifetime, T)] = state(0.1095)  # padding in the window: ignored
    expected = np.zeros((T, 3), dtype=bool)
    expected[[1, 2], 0] = True
    expected[[0, 2, 3, 4, 5], 1] = True
    expected[0, 2] = True
    picked = metrics.near_threshold(states, lifetime, level, width)
    np.testing.assert_array_equal(picked, expected)


# ---------------------------------------------------------------------------------------------
# Action statistics


def test_action_entropy_is_the_mean_over_the_taken_steps():
    entropy = np.array([[1.0, 3.0], [2.0, 100.0], [np.nan, 100.0]])
    lifetime = np.array([2, 1])
    assert metrics.action_entropy(entropy, lifetime) == pytest.approx(2.0)
    where = np.array([[False, True], [True, True], [True, True]])
    assert metrics.action_entropy(entropy, lifetime, where) == pytest.approx(2.5)
    assert np.isnan(metrics.action_entropy(entropy, lifetime, np.zeros((3, 2), bool)))
    assert np.isnan(metrics.action_entropy(entropy, np.array([0, 0])))


@given(numpy_seeds, n_bits_range)
def test_effective_dimensionality_of_independent_bits_is_close_to_n_bits(seed, n_bits):
    rng = np.random.default_rng(seed)
    T, B = 4000, 5
    actions = rng.integers(0, 2**n_bits, (T, B))
    ed = metrics.effective_dimensionality(actions, np.full(B, T), n_bits)
    # the sampling noise of the off-diagonal covariances lowers ED by ~ n_bits^2 / (T B)
    assert n_bits - 0.05 <= ed <= n_bits + 1e-9


@given(numpy_seeds, n_bits_range)
def test_effective_dimensionality_of_identical_bits_is_one(seed, n_bits):
    rng = np.random.default_rng(seed)
    actions = rng.choice([0, 2**n_bits - 1], (50, 3))  # every channel the same bit
    actions[:2, 0] = [0, 2**n_bits - 1]  # both values occur
    ed = metrics.effective_dimensionality(actions, np.full(3, 50), n_bits)
    assert ed == pytest.approx(1.0, rel=1e-12)


@given(numpy_seeds, n_bits_range, st.floats(0.05, 0.95))
def test_effective_dimensionality_matches_the_covariance_eigenvalues(seed, n_bits, p):
    rng = np.random.default_rng(seed)
    T, B = 40, 4
    # biased, correlated bits: each bit copies a shared one with probability p
    shared = rng.random((T, B)) < 0.5
    own = rng.random((T, B, n_bits)) < rng.uniform(0.2, 0.8, n_bits)
    bits = np.where(rng.random((T, B, n_bits)) < p, shared[..., None], own)
    actions = (bits * 2 ** np.arange(n_bits)).sum(axis=-1).astype(np.int64)
    lifetime = rng.integers(0, T + 1, B)
    lifetime[0] = T
    ed = metrics.effective_dimensionality(actions, lifetime, n_bits)
    taken = metrics.step_mask(lifetime, T)
    lam = np.linalg.eigvalsh(np.atleast_2d(np.cov(2.0 * bits[taken] - 1, rowvar=False)))
    if np.sum(lam**2) < 1e-12:
        assert ed == 0.0
    else:
        assert ed == pytest.approx(lam.sum() ** 2 / np.sum(lam**2), rel=1e-9)
        assert 1 - 1e-9 <= ed <= n_bits + 1e-9


def test_effective_dimensionality_is_zero_without_variance_and_nan_without_steps():
    actions = np.full((10, 2), 5)
    assert metrics.effective_dimensionality(actions, np.array([10, 10]), 3) == 0.0
    assert np.isnan(metrics.effective_dimensionality(actions, np.array([1, 0]), 3))
    assert np.isnan(metrics.effective_dimensionality(actions, np.array([0, 0]), 3))
    where = np.zeros((10, 2), bool)
    where[3, 1] = True
    assert np.isnan(metrics.effective_dimensionality(actions, np.array([10, 10]), 3, where))


def test_effective_dimensionality_counts_only_the_selected_steps():
    # steps 0-3 independent on two bits, steps 4-7 copied: ED 2 and 1 on each half
    actions = np.array([[0], [1], [2], [3], [0], [3], [0], [3]])
    where = np.zeros((8, 1), bool)
    where[:4] = True
    lifetime = np.array([8])
    assert metrics.effective_dimensionality(actions, lifetime, 2, where) == pytest.approx(2.0)
    assert metrics.effective_dimensionality(actions, lifetime, 2, ~where) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# Variability


@given(numpy_seeds, st.integers(2, 20), st.integers(1, 5))
def test_variability_of_a_trajectory_constant_in_time_is_zero(seed, T, d):
    rng = np.random.default_rng(seed)
    states = np.broadcast_to(rng.normal(size=(1, 3, d)), (T + 1, 3, d)).copy()
    lifetime = np.array([T, rng.integers(1, T + 1), 0])
    assert metrics.variability(states, lifetime) == pytest.approx(0.0, abs=1e-12)
    # a ramp in time varies, its jumps do not
    ramp = states + rng.normal(size=d) * np.arange(T + 1)[:, None, None]
    assert metrics.variability(ramp, lifetime) > 0
    assert metrics.jump_variability(ramp, np.array([T, T, T])) == pytest.approx(0.0, abs=1e-9)


@given(numpy_seeds, st.integers(3, 16), st.integers(1, 4), st.integers(1, 6))
def test_variability_of_a_sinusoid_is_its_standard_deviation(seed, period, n_periods, d):
    rng = np.random.default_rng(seed)
    amplitude = rng.uniform(0.1, 2.0, d)
    phase = rng.uniform(0, 2 * np.pi, d)
    n = n_periods * period  # whole periods: the std over time of A sin(.) is A / sqrt(2)
    states = sinusoid_states(amplitude, period, n + 1, phase)
    # n visited states (lifetime n - 1): the last sample is past the end
    expected = np.mean(amplitude) / np.sqrt(2)
    assert metrics.variability(states, np.array([n - 1])) == pytest.approx(expected, rel=1e-9)
    # n jumps (lifetime n): x[t+1] - x[t] is a sinusoid of amplitude 2 A sin(pi / period)
    expected_jump = np.mean(2 * amplitude * np.sin(np.pi / period)) / np.sqrt(2)
    got = metrics.jump_variability(states, np.array([n]))
    assert got == pytest.approx(expected_jump, rel=1e-9)


def test_variability_weighs_trajectories_equally_and_skips_single_states():
    states = np.zeros((5, 3, 1))
    states[:, 0, 0] = [1, -1, 1, -1, 1]  # std over 5 states: sqrt(1 - 0.04)
    states[:3, 1, 0] = [2, 0, 2]  # lifetime 2: std sqrt(8/9)
    states[0, 2, 0] = 7  # lifetime 0: skipped
    lifetime = np.array([4, 2, 0])
    expected = (np.sqrt(0.96) + np.sqrt(8 / 9)) / 2
    assert metrics.variability(states, lifetime) == pytest.approx(expected)
    assert np.isnan(metrics.variability(states, np.array([0, 0, 0])))
    # one jump per trajectory: no trajectory kept
    assert np.isnan(metrics.jump_variability(states, np.array([1, 1, 0])))


# ---------------------------------------------------------------------------------------------
# Padding is never read


@given(numpy_seeds, st.integers(1, 15), st.integers(1, 5), n_bits_range)
def test_metrics_ignore_everything_past_the_end(seed, T, B, n_bits):
    rng = np.random.default_rng(seed)
    states, actions, entropy, lifetime = random_rollout(rng, T, B, 3, n_bits)
    level = float(np.quantile(metrics.energy(states), 0.6))
    pad = np.where(rng.random() < 0.5, np.nan, rng.normal(0, 10))

    def all_metrics(states, actions, entropy):
        near = metrics.near_threshold(states, lifetime, level, width=0.05)
        counts, xe, ye = metrics.occupancy(states, lifetime, bins=7)
        return {
            "near": near,
            "entropy": metrics.action_entropy(entropy, lifetime),
            "entropy_near": metrics.action_entropy(entropy, lifetime, near),
            "ed": metrics.effective_dimensionality(actions, lifetime, n_bits),
            "ed_near": metrics.effective_dimensionality(actions, lifetime, n_bits, near),
            "variability": metrics.variability(states, lifetime),
            "jump_variability": metrics.jump_variability(states, lifetime),
            "counts": counts,
            "xedges": xe,
            "yedges": ye,
        }

    before = all_metrics(states, actions, entropy)
    states[~metrics.state_mask(lifetime, T)] = pad
    entropy[~metrics.step_mask(lifetime, T)] = pad
    actions[~metrics.step_mask(lifetime, T)] = rng.integers(-1, 2**n_bits)
    after = all_metrics(states, actions, entropy)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)


# ---------------------------------------------------------------------------------------------
# Occupancy


@given(numpy_seeds, st.integers(1, 15), st.integers(1, 5), st.integers(1, 12))
def test_occupancy_sums_to_one_and_counts_only_visited_states(seed, T, B, bins):
    rng = np.random.default_rng(seed)
    states, _, _, lifetime = random_rollout(rng, T, B, 3, 2, pad=100.0)
    counts, xedges, yedges = metrics.occupancy(states, lifetime, dims=(2, 0), bins=bins)
    assert counts.shape == (bins, bins)
    assert xedges.shape == (bins + 1,) and yedges.shape == (bins + 1,)
    assert counts.sum() == pytest.approx(1.0)
    visited = states[metrics.state_mask(lifetime, T)]
    assert xedges[-1] == visited[:, 2].max() and yedges[0] == visited[:, 0].min()
    raw, _, _ = np.histogram2d(visited[:, 2], visited[:, 0], bins=bins)
    np.testing.assert_allclose(counts, raw / len(visited))


def test_occupancy_on_a_given_range_counts_the_states_inside_it():
    states = np.array([[[0.05, 0.05]], [[0.15, 0.05]], [[0.15, 0.15]], [[5.0, 5.0]]])
    counts, xedges, _ = metrics.occupancy(
        states, np.array([3]), bins=2, range=((0.0, 0.2), (0.0, 0.2))
    )
    np.testing.assert_allclose(xedges, [0.0, 0.1, 0.2])
    np.testing.assert_allclose(counts, [[1 / 3, 0.0], [1 / 3, 1 / 3]])


# ---------------------------------------------------------------------------------------------
# Mean and standard error


def test_mean_and_sem_ignore_nan():
    mean, sem = metrics.mean_and_sem([1.0, 2.0, np.nan, 3.0])
    assert mean == pytest.approx(2.0) and sem == pytest.approx(1 / np.sqrt(3))
    values = np.array([[1.0, np.nan, np.nan], [3.0, 5.0, np.nan]])
    mean, sem = metrics.mean_and_sem(values)
    np.testing.assert_allclose(mean, [2.0, 5.0, np.nan])
    np.testing.assert_allclose(sem, [1.0, np.nan, np.nan])


@given(numpy_seeds, st.integers(2, 30))
def test_mean_and_sem_match_numpy_without_nan(seed, R):
    values = np.random.default_rng(seed).normal(size=(R, 3))
    mean, sem = metrics.mean_and_sem(values)
    np.testing.assert_allclose(mean, values.mean(axis=0))
    np.testing.assert_allclose(sem, values.std(axis=0, ddof=1) / np.sqrt(R))


# ---------------------------------------------------------------------------------------------
# Bad input


STATES = np.zeros((5, 2, 3))
ACTIONS = np.zeros((4, 2), dtype=np.int64)
LIFETIME = np.array([4, 2])


@pytest.mark.parametrize(
    "name, call",
    [
        ("actions", lambda: metrics.action_bits(np.zeros(4, np.int64), 2)),
        ("actions", lambda: metrics.action_bits(np.zeros((4, 2)), 2)),
        ("actions", lambda: metrics.action_bits(np.full((4, 2), 4), 2)),
        ("n_bits", lambda: metrics.action_bits(ACTIONS, 0)),
        ("lifetime", lambda: metrics.step_mask(np.array([5, 1]), 4)),
        ("lifetime", lambda: metrics.state_mask(np.array([[1]]), 4)),
        ("lifetime", lambda: metrics.state_mask(np.array([1.0]), 4)),
        ("T", lambda: metrics.step_mask(LIFETIME, -1)),
        ("states", lambda: metrics.energy(np.zeros((3, 0)))),
        ("center", lambda: metrics.energy(STATES, center=np.nan)),
        ("states", lambda: metrics.near_threshold(STATES[0], LIFETIME, 0.1)),
        ("lifetime", lambda: metrics.near_threshold(STATES, np.array([4, 2, 1]), 0.1)),
        ("width", lambda: metrics.near_threshold(STATES, LIFETIME, 0.1, width=-1.0)),
        ("entropy", lambda: metrics.action_entropy(np.zeros(4), LIFETIME)),
        (
            "where",
            lambda: metrics.action_entropy(np.zeros((4, 2)), LIFETIME, np.ones((4, 3), bool)),
        ),
        ("where", lambda: metrics.action_entropy(np.zeros((4, 2)), LIFETIME, np.ones((4, 2)))),
        ("actions", lambda: metrics.effective_dimensionality(np.full((4, 2), -1), LIFETIME, 2)),
        ("lifetime", lambda: metrics.effective_dimensionality(ACTIONS, np.array([5, 1]), 2)),
        ("states", lambda: metrics.variability(np.zeros((5, 2)), LIFETIME)),
        ("lifetime", lambda: metrics.variability(STATES, np.array([4]))),
        ("lifetime", lambda: metrics.jump_variability(STATES, np.array([-1, 2]))),
        ("dims", lambda: metrics.occupancy(STATES, LIFETIME, dims=(0, 3))),
        ("bins", lambda: metrics.occupancy(STATES, LIFETIME, bins=0)),
        ("values", lambda: metrics.mean_and_sem(1.0)),
    ],
)
def test_bad_shapes_and_values_name_the_argument(name, call):
    with raises_naming(name):
        call()
