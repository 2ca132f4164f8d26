"""Shared test configuration: hypothesis profiles, tolerances, random models and strategies.

Profiles (select with ``HYPOTHESIS_PROFILE=...``):
- ``ci`` (default): modest example counts, no deadline (the first call of a kernel may
  be slow), no example database (each run draws fresh examples; a failure prints the
  blob that reproduces it);
- ``dev``: a handful of examples, for a quick edit-test loop;
- ``thorough``: many examples, for a long local run before a release.

Random models are drawn from a NumPy seed chosen by hypothesis (so a failing example is
reproducible from its printed seed), with weights scaled so that every network stays
bounded over the short horizons used here.
"""

from __future__ import annotations

import os

# One BLAS thread in tests: NumPy's SVDs and products here are small, and OpenBLAS's
# threads on a loaded 2-core machine made them 100x slower. (Before NumPy is imported.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import re  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import flexrnn as fr
import numpy as np
import pytest
from flexrnn import reference as ref
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=8, deadline=None, database=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# ---------------------------------------------------------------------------------------------
# Tolerances: the one place where C++-vs-reference agreement is stated per dtype. atol is
# relative to the largest magnitude of the expected array (at least 1), so that networks whose
# state grows (relu, identity) are compared relative to their own scale.

TOLERANCES = {
    np.dtype(np.float64): {"rtol": 1e-10, "atol": 1e-12},
    np.dtype(np.float32): {"rtol": 2e-4, "atol": 2e-5},
}
DTYPES = (np.float32, np.float64)
PHI_NAMES = ref.PHI_NAMES
FORMS = ("current", "rate")
READOUTS = ("rate", "state")


def assert_close(actual, expected, dtype=None, err_msg=""):
    """actual == expected within the tolerance of ``dtype`` (default: actual's dtype)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    tol = TOLERANCES[np.dtype(dtype or actual.dtype)]
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    assert actual.shape == expected.shape, f"{err_msg}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(
        actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale, err_msg=err_msg
    )


def assert_rounding_equal(actual, expected):
    """Equal up to a few ulps: for results that are the same arithmetic in exact terms."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    eps = np.finfo(actual.dtype).eps
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=8 * eps, atol=8 * eps * scale)


def assert_same_dtype_and_shape(arrays: dict, dtype, shapes: dict):
    for key, shape in shapes.items():
        assert arrays[key].dtype == np.dtype(dtype), f"{key}: dtype {arrays[key].dtype}"
        assert arrays[key].shape == shape, f"{key}: shape {arrays[key].shape} != {shape}"


@contextmanager
def raises_naming(name: str, exception=(ValueError, TypeError)):
    """pytest.raises for a ValueError/TypeError whose message names the argument ``name``
    (as a whole word, so that ``b`` is not found inside ``b_out``)."""
    with pytest.raises(exception) as info:
        yield info
    message = str(info.value)
    pattern = rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])"
    assert re.search(pattern, message), f"message does not name {name!r}: {message!r}"


@pytest.fixture
def restore_threads():
    """Give the test a free hand with set_num_threads; restore the count afterwards."""
    before = fr.get_num_threads()
    yield
    fr.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# Random models with bounded dynamics.


def random_rate_rnn(
    rng,
    n,
    n_in,
    n_out,
    *,
    g=0.6,
    tau=5.0,
    dt=1.0,
    phi="tanh",
    form="current",
    readout="rate",
    dtype=np.float64,
    x0_std=0.5,
):
    """RateRNN with W ~ N(0, g^2/n), W_in ~ N(0, 1/n_in), small biases, random x0."""
    return fr.RateRNN(
        W=rng.normal(0, g / np.sqrt(n), (n, n)),
        W_in=rng.normal(0, 1 / np.sqrt(max(n_in, 1)), (n, n_in)),
        W_out=rng.normal(0, 1 / np.sqrt(n), (n_out, n)),
        b=rng.normal(0, 0.1, n),
        b_out=rng.normal(0, 0.1, n_out),
        x0=rng.normal(0, x0_std, n),
        tau=tau,
        dt=dt,
        phi=phi,
        form=form,
        readout=readout,
        dtype=dtype,
    )


