"""Bifurcation continuation: known answers (pitchfork, saddle-node, Hopf, the edge of a
random network's spectrum, the onset of chaos), the gain derivative against the NumPy
reference, the diagram, and bad input."""

from __future__ import annotations

import importlib

import flexrnn as fr
import matplotlib
import numpy as np
import pytest
from flexrnn import reference as ref
from flexrnn.analysis.continuation import _GainFlow

matplotlib.use("Agg")


def one_unit(b: float = 0.0, dtype: str = "float64", form: str = "current") -> fr.RateRNN:
    """dx/dt = -x + g tanh(x) + b (tau = 1)."""
    n_in = 1 if b else 0
    return fr.RateRNN(np.array([[1.0]]), np.zeros((1, n_in)), np.zeros((0, 1)),
                      b=np.array([b]), tau=1.0, dt=0.1, form=form, dtype=dtype)  # fmt: skip


def rotation(a: float, w: float, form: str = "current") -> fr.RateRNN:
    """W = [[a, -w], [w, a]]: at x = 0 the flow's eigenvalues are -1 + g (a +- i w)."""
    W = np.array([[a, -w], [w, a]])
    return fr.RateRNN(W, np.zeros((2, 0)), np.zeros((0, 2)), tau=1.0, dt=0.1, form=form)


def test_one_unit_has_a_pitchfork_at_gain_one_with_branches_solving_x_equals_g_tanh_x():
    c = fr.analysis.continuation(one_unit(), np.linspace(0.5, 2.0, 16), chaos=False)
    assert [b.kind for b in c.bifurcations] == ["pitchfork"]
    bif = c.bifurcations[0]
    assert abs(bif.gain - 1.0) < 1e-8 and abs(bif.x[0]) < 1e-8
    assert abs(bif.eigenvalue) < 1e-6
    trivial = c.branches[bif.branch]
    assert np.all(trivial.x == 0) or np.abs(trivial.x).max() < 1e-10
    np.testing.assert_array_equal(trivial.stable, trivial.gain < 1.0)
    sides = [br for br in c.branches if br.origin == "branch point"]
    assert len(sides) == 2
    signs = sorted(np.sign(br.x[-1, 0]) for br in sides)
    assert signs == [-1.0, 1.0]
    for br in sides:
        x, g = br.x[:, 0], br.gain
        np.testing.assert_allclose(x, g * np.tanh(x), atol=1e-9)
        assert np.all(br.stable) and np.all(g >= 1.0 - 1e-12) and g.max() == pytest.approx(2.0)
    # the branch ends on the boundary at x*(2) = 2 tanh x* = 1.9150...
    assert max(abs(br.x[-1, 0]) for br in sides) == pytest.approx(1.9150080, abs=1e-6)


def test_pitchfork_is_found_from_the_three_fixed_points_when_the_path_decreases():
    c = fr.analysis.continuation(one_unit(), np.linspace(2.0, 0.5, 16), chaos=False)
    assert [b.kind for b in c.bifurcations] == ["pitchfork"]
    assert c.bifurcations[0].gain == pytest.approx(1.0, abs=1e-8)
    x, stable = c.points_at(1.5)
    order = np.argsort(x[:, 0])
    x, stable = x[order, 0], stable[order]
    assert len(x) == 3
    np.testing.assert_allclose(x[1], 0.0, atol=1e-12)
    x_star = 1.5
    for _ in range(200):  # x* = 1.5 tanh x*, a stable iteration
        x_star = 1.5 * np.tanh(x_star)
    np.testing.assert_allclose(np.abs(x[[0, 2]]), x_star, atol=2e-3)  # interpolated points
    np.testing.assert_array_equal(stable, [True, False, True])


def test_biased_unit_has_a_saddle_node_solving_the_fold_equations():
    # dx/dt = -x + g tanh x + 0.1: the negative pair of fixed points meets where also
    # g sech^2 x = 1 (the flow's eigenvalue is 0)
    c = fr.analysis.continuation(one_unit(b=0.1), np.linspace(3.0, 0.5, 26), u_const=[0.0],
                                 chaos=False)  # fmt: skip
    folds = c.of_kind("saddle-node")
    assert len(folds) == 1 and not c.of_kind("pitchfork")
    x, g = folds[0].x[0], folds[0].gain
    assert abs(x - g * np.tanh(x) - 0.1) < 1e-10
    assert abs(1 - g / np.cosh(x) ** 2) < 1e-8
    assert x < 0 and 1.0 < g < 1.6
    br = c.branches[folds[0].branch]
    assert br.gain.min() == pytest.approx(g, abs=0.05)  # the curve turns back at the fold
    assert br.stable.any() and not br.stable.all()  # one side stable, the other a saddle


