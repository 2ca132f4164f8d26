"""A run warns when its state explodes (finite but huge), not only when it turns non-finite."""

import warnings

import flexrnn as fr
import numpy as np
import pytest
from flexrnn.models import EXPLOSION_THRESHOLD


def _growing_relu_network(n=10, dtype="float64"):
    W = np.full((n, n), 2.0 / n)  # all-positive, spectral radius 2: relu grows without bound
    return fr.RateRNN(W=W, W_in=np.zeros((n, 0)), W_out=np.ones((1, n)), x0=np.ones(n),
                      tau=1.0, dt=1.0, phi="relu", dtype=dtype)  # fmt: skip


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exploding_finite_state_warns_with_the_first_step_over_the_threshold(dtype):
    net = _growing_relu_network(dtype=dtype)
    steps = 100 if dtype == "float64" else 60  # 2^100 ~ 1e30: finite in both dtypes
    with pytest.warns(RuntimeWarning, match="magnitude exceeded 1e\\+06 at step") as record:
        out = net.run(np.zeros((steps, 2, 0), dtype))
    assert np.isfinite(out.x).all() and np.abs(out.x[-1]).max() > EXPLOSION_THRESHOLD
    step = int(str(record[0].message).split("at step ")[1].split()[0])
    assert np.abs(out.x[step]).max() > EXPLOSION_THRESHOLD
    assert np.abs(out.x[step - 1]).max() <= EXPLOSION_THRESHOLD
    assert len(record) == 1


def test_large_but_bounded_state_does_not_warn():
    net = _growing_relu_network()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = net.run(np.zeros((15, 2, 0)))  # 2^15 ~ 3e4: large, under the threshold
    assert np.abs(out.x[-1]).max() > 1e4


def test_non_finite_state_gives_only_the_non_finite_warning():
    net = _growing_relu_network()
    with pytest.warns(RuntimeWarning) as record:
        net.run(np.zeros((1200, 1, 0)))  # 2^1200 overflows float64
    assert [str(w.message) for w in record if "non-finite" in str(w.message)]
    assert not [w for w in record if "magnitude" in str(w.message)]
