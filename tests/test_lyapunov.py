"""Lyapunov spectra and regimes: the C++ QR method against the NumPy reference, exact
answers of linear networks, the known exponents of random tanh networks (docs/dynamics_analysis.md),
the classification of fixed points, limit cycles and chaos; bad input."""

from __future__ import annotations

import flexrnn as fr
import matplotlib
import numpy as np
import pytest
from conftest import dtypes, forms, numpy_seeds, raises_naming, random_low_rank_rnn, random_rate_rnn
from flexrnn import reference as ref
from flexrnn.analysis import GainSweep, Regime, gain_sweep, lyapunov_spectrum, regime
from hypothesis import example, given, settings
from hypothesis import strategies as st

matplotlib.use("Agg")


def _map_functions(net, u, gain):
    """The reference map and its Jacobian of a RateRNN or LowRankRNN at gain."""
    args = (net.W, net.W_in, net.b, u)
    kw = dict(alpha=net.alpha, phi_name=net.phi, form=net.form, gain=gain)
    return (lambda X: ref.rate_map(X, *args, **kw)), (
        lambda X: ref.rate_map_jacobian(X, *args, **kw)
    )


# Exponents are means of logs over `steps` steps: float64 agrees to rounding (1e-10 is loose),
# float32 to ~1e-6 per log, and states of the chaotic cases separate by at most e^(0.5 * 40)
# ulps over these 40 steps, so 2e-4 absolute.
LYAPUNOV_TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 2e-4}


@settings(max_examples=25)
@given(numpy_seeds, dtypes, forms, st.sampled_from(["tanh", "softplus", "identity"]),
       st.booleans(), st.integers(1, 4))  # fmt: skip
@example(4, np.float32, "current", "softplus", False, 3)  # exponents 0.15 .. -4.42 per step
def test_spectrum_matches_reference_qr_method(seed, dtype, form, phi, low_rank, reorth):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    if low_rank:
        net = random_low_rank_rnn(rng, n, 2, 1, 1, g=1.5, phi=phi, tau=2.0, dtype=dtype)
    else:
        net = random_rate_rnn(rng, n, 1, 1, g=1.5, phi=phi, form=form, tau=2.0, dtype=dtype)
    k = int(rng.integers(1, n + 1))
    gains = np.array([0.7, 1.6])
    u, x0 = rng.normal(0, 1, 1), rng.normal(0, 1, (2, n))
    steps, transient = 30, int(rng.integers(0, 10))
    got = lyapunov_spectrum(net, k=k, steps=steps, transient=transient, gain=gains, u_const=u,
                            x0=x0, reorthonormalize=reorth, seed=seed, per="step")  # fmt: skip
    assert got.shape == (2, k) and got.dtype == np.dtype(dtype)
    for b, gain in enumerate(gains):
        F, J = _map_functions(net, u.astype(dtype), gain)
        want = ref.lyapunov_spectrum(F, J, x0[b].astype(dtype), k=k, steps=steps,
                                     transient=transient, reorthonormalize=reorth, seed=seed,
                                     stream=b)  # fmt: skip
        want = np.sort(want)[::-1]  # the wrapper sorts its estimates descending
        # Between QRs (reorth steps) vector i shrinks by exp(reorth (l_1 - l_i)) against the
        # first; rounding of relative size eps there perturbs its log by about that much.
        eps = np.finfo(dtype).eps
        atol = LYAPUNOV_TOL[np.dtype(dtype)] + 2 * eps * np.exp(reorth * (want[0] - want))
        assert np.all(np.abs(got[b] - want) <= atol), (got[b], want, atol)