@pytest.mark.parametrize("form", ["current", "rate"])
def test_rotation_network_has_its_hopf_where_real_part_of_gain_times_eig_crosses_one(form):
    a, w = 0.8, 0.5
    c = fr.analysis.continuation(rotation(a, w, form), np.linspace(0.5, 2.0, 16))
    hopf = c.of_kind("hopf")
    assert len(hopf) == 1 and len(c.bifurcations) == 1  # no chaos in two dimensions
    assert hopf[0].gain == pytest.approx(1 / a, abs=1e-8)
    assert abs(hopf[0].eigenvalue.real) < 1e-8
    assert abs(hopf[0].eigenvalue.imag) == pytest.approx(w / a, abs=1e-8)
    assert hopf[0].frequency == pytest.approx(w / a / (2 * np.pi), abs=1e-8)
    br = c.branches[0]
    np.testing.assert_array_equal(br.stable, br.gain < 1 / a)
    labels = c.regimes.labels
    assert set(labels[c.gains > 1 / a + 0.1]) == {"limit cycle"}
    assert set(labels[c.gains < 1 / a - 0.1]) == {"fixed point"}


def test_low_rank_network_has_its_pitchfork_at_inverse_of_its_nonzero_eigenvalue():
    rng = np.random.default_rng(3)
    n = 20
    U = rng.standard_normal((n, 1))
    V = U + 0.3 * rng.standard_normal((n, 1))
    net = fr.LowRankRNN(U, V, np.zeros((n, 0)), np.zeros((0, n)), tau=1.0, dt=0.1)
    eig = float(V[:, 0] @ U[:, 0]) / n  # the one nonzero eigenvalue of U V^T / n
    gains = np.linspace(0.3 / eig, 2.0 / eig, 12)
    c = fr.analysis.continuation(net, gains, chaos=False)
    assert c.bifurcations and c.bifurcations[0].kind == "pitchfork"
    assert c.bifurcations[0].gain == pytest.approx(1 / eig, rel=1e-8)
    assert len(c.branches) == 3  # the origin and the two switched branches
    for br in c.branches[1:]:
        f = _GainFlow(net, None, None)
        res = [np.abs(f.f(x, g)).max() for x, g in zip(br.x, br.gain)]
        assert max(res) < 1e-8


def test_random_network_of_500_loses_the_stability_of_the_origin_at_its_spectral_edge():
    net = fr.RateRNN.random(500, 0, 0, g=1.0, tau=1.0, dt=0.1, seed=1)
    eig = np.linalg.eigvals(net.W)
    edge = eig[np.argmax(eig.real)]
    g_star = 1 / edge.real  # -1 + g Re(eig) crosses 0
    assert 0.85 < g_star < 1.15
    c = fr.analysis.continuation(net, np.linspace(0.6, g_star + 0.02, 8), n_init=4,
                                 chaos=False, switch_branches=False)  # fmt: skip
    first = c.bifurcations[0]
    assert first.gain == pytest.approx(g_star, rel=1e-7)
    assert first.kind == ("hopf" if abs(edge.imag) > 1e-9 else "pitchfork")
    assert abs(first.eigenvalue.imag) == pytest.approx(abs(g_star * edge.imag), abs=1e-6)
    br = c.branches[first.branch]
    assert np.abs(br.x).max() < 1e-8
    np.testing.assert_array_equal(br.stable, br.gain < g_star)


def test_chaos_begins_where_the_largest_lyapunov_exponent_crosses_zero():
    net = fr.RateRNN.random(100, 0, 0, g=1.0, tau=1.0, dt=0.1, seed=0)
    gains = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    c = fr.analysis.continuation(net, gains, n_init=4, switch_branches=False, locate=False)
    onsets = c.of_kind("chaos")
    assert len(onsets) >= 1
    e = c.regimes.largest_exponent
    i = int(np.searchsorted(gains, onsets[0].gain)) - 1  # bracketing gains i, i + 1
    assert c.regimes.labels[i] != "chaos" and c.regimes.labels[i + 1] == "chaos"
    assert e[i] <= 0.02 < e[i + 1]
    assert gains[i] <= onsets[0].gain <= gains[i + 1]
    assert 1.0 <= onsets[0].gain <= 2.5  # near g = 1 for large n
    assert onsets[0].x is None and onsets[0].branch == -1


