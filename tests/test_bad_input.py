"""Bad input: wrong shapes, dtypes, non-finite values, empty dimensions, odd memory layouts and
bad hyperparameters give a ValueError or TypeError that names the argument, never a crash."""

import subprocess
import sys
import textwrap
import warnings

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    assert_rounding_equal,
    raises_naming,
    run_model,
    small_models,
)
from flexrnn import _core
from hypothesis import given
from hypothesis import strategies as st

MODEL_NAMES = ("RateRNN", "LowRankRNN", "NMRNN", "LSTM")
INITIAL_STATES = {
    "RateRNN": ("x0",),
    "LowRankRNN": ("x0",),
    "NMRNN": ("x0", "z0"),
    "LSTM": ("h0", "c0"),
}
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=5).map(tuple)


def _net_and_input(name, T=4, B=3, dtype=np.float64):
    net = small_models(dtype)[name]
    u = np.random.default_rng(0).normal(size=(T, B, net.n_in))
    return net, u


# --- shapes of run() arguments --------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
@given(shape=shapes)
def test_u_of_any_wrong_shape_names_u(name, shape):
    net, _ = _net_and_input(name)
    u = np.zeros(shape)
    if len(shape) == 3 and shape[2] == net.n_in:
        out = run_model(net, u)
        assert all(v.shape[:2] == shape[:2] for v in out.values())
    else:
        with raises_naming("u", ValueError):
            net.run(u)


@pytest.mark.parametrize("name", MODEL_NAMES)
@given(shape=shapes, data=st.data())
def test_initial_state_of_wrong_shape_names_it(name, shape, data):
    net, u = _net_and_input(name)
    B = u.shape[1]
    argument = data.draw(st.sampled_from(INITIAL_STATES[name]))
    size = net.n_mod if argument == "z0" else net.n
    value = np.zeros(shape)
    if shape in ((size,), (B, size)):
        net.run(u, **{argument: value})
    else:
        with raises_naming(argument, ValueError):
            net.run(u, **{argument: value})


@pytest.mark.parametrize("name", ["RateRNN", "LowRankRNN"])
@given(shape=st.lists(st.integers(0, 4), max_size=3).map(tuple))
def test_gain_must_be_broadcastable_to_steps_by_trials(name, shape):
    net, u = _net_and_input(name)
    T, B = u.shape[:2]
    gain = np.full(shape, 0.5)
    try:
        np.broadcast_to(gain, (T, B))
    except ValueError:
        with raises_naming("gain", ValueError):
            net.run(u, gain=gain)
    else:
        x = net.run(u, gain=gain).x
        assert_rounding_equal(x, net.run(u, gain=np.broadcast_to(gain, (T, B)).copy()).x)


def _broadcasts_to(shape, target):
    try:
        return len(shape) <= len(target) and np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


@pytest.mark.parametrize("gain", ["neuron_gain", "pre_gain", "post_gain"])
@pytest.mark.parametrize("name", ["RateRNN", "LowRankRNN"])
@given(shape=shapes)
def test_per_neuron_gain_must_broadcast_to_steps_trials_neurons(name, gain, shape):
    # accepted: (n,) or any shape broadcastable to (T, B, n) = (4, 3, n)
    net, u = _net_and_input(name)
    if shape == (net.n,) or _broadcasts_to(shape, (4, 3, net.n)):
        net.run(u, **{gain: np.ones(shape)})
    else:
        with raises_naming(gain, ValueError):
            net.run(u, **{gain: np.ones(shape)})