@pytest.mark.parametrize("form", ["current", "rate"])
def test_linear_network_exponents_are_log_moduli_of_the_map_eigenvalues(form):
    """phi = identity: the Jacobian is the constant (1-alpha) I + alpha gain W, so the spectrum
    is log|eig| sorted. The QR estimate converges as C / steps, C ~ log of the eigenvector
    condition number (~1-3 here): 1000 steps give < 3e-4 (measured over 5 networks), 2e-3
    asserted."""
    rng = np.random.default_rng(0)
    n, gain = 8, 1.1
    W = rng.normal(0, 1.2 / np.sqrt(n), (n, n))
    net = fr.RateRNN(W, np.zeros((n, 0)), np.zeros((0, n)), phi="identity", form=form,
                     tau=2.0, dt=1.0)  # fmt: skip
    J = (1 - net.alpha) * np.eye(n) + net.alpha * gain * W
    expected = np.sort(np.log(np.abs(np.linalg.eigvals(J))))[::-1]
    per_step = lyapunov_spectrum(net, k=n, steps=1000, transient=100, gain=gain, per="step")
    np.testing.assert_allclose(per_step, expected, atol=2e-3)
    per_tau = lyapunov_spectrum(net, k=n, steps=1000, transient=100, gain=gain)
    np.testing.assert_allclose(per_tau, per_step / net.alpha, rtol=1e-12)


def test_random_tanh_network_exponents_match_known_values_at_small_n():
    """dx/dt = -x + g J tanh(x), n = 300, dt = 0.05 tau, three gains in one call.

    g = 0.5: the state decays to the origin, where the exponent is exact:
    max log|1 - alpha + alpha g eig(J)| / alpha (-0.5 at large n). The top eigenvalues of
    this J are a complex pair, 0.025 per tau above the next pair: one tangent vector turns in
    the pair's plane, and the average converges as ~1 / steps (2000 steps after 1000 are
    3e-3 off; 4000 after 2000, 3e-5), so 1e-3 is asserted at 4000 after 2000.
    g = 2 and 3: mean-field 0.10 and 0.21; at n = 300 over 100-200 tau, networks gave
    0.053-0.114 and 0.138-0.243 (finite n lowers the mean to
    0.08 and 0.19), so 0.03-0.16 and 0.12-0.29 are asserted, with g = 3 above g = 2.
    """
    net = fr.RateRNN.random(300, 1, 1, g=1.0, tau=1.0, dt=0.05, seed=0)
    lam = lyapunov_spectrum(net, k=1, steps=4000, transient=2000, gain=[0.5, 2.0, 3.0])[:, 0]
    eig = np.linalg.eigvals(net.W)
    exact = np.max(np.log(np.abs(1 - net.alpha + net.alpha * 0.5 * eig))) / net.alpha
    assert lam[0] == pytest.approx(exact, abs=1e-3)
    assert lam[0] == pytest.approx(-0.5, abs=0.06)
    assert 0.03 < lam[1] < 0.16
    assert 0.12 < lam[2] < 0.29 and lam[2] > lam[1]


def test_largest_exponent_of_a_random_tanh_network_crosses_zero_near_gain_one():
    """Mean field: g - 1 below g = 1 (the origin), positive (chaos) above; at n = 300 the
    crossing is blurred by finite size (limit cycles just above 1), so the sign is asserted
    at 0.8 and 0.95 (negative, near g - 1) and at 1.6 and 2 (positive)."""
    net = fr.RateRNN.random(300, 1, 1, g=1.0, tau=1.0, dt=0.05, seed=2)
    lam = lyapunov_spectrum(net, k=1, steps=3000, transient=3000, gain=[0.8, 0.95, 1.6, 2.0])
    assert lam[0, 0] == pytest.approx(-0.2, abs=0.05)
    assert -0.1 < lam[1, 0] < 0
    assert lam[2, 0] > 0 and lam[3, 0] > lam[2, 0]


