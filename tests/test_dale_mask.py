"""E/I networks (Dale's law) and connectivity masks: construction, checks, copies, files."""

from __future__ import annotations

import json
import zipfile

import flexrnn as fr
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


def _ei(n=60, **kw):
    return fr.RateRNN.random(n, 2, 1, g=1.5, p=0.1, zero_diag=True, dale=0.8, seed=3, **kw)


def test_dale_network_has_signed_columns_masked_zeros_and_balanced_rows():
    net = _ei(200)
    n_exc = 160
    assert net.cell_type.dtype == np.int8
    np.testing.assert_array_equal(net.cell_type, np.where(np.arange(200) < n_exc, 1, -1))
    assert (net.W[:, :n_exc] >= 0).all() and (net.W[:, n_exc:] <= 0).all()
    assert net.mask.dtype == bool and not net.mask.diagonal().any()
    assert (net.W[~net.mask] == 0).all()
    assert 0.07 < net.mask.mean() < 0.13
    # Rajan & Abbott's balance: rows with both E and I inputs sum to zero
    has_both = net.mask[:, :n_exc].any(1) & net.mask[:, n_exc:].any(1)
    np.testing.assert_allclose(net.W[has_both].sum(1), 0.0, atol=1e-12)


@pytest.mark.parametrize("g", [0.5, 1.5])
def test_balanced_dale_network_has_spectral_radius_near_g(g):
    net = fr.RateRNN.random(400, 1, 1, g=g, dale=0.8, seed=0)
    W, exc = net.W, net.cell_type > 0
    # the scaling stated in the docstring, against NumPy
    f = exc.mean()
    radius = np.sqrt(400 * (f * W[:, exc].var() + (1 - f) * W[:, ~exc].var()))
    np.testing.assert_allclose(radius, g, rtol=1e-12)
    assert abs(np.abs(np.linalg.eigvals(W)).max() / g - 1) < 0.15


def test_mask_comes_from_p_zero_diag_or_given_and_is_none_when_dense():
    assert fr.RateRNN.random(20, 1, 1, seed=0).mask is None
    assert fr.RateRNN.random(20, 1, 1, seed=0).cell_type is None
    diag = fr.RateRNN.random(20, 1, 1, zero_diag=True, seed=0).mask
    np.testing.assert_array_equal(diag, ~np.eye(20, dtype=bool))
    given = np.random.default_rng(1).random((20, 20)) < 0.5
    net = fr.RateRNN.random(20, 1, 1, mask=given, zero_diag=True, seed=0)
    np.testing.assert_array_equal(net.mask, given & ~np.eye(20, dtype=bool))
    assert (net.W[~net.mask] == 0).all() and (net.W[net.mask] != 0).all()


def test_random_without_structure_draws_the_same_weights_as_a_dense_draw_masked():
    dense = fr.RateRNN.random(30, 2, 1, p=1.0, seed=5)
    sparse = fr.RateRNN.random(30, 2, 1, p=1.0, zero_diag=True, seed=5)
    np.testing.assert_array_equal(sparse.W, dense.W * ~np.eye(30, dtype=bool))
    np.testing.assert_array_equal(sparse.W_in, dense.W_in)


def test_constructor_copies_structure_and_copy_keeps_it():
    mask = ~np.eye(5, dtype=bool)
    cell_type = np.array([1, 1, 1, -1, -1])
    W = np.abs(np.random.default_rng(0).standard_normal((5, 5))) * mask
    W[:, 3:] *= -1
    net = fr.RateRNN(W, np.zeros((5, 1)), np.zeros((1, 5)), mask=mask, cell_type=cell_type)
    mask[0, 1] = False
    cell_type[0] = -1
    assert net.mask[0, 1] and net.cell_type[0] == 1  # the model owns its copies
    for other in (net.copy(), net.astype("float32")):
        np.testing.assert_array_equal(other.mask, net.mask)
        np.testing.assert_array_equal(other.cell_type, net.cell_type)
        assert not np.shares_memory(other.mask, net.mask)


def test_structure_is_saved_and_loaded(tmp_path):
    net = _ei()
    net.save(tmp_path / "ei.npz")
    back = fr.load(tmp_path / "ei.npz")
    np.testing.assert_array_equal(back.mask, net.mask)
    np.testing.assert_array_equal(back.cell_type, net.cell_type)
    np.testing.assert_array_equal(back.W, net.W)
    dense = fr.RateRNN.random(6, 1, 1, seed=0)
    dense.save(tmp_path / "dense.npz")
    assert fr.load(tmp_path / "dense.npz").mask is None


def test_version_1_file_without_structure_still_loads(tmp_path):
    path = tmp_path / "old.npz"
    fr.RateRNN.random(6, 1, 1, seed=0).save(path)
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    meta = json.loads(np.load(path)["__meta__"].item())
    meta["format_version"] = 1
    del meta["structure"]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            if name != "__meta__.npy":
                z.writestr(name, data)
        with z.open("__meta__.npy", "w") as f:
            np.lib.format.write_array(f, np.array(json.dumps(meta)))
    assert fr.load(path).mask is None


