"""`flexrnn reproduce learning` end to end, in its quick (smoke-test) mode, on its cheapest
part, and the sum-of-sinusoids target of the FORCE demonstration."""

import json

import numpy as np
from conftest import raises_naming
from flexrnn.cli import main
from flexrnn.experiments import learning_report
from flexrnn.experiments.learning import sum_of_sinusoids


def test_quick_learning_report_writes_markdown_json_and_figures(tmp_path):
    main(["reproduce", "learning", "--quick", "--no-progress", "--out", str(tmp_path),
          "--only", "full_force"])  # fmt: skip
    report = (tmp_path / "learning.md").read_text()
    data = json.loads((tmp_path / "learning.json").read_text())
    assert set(data["results"]) == {"full_force_pd", "full_force_ci"}
    assert data["meta"]["quick"] is True
    for r in data["results"].values():
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["trials"] == 50
    figures = [line for line in report.splitlines() if line.startswith("![")]
    assert figures
    for line in figures:
        assert (tmp_path / line.split("](")[1].rstrip(")")).is_file()


def test_sum_of_sinusoids_is_periodic_with_the_stated_variance():
    f = sum_of_sinusoids(1200)  # one period of 1200 steps
    g = sum_of_sinusoids(2400)  # the same period, sampled twice as finely
    np.testing.assert_allclose(f, g[::2], atol=1e-12)
    # repeating f is seamless: the wrap-around step is no larger than the steps inside
    assert abs(f[0] - f[-1]) <= 1.01 * np.abs(np.diff(f)).max()
    # four orthogonal sinusoids: variance = sum of squared amplitudes / 2
    amps = np.array([1, 0.5, 1 / 6, 1 / 3]) * 1.3 / 1.5
    assert abs(f.var() - (amps**2).sum() / 2) < 1e-12


def test_unknown_part_is_named():
    with raises_naming("only"):
        learning_report(out="unused", only=["nope"], progress=False)