@pytest.mark.slow
def test_random_tanh_network_exponents_match_known_values_at_n_1000():
    """The spec's check: n = 1000, dt = 0.05, 4000 steps after 2000. Over networks the g = 2
    exponent spreads by ~0.025 (std), so three runs from different states are averaged;
    asserted: -0.5 +- 0.02, 0.10 +- 0.035, 0.215 +- 0.025; and the stationary <x²> of the
    spec, 1.9-2.0 and 5.4-5.7, within 15 %."""
    net = fr.RateRNN.random(1000, 1, 1, g=1.0, tau=1.0, dt=0.05, seed=1)
    gains = np.array([0.5, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0])
    x0 = np.random.default_rng(0).normal(0, 1, (7, 1000))
    lam = lyapunov_spectrum(net, k=1, steps=4000, transient=2000, gain=gains, x0=x0)[:, 0]
    assert lam[0] == pytest.approx(-0.5, abs=0.02)
    assert lam[1:4].mean() == pytest.approx(0.10, abs=0.035)
    assert lam[4:].mean() == pytest.approx(0.215, abs=0.025)
    sweep = gain_sweep(net, [2.0, 3.0], steps=4000, transient=2000)
    assert list(sweep.labels) == ["chaos", "chaos"]
    assert sweep.variance[0] == pytest.approx(1.95, rel=0.15)
    assert sweep.variance[1] == pytest.approx(5.55, rel=0.15)


def test_spectrum_is_the_same_for_any_thread_count():
    """One trajectory's tangent vectors advance in fixed blocks of rows spread over threads
    (n = 200, k = 40 is above the threshold for threads): bitwise-equal exponents."""
    net = fr.RateRNN.random(200, 1, 1, g=2.0, tau=1.0, dt=0.1, seed=3)
    before = fr.get_num_threads()
    try:
        got = []
        for threads in (1, 2, 3):
            fr.set_num_threads(threads)
            got.append(lyapunov_spectrum(net, k=40, steps=20, transient=5))
    finally:
        fr.set_num_threads(before)
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_array_equal(got[0], got[2])


def test_scalar_gain_gives_k_exponents_and_float32_works():
    net = fr.RateRNN.random(40, 1, 1, g=0.5, tau=1.0, dt=0.1, seed=2)
    lam64 = lyapunov_spectrum(net, k=3, steps=500, transient=200)
    lam32 = lyapunov_spectrum(net.astype("float32"), k=3, steps=500, transient=200)
    assert lam64.shape == (3,) and lam32.dtype == np.float32
    assert np.all(np.diff(lam64) <= 1e-12)  # descending
    # a contracting network: both sit at the origin, with the same linear spectrum
    np.testing.assert_allclose(lam32, lam64, atol=1e-3)


