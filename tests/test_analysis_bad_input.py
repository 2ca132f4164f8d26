"""Bad input to the analysis functions: hypothesis-generated shapes and non-finite values give
a ValueError or TypeError naming the argument, never a crash of the process."""

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming, small_models
from flexrnn.analysis import fixed_points, gain_sweep, lyapunov_spectrum
from hypothesis import given, settings
from hypothesis import strategies as st

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
RATE = ("RateRNN", "LowRankRNN")


def _net(name):
    return small_models(np.float64)[name]


@pytest.mark.parametrize("name", RATE + ("NMRNN",))
@settings(max_examples=30)
@given(shape=shapes)
def test_u_const_of_a_wrong_shape_names_it(name, shape):
    net = _net(name)
    u = np.zeros(shape)
    if shape == (net.n_in,) or (shape == () and net.n_in == 1):
        fixed_points(net, u, n_init=2, iters=5, refine=False, slow_tol=1e30)
    else:
        with raises_naming("u_const"):
            fixed_points(net, u, n_init=2, iters=5)


@pytest.mark.parametrize("name", RATE + ("NMRNN",))
@settings(max_examples=30)
@given(shape=shapes, argument=st.sampled_from(["states", "x_init"]))
def test_states_of_a_wrong_shape_name_the_argument(name, shape, argument):
    net = _net(name)
    N = net.n + (net.n_mod if name == "NMRNN" else 0)
    value = np.zeros(shape)
    ok = (len(shape) == 2 and shape[1] == N and shape[0] >= 1) or (
        len(shape) == 3 and shape[2] == N and shape[0] * shape[1] >= 1
    )
    if ok:
        fixed_points(net, None, n_init=2, iters=5, refine=False, slow_tol=1e30,
                     **{argument: value})  # fmt: skip
    else:
        with raises_naming(argument):
            fixed_points(net, None, n_init=2, iters=5, **{argument: value})


@pytest.mark.parametrize("name", RATE)
@settings(max_examples=30)
@given(shape=shapes, data=st.data())
def test_lyapunov_arguments_of_a_wrong_shape_name_the_argument(name, shape, data):
    net = _net(name)
    argument = data.draw(st.sampled_from(["x0", "neuron_gain", "u_const"]))
    value = np.ones(shape)
    size = net.n_in if argument == "u_const" else net.n
    ok = shape == (size,) or (argument == "u_const" and shape == () and net.n_in == 1)
    if ok:
        assert lyapunov_spectrum(net, k=1, steps=3, transient=0, **{argument: value}).shape == (1,)
    else:
        with raises_naming(argument):
            lyapunov_spectrum(net, k=1, steps=3, transient=0, **{argument: value})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda net, v: fixed_points(net, [v] * net.n_in, n_init=2, iters=2), "u_const"),
        (lambda net, v: fixed_points(net, states=np.full((3, net.n), v), iters=2), "states"),
        (lambda net, v: lyapunov_spectrum(net, k=1, steps=2, gain=v), "gain"),
        (lambda net, v: lyapunov_spectrum(net, k=1, steps=2, x0=np.full(net.n, v)), "x0"),
        (lambda net, v: gain_sweep(net, [1.0, v], steps=4, transient=0), "gains"),
    ],
)
def test_non_finite_values_are_refused_naming_the_argument(bad, call, argument):
    net = _net("RateRNN")
    with raises_naming(argument):
        call(net, bad)


def test_empty_networks_and_wrong_models_are_refused():
    with raises_naming("net"):
        fixed_points(fr.LSTM.random(3, 1, 1))
    with raises_naming("net"):
        gain_sweep(fr.NMRNN.random(4, 1, 2, 1, 1), [1.0])
    with raises_naming("n_init"):
        fixed_points(_net("RateRNN"), n_init=0)
