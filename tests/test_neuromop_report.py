"""`flexrnn reproduce neuromop` end to end, in its quick (smoke-test) mode."""

import json

from conftest import raises_naming
from flexrnn.cli import main
from flexrnn.experiments import neuromop_report


def test_quick_neuromop_report_writes_markdown_json_and_figures(tmp_path):
    main(["reproduce", "neuromop", "--quick", "--no-progress", "--out", str(tmp_path),
          "--only", "calibration", "energy", "cartpole"])  # fmt: skip
    folder = tmp_path / "reproductions"
    report = (folder / "neuromop.md").read_text()
    data = json.loads((folder / "neuromop.json").read_text())
    assert set(data["results"]) == {"calibration", "energy", "cartpole"}
    cal = data["results"]["calibration"]
    # the spec's calibration: the free network crosses L, all -1 silences it, random actions
    # cross it
    assert cal["free"]["first_crossing"] is not None
    assert cal["all_minus"]["first_crossing"] is None
    assert cal["random_actions"]["fraction_crossing"] > 0.5
    energy = data["results"]["energy"]
    for agent in ("MOP", "R"):
        assert len(energy[agent]["curve"]["mean"]) == energy["epochs"]
        assert 0 < energy[agent]["eval"]["lifetime"]["mean"] <= energy["horizon"]
    # the MOP policy keeps most of the 5.55 nats of 256 actions; the R agent's is peaked
    assert energy["MOP"]["eval"]["entropy"]["mean"] > energy["R"]["eval"]["entropy"]["mean"]
    assert "This run used 2 networks" in report
    images = [line for line in report.splitlines() if line.startswith("![")]
    assert len(images) == 2
    for line in images:
        assert (folder / line.split("](")[1].rstrip(")")).is_file()


def test_unknown_part_is_named():
    with raises_naming("only"):
        neuromop_report(out="unused", only=["nope"], progress=False)