@pytest.mark.parametrize("gain", ["neuron_gain", "pre_gain", "post_gain"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_per_neuron_gain_is_reported(gain, bad):
    net, u = _net_and_input("RateRNN")
    values = np.ones((4, 1, net.n))
    values[2, 0, 1] = bad
    with raises_naming(gain, ValueError):
        net.run(u, **{gain: values})
    with raises_naming(gain, ValueError):
        net.run(u, **{gain: values[2, 0]})


@pytest.mark.parametrize("name", MODEL_NAMES)
@given(data=st.data())
def test_parameter_of_wrong_size_is_reported(name, data):
    # sizes are read from some parameters (n from W, n_in from W_in, ...), so a wrong size is
    # reported on the first argument found inconsistent with them: a parameter or u
    net, u = _net_and_input(name)
    param = data.draw(st.sampled_from(sorted(net.params())))
    good = getattr(net, param).shape
    sizes = st.lists(st.integers(0, 4), min_size=len(good), max_size=len(good)).map(tuple)
    shape = data.draw(sizes.filter(lambda s: s != good))
    setattr(net, param, np.zeros(shape))
    with pytest.raises(ValueError) as info:
        net.run(u)
    names = set(net.params()) | {"u", "W"}
    assert any(f"{n}:" in str(info.value) for n in names), str(info.value)


# The size-defining parameter of each model (n is read from it) reassigned with the wrong
# number of dimensions, and parameters reassigned as nested lists.
def _parameter_cases():
    return [(name, param) for name in MODEL_NAMES for param in small_models()[name].params()]


@pytest.mark.parametrize("shape", [(), (3,), (2, 2, 2)], ids=["0d", "1d", "3d"])
@pytest.mark.parametrize("name, param", _parameter_cases())
def test_parameter_of_wrong_ndim_is_named(name, param, shape):
    net, u = _net_and_input(name)
    if getattr(net, param).shape == shape:
        pytest.skip("this shape happens to be the right one")
    setattr(net, param, np.zeros(shape))
    with raises_naming(param, ValueError):
        net.run(u)


@pytest.mark.parametrize("name, param", _parameter_cases())
def test_parameter_assigned_as_list_is_converted(name, param):
    net, u = _net_and_input(name)
    options = {
        "RateRNN": {"neuron_gain": np.linspace(0.5, 1.5, net.n), "noise_std": 0.1},
        "LowRankRNN": {"neuron_gain": np.linspace(0.5, 1.5, net.n), "noise_std": 0.1},
        "NMRNN": {"ablate": [0]},
        "LSTM": {},
    }[name]
    expected = run_model(net, u, **options)
    setattr(net, param, getattr(net, param).tolist())
    got = run_model(net, u, **options)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


# --- dtypes -----------------------------------------------------------------------------------

BAD_VALUES = {
    "complex": lambda shape: np.zeros(shape, dtype=complex),
    "object": lambda shape: np.zeros(shape, dtype=object),
    "string": lambda shape: np.full(shape, "0.5"),
    "datetime": lambda shape: np.zeros(shape, dtype="datetime64[s]"),
}


@pytest.mark.parametrize("kind", BAD_VALUES)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_non_real_arrays_raise_type_error_naming_the_argument(name, kind):
    net, u = _net_and_input(name)
    B = u.shape[1]
    bad = BAD_VALUES[kind]
    with raises_naming("u", TypeError):
        net.run(bad(u.shape))
    for argument in INITIAL_STATES[name]:
        size = net.n_mod if argument == "z0" else net.n
        with raises_naming(argument, TypeError):
            net.run(u, **{argument: bad((B, size))})
    if name in ("RateRNN", "LowRankRNN"):
        with raises_naming("gain", TypeError):
            net.run(u, gain=bad(u.shape[:2]))
        with raises_naming("neuron_gain", TypeError):
            net.run(u, neuron_gain=bad(net.n))
    for param, value in net.params().items():  # in the constructor
        values = {k: v for k, v in net.params().items()}
        values[param] = bad(value.shape)
        with raises_naming(param, TypeError):
            type(net)(**values, **net.hyperparameters())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_ragged_or_missing_input_raises_type_error(name):
    net, _ = _net_and_input(name)
    with raises_naming("u", TypeError):
        net.run([[[0.0] * net.n_in], [[0.0]]])
    with raises_naming("u", TypeError):
        net.run(None)


@pytest.mark.parametrize("dtype", ["int32", "float16", "complex64", "junk", object])
def test_model_dtype_must_be_float32_or_float64(dtype):
    with raises_naming("dtype", TypeError):
        fr.RateRNN.random(n=3, n_in=1, n_out=1, dtype=dtype)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_integer_and_bool_parameters_become_float64(name):
    net = small_models()[name]
    values = {k: np.round(v).astype(np.int64) for k, v in net.params().items()}
    converted = type(net)(**values, **net.hyperparameters())
    assert converted.dtype == np.float64
    assert all(v.dtype == np.float64 for v in converted.params().values())


# --- non-finite values ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_non_finite_parameter_is_named_at_run(name, dtype, bad):
    for param in small_models(dtype)[name].params():
        net, u = _net_and_input(name, dtype=dtype)
        getattr(net, param).flat[0] = bad  # edited in place after construction
        with raises_naming(param, ValueError):
            net.run(u)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_non_finite_run_arguments_are_named(name, bad):
    net, u = _net_and_input(name)
    B = u.shape[1]
    u_bad = u.copy()
    u_bad[-1, -1, -1] = bad
    with raises_naming("u", ValueError):
        net.run(u_bad)
    for argument in INITIAL_STATES[name]:
        size = net.n_mod if argument == "z0" else net.n
        value = np.zeros((B, size))
        value[1, 0] = bad
        with raises_naming(argument, ValueError):
            net.run(u, **{argument: value})
    if name in ("RateRNN", "LowRankRNN"):
        for argument, value in (
            ("gain", bad),
            ("gain", np.full(u.shape[:2], bad)),
            ("neuron_gain", np.full(net.n, bad)),
            ("noise_std", bad),
        ):
            with raises_naming(argument, ValueError):
                net.run(u, **{argument: value})
    if name == "NMRNN":
        with raises_naming("s_clamp", ValueError):
            net.run(u, s_clamp=np.full(net.rank, np.inf))
        net.run(u, s_clamp=np.full(net.rank, np.nan))  # NaN means "free": allowed


def test_huge_but_finite_parameters_are_accepted():
    # values whose sum overflows are still finite: only NaN and +-inf are rejected
    net, u = _net_and_input("RateRNN")
    net.b_out = np.full(net.n_out, 1e308)
    with np.errstate(over="ignore"):
        y = net.run(u).y
    assert np.all(y > 1e307) and np.isfinite(y).all()
    net.b_out[0] = -np.inf
    net.b_out[1] = np.inf  # the sum is NaN, not inf
    with raises_naming("b_out", ValueError), np.errstate(invalid="ignore"):
        net.run(u)


def test_validating_huge_finite_parameters_emits_no_warning():
    net, u = _net_and_input("RateRNN")
    net.b_out = np.full(net.n_out, 1e308)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # RuntimeWarning is how divergence is reported
        net.run(u)


# --- empty dimensions -------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("T, B", [(0, 3), (4, 0), (0, 0)])
def test_empty_steps_or_trials_give_empty_outputs_of_the_right_shape(name, T, B):
    net, _ = _net_and_input(name)
    out = run_model(net, np.zeros((T, B, net.n_in)))
    sizes = {
        "x": net.n,
        "r": net.n,
        "h": net.n,
        "c": net.n,
        "y": net.n_out,
        "z": getattr(net, "n_mod", None),
        "s": getattr(net, "rank", None),
    }
    for key, value in out.items():
        assert value.shape == (T, B, sizes[key]), key
        assert value.dtype == net.dtype


def test_empty_time_with_array_gain():
    net, _ = _net_and_input("RateRNN")
    assert net.run(np.zeros((0, 2, net.n_in)), gain=np.ones((0, 2))).x.shape == (0, 2, net.n)


@pytest.mark.parametrize("n_in, n_out", [(0, 2), (2, 0), (0, 0)])
def test_no_inputs_or_no_outputs_work(n_in, n_out):
    rng = np.random.default_rng(1)
    for net in (
        fr.RateRNN.random(n=5, n_in=n_in, n_out=n_out, seed=1),
        fr.LowRankRNN.random(n=5, rank=2, n_in=n_in, n_out=n_out, seed=1),
        fr.NMRNN.random(n=5, rank=2, n_mod=3, n_in=n_in, n_out=n_out, seed=1),
        fr.LSTM.random(n=5, n_in=n_in, n_out=n_out, seed=1),
    ):
        out = run_model(net, rng.normal(size=(6, 2, n_in)))
        assert out["y"].shape == (6, 2, n_out)
        assert all(np.isfinite(v).all() for v in out.values())


# --- memory layout ----------------------------------------------------------------------------


def _strided(a):
    """The same values as a non-contiguous view (every other element of a larger array)."""
    a = np.asarray(a)
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype) if a.ndim else a.copy()
    if a.ndim == 0:
        return big
    big[..., ::2] = a
    view = big[..., ::2]
    assert a.size < 2 or not view.flags.c_contiguous
    return view


@pytest.mark.parametrize("layout", ["fortran", "strided", "reversed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_non_contiguous_arrays_give_the_contiguous_result(name, dtype, layout):
    net, u = _net_and_input(name, T=5, B=4, dtype=dtype)
    u = u.astype(dtype)
    expected = run_model(net, u)
    relayout = {
        "fortran": np.asfortranarray,
        "strided": _strided,
        "reversed": lambda a: np.ascontiguousarray(a[::-1])[::-1] if a.ndim else a,
    }[layout]
    odd = net.copy()
    for param, value in net.params().items():
        setattr(odd, param, relayout(value.copy()))
    got = run_model(odd, relayout(u))
    for key in expected:
        assert_rounding_equal(got[key], expected[key])
    assert all(v.flags.c_contiguous for v in got.values())
    if name in ("RateRNN", "LowRankRNN"):  # per-run arrays too
        rng = np.random.default_rng(2)
        extras = {
            "x0": rng.normal(size=(u.shape[1], net.n)).astype(dtype),
            "gain": rng.uniform(0.5, 1.5, u.shape[:2]).astype(dtype),
            "neuron_gain": rng.uniform(0.5, 1.5, net.n).astype(dtype),
        }
        expected = net.run(u, **extras).x
        got = net.run(relayout(u), **{k: relayout(v) for k, v in extras.items()}).x
        assert_rounding_equal(got, expected)


def test_run_does_not_modify_its_arguments():
    net, u = _net_and_input("RateRNN")
    params = {k: v.copy() for k, v in net.params().items()}
    u_copy, x0 = u.copy(), np.ones((u.shape[1], net.n))
    net.run(u, x0=x0, noise_std=0.5)
    np.testing.assert_array_equal(u, u_copy)
    np.testing.assert_array_equal(x0, 1.0)
    for k, v in params.items():
        np.testing.assert_array_equal(getattr(net, k), v)


# --- hyperparameters and sizes ----------------------------------------------------------------

BAD_CONSTRUCTIONS = [
    ("tau", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, tau=0.0)),
    ("tau", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, tau=-2.0)),
    ("tau", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, tau=np.nan)),
    ("tau", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, tau="10")),
    ("dt", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, dt=0.0)),
    ("dt", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, tau=1.0, dt=2.0)),  # alpha > 1
    ("phi", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, phi="sigmoid")),
    ("phi", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, phi=None)),
    ("form", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, form="voltage")),
    ("readout", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, readout="both")),
    ("n", lambda: fr.RateRNN.random(n=0, n_in=1, n_out=1)),
    ("n", lambda: fr.RateRNN.random(n=2.0, n_in=1, n_out=1)),
    ("n_in", lambda: fr.RateRNN.random(n=3, n_in=-1, n_out=1)),
    ("n_out", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=-1)),
    ("g", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, g=-1.0)),
    ("p", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, p=0.0)),
    ("p", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, p=1.5)),
    ("seed", lambda: fr.RateRNN.random(n=3, n_in=1, n_out=1, seed=-1)),
    ("W", lambda: fr.RateRNN(W=np.zeros((3, 4)), W_in=np.zeros((3, 1)), W_out=np.zeros((1, 3)))),
    ("W", lambda: fr.RateRNN(W=np.zeros((0, 0)), W_in=np.zeros((0, 1)), W_out=np.zeros((1, 0)))),
    ("W_in", lambda: fr.RateRNN(W=np.eye(3), W_in=np.zeros((4, 1)), W_out=np.zeros((1, 3)))),
    ("W_out", lambda: fr.RateRNN(W=np.eye(3), W_in=np.zeros((3, 1)), W_out=np.zeros(3))),
    (
        "b",
        lambda: fr.RateRNN(
            W=np.eye(3), W_in=np.zeros((3, 1)), W_out=np.zeros((1, 3)), b=np.zeros(2)
        ),
    ),
    ("n", lambda: fr.LowRankRNN.random(n=0, rank=1, n_in=1, n_out=1)),
    ("rank", lambda: fr.LowRankRNN.random(n=3, rank=0, n_in=1, n_out=1)),
    ("phi", lambda: fr.LowRankRNN.random(n=3, rank=1, n_in=1, n_out=1, phi="tan")),
    (
        "V",
        lambda: fr.LowRankRNN(
            U=np.ones((3, 2)), V=np.ones((3, 1)), W_in=np.zeros((3, 0)), W_out=np.zeros((0, 3))
        ),
    ),
    ("n", lambda: fr.NMRNN.random(n=0, rank=1, n_mod=2, n_in=1, n_out=1)),
    ("rank", lambda: fr.NMRNN.random(n=3, rank=0, n_mod=2, n_in=1, n_out=1)),
    ("n_mod", lambda: fr.NMRNN.random(n=3, rank=1, n_mod=0, n_in=1, n_out=1)),
    ("n_scale", lambda: fr.NMRNN.random(n=3, rank=1, n_mod=2, n_in=1, n_out=1, n_scale=0.0)),
    ("n_scale", lambda: fr.NMRNN.random(n=3, rank=1, n_mod=2, n_in=1, n_out=1, n_scale="m")),
    ("tau_x", lambda: fr.NMRNN.random(n=3, rank=1, n_mod=2, n_in=1, n_out=1, tau_x=0.0)),
    ("tau_z", lambda: fr.NMRNN.random(n=3, rank=1, n_mod=2, n_in=1, n_out=1, tau_z=-1.0)),
    ("n", lambda: fr.LSTM.random(n=0, n_in=1, n_out=1)),
    ("W_hh", lambda: fr.LSTM(W_ih=np.zeros((8, 1)), W_hh=np.zeros((8, 4)), C=np.zeros((1, 4)))),
    ("W_ih", lambda: fr.LSTM(W_ih=np.zeros((7, 1)), W_hh=np.zeros((8, 2)), C=np.zeros((1, 2)))),
]


