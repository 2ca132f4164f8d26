"""The command's misuse ends in one line naming the argument (status 2, no traceback), and
`flexrnn reproduce` writes into a new folder unless told --out."""

import os
import re
import subprocess
import sys
from pathlib import Path

import flexrnn
import pytest
from flexrnn import cli
from flexrnn.experiments import (
    analysis_report,
    learning_report,
    neuromop_report,
    training_report,
)
from flexrnn.experiments.gain import gain_report
from flexrnn.experiments.learning_rules_report import learning_rules_report
from flexrnn.experiments.nmrnn import nmrnn_report


def _flexrnn(*args, cwd):
    # run from another folder: the package must be found where this process found it
    path = os.pathsep.join(
        [str(Path(flexrnn.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    )
    return subprocess.run([sys.executable, "-m", "flexrnn", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": path})  # fmt: skip


MISUSE = [
    (["reproduce", "neuromop", "--only", "energy", "bogus"],
     "flexrnn reproduce: error: --only: neuromop has no part 'bogus'; its parts: calibration"),
    (["reproduce", "neuromop", "--networks", "0"], "--networks: expected a number >= 1, got 0"),
    (["reproduce", "training", "--workers", "2"], "--workers: training runs one network"),
    (["reproduce", "learning", "--redraw", "--out", "x"], "--redraw: only for neuromop"),
    (["reproduce", "neuromop", "--redraw"], "--redraw: only for neuromop, with the --out"),
    (["reproduce", "nmrnn", "--only", "mwg", "bogus"],
     "flexrnn reproduce: error: --only: nmrnn has no part 'bogus'; its parts: mwg"),
    (["reproduce", "nmrnn", "--redraw", "--out", "x"], "--redraw: only for neuromop"),
    (["reproduce", "neuromop", "--redraw", "--out", "."], "error: [Errno 2] No such file"),
    (["demo", "--n", "-3"], "argument --n: expected a number >= 1, got -3"),
    (["demo", "--steps", "many"], "argument --steps: expected a whole number, got 'many'"),
    (["sweep"], "flexrnn sweep: error: give SPEC.toml (or --status DIR)"),
    (["sweep", "missing.toml"], "flexrnn sweep: error: spec: cannot read missing.toml"),
    (["sweep", "--retries", "-1", "x.toml"], "--retries: expected a number >= 0, got -1"),
]  # fmt: skip


@pytest.mark.parametrize("args, message", MISUSE, ids=[" ".join(a) for a, _ in MISUSE])
def test_misuse_prints_one_line_naming_the_argument(args, message, tmp_path):
    run = _flexrnn(*args, cwd=tmp_path)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing written


@pytest.mark.parametrize(
    "study, report",
    [("training", training_report), ("learning", learning_report),
     ("analysis", analysis_report), ("neuromop", neuromop_report), ("nmrnn", nmrnn_report),
     ("learning-rules", learning_rules_report), ("gain", gain_report)],
)  # fmt: skip
def test_only_choices_are_the_parts_each_study_accepts(study, report, tmp_path):
    with pytest.raises(ValueError) as info:
        report(out=tmp_path, only=["no_such_part"], progress=False)
    accepted = re.findall(r"'(\w+)'", str(info.value).split("choose from")[1])
    assert tuple(accepted) == cli.STUDY_PARTS[study]


@pytest.mark.parametrize(
    "report",
    [training_report, learning_report, analysis_report, neuromop_report, nmrnn_report,
     learning_rules_report],
)  # fmt: skip
def test_report_functions_have_no_default_folder(report, tmp_path, monkeypatch):
    # called directly, a report never writes into ./docs (or anywhere) unless told where
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match="'out'"):
        report(only=["no_such_part"], progress=False)
    assert list(tmp_path.iterdir()) == []


def test_reproduce_writes_into_a_new_folder_by_default(tmp_path):
    (tmp_path / "docs").mkdir()
    args = ["reproduce", "analysis", "--only", "lyapunov", "--quick", "--no-progress",
            "--scheduler", "serial"]  # fmt: skip
    first = _flexrnn(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = _flexrnn(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    folders = sorted(p.name for p in tmp_path.iterdir() if p.name != "docs")
    assert len(folders) == 2 and all(f.startswith("flexrnn-reproduce-analysis-") for f in folders)
    for folder in folders:
        assert (tmp_path / folder / "analysis.md").is_file()
        assert f"report written under {folder}/" in (first.stdout + second.stdout)
    assert list((tmp_path / "docs").iterdir()) == []


def test_bench_unknown_section_is_one_line_naming_the_known_ones():
    repo = Path(__file__).resolve().parents[1]
    path = os.pathsep.join(
        [str(Path(flexrnn.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    )
    run = subprocess.run([sys.executable, "-m", "bench", "--only", "nope"], capture_output=True,
                         text=True, cwd=repo, env={**os.environ, "PYTHONPATH": path})  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "unknown section(s) ['nope']; known: ['forward', 'backward'" in run.stderr