def test_file_with_a_malformed_mask_names_it(tmp_path):
    net = _ei(8)
    path = tmp_path / "bad.npz"
    net.save(path)
    arrays = dict(np.load(path))
    arrays["mask"] = arrays["mask"].astype(np.float64)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="mask"):
        fr.load(path)


def test_cell_gains_builds_the_pre_and_post_gain_vectors():
    net = _ei(10)
    pre = net.cell_gains(E=1.2, I=0.8)
    np.testing.assert_array_equal(pre, np.where(net.cell_type > 0, 1.2, 0.8))
    assert pre.shape == (10,) and pre.dtype == net.dtype
    np.testing.assert_array_equal(net.cell_gains(E=1.2, I=0.8, site="post"), pre)
    # as a pre-synaptic gain it scales E columns by E and I columns by I
    scaled = net.W * pre[None, :]
    np.testing.assert_allclose(scaled[:, :8], 1.2 * net.W[:, :8])
    np.testing.assert_allclose(scaled[:, 8:], 0.8 * net.W[:, 8:])
    assert net.astype("float32").cell_gains(E=2.0).dtype == np.float32


def test_constrain_projects_w_onto_mask_and_signs_as_numpy_does():
    net = _ei(30)
    W = np.random.default_rng(2).standard_normal((30, 30))
    net.W[...] = W
    net._constrain()
    want = W * net.mask
    want[:, :24] = np.maximum(want[:, :24], 0)
    want[:, 24:] = np.minimum(want[:, 24:], 0)
    np.testing.assert_array_equal(net.W, want)
    grads = {"W": W.copy(), "b": np.ones(30)}
    net._mask_gradients(grads)
    np.testing.assert_array_equal(grads["W"], W * net.mask)
    np.testing.assert_array_equal(grads["b"], np.ones(30))


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"dale": 0.0}, ValueError, "dale"),
        ({"dale": 1.0}, ValueError, "dale"),
        ({"dale": 1.5}, ValueError, "dale"),
        ({"dale": float("nan")}, ValueError, "dale"),
        ({"dale": 0.99}, ValueError, "dale"),  # 10 neurons: no inhibitory one
        ({"mask": np.ones((10, 10))}, TypeError, "mask"),
        ({"mask": np.ones((10, 9), bool)}, ValueError, "mask"),
        ({"zero_diag": "yes"}, TypeError, "zero_diag"),
    ],
)
def test_random_rejects_bad_structure_naming_the_argument(kwargs, error, names):
    with pytest.raises(error, match=names):
        fr.RateRNN.random(10, 1, 1, seed=0, **kwargs)


def test_constructor_rejects_w_that_violates_the_structure():
    W = np.ones((3, 3))
    args = (np.zeros((3, 1)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"W: .*mask is False"):
        fr.RateRNN(W, *args, mask=~np.eye(3, dtype=bool))
    with pytest.raises(ValueError, match=r"W: .*inhibitory"):
        fr.RateRNN(W, *args, cell_type=[1, 1, -1])
    with pytest.raises(ValueError, match=r"W: .*excitatory"):
        fr.RateRNN(-W, *args, cell_type=[1, -1, -1])
    with pytest.raises(ValueError, match="cell_type"):
        fr.RateRNN(W, *args, cell_type=[1, 0, 1])
    with pytest.raises(ValueError, match="cell_type"):
        fr.RateRNN(W, *args, cell_type=[1, 1])
    with pytest.raises(TypeError, match="mask"):
        fr.RateRNN(W, *args, mask=np.ones((3, 3), int))


def test_cell_gains_rejects_negative_gains_and_networks_without_types():
    net = _ei(10)
    with pytest.raises(ValueError, match="E: a negative gain"):
        net.cell_gains(E=-1.0)
    with pytest.raises(ValueError, match="I"):
        net.cell_gains(I=float("inf"))
    with pytest.raises(ValueError, match="site"):
        net.cell_gains(site="soma")
    with pytest.raises(ValueError, match="no cell types"):
        fr.RateRNN.random(10, 1, 1).cell_gains(E=1.2)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 12),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(["float32", "float64"]),
    with_mask=st.booleans(),
)
def test_projection_matches_numpy_and_is_idempotent(n, seed, dtype, with_mask):
    rng = np.random.default_rng(seed)
    n_exc = int(rng.integers(1, n))
    mask = rng.random((n, n)) < 0.5 if with_mask else None
    net = fr.RateRNN.random(n, 1, 1, dale=n_exc / n, mask=mask, seed=seed, dtype=dtype)
    W = rng.standard_normal((n, n)).astype(dtype)
    net.W[...] = W
    net._constrain()
    want = W * (1 if mask is None else mask)
    want[:, :n_exc] = np.maximum(want[:, :n_exc], 0)
    want[:, n_exc:] = np.minimum(want[:, n_exc:], 0)
    np.testing.assert_array_equal(net.W, want)
    before = net.W.copy()
    net._constrain()
    np.testing.assert_array_equal(net.W, before)
