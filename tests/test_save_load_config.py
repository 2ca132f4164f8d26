"""Model files (save/load, format versions), build configuration, threads, divergence warnings."""

import json
import warnings
from pathlib import Path

import flexrnn as fr
import numpy as np
import pytest
from conftest import DTYPES, raises_naming, random_nmrnn, run_model, small_models

MODEL_NAMES = ("RateRNN", "LowRankRNN", "NMRNN", "LSTM")


def _models_for_files(dtype):
    """Every model, with non-default hyperparameters, plus an NMRNN without feedback."""
    models = small_models(dtype, seed=3)
    rng = np.random.default_rng(4)
    models["RateRNN"] = fr.RateRNN(
        **models["RateRNN"].params(),
        tau=7.0,
        dt=0.5,
        phi="softplus",
        form="rate",
        readout="state",
        dtype=dtype,
    )
    models["NMRNN-no-feedback"] = random_nmrnn(
        rng, 7, 2, 3, 1, 1, n_scale=7.0, tau_x=4.0, tau_z=30.0, dtype=dtype
    )
    return models


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*MODEL_NAMES, "NMRNN-no-feedback"])
def test_save_load_round_trip_is_exact(name, dtype, tmp_path):
    net = _models_for_files(dtype)[name]
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = fr.load(path)
    assert type(loaded) is type(net)
    assert loaded.dtype == net.dtype == np.dtype(dtype)
    assert loaded.hyperparameters() == net.hyperparameters()
    assert loaded.params().keys() == net.params().keys()
    for key, value in net.params().items():
        assert loaded.params()[key].dtype == value.dtype, key
        np.testing.assert_array_equal(loaded.params()[key], value, err_msg=key)
    if name == "NMRNN-no-feedback":
        assert loaded.W_zx is None
    u = np.random.default_rng(0).normal(size=(6, 3, net.n_in))
    before, after = run_model(net, u), run_model(loaded, u)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], rtol=0, atol=0, err_msg=key)


def test_save_accepts_str_and_path(tmp_path):
    net = small_models()["LowRankRNN"]
    net.save(str(tmp_path / "a.npz"))
    net.save(Path(tmp_path / "b.npz"))
    for file in ("a.npz", "b.npz"):
        np.testing.assert_array_equal(fr.load(tmp_path / file).U, net.U)
        np.testing.assert_array_equal(fr.load(str(tmp_path / file)).U, net.U)


def _rewrite_meta(path, **changes):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["__meta__"]))
    meta.update(changes)
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return meta


def test_file_from_newer_format_version_raises(tmp_path):
    path = tmp_path / "model.npz"
    small_models()["RateRNN"].save(path)
    meta = _rewrite_meta(path)
    assert meta["format"] == "flexrnn-model" and meta["format_version"] == fr.models.FORMAT_VERSION
    assert meta["model"] == "RateRNN" and meta["flexrnn_version"] == fr.__version__
    fr.load(path)  # the current version loads
    _rewrite_meta(path, format_version=meta["format_version"] + 1)
    with pytest.raises(ValueError, match="format version"):
        fr.load(path)


@pytest.mark.parametrize("change", [{"format": "something-else"}, {"model": "Transformer"}])
def test_foreign_or_unknown_model_file_raises(change, tmp_path):
    path = tmp_path / "model.npz"
    small_models()["LSTM"].save(path)
    _rewrite_meta(path, **change)
    with raises_naming("path", ValueError):
        fr.load(path)


def test_npz_without_metadata_raises(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, W=np.eye(3))
    with raises_naming("path", ValueError):
        fr.load(path)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_astype_converts_every_parameter_and_copy_is_independent(name):
    net = small_models()[name]
    net32 = net.astype(np.float32)
    assert net32.dtype == np.float32
    assert all(v.dtype == np.float32 for v in net32.params().values())
    assert net32.hyperparameters() == net.hyperparameters()
    clone = net.copy()
    first = next(iter(clone.params()))
    getattr(clone, first).flat[0] += 1.0
    assert getattr(clone, first).flat[0] != getattr(net, first).flat[0]


def test_config_reports_the_build():
    info = fr.config()
    assert {"version", "openmp", "cuda", "simd", "threads"} <= info.keys()
    assert info["version"] == fr.__version__
    assert isinstance(info["openmp"], bool) and isinstance(info["cuda"], bool)
    assert isinstance(info["simd"], str)
    assert info["threads"] == fr.get_num_threads() >= 1


def test_set_num_threads_round_trips(restore_threads):
    for threads in (1, 3, 2):
        fr.set_num_threads(threads)
        expected = threads if fr.config()["openmp"] else 1
        assert fr.get_num_threads() == expected
    with raises_naming("n", ValueError):
        fr.set_num_threads(0)


def test_set_num_threads_accepts_numpy_integers(restore_threads):
    fr.set_num_threads(np.int64(1))
    assert fr.get_num_threads() == 1
    fr.set_num_threads(np.uint8(2))
    assert fr.get_num_threads() == (2 if fr.config()["openmp"] else 1)


def _diverging_network(phi="relu"):
    n = 20
    W = np.full((n, n), 3.0 / n) + np.eye(n)  # all-positive: relu never cuts it
    return fr.RateRNN(
        W=W, W_in=np.zeros((n, 0)), W_out=np.ones((1, n)), x0=np.ones(n), tau=2.0, phi=phi
    )


def test_divergence_emits_runtime_warning_naming_the_step():
    net = _diverging_network()
    with pytest.warns(RuntimeWarning, match="non-finite at step") as record:
        out = net.run(np.zeros((600, 2, 0)), gain=10.0)
    assert not np.isfinite(out.x[-1]).all()
    step = int(str(record[0].message).split("step ")[1].split()[0])
    assert np.isfinite(out.x[step - 1]).all() and not np.isfinite(out.x[step]).all()


def test_bounded_run_emits_no_warning():
    net = _diverging_network(phi="tanh")  # tanh saturates: large but finite
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = net.run(np.zeros((600, 2, 0)), gain=10.0)
    assert np.isfinite(out.x).all()