def test_float32_network_finds_the_pitchfork_to_its_precision():
    c = fr.analysis.continuation(one_unit(dtype="float32"), np.linspace(0.5, 2.0, 16),
                                 chaos=False)  # fmt: skip
    assert [b.kind for b in c.bifurcations] == ["pitchfork"]
    assert c.bifurcations[0].gain == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("form", ["current", "rate"])
def test_flow_and_gain_derivative_match_the_reference_map(form):
    rng = np.random.default_rng(0)
    n, n_in = 6, 2
    net = fr.RateRNN(rng.standard_normal((n, n)) / np.sqrt(n), rng.standard_normal((n, n_in)),
                     np.zeros((1, n)), b=0.1 * rng.standard_normal(n), tau=2.0, dt=0.5,
                     form=form)  # fmt: skip
    u = np.array([0.3, -0.2])
    flow = _GainFlow(net, u, None)
    x, g, h = rng.standard_normal(n), 1.3, 1e-5

    def ref_flow(gain):
        F = ref.rate_map(x[None], net.W, net.W_in, net.b, u, alpha=net.alpha, form=form,
                         gain=gain)[0]  # fmt: skip
        return (F - x) / net.alpha

    f, Jx, Jg = flow.linearise(x, g)
    np.testing.assert_allclose(f, ref_flow(g), atol=1e-12)
    np.testing.assert_allclose(Jg, (ref_flow(g + h) - ref_flow(g - h)) / (2 * h), atol=1e-8)
    J = ref.rate_map_jacobian(x[None], net.W, net.W_in, net.b, u, alpha=net.alpha, form=form,
                              gain=g)[0]  # fmt: skip
    np.testing.assert_allclose(Jx, (J - np.eye(n)) / net.alpha, atol=1e-12)


def test_plot_draws_a_labelled_diagram_with_a_key():
    c = fr.analysis.continuation(rotation(0.8, 0.5), np.linspace(0.5, 2.0, 8))
    fig = c.plot()
    top, bottom = fig.axes[:2]
    assert top.get_ylabel() and bottom.get_ylabel() and bottom.get_xlabel() == "gain"
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert {"stable", "unstable", "hopf"} <= set(labels)
    assert bottom.get_legend() is not None
    fig2 = fr.analysis.continuation(one_unit(), np.linspace(0.5, 2, 8), chaos=False).plot(measure=0)
    assert len(fig2.axes) == 1 and fig2.axes[0].get_ylabel() == "fixed point, x[0]"
    import matplotlib.pyplot as plt

    plt.close("all")


def test_summary_lists_branches_and_bifurcations():
    c = fr.analysis.continuation(one_unit(), np.linspace(0.5, 2.0, 8), chaos=False)
    text = c.summary()
    assert "3 branches" in text and "pitchfork" in text


def test_bad_input_names_the_argument():
    net = one_unit()
    with pytest.raises(ValueError, match="target"):
        fr.analysis.continuation(net, [0.5, 1.0], target="pre_gain")
    with pytest.raises(ValueError, match="gains"):
        fr.analysis.continuation(net, [0.5, 1.5, 1.0])
    with pytest.raises(ValueError, match="gains"):
        fr.analysis.continuation(net, [0.5])
    with pytest.raises(ValueError, match="gains"):
        fr.analysis.continuation(net, [0.5, np.nan])
    with pytest.raises(ValueError, match="u_const"):
        fr.analysis.continuation(net, [0.5, 1.0], u_const=[1.0, 2.0])
    with pytest.raises(ValueError, match="ds_max"):
        fr.analysis.continuation(net, [0.5, 1.0], ds_max=-1.0)
    with pytest.raises(TypeError, match="net"):
        fr.analysis.continuation(fr.NMRNN.random(8, 1, 2, 1, 1), [0.5, 1.0])
    with pytest.raises(ValueError, match="measure"):
        fr.analysis.continuation(net, [0.5, 1.0], chaos=False).plot(measure="mean")