@pytest.mark.parametrize(
    "argument, construct",
    BAD_CONSTRUCTIONS,
    ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD_CONSTRUCTIONS)],
)
def test_bad_hyperparameters_and_sizes_are_named(argument, construct):
    with raises_naming(argument):
        construct()


@pytest.mark.parametrize("name", ["RateRNN", "LowRankRNN"])
def test_bad_noise_and_seed_are_named(name):
    net, u = _net_and_input(name)
    cases = [
        ("noise_std", {"noise_std": -0.1}),
        ("noise_std", {"noise_std": "0.1"}),
        ("noise_std", {"noise_std": np.ones(2)}),
        ("seed", {"seed": -1}),
        ("seed", {"seed": 2**64}),
        ("seed", {"seed": 1.5}),
        ("seed", {"seed": None}),
        ("gain", {"gain": True}),
        ("gain", {"gain": "1"}),
    ]
    for argument, kwargs in cases:
        with raises_naming(argument):
            net.run(u, **kwargs)
    net.run(u, noise_std=0.1, seed=2**64 - 1)  # the largest seed is fine
    net.run(u, noise_std=0.1, seed=np.uint64(2**63))


def test_bad_ablation_is_named():
    net, u = _net_and_input("NMRNN")
    for ablate, error in (
        (net.rank, ValueError),
        (-1, ValueError),
        (0.5, TypeError),
        ("0", TypeError),
        ([0, net.rank + 3], ValueError),
    ):
        with raises_naming("ablate", error):
            net.run(u, ablate=ablate)
    with raises_naming("s_clamp", ValueError):
        net.run(u, s_clamp=np.zeros(net.rank + 1))


