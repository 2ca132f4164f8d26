"""The NeuroMOP report's figures and sentences: every panel has axis labels, every map a
colour key, the beta panel starts at zero; numbers quoted are the ones the sentence is about.
Built from synthetic results (no training)."""

import importlib
import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
# the module (flexrnn.experiments exports a function of the same name)
report = importlib.import_module("flexrnn.experiments.neuromop_report")

SHAPES = ["square", "plus", "circle", "diamond", "oval", "heart"]


def _stat(mean, sem=0.0):
    return {"mean": mean, "sem": sem, "values": [mean]}


def _curve(n=5):
    return {"mean": list(np.linspace(10, 100, n)), "sem": [1.0] * n}


def _synthetic():
    rng = np.random.default_rng(0)
    occ = lambda bins: rng.dirichlet(np.ones(bins * bins)).reshape(bins, bins)  # noqa: E731
    results = {
        "energy": {a: {"curve": _curve()} for a in ("MOP", "R")},
        "box": {"MOP": {"curve": _curve()}, "R decaying eps": {"curve": _curve()}},
        "shapes": {"shapes": SHAPES, **{s: {"lifetime": _stat(600.0)} for s in SHAPES}},
        "beta_mu": {"beta": {b: {"jump_variability": _stat(0.0881 + 1e-5 * k, 2e-4)}
                             for k, b in enumerate(("0.0", "0.1", "0.3"))}},
        "cartpole": {"curve": _curve()},
    }  # fmt: skip
    bits = np.where(rng.random((200, 8)) < 0.5, -1.0, 1.0)
    extras = {
        "energy": {a: {"energy_trace": rng.random(200) * 0.1, "bits": bits} for a in ("MOP", "R")},
        "box": {"MOP": occ(20), "R decaying eps": occ(20)},
        "shapes": {s: occ(40) for s in SHAPES},
        "beta_mu": {"mu": {m: occ(40) for m in ("0.0", "0.1", "0.5")}},
    }
    return results, extras


@pytest.fixture
def drawn(tmp_path, monkeypatch):
    """The figures report.figures draws, by file name, kept open for inspection."""
    import matplotlib.pyplot as plt

    kept, close = {}, plt.close

    def keep(fig, path, **kwargs):
        kept[path.name] = fig
        path.write_bytes(b"png")

    monkeypatch.setattr(report, "atomic_savefig", keep)
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    results, extras = _synthetic()
    paths = report.figures(tmp_path, results, extras)
    yield kept, paths, tmp_path
    close("all")


def test_every_panel_has_axis_labels_and_every_map_a_colour_key(drawn):
    kept, paths, _ = drawn
    assert sorted(kept) == sorted(f"{k}.png" for k in paths) and len(kept) == 5
    for name, fig in kept.items():
        panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
        for ax in panels:
            has_image = bool(ax.images)
            assert ax.get_xlabel(), f"{name}: a panel without an x label"
            if ax.get_ylabel() == "":  # shared y axis in a row of maps: the first one says it
                assert has_image and panels[1].get_ylabel() == "" and ax is not panels[0]
        maps = [ax for ax in panels if ax.images]
        colour_keys = [a for a in fig.axes if a.get_label() == "<colorbar>"]
        assert not maps or colour_keys, f"{name}: maps without a colour key"
        for key in colour_keys:
            assert key.get_ylabel() or key.get_xlabel(), f"{name}: an unlabelled colour key"


def test_six_shapes_maps_have_axes_and_one_shared_colour_scale(drawn):
    fig = drawn[0]["mop_shapes.png"]
    maps = [a for a in fig.axes if a.images]
    assert len(maps) == 6
    assert {a.images[0].get_clim() for a in maps} == {maps[0].images[0].get_clim()}
    assert all(a.get_xlabel() == "x1" and len(a.get_xticks()) for a in maps)
    assert maps[0].get_ylabel() == "x2"


def test_beta_panel_starts_at_zero_so_a_null_effect_looks_flat(drawn):
    ax = drawn[0]["mop_beta_mu.png"].axes[0]
    low, high = ax.get_ylim()
    assert low == 0 and high >= 0.0881


def test_extras_are_saved_and_redraw_rewrites_the_report(drawn):
    _, _, folder = drawn
    results, extras = _synthetic()
    loaded = report.load_extras(folder)
    np.testing.assert_array_equal(loaded["beta_mu"]["mu"]["0.5"], extras["beta_mu"]["mu"]["0.5"])
    np.testing.assert_array_equal(loaded["energy"]["MOP"]["bits"], extras["energy"]["MOP"]["bits"])
    meta = {"networks": 3, "quick": False, "machine": "m", "threads": 2, "flexrnn": "0",
            "dtype": "float32", "seed": 0, "wall_s": 60.0}  # fmt: skip
    (folder / "neuromop.json").write_text(json.dumps({"meta": meta, "results": {
        "cartpole": {"curve": _curve(), "horizon": 1000, "epochs": 5, "gamma": 0.99,
                     "lifetime": _stat(1000.0), "entropy": _stat(0.6)}}}))  # fmt: skip
    paths = report.redraw(folder)
    assert list(paths) == ["mop_cartpole"]
    text = (folder / "neuromop.md").read_text()
    assert "## Cart-pole" in text and "figures/mop_cartpole.png" in text


def test_variability_sentence_quotes_each_measure_with_its_own_numbers():
    m = {"variability": _stat(0.176, 0.002), "jump_variability": _stat(0.0882, 0.001)}
    r = {"variability": _stat(0.175, 0.002), "jump_variability": _stat(0.0716, 0.001)}
    text = report._variability_sentence(m, r)
    assert (
        "<sigma> is the same within the standard errors as the R agent's (0.176 vs 0.175)" in text
    )
    assert "jump variability is larger (0.0882 vs 0.0716)" in text
    r["variability"] = _stat(0.2, 0.001)
    assert "<sigma> is smaller than the R agent's (0.176 vs 0.200)" in report._variability_sentence(
        m, r
    )


@pytest.mark.parametrize("fraction, text", [(-0.00033, "-0.033 %"), (0.12, "+12 %"),
                                            (-1e-7, "-0.000010 %"), (0.0, "0 %"),
                                            (0.0561, "+5.6 %")])  # fmt: skip
def test_percent_never_prints_minus_zero(fraction, text):
    assert report._percent(fraction) == text


def test_cli_redraw_trains_nothing_and_rewrites_figures_and_report(tmp_path):
    from flexrnn.cli import main

    folder = tmp_path / "reproductions"
    folder.mkdir()
    results, extras = _synthetic()
    results = {"shapes": results["shapes"]}
    results["shapes"].update(horizon=600, epochs=100)
    report.save_extras(folder, {"shapes": extras["shapes"]})
    meta = {"networks": 3, "quick": False, "machine": "m", "threads": 2, "flexrnn": "0",
            "dtype": "float32", "seed": 0, "wall_s": 60.0}  # fmt: skip
    (folder / "neuromop.json").write_text(json.dumps({"meta": meta, "results": results}))
    assert main(["reproduce", "neuromop", "--redraw", "--out", str(tmp_path)]) == 0
    assert (folder / "figures" / "mop_shapes.png").stat().st_size > 1000
    assert "![shapes](figures/mop_shapes.png)" in (folder / "neuromop.md").read_text()