def random_low_rank_rnn(
    rng,
    n,
    rank,
    n_in,
    n_out,
    *,
    g=0.8,
    tau=5.0,
    dt=1.0,
    phi="tanh",
    readout="rate",
    dtype=np.float64,
):
    """LowRankRNN whose W = U V^T / n has spectral radius of order g (any n, rank)."""
    return fr.LowRankRNN(
        U=rng.normal(0, g / np.sqrt(rank), (n, rank)),
        V=rng.normal(0, 1, (n, rank)),
        W_in=rng.normal(0, 1 / np.sqrt(max(n_in, 1)), (n, n_in)),
        W_out=rng.normal(0, 1 / np.sqrt(n), (n_out, n)),
        b=rng.normal(0, 0.1, n),
        b_out=rng.normal(0, 0.1, n_out),
        x0=rng.normal(0, 0.5, n),
        tau=tau,
        dt=dt,
        phi=phi,
        readout=readout,
        dtype=dtype,
    )


def random_nmrnn(
    rng,
    n,
    rank,
    n_mod,
    n_in,
    n_out,
    *,
    n_scale=1.0,
    feedback=False,
    tau_x=5.0,
    tau_z=20.0,
    dtype=np.float64,
):
    """NMRNN with every parameter random (nonzero biases and initial states)."""
    u_std = 1 / np.sqrt(n) if n_scale == 1.0 else 1.0  # keeps U V^T / n_scale of order one
    return fr.NMRNN(
        W_z=rng.normal(0, 1 / np.sqrt(n_mod), (n_mod, n_mod)),
        B_z=rng.normal(0, 1 / np.sqrt(max(n_in, 1)), (n_mod, n_in)),
        A_z=rng.normal(0, 1 / np.sqrt(n_mod), (rank, n_mod)),
        U=rng.normal(0, u_std, (n, rank)),
        V=rng.normal(0, 1, (n, rank)),
        B_x=rng.normal(0, 1 / np.sqrt(max(n_in, 1)), (n, n_in)),
        C=rng.normal(0, 1 / np.sqrt(n), (n_out, n)),
        b_z=rng.normal(0, 0.2, n_mod),
        c_z=rng.normal(0, 0.2, rank),
        d=rng.normal(0, 0.1, n_out),
        x0=rng.normal(0, 0.3, n),
        z0=rng.normal(0, 0.3, n_mod),
        W_zx=rng.normal(0, 1 / np.sqrt(n), (n_mod, n)) if feedback else None,
        tau_x=tau_x,
        tau_z=tau_z,
        dt=1.0,
        n_scale=n_scale,
        dtype=dtype,
    )


def random_lstm(rng, n, n_in, n_out, *, dtype=np.float64):
    """LSTM with PyTorch-like weights and random initial hidden and cell states."""
    k = 1 / np.sqrt(n)
    return fr.LSTM(
        W_ih=rng.uniform(-k, k, (4 * n, n_in)),
        W_hh=rng.uniform(-k, k, (4 * n, n)),
        C=rng.uniform(-k, k, (n_out, n)),
        b=rng.uniform(-k, k, 4 * n),
        d=rng.normal(0, 0.1, n_out),
        h0=rng.uniform(-0.5, 0.5, n),
        c0=rng.uniform(-0.5, 0.5, n),
        dtype=dtype,
    )


def reference_rate_rnn(net, u, x0=None, **kwargs):
    """flexrnn.reference.rate_rnn on a RateRNN's (checked, cast) parameters."""
    u = np.asarray(u, dtype=net.dtype)
    return ref.rate_rnn(
        u,
        net.W,
        net.W_in,
        net.b,
        net.W_out,
        net.b_out,
        net.x0 if x0 is None else np.asarray(x0, net.dtype),
        alpha=net.alpha,
        phi=net.phi,
        form=net.form,
        readout=net.readout,
        **kwargs,
    )


def reference_low_rank_rnn(net, u, x0=None, **kwargs):
    u = np.asarray(u, dtype=net.dtype)
    return ref.low_rank_rnn(
        u,
        net.U,
        net.V,
        net.W_in,
        net.b,
        net.W_out,
        net.b_out,
        net.x0 if x0 is None else np.asarray(x0, net.dtype),
        alpha=net.alpha,
        phi=net.phi,
        readout=net.readout,
        **kwargs,
    )


def reference_nmrnn(net, u, x0=None, z0=None, s_clamp=None):
    u = np.asarray(u, dtype=net.dtype)
    return ref.nmrnn(
        u,
        net.W_z,
        net.B_z,
        net.b_z,
        net.A_z,
        net.c_z,
        net.U,
        net.V,
        net.B_x,
        net.C,
        net.d,
        net.x0 if x0 is None else np.asarray(x0, net.dtype),
        net.z0 if z0 is None else np.asarray(z0, net.dtype),
        alpha_x=net.alpha_x,
        alpha_z=net.alpha_z,
        n_scale=net.n_scale,
        W_zx=net.W_zx,
        s_clamp=s_clamp,
    )