CHANGED_HYPERPARAMETERS = [
    ("RateRNN", "tau", 0.0),
    ("RateRNN", "tau", -1.0),
    ("RateRNN", "dt", 20.0),  # alpha > 1
    ("RateRNN", "phi", "sigmoid"),
    ("RateRNN", "form", "voltage"),
    ("LowRankRNN", "readout", None),
    ("NMRNN", "tau_x", 0.0),
    ("NMRNN", "tau_z", np.nan),
    ("NMRNN", "n_scale", -1.0),
]


@pytest.mark.parametrize("name, attribute, value", CHANGED_HYPERPARAMETERS)
def test_changed_hyperparameter_is_checked_at_run(name, attribute, value):
    net, u = _net_and_input(name)
    setattr(net, attribute, value)
    with raises_naming(attribute, ValueError):
        net.run(u)


# --- the raw C++ functions ------------------------------------------------------------------


def _raw_rate_args(**changes):
    z = np.zeros
    args = dict(
        W=z((5, 5)),
        W_in=z((5, 2)),
        b=z(5),
        W_out=z((1, 5)),
        b_out=z(1),
        u=z((3, 2, 2)),
        x0=z((2, 5)),
        gain=None,
        gain_scalar=1.0,
        neuron_gain=None,
        alpha=0.1,
        phi="tanh",
        form="current",
        readout="rate",
        noise_std=0.0,
        seed=0,
    )
    args.update(changes)
    return args