@pytest.mark.parametrize("eigensolver", ["dense", "arnoldi"])
def test_every_crossing_on_the_origin_of_a_random_network_is_found_at_its_eigenvalue(eigensolver):
    # at x = 0 the flow's Jacobian is -I + g W: eigenvalue k crosses at g = 1 / Re eig_k(W),
    # several of them within one step of the path; with "arnoldi", past g ~ 1.2 more than
    # N / 8 eigenvalues are unstable and the dense solver takes over
    if eigensolver == "arnoldi":
        pytest.importorskip("scipy")
    net = fr.RateRNN.random(100, 0, 0, g=1.0, tau=1.0, dt=0.1, seed=2)
    eig = np.linalg.eigvals(net.W)
    g_max = 1.6
    crossing = eig[(eig.real >= 1 / g_max) & (eig.imag >= -1e-12)]
    expected = sorted(
        (1 / lam.real, "hopf" if lam.imag > 1e-9 else "pitchfork") for lam in crossing
    )
    assert len(expected) >= 4
    c = fr.analysis.continuation(net, np.linspace(0.5, g_max, 5), n_init=4, chaos=False,
                                 switch_branches=False, eigensolver=eigensolver)  # fmt: skip
    assert c.options["eigensolver"] == eigensolver
    found = [(b.gain, b.kind) for b in c.bifurcations if b.branch == 0]
    assert [k for _, k in found] == [k for _, k in expected]
    np.testing.assert_allclose([g for g, _ in found], [g for g, _ in expected], rtol=1e-7)


def test_max_branches_stops_branch_switching_with_a_warning():
    with pytest.warns(RuntimeWarning, match="max_branches"):
        c = fr.analysis.continuation(one_unit(), np.linspace(0.5, 2.0, 8), chaos=False,
                                     max_branches=1)  # fmt: skip
    assert c.truncated and len(c.branches) == 1
    assert [b.kind for b in c.bifurcations] == ["pitchfork"]


def test_bifurcations_do_not_depend_on_the_step_size():
    # large steps must not jump between neighbouring branches (a jump reads as a false
    # branch point): the default steps find what steps ten times smaller find
    net = fr.RateRNN.random(60, 0, 0, g=1.0, tau=1.0, dt=0.1, seed=1)
    gains = np.linspace(0.5, 2.5, 11)
    coarse = fr.analysis.continuation(net, gains, n_init=8, chaos=False)
    fine = fr.analysis.continuation(net, gains, n_init=8, chaos=False, ds_max=0.02)
    assert len(coarse.bifurcations) >= 8
    assert [b.kind for b in coarse.bifurcations] == [b.kind for b in fine.bifurcations]
    np.testing.assert_allclose([b.gain for b in coarse.bifurcations],
                               [b.gain for b in fine.bifurcations], rtol=1e-6)  # fmt: skip
    assert len(coarse.branches) == len(fine.branches)


# ---------------------------------------------------------------------------------------------
# Large networks: the Arnoldi eigenvalues, the chord corrector, the starting points


def biased_random(n: int, b: float, seed: int = 3) -> fr.RateRNN:
    """W ~ N(0, 1/n) with a bias b N(0, 1): a branch away from x = 0 when b != 0."""
    W = fr.RateRNN.random(n, 0, 0, g=1.0, tau=1.0, dt=0.1, seed=seed).W
    bias = b * np.random.default_rng(4).standard_normal(n)
    return fr.RateRNN(W, np.zeros((n, 0)), np.zeros((0, n)), b=bias, tau=1.0, dt=0.1)


@pytest.mark.parametrize("b, g_max", [(0.0, 1.3), (0.05, 1.5)])
def test_arnoldi_and_dense_eigenvalues_find_the_same_bifurcations(b, g_max):
    # b = 0: a pitchfork (two switched branches) and Hopf points on the origin; b = 0.05: a
    # Hopf point on a branch away from the origin
    pytest.importorskip("scipy")
    net, gains = biased_random(120, b), np.linspace(0.5, g_max, 8)
    runs = {solver: fr.analysis.continuation(net, gains, n_init=4, chaos=False,
                                             eigensolver=solver)  # fmt: skip
            for solver in ("arnoldi", "dense")}  # fmt: skip
    arnoldi, dense = runs["arnoldi"], runs["dense"]
    assert arnoldi.options["eigensolver"] == "arnoldi" and dense.options["eigensolver"] == "dense"
    assert len(dense.bifurcations) >= 1 and "hopf" in [x.kind for x in dense.bifurcations]
    assert [x.kind for x in arnoldi.bifurcations] == [x.kind for x in dense.bifurcations]
    np.testing.assert_allclose([x.gain for x in arnoldi.bifurcations],
                               [x.gain for x in dense.bifurcations], rtol=1e-8)  # fmt: skip
    np.testing.assert_allclose([x.eigenvalue for x in arnoldi.bifurcations],
                               [x.eigenvalue for x in dense.bifurcations], atol=1e-7)  # fmt: skip
    assert len(arnoldi.branches) == len(dense.branches)
    for a, d in zip(arnoldi.branches, dense.branches):
        np.testing.assert_array_equal(a.n_unstable, d.n_unstable)
        rows = ~np.isnan(a.eigenvalues[:, 0]) & ~np.isnan(d.eigenvalues[:, 0])
        assert rows.sum() >= 2
        np.testing.assert_allclose(np.sort(a.eigenvalues[rows].real, axis=1),
                                   np.sort(d.eigenvalues[rows].real, axis=1),
                                   atol=1e-9)  # fmt: skip