def reference_lstm(net, u, h0=None, c0=None):
    u = np.asarray(u, dtype=net.dtype)
    return ref.lstm(
        u,
        net.W_ih,
        net.W_hh,
        net.b,
        net.C,
        net.d,
        net.h0 if h0 is None else np.asarray(h0, net.dtype),
        net.c0 if c0 is None else np.asarray(c0, net.dtype),
    )


def small_models(dtype=np.float64, seed=0):
    """One small instance of every model, keyed by class name (NMRNN with feedback)."""
    rng = np.random.default_rng(seed)
    return {
        "RateRNN": random_rate_rnn(rng, 6, 2, 2, dtype=dtype),
        "LowRankRNN": random_low_rank_rnn(rng, 6, 2, 2, 2, dtype=dtype),
        "NMRNN": random_nmrnn(rng, 6, 2, 3, 2, 2, feedback=True, dtype=dtype),
        "LSTM": random_lstm(rng, 5, 2, 2, dtype=dtype),
    }


def run_model(net, u, **kwargs):
    """net.run(u) as a dict of its output arrays, whatever the model."""
    out = net.run(u, **kwargs)
    return dict(vars(out))


# ---------------------------------------------------------------------------------------------
# Hypothesis strategies.

seeds = st.integers(min_value=0, max_value=2**64 - 1)
numpy_seeds = st.integers(min_value=0, max_value=2**32 - 1)
dtypes = st.sampled_from(DTYPES)
phis = st.sampled_from(PHI_NAMES)
forms = st.sampled_from(FORMS)
readouts = st.sampled_from(READOUTS)
steps = st.integers(1, 30)
batches = st.integers(1, 12)
sizes = st.integers(1, 40)
input_sizes = st.integers(0, 5)
output_sizes = st.integers(0, 3)
ranks = st.integers(1, 4)
modulator_sizes = st.integers(1, 6)
taus = st.floats(1.0, 20.0)


@st.composite
def gain_options(draw, T: int, B: int, rng) -> dict:
    """How the recurrent gain is given: default, scalar, (T, B), (T, 1), (1, B), plus an
    optional per-neuron gain (set by the caller, which knows n)."""
    mode = draw(st.sampled_from(["default", "scalar", "TB", "T1", "1B"]))
    if mode == "default":
        return {}
    if mode == "scalar":
        return {"gain": float(rng.uniform(0.0, 1.25))}
    shape = {"TB": (T, B), "T1": (T, 1), "1B": (1, B)}[mode]
    return {"gain": rng.uniform(0.0, 1.25, shape)}


@st.composite
def noise_options(draw, rng) -> dict:
    if not draw(st.booleans()):
        return {}
    return {"noise_std": float(rng.uniform(0.0, 0.3)), "seed": draw(seeds)}


@st.composite
def initial_state(draw, rng, B: int, n: int, std: float = 0.5) -> np.ndarray | None:
    """None (the model's own), (n,) shared by every trial, or (B, n)."""
    mode = draw(st.sampled_from(["model", "shared", "per_trial"]))
    if mode == "model":
        return None
    return rng.normal(0, std, n if mode == "shared" else (B, n))


# ---------------------------------------------------------------------------------------------
# Finite differences: every entry of every parameter, central differences of the C++ loss.

FD_STEP = 1e-6
FD_RTOL, FD_ATOL = 1e-5, 1e-7  # atol times max(1, |loss|, largest gradient entry)


def check_finite_differences(net, trials, step=FD_STEP, rtol=FD_RTOL, atol=FD_ATOL, **kwargs):
    """Every entry of every parameter: C++ gradient == central differences of the C++ loss."""
    from flexrnn.train import loss_and_grad

    value, grads = loss_and_grad(net, trials, **kwargs)
    scale = max(1.0, abs(value), *(float(np.abs(g).max()) for g in grads.values() if g.size))
    for name, param in net.params().items():
        fd = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + step
            up = loss_and_grad(net, trials, **kwargs)[0]
            param[index] = saved - step
            down = loss_and_grad(net, trials, **kwargs)[0]
            param[index] = saved
            fd[index] = (up - down) / (2 * step)
        np.testing.assert_allclose(
            grads[name], fd, rtol=rtol, atol=atol * scale, err_msg=f"gradient of {name}"
        )
