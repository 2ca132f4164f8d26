"""The learning-rule study's analyses: the attractor-topology descriptor, the SVCCA input
protocol, and silhouettes / MDS on the rows of a distance matrix."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from conftest import numpy_seeds, raises_naming
from flexrnn import analysis as an
from flexrnn.analysis.topology import knn_descriptor
from hypothesis import given, settings
from hypothesis import strategies as st


def bistable(perm=None, coupling=0.0, seed=0):
    """n=4 tanh network: unit 0 is bistable (self-weight 2) and takes the input; the others
    decay, weakly driven by unit 0 (``coupling``). ``perm`` relabels the units."""
    rng = np.random.default_rng(seed)
    W = np.diag([2.0, 0.5, 0.5, 0.3])
    W[1:, 0] = coupling * rng.normal(size=3)
    W_in = np.array([[1.0], [0.0], [0.2], [0.0]])
    W_out = np.array([[1.0, 0.3, 0.0, 0.1]])
    b = np.array([0.05, 0.0, 0.1, 0.0])
    p = np.arange(4) if perm is None else np.asarray(perm)
    return fr.RateRNN(W[np.ix_(p, p)], W_in[p], W_out[:, p], b=b[p], tau=10.0, dt=1.0)


def line_attractor(perm=None):
    """n=3 linear network with a line of fixed points along unit 0 (eigenvalue 1) at every
    input; the input drives a decaying unit."""
    W = np.diag([1.0, 0.5, 0.5])
    W_in = np.array([[0.0], [1.0], [0.0]])
    W_out = np.array([[1.0, 0.0, 0.0]])
    p = np.arange(3) if perm is None else np.asarray(perm)
    return fr.RateRNN(W[np.ix_(p, p)], W_in[p], W_out[:, p], tau=10.0, dt=1.0, phi="identity")


# ---------------------------------------------------------------------------------------------
# Topology descriptor


def test_decision_inputs_are_the_study_levels():
    u = an.decision_inputs()
    assert u.shape == (21, 1)
    expected = 0.03 * np.concatenate([[0.0], np.arange(-10, 11)[np.arange(-10, 11) != 0] / 10])
    np.testing.assert_allclose(np.sort(u[:, 0]), np.sort(expected))
    assert u[0, 0] == 0.0


def test_context_inputs_cue_each_context_with_its_levels():
    u = an.context_inputs(3)
    assert u.shape == (63, 6)
    for c in range(3):
        block = u[21 * c : 21 * (c + 1)]
        np.testing.assert_array_equal(block[:, 3 + c], 1.0)
        np.testing.assert_allclose(block[:, c], np.linspace(-0.02, 0.02, 21))
        others = np.delete(np.arange(6), [c, 3 + c])
        np.testing.assert_array_equal(block[:, others], 0.0)


def test_knn_descriptor_of_points_on_a_line_names_the_nearest_indices():
    x = np.array([0.0, 1.0, 3.0, 7.0, 15.0])[:, None]
    d = knn_descriptor(x, k=2, n_points=5).reshape(5, 2)
    np.testing.assert_array_equal(d, [[1, 2], [0, 2], [1, 0], [2, 1], [3, 2]])


def test_knn_descriptor_marks_missing_points():
    d = knn_descriptor(np.array([[0.0], [1.0]]), k=3, n_points=4).reshape(4, 3)
    np.testing.assert_array_equal(d[0], [1, -1, -1])
    np.testing.assert_array_equal(d[2:], -1)


def test_bistable_network_has_three_fixed_points_per_input():
    top = an.topology(bistable(), an.decision_inputs())
    np.testing.assert_array_equal(top.counts, 3)
    assert top.descriptor.shape == (30,)
    # per input: two stable points around one saddle
    for i in range(3):
        np.testing.assert_array_equal(top.stable[top.input_index == i], [True, False, True])


@pytest.mark.parametrize("coupling", [0.0, 0.4])
def test_relabelled_units_give_the_same_topology_descriptor(coupling):
    inputs = an.decision_inputs()
    a = an.topology(bistable(coupling=coupling), inputs)
    perm = [2, 0, 3, 1]
    b = an.topology(bistable(perm, coupling=coupling), inputs)
    np.testing.assert_array_equal(a.descriptor, b.descriptor)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(b.points, a.points[:, perm], atol=1e-8)


def test_bistable_and_line_attractor_networks_have_different_descriptors():
    inputs = an.decision_inputs()
    a = an.topology(bistable(), inputs)
    b = an.topology(line_attractor(), inputs)
    assert b.counts[0] > 3  # a row of points along the line
    assert not np.array_equal(a.descriptor, b.descriptor)
    D = an.topology_distances([a, b, a])
    assert D[0, 1] > 0 and D[0, 2] == 0 and D.shape == (3, 3)


def test_loose_acceptance_admits_approximate_roots_that_strict_rejects():
    net = fr.RateRNN.random(n=20, n_in=1, n_out=1, g=1.8, seed=3)
    inputs = an.decision_inputs()[:3]
    strict = an.topology(net, inputs, n_init=40, iters=300)
    loose = an.topology(net, inputs, n_init=40, iters=300, acceptance="loose")
    assert loose.acceptance == "loose"
    assert loose.residual.max() <= 0.15
    assert strict.residual.max(initial=0.0) < 1e-6
    assert loose.residual.max() > 1e-4  # points that are not roots
    assert loose.counts.sum() > strict.counts.sum()


def test_topology_rejects_bad_arguments():
    net = bistable()
    with raises_naming("inputs"):
        an.topology(net, np.zeros((3, 2)))
    with raises_naming("acceptance"):
        an.topology(net, an.decision_inputs(), acceptance="lenient")
    with raises_naming("k"):
        an.topology(net, an.decision_inputs(), k=0)
    with raises_naming("net"):
        an.topology(fr.LSTM.random(4, 1, 1), an.decision_inputs())
    with raises_naming("slow_tol"):
        an.topology(net, an.decision_inputs(), acceptance="loose", slow_tol=1.0)


# ---------------------------------------------------------------------------------------------
# SVCCA protocol


def test_svcca_protocol_inputs_are_static_levels_per_context():
    net = fr.RateRNN.random(n=10, n_in=4, n_out=1, g=0.9, seed=0)
    res = an.svcca_protocol([net], contexts=2, steps=20)
    assert res.u.shape == (20, 20, 4)
    np.testing.assert_array_equal(res.u[0], res.u[-1])
    np.testing.assert_array_equal(res.u[0], an.context_inputs(2, np.linspace(-0.1875, 0.1875, 10)))
    assert res.states[0].shape == (400, 10)
    np.testing.assert_array_equal(res.states[0], net.run(res.u).x.reshape(-1, 10))


def test_svcca_protocol_puts_a_relabelled_network_at_distance_zero():
    rng = np.random.default_rng(0)
    net = fr.RateRNN.random(n=12, n_in=1, n_out=1, g=1.2, seed=1)
    net.x0[:] = rng.normal(0, 0.3, 12)
    p = rng.permutation(12)
    twin = fr.RateRNN(net.W[np.ix_(p, p)], net.W_in[p], net.W_out[:, p], x0=net.x0[p])
    other = fr.RateRNN.random(n=12, n_in=1, n_out=1, g=1.2, seed=7)
    other.x0[:] = rng.normal(0, 0.3, 12)
    D = an.svcca_protocol([net, twin, other], steps=100).distances
    assert D[0, 1] < 1e-8
    assert D[0, 2] > 0.01


def test_svcca_protocol_rejects_bad_arguments():
    net = fr.RateRNN.random(n=5, n_in=2, n_out=1, seed=0)
    with raises_naming("contexts"):
        an.svcca_protocol(net, contexts=2)
    with raises_naming("nets[1]"):
        an.svcca_protocol([net, fr.RateRNN.random(n=5, n_in=3, n_out=1, seed=0)])
    with raises_naming("steps"):
        an.svcca_protocol(net, steps=0)


# ---------------------------------------------------------------------------------------------
# Silhouette and MDS on rows


def random_distances(rng, P, dim=3):
    X = rng.normal(size=(P, dim))
    return np.sqrt(np.sum((X[:, None] - X[None]) ** 2, axis=-1))


@given(numpy_seeds, st.integers(4, 12))
@settings(max_examples=25)
def test_silhouette_on_rows_is_the_silhouette_of_euclidean_row_distances(seed, P):
    rng = np.random.default_rng(seed)
    D = random_distances(rng, P)
    labels = np.arange(P) % 2
    E = np.array([[np.linalg.norm(D[i] - D[j]) for j in range(P)] for i in range(P)])
    np.testing.assert_allclose(an.row_distances(D), E, atol=1e-10)
    np.testing.assert_allclose(
        an.silhouette_samples(D, labels, method="rows"), an.silhouette_samples(E, labels)
    )
    assert an.silhouette_score(D, labels, method="rows") == pytest.approx(
        an.silhouette_score(E, labels)
    )


def test_silhouette_on_rows_matches_a_hand_computation():
    # two tight pairs: rows of the pairs are near-identical feature vectors
    D = np.array([[0, 1, 4, 4], [1, 0, 4, 4], [4, 4, 0, 1], [4, 4, 1, 0]], dtype=float)
    # row distances: within a pair sqrt(2), across sqrt(9 + 9 + 16 + 16) = sqrt(50)
    a, b = np.sqrt(2), np.sqrt(50)
    assert an.silhouette_score(D, [0, 0, 1, 1], method="rows") == pytest.approx((b - a) / b)
    assert an.silhouette_score(D, [0, 0, 1, 1]) == pytest.approx((4 - 1) / 4)


def test_mds_on_rows_embeds_the_row_distances_at_least_as_well_as_its_classical_start():
    rng = np.random.default_rng(4)
    D = random_distances(rng, 15, dim=5)
    E = an.row_distances(D)
    rows = an.mds(D, dims=2, method="rows")
    classical = an.mds(E, dims=2)
    assert rows.embedding.shape == (15, 2)
    assert rows.stress <= classical.stress + 1e-12
    np.testing.assert_allclose(rows.embedding.mean(axis=0), 0.0, atol=1e-10)


def test_mds_on_rows_in_enough_dimensions_reproduces_the_row_distances():
    # the rows are P points of R^P: their Euclidean distances embed exactly in P - 1 dims
    t = np.array([0.0, 1.0, 2.5, 4.0, 6.0])
    D = np.abs(t[:, None] - t[None, :])
    res = an.mds(D, dims=4, method="rows")
    d = np.sqrt(np.sum((res.embedding[:, None] - res.embedding[None]) ** 2, axis=-1))
    np.testing.assert_allclose(d, an.row_distances(D), atol=1e-6)
    assert res.stress < 1e-6


def test_methods_reject_unknown_names():
    D = random_distances(np.random.default_rng(0), 5)
    with raises_naming("method"):
        an.silhouette_score(D, [0, 0, 1, 1, 1], method="features")
    with raises_naming("method"):
        an.mds(D, method="smacof")
