"""`flexrnn reproduce analysis` end to end, in its quick (smoke-test) mode."""

import json

from conftest import raises_naming
from flexrnn.cli import main
from flexrnn.experiments import analysis_report


def test_quick_analysis_report_writes_markdown_json_and_figures(tmp_path):
    main(["reproduce", "analysis", "--quick", "--no-progress", "--out", str(tmp_path),
          "--only", "lyapunov", "transition"])  # fmt: skip
    report = (tmp_path / "analysis.md").read_text()
    data = json.loads((tmp_path / "analysis.json").read_text())
    assert set(data["results"]) == {"lyapunov", "transition"}
    lyap = data["results"]["lyapunov"]
    assert lyap["gains"] == [0.5, 2.0, 3.0]
    # g = 0.5 contracts to the origin: exponent g - 1 = -0.5 per tau up to finite-n spread
    assert -0.6 < lyap["exponent_mean"][0] < -0.4
    assert lyap["linear"]["max_abs_error_per_step"] < 1e-2
    tr = data["results"]["transition"]
    assert tr["labels"][0] == "fixed point" and tr["labels"][-1] == "chaos"
    assert tr["changes"], "a sweep from 0.5 to 3 crosses at least one bifurcation"
    images = [line for line in report.splitlines() if line.startswith("![")]
    assert images
    for line in images:
        assert (tmp_path / line.split("](")[1].rstrip(")")).is_file()


def test_unknown_part_is_named():
    with raises_naming("only"):
        analysis_report(out="unused", only=["nope"], progress=False)