def test_random_network_of_1000_loses_the_stability_of_the_origin_at_its_spectral_edge():
    pytest.importorskip("scipy")
    net = fr.RateRNN.random(1000, 0, 0, g=1.0, tau=1.0, dt=0.1, seed=1)
    eig = np.linalg.eigvals(net.W)
    order = np.argsort(-eig.real)
    edge = eig[order[0]]
    g_star = 1 / edge.real
    c = fr.analysis.continuation(net, np.linspace(0.6, g_star + 0.02, 11), n_init=4,
                                 chaos=False, switch_branches=False)  # fmt: skip
    assert c.options["eigensolver"] == "arnoldi"
    first = c.bifurcations[0]
    assert first.gain == pytest.approx(g_star, rel=1e-7)
    assert first.kind == ("hopf" if abs(edge.imag) > 1e-9 else "pitchfork")
    assert abs(first.eigenvalue.imag) == pytest.approx(abs(g_star * edge.imag), abs=1e-6)
    br = c.branches[first.branch]
    np.testing.assert_array_equal(br.stable, br.gain < g_star)
    # the six rightmost eigenvalues at the first point: -1 + g eig(W) (x = 0 throughout)
    expected = -1 + br.gain[0] * eig[order[:6]]
    np.testing.assert_allclose(np.sort(br.eigenvalues[0].real), np.sort(expected.real),
                               atol=1e-9)  # fmt: skip


def test_starting_points_are_the_fixed_and_slow_points_of_the_fixed_point_search():
    from flexrnn.analysis.continuation import _minimiser_points

    net = fr.RateRNN.random(20, 0, 0, g=2.0, tau=1.0, dt=0.1, seed=5)
    flow = _GainFlow(net, None, None)
    fp = fr.analysis.fixed_points(net, n_init=16, seed=2, gain=1.5, iters=500, refine=False)
    assert len(fp) >= 2
    np.testing.assert_array_equal(_minimiser_points(net, flow, 1.5, 16, None, 2), fp.x)


def test_without_scipy_the_numpy_fallback_finds_the_same_bifurcations(monkeypatch):
    module = importlib.import_module("flexrnn.analysis.continuation")  # not the function
    runs = []
    for scipy_modules in (None, False):  # None: import SciPy if installed; False: absent
        monkeypatch.setattr(module, "_SCIPY", scipy_modules)
        runs.append([fr.analysis.continuation(one_unit(), np.linspace(0.5, 2.0, 16), chaos=False),
                     fr.analysis.continuation(rotation(0.8, 0.5), np.linspace(0.5, 2.0, 16),
                                              chaos=False)])  # fmt: skip
        if scipy_modules is False:
            with pytest.raises(ValueError, match="eigensolver"):
                fr.analysis.continuation(one_unit(), [0.5, 1.0], eigensolver="arnoldi")
    for with_scipy, without in zip(*runs):
        assert [b.kind for b in with_scipy.bifurcations] == [b.kind for b in without.bifurcations]
        np.testing.assert_allclose([b.gain for b in with_scipy.bifurcations],
                                   [b.gain for b in without.bifurcations], rtol=1e-9)  # fmt: skip
    assert [b.kind for b in runs[1][0].bifurcations] == ["pitchfork"]
    assert [b.kind for b in runs[1][1].bifurcations] == ["hopf"]


def test_bad_eigensolver_names_the_argument():
    with pytest.raises(ValueError, match="eigensolver"):
        fr.analysis.continuation(one_unit(), [0.5, 1.0], eigensolver="lapack")