def rate_rollout(*, W=None, U=None, V=None, W_in, b, W_out, b_out, u, x0, gain, gain_scalar,
                 neuron_gain, alpha, phi, form, readout, noise_std, seed):  # fmt: skip
    """The core's rate rollout from raw arrays, through its bound objects (a RateRNN's
    when W is given, else a LowRankRNN's)."""
    if W is not None:
        params = _core.RateRNNParams(W, W_in, b, W_out, b_out)
    else:
        params = _core.LowRankRNNParams(U, V, W_in, b, W_out, b_out)
    options = _core.RateOptions(alpha, phi, form, readout, noise_std, seed)
    drive = _core.RateDrive(u, x0, gain, gain_scalar, neuron_gain)
    return _core.rate_rollout(params, options, drive)


def nmrnn_rollout(*, W_z, B_z, b_z, A_z, c_z, U, V, B_x, C, d, W_zx, u, x0, z0, s_clamp,
                  alpha_x, alpha_z, n_scale):  # fmt: skip
    """The core's NM-RNN rollout from raw arrays, through its bound objects."""
    params = _core.NMRNNParams(W_z, B_z, b_z, A_z, c_z, U, V, B_x, C, d, W_zx)
    options = _core.NMRNNOptions(alpha_x, alpha_z, n_scale)
    return _core.nmrnn_rollout(params, options, _core.NMRNNDrive(u, x0, z0, s_clamp))