def test_low_rank_network_spectrum_equals_that_of_its_full_matrix():
    rng = np.random.default_rng(3)
    lr = random_low_rank_rnn(rng, 10, 2, 1, 1, g=3.0, tau=1.0, dt=0.1)
    full = fr.RateRNN(lr.W, lr.W_in, lr.W_out, b=lr.b, tau=1.0, dt=0.1)
    a = lyapunov_spectrum(lr, k=4, steps=300, transient=100)
    b = lyapunov_spectrum(full, k=4, steps=300, transient=100)
    np.testing.assert_allclose(a, b, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Regimes


def test_random_network_is_a_fixed_point_at_low_gain_and_chaotic_at_high_gain():
    net = fr.RateRNN.random(200, 1, 1, g=1.0, tau=1.0, dt=0.05, seed=0)
    sweep = gain_sweep(net, [0.5, 3.0], steps=1000, transient=1000)
    assert isinstance(sweep, GainSweep) and len(sweep) == 2
    assert list(sweep.labels) == ["fixed point", "chaos"]
    assert sweep.variance[0] < 1e-8 and sweep.variance[1] > 1
    assert sweep.largest_exponent[0] == pytest.approx(-0.5, abs=0.06)
    assert np.isnan(sweep.frequency[0]) and sweep.frequency[1] > 0
    one = regime(net, 0.5, steps=1000, transient=1000)
    assert isinstance(one, Regime) and one.label == "fixed point" and one.gain == 0.5


def _oscillator(theta=np.pi / 3):
    """Two tanh units, W = R(theta): flow eigenvalues at the origin -1 + g e^(+-i theta), a
    Hopf bifurcation at g cos(theta) = 1 (g = 2), a limit cycle bounded by tanh beyond."""
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return fr.RateRNN(R, np.zeros((2, 0)), np.zeros((0, 2)), tau=1.0, dt=0.05)


def test_a_focus_spiralling_in_slowly_is_a_fixed_point_not_a_limit_cycle():
    """Just below the Hopf bifurcation of the Euler map (dt = 0.05 tau moves it from the
    flow's g = 2 to g = 1.87): at g = 1.842 the map's eigenvalues at the origin have
    log-modulus -0.015 alpha, a focus spiralling in at 0.015 per tau, more slowly than the
    exponent threshold (0.02) can tell; but the variance falls by about exp(-0.03 * 50)
    between the halves of a 100-tau record."""
    net = _oscillator()
    a, z = net.alpha, 1.842 * np.exp(1j * np.pi / 3)
    assert np.log(abs(1 - a + a * z)) / a == pytest.approx(-0.015, abs=5e-4)
    sweep = gain_sweep(net, [1.842, 2.2], steps=2000, transient=2000)
    assert abs(sweep.largest_exponent[0]) < 0.02  # the phase along the orbit: about 0
    assert sweep.autocorrelation_peak[0] > 0.5  # periodic-looking, yet dying out
    assert sweep.variance_ratio[0] == pytest.approx(np.exp(-1.5), rel=0.15)
    assert sweep.variance_ratio[1] == pytest.approx(1.0, abs=0.1)
    assert list(sweep.labels) == ["fixed point", "limit cycle"]


def test_oscillator_has_a_limit_cycle_at_the_frequency_of_its_zero_crossings():
    net = _oscillator()
    sweep = gain_sweep(net, [1.5, 2.2, 3.0], steps=2000, transient=2000)
    assert list(sweep.labels) == ["fixed point", "limit cycle", "limit cycle"]
    assert np.all(np.abs(sweep.largest_exponent[1:]) < 0.005)  # the exponent along the orbit
    assert np.all(sweep.autocorrelation_peak[1:] > 0.9)
    for g, f in zip(sweep.gains[1:], sweep.frequency[1:]):
        x = net.run(np.zeros((12000, 1, 0)), x0=np.array([0.5, 0.0]), gain=g).x[4000:, 0, 0]
        up = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
        crossings = up + x[up] / (x[up] - x[up + 1])  # linear interpolation
        f_zero = 1 / (np.diff(crossings).mean() * net.alpha)
        assert f == pytest.approx(f_zero, rel=0.01)
    # near the Hopf point the frequency approaches the linear one, g sin(theta) / 2 pi = 0.30
    assert sweep.frequency[1] == pytest.approx(2.2 * np.sin(np.pi / 3) / (2 * np.pi), rel=0.2)


def test_sweep_plot_draws_three_panels():
    import matplotlib.pyplot as plt

    sweep = gain_sweep(_oscillator(), [1.0, 2.5], steps=400, transient=400)
    fig = sweep.plot()
    assert len(fig.axes) == 3
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_naming_the_argument():
    net = fr.RateRNN.random(5, 1, 1, seed=0)
    with raises_naming("k"):
        lyapunov_spectrum(net, k=0)
    with raises_naming("k"):
        lyapunov_spectrum(net, k=6)
    with raises_naming("steps"):
        lyapunov_spectrum(net, steps=0)
    with raises_naming("steps"):
        lyapunov_spectrum(net, steps=2**31)
    with raises_naming("transient"):
        lyapunov_spectrum(net, steps=2**31 - 1, transient=1)
    with raises_naming("gain"):
        lyapunov_spectrum(net, gain=np.ones((2, 2)))
    with raises_naming("x0"):
        lyapunov_spectrum(net, gain=[1.0, 2.0], x0=np.zeros((3, 5)))
    with raises_naming("u_const"):
        lyapunov_spectrum(net, u_const=[1.0, 2.0])
    with raises_naming("per"):
        lyapunov_spectrum(net, per="second")
    with raises_naming("net"):
        lyapunov_spectrum(fr.LSTM.random(3, 1, 1))
    with raises_naming("net"):
        lyapunov_spectrum(fr.NMRNN.random(4, 1, 2, 1, 1))
    with raises_naming("gains"):
        gain_sweep(net, np.ones((2, 2)))
    with raises_naming("steps"):
        gain_sweep(net, [1.0], steps=1)
    with raises_naming("net"):
        gain_sweep(fr.NMRNN.random(4, 1, 2, 1, 1), [1.0])
