"""Every ``plot()`` of flexrnn returns the matplotlib Figure, with or without given axes."""

import flexrnn as fr
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _two_unit_network():
    return fr.RateRNN(np.diag([2.0, 2.0]), np.zeros((2, 0)), np.zeros((0, 2)), tau=1.0, dt=0.1)


def _fixed_points():
    return fr.analysis.fixed_points(_two_unit_network(), n_init=10, init_noise=1.0)


def _line_attractor():
    W = np.zeros((3, 3))
    net = fr.RateRNN(W, np.ones((3, 1)), np.zeros((1, 3)), tau=1.0, dt=0.1, phi="identity")
    return fr.analysis.line_attractor(net, np.linspace(0, 1, 3), n_init=3)


def _gain_sweep():
    net = fr.RateRNN.random(n=20, n_in=0, n_out=0, seed=0)
    return fr.analysis.gain_sweep(net, [0.5, 2.0], steps=100, transient=100, lyapunov_steps=100)


def _history():
    net = fr.RateRNN.random(n=8, n_in=1, n_out=1, seed=0)
    task = fr.tasks.PerceptualDecision()
    return fr.train.bptt(net, task, iters=2, batch_size=2, progress=False)


PLOTTABLES = {
    "FixedPoints": (_fixed_points, 1),
    "LineAttractor": (_line_attractor, 1),
    "GainSweep": (_gain_sweep, 3),
    "History": (_history, 2),
}


@pytest.mark.parametrize("name", list(PLOTTABLES))
def test_plot_returns_the_figure_it_drew_in(name):
    make, n_axes = PLOTTABLES[name]
    result = make()
    fig = result.plot()
    assert isinstance(fig, Figure)
    assert len(fig.axes) >= n_axes
    plt.close(fig)
    # given axes: the figure that holds them
    given, axes = plt.subplots(1, n_axes, squeeze=False)
    axes = list(axes[0])
    fig = result.plot(ax=axes[0]) if n_axes == 1 else result.plot(axes=axes)
    assert fig is given
    plt.close(given)