def lstm_rollout(*, W_ih, W_hh, b, C, d, u, h0, c0):
    """The core's LSTM rollout from raw arrays, through its bound objects."""
    return _core.lstm_rollout(_core.LSTMParams(W_ih, W_hh, b, C, d), _core.LSTMDrive(u, h0, c0))


def _raw_nmrnn_args(**changes):
    z = np.zeros
    n, rank, n_mod, n_in, n_out = 5, 2, 3, 2, 1
    args = dict(
        W_z=z((n_mod, n_mod)),
        B_z=z((n_mod, n_in)),
        b_z=z(n_mod),
        A_z=z((rank, n_mod)),
        c_z=z(rank),
        U=z((n, rank)),
        V=z((n, rank)),
        B_x=z((n, n_in)),
        C=z((n_out, n)),
        d=z(n_out),
        W_zx=None,
        u=z((3, 2, n_in)),
        x0=z((2, n)),
        z0=z((2, n_mod)),
        s_clamp=None,
        alpha_x=0.1,
        alpha_z=0.01,
        n_scale=1.0,
    )
    args.update(changes)
    return args


def _raw_lstm_args(**changes):
    z = np.zeros
    args = dict(
        W_ih=z((20, 2)),
        W_hh=z((20, 5)),
        b=z(20),
        C=z((1, 5)),
        d=z(1),
        u=z((3, 2, 2)),
        h0=z((2, 5)),
        c0=z((2, 5)),
    )
    args.update(changes)
    return args


z = np.zeros
RAW_CASES = [
    ("W", rate_rollout, _raw_rate_args(W=z((5, 4)))),
    ("W", rate_rollout, _raw_rate_args(W=z(5))),
    ("W_in", rate_rollout, _raw_rate_args(W_in=z((4, 2)))),
    ("W_in", rate_rollout, _raw_rate_args(W_in=z((5, 3)))),
    ("b", rate_rollout, _raw_rate_args(b=z(4))),
    ("W_out", rate_rollout, _raw_rate_args(W_out=z((1, 4)))),
    ("b_out", rate_rollout, _raw_rate_args(b_out=z(2))),
    ("u", rate_rollout, _raw_rate_args(u=z((3, 2)))),
    ("x0", rate_rollout, _raw_rate_args(x0=z((3, 5)))),
    ("x0", rate_rollout, _raw_rate_args(x0=z(5))),
    ("gain", rate_rollout, _raw_rate_args(gain=z((3, 1)))),
    ("neuron_gain", rate_rollout, _raw_rate_args(neuron_gain=z(4))),
    ("phi", rate_rollout, _raw_rate_args(phi="sigmoid")),
    ("form", rate_rollout, _raw_rate_args(form="voltage")),
    ("readout", rate_rollout, _raw_rate_args(readout="both")),
    (
        "V",
        rate_rollout,
        {**{k: v for k, v in _raw_rate_args().items() if k != "W"}, "U": z((5, 2)), "V": z((4, 2))},
    ),
    (
        "W_in",
        rate_rollout,
        {
            **{k: v for k, v in _raw_rate_args(W_in=z((4, 2))).items() if k != "W"},
            "U": z((5, 2)),
            "V": z((5, 2)),
        },
    ),
    ("W_z", nmrnn_rollout, _raw_nmrnn_args(W_z=z((3, 2)))),
    ("B_z", nmrnn_rollout, _raw_nmrnn_args(B_z=z((3, 3)))),
    ("A_z", nmrnn_rollout, _raw_nmrnn_args(A_z=z((3, 3)))),
    ("c_z", nmrnn_rollout, _raw_nmrnn_args(c_z=z(3))),
    ("V", nmrnn_rollout, _raw_nmrnn_args(V=z((5, 3)))),
    ("B_x", nmrnn_rollout, _raw_nmrnn_args(B_x=z((4, 2)))),
    ("C", nmrnn_rollout, _raw_nmrnn_args(C=z((1, 4)))),
    ("W_zx", nmrnn_rollout, _raw_nmrnn_args(W_zx=z((3, 4)))),
    ("z0", nmrnn_rollout, _raw_nmrnn_args(z0=z((2, 2)))),
    ("s_clamp", nmrnn_rollout, _raw_nmrnn_args(s_clamp=z(3))),
    ("n_scale", nmrnn_rollout, _raw_nmrnn_args(n_scale=0.0)),
    ("W_ih", lstm_rollout, _raw_lstm_args(W_ih=z((16, 2)))),
    ("W_hh", lstm_rollout, _raw_lstm_args(W_hh=z((20, 4)))),
    ("b", lstm_rollout, _raw_lstm_args(b=z(16))),
    ("h0", lstm_rollout, _raw_lstm_args(h0=z((2, 4)))),
    ("c0", lstm_rollout, _raw_lstm_args(c0=z((3, 5)))),
]


@pytest.mark.parametrize(
    "argument, function, kwargs",
    RAW_CASES,
    ids=[f"{f.__name__}-{a}-{i}" for i, (a, f, _) in enumerate(RAW_CASES)],
)
def test_raw_core_rejects_inconsistent_shapes(argument, function, kwargs):
    with raises_naming(argument, ValueError):
        function(**kwargs)


def test_raw_core_accepts_the_consistent_baseline():
    for function, kwargs in (
        (rate_rollout, _raw_rate_args()),
        (nmrnn_rollout, _raw_nmrnn_args()),
        (lstm_rollout, _raw_lstm_args()),
    ):
        outputs = function(**kwargs)
        assert all(o.shape[:2] == (3, 2) for o in outputs)


def test_raw_core_rejects_mixed_or_complex_dtypes_with_type_error():
    with pytest.raises(TypeError):
        rate_rollout(**_raw_rate_args(W=np.zeros((5, 5), dtype=complex)))
    with pytest.raises(TypeError):
        rate_rollout(**_raw_rate_args(seed=-1))


FUZZ_SCRIPT = textwrap.dedent("""
    import numpy as np
    from flexrnn import _core

    rng = np.random.default_rng({seed})

    def shape_of(shape):
        # mostly the consistent shape; otherwise a dimension dropped, added or changed
        r = rng.random()
        if r < 0.7:
            return shape
        if r < 0.8:
            return shape[:-1]
        if r < 0.9:
            return shape + (int(rng.integers(0, 3)),)
        s = list(shape)
        s[int(rng.integers(len(s)))] = int(rng.integers(0, 5))
        return tuple(s)

    counts = {{"ok": 0, "ValueError": 0, "TypeError": 0}}
    for i in range({iterations}):
        dtype = (np.float64, np.float32)[i % 2]
        T, B, n, n_in, n_out, rank, n_mod = (int(rng.integers(0, 5)) for _ in range(7))
        a = lambda *shape: rng.normal(size=shape_of(shape)).astype(dtype)
        maybe = lambda *shape: a(*shape) if rng.random() < 0.5 else None
        kind = i % 4
        if kind < 2:
            common = dict(W_in=a(n, n_in), b=a(n), W_out=a(n_out, n), b_out=a(n_out),
                          u=a(T, B, n_in), x0=a(B, n), gain=maybe(T, B), gain_scalar=1.0,
                          neuron_gain=maybe(n), alpha=0.1,
                          phi=str(rng.choice(["tanh", "relu", "softplus", "identity"])),
                          form=str(rng.choice(["current", "rate"])), readout="rate",
                          noise_std=float(rng.random() < 0.5), seed=int(rng.integers(0, 2**63)))
            def call(kind=kind, common=common):
                options = _core.RateOptions(common.pop("alpha"), common.pop("phi"),
                                            common.pop("form"), common.pop("readout"),
                                            common.pop("noise_std"), common.pop("seed"))
                drive = _core.RateDrive(*(common.pop(k) for k in
                                          ("u", "x0", "gain", "gain_scalar", "neuron_gain")))
                if kind == 0:
                    params = _core.RateRNNParams(a(n, n), *common.values())
                else:
                    params = _core.LowRankRNNParams(a(n, rank), a(n, rank), *common.values())
                return _core.rate_rollout(params, options, drive)
        elif kind == 2:
            call = lambda: _core.nmrnn_rollout(
                _core.NMRNNParams(a(n_mod, n_mod), a(n_mod, n_in), a(n_mod), a(rank, n_mod),
                                  a(rank), a(n, rank), a(n, rank), a(n, n_in), a(n_out, n),
                                  a(n_out), maybe(n_mod, n)),
                _core.NMRNNOptions(0.1, 0.05, 1.0),
                _core.NMRNNDrive(u=a(T, B, n_in), x0=a(B, n), z0=a(B, n_mod),
                                 s_clamp=maybe(rank)))
        else:
            call = lambda: _core.lstm_rollout(
                _core.LSTMParams(a(4 * n, n_in), a(4 * n, n), a(4 * n), a(n_out, n), a(n_out)),
                _core.LSTMDrive(u=a(T, B, n_in), h0=a(B, n), c0=a(B, n)))
        try:
            call()
            counts["ok"] += 1
        except (ValueError, TypeError) as err:
            counts[type(err).__name__] += 1
    print("FUZZ", counts)
""")


def test_raw_core_never_crashes_on_random_shapes():
    # in a subprocess, so that a segfault or abort fails this test instead of killing pytest
    script = FUZZ_SCRIPT.format(seed=1234, iterations=3000)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    summary = [line for line in result.stdout.splitlines() if line.startswith("FUZZ")]
    assert summary, result.stdout[-2000:]
    counts = eval(summary[-1][5:])  # noqa: S307 -- our own dict literal
    assert counts["ok"] > 50 and counts["ValueError"] > 50  # both paths were exercised


def test_bad_thread_count_is_named(restore_threads):
    with raises_naming("n", ValueError):
        fr.set_num_threads(0)
    with raises_naming("n", ValueError):
        fr.set_num_threads(-3)
    with raises_naming("n"):
        fr.set_num_threads(1.5)
    with raises_naming("n"):
        fr.set_num_threads(True)
