"""flexrnn.sweep on a real Dask LocalCluster of 2 worker processes: every run once, nothing
finished redone after a worker or the client is killed, corrupt results never read as done,
failures retried then reported."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import flexrnn
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn import sweep
from flexrnn.sweep._run import _restore_environ

distributed = pytest.importorskip("distributed")

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # the workers inherit sys.path: they import sweep_functions
import sweep_functions  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    environ = dict(os.environ)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=50,
    ) as c:  # fmt: skip
        yield c
    _restore_environ(environ)  # the nannies set OMP_NUM_THREADS=1 etc. in this process


def test_local_cluster_leaves_this_process_environment_as_it_was(tmp_path):
    before = dict(os.environ)
    sweep.run(sweep_functions.sleepy, [{"x": 1}], out=tmp_path, workers=1, progress=False)
    assert dict(os.environ) == before


def _results(out: Path) -> list[Path]:
    return sorted((out / "runs").glob("*/result.json"))


def _events(out: Path, kind: str) -> Counter:
    return Counter(e["id"] for e in sweep.read_log(out) if e["event"] == kind)


# ------------------------------------------------------------------------------------------
# grids and ids


def test_grid_is_the_product_with_the_last_key_fastest():
    g = sweep.grid(n=[50, 100], lr=(1e-3, 1e-2))
    assert g == [{"n": 50, "lr": 1e-3}, {"n": 50, "lr": 1e-2},
                 {"n": 100, "lr": 1e-3}, {"n": 100, "lr": 1e-2}]  # fmt: skip
    assert sweep.grid({"a-b": range(2)}) == [{"a-b": 0}, {"a-b": 1}]


def test_run_id_is_the_hash_of_the_canonical_config_and_seed():
    config = {"n": 50, "lr": 0.001, "task": "pd"}
    text = json.dumps({"config": config, "seed": 3}, sort_keys=True, separators=(",", ":"))
    assert sweep.run_id(config, 3) == hashlib.sha256(text.encode()).hexdigest()[:16]
    # independent of key order and of NumPy scalar types; 1 and 1.0 differ, seeds differ
    assert sweep.run_id({"task": "pd", "lr": np.float64(0.001), "n": np.int64(50)}, 3) == (
        sweep.run_id(config, 3)
    )
    assert sweep.run_id({"x": 1}, 0) != sweep.run_id({"x": 1.0}, 0)
    assert sweep.run_id(config, 3) != sweep.run_id(config, 4)
    # pinned: ids must not change between releases, or resumed sweeps would redo everything
    assert (
        sweep.run_id({"n": 50, "lr": 0.001}, 0)
        == hashlib.sha256(b'{"config":{"lr":0.001,"n":50},"seed":0}').hexdigest()[:16]
    )
    assert sweep.run_id({"n": 50, "lr": 0.001}, 0) == "34e653d141c8ce5d"


def test_bad_sweep_arguments_are_named(tmp_path):
    with raises_naming("grid: n"):
        sweep.grid(n=50)
    with raises_naming("grid: n"):
        sweep.grid(n="abc")
    with raises_naming("seeds"):
        sweep.run(sweep_functions.sleepy, [{"x": 1}], seeds=5, out=tmp_path)
    with raises_naming("seeds[1]"):
        sweep.run(sweep_functions.sleepy, [{"x": 1}], seeds=[0, -1], out=tmp_path)
    with raises_naming("configs"):
        sweep.run(sweep_functions.sleepy, [{"x": 1}, {"x": 1}], seeds=[0], out=tmp_path)
    with raises_naming("configs[0]"):
        sweep.run(sweep_functions.sleepy, [{"x": object()}], seeds=[0], out=tmp_path)
    with raises_naming("fn"):
        sweep.run("sleepy", [{"x": 1}], seeds=[0], out=tmp_path)
    with raises_naming("workers"):
        sweep.run(sweep_functions.sleepy, [{"x": 1}], out=tmp_path, scheduler="serial",
                  workers=2)  # fmt: skip
    with raises_naming("retries"):
        sweep.run(sweep_functions.sleepy, [{"x": 1}], out=tmp_path, retries=-1)
    sweep.run(sweep_functions.sleepy, [{"x": 1}], out=tmp_path, scheduler="serial",
              progress=False)  # fmt: skip
    with raises_naming("out"):  # a folder holds one function's sweep
        sweep.run(sweep_functions.flaky, [{"x": 1}], out=tmp_path, scheduler="serial")
    with raises_naming("out", FileNotFoundError):
        sweep.load(tmp_path / "nothing")


# ------------------------------------------------------------------------------------------
# runs on Dask


def test_local_cluster_runs_every_run_once_single_threaded(tmp_path):
    configs = sweep.grid(x=[1, 2, 3], sleep=[0.0])
    rows = sweep.run(sweep_functions.threads_seen, configs, seeds=range(4), out=tmp_path,
                     workers=2, progress=False)  # fmt: skip
    assert [(r["x"], r["seed"]) for r in rows] == [(x, s) for x in (1, 2, 3) for s in range(4)]
    assert all(r["status"] == "done" for r in rows)
    # each worker's flexrnn and BLAS threads were set to 1
    assert {r["flexrnn_threads"] for r in rows} == {1}
    assert {r["omp_env"] for r in rows} == {"1"}
    assert len({r["pid"] for r in rows} - {os.getpid()}) >= 1
    assert len(_results(tmp_path)) == 12
    assert set(_events(tmp_path, "start").values()) == {1}
    table = sweep.load(tmp_path, as_frame=False)
    assert [r["id"] for r in table] == [r["id"] for r in rows]
    assert table[5]["version"] == flexrnn.__version__ and table[5]["wall_time"] >= 0


def test_worker_killed_mid_sweep_every_run_completes_exactly_once(tmp_path, cluster):
    configs = sweep.grid(x=list(range(14)), sleep=[0.5])
    killed: dict = {}

    def kill_a_worker_mid_run():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            events = sweep.read_log(tmp_path)
            ended = {e["id"] for e in events if e["event"] == "end"}
            if len(ended) >= 2:
                running = [e for e in events if e["event"] == "start" and e["id"] not in ended]
                if running:
                    victim = running[-1]
                    os.kill(victim["pid"], signal.SIGKILL)
                    killed.update(victim)
                    return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_a_worker_mid_run)
    watcher.start()
    rows = sweep.run(sweep_functions.sleepy, configs, seeds=[0], out=tmp_path,
                     scheduler=cluster, progress=False)  # fmt: skip
    watcher.join()
    assert killed, "no worker was killed: the test did not test anything"
    assert all(r["status"] == "done" for r in rows)
    results = _results(tmp_path)
    assert len(results) == 14
    assert {json.loads(p.read_text())["id"] for p in results} == {r["id"] for r in rows}
    ends, starts = _events(tmp_path, "end"), _events(tmp_path, "start")
    assert set(ends.values()) == {1} and set(ends) == {r["id"] for r in rows}
    # the run the killed worker was in (started there, never ended there) started twice:
    # Dask rescheduled it on a live worker; every other run started once
    events = sweep.read_log(tmp_path)
    on_victim = {e["id"]: e["event"] for e in events if e["pid"] == killed["pid"]}
    interrupted = {i for i, last in on_victim.items() if last == "start"}
    assert len(interrupted) == 1  # the kill came mid-run (the runs sleep 0.5 s)
    assert all(starts[r["id"]] == 1 + (r["id"] in interrupted) for r in rows)
    (redone,) = [r for r in rows if r["id"] in interrupted]
    assert redone["pid"] != killed["pid"]
    assert [r["value"] for r in rows] == [x * 10 for x in range(14)]


def test_client_killed_mid_sweep_and_restarted_redoes_nothing_finished(tmp_path, cluster):
    out = tmp_path / "out"
    script = tmp_path / "client.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        import sweep_functions
        from flexrnn import sweep

        if __name__ == "__main__":
            sweep.run(sweep_functions.sleepy, sweep.grid(x=list(range(12)), sleep=[0.4]),
                      seeds=[0], out={str(out)!r}, workers=2, progress=False)
    """)
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(flexrnn.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    client = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(_events(out, "end")) < 4:
            assert client.poll() is None, "the client exited before it was killed"
            time.sleep(0.02)
    finally:
        os.killpg(client.pid, signal.SIGKILL)  # the client, its scheduler and its workers
        client.wait()
    finished = set(_events(out, "end"))
    assert 4 <= len(finished) < 12
    stamps = {p.parent.name: p.stat().st_mtime_ns for p in _results(out)}
    log_length = len(sweep.read_log(out))
    assert sweep.status(out)["done"] == len(stamps) >= len(finished)

    rows = sweep.run(sweep_functions.sleepy, sweep.grid(x=list(range(12)), sleep=[0.4]),
                     seeds=[0], out=out, scheduler=cluster, progress=False)  # fmt: skip
    assert all(r["status"] == "done" for r in rows)
    restarted = {e["id"] for e in sweep.read_log(out)[log_length:] if e["event"] == "start"}
    assert not restarted & set(stamps), "a finished run was run again"
    assert restarted == {r["id"] for r in rows} - set(stamps)
    assert all((out / "runs" / i / "result.json").stat().st_mtime_ns == t
               for i, t in stamps.items())  # fmt: skip
    assert len(_results(out)) == 12
    assert set(_events(out, "end").values()) == {1}


def test_raising_run_is_retried_then_reported_failed_while_others_finish(tmp_path, cluster):
    marks = tmp_path / "marks"
    marks.mkdir()
    # x=1 always raises; x=2 raises once, then succeeds; x=0 and x=3 never raise
    configs = [{"x": x, "fail": {1: -1, 2: 1}.get(x, 0), "marks": str(marks)} for x in range(4)]
    with pytest.raises(sweep.SweepError, match="2 of 8 runs failed"):
        sweep.run(sweep_functions.flaky, configs, seeds=[0, 1], out=tmp_path / "out",
                  scheduler=cluster, retries=2, progress=False, strict=True)  # fmt: skip
    rows = sweep.load(tmp_path / "out", as_frame=False)
    by = {(r["x"], r["seed"]): r for r in rows}
    for seed in (0, 1):
        assert by[(0, seed)]["status"] == "done" and by[(0, seed)]["attempts"] == 1
        assert by[(3, seed)]["status"] == "done"
        assert by[(2, seed)]["status"] == "done" and by[(2, seed)]["attempts"] == 2
        assert by[(2, seed)]["calls"] == 2
        failed = by[(1, seed)]
        assert failed["status"] == "failed" and failed["attempts"] == 3
        assert "planned failure of x=1" in failed["error"] and failed["kept"] is None
        folder = tmp_path / "out" / "runs" / failed["id"]
        errors = sorted(folder.glob("error-*.json"))
        assert [p.name for p in errors] == ["error-1.json", "error-2.json", "error-3.json"]
        assert "Traceback" in json.loads(errors[0].read_text())["traceback"]
    status = sweep.status(tmp_path / "out")
    assert (status["done"], status["failed"], status["pending"]) == (6, 2, 0)
    # running again retries the failed runs only (attempts continue to count)
    before = _events(tmp_path / "out", "start")
    sweep.run(sweep_functions.flaky, configs, seeds=[0, 1], out=tmp_path / "out",
              scheduler=cluster, retries=0, progress=False)  # fmt: skip
    again = _events(tmp_path / "out", "start") - before
    assert set(again) == {by[(1, 0)]["id"], by[(1, 1)]["id"]}
    assert sweep.load(tmp_path / "out", as_frame=False)[2]["attempts"] == 4


# ------------------------------------------------------------------------------------------
# results on disk


def test_corrupt_or_half_written_results_are_never_read_as_finished(tmp_path):
    out = tmp_path / "out"
    configs = sweep.grid(x=[0, 1, 2, 3, 4])
    rows = sweep.run(sweep_functions.sleepy, configs, seeds=[0], out=out, scheduler="serial",
                     progress=False)  # fmt: skip
    assert all(r["status"] == "done" for r in rows)
    ids = [r["id"] for r in rows]
    # 0: truncated mid-file; 1: valid JSON, a metric changed (checksum); 2: a kept array
    # changed; 3: only a temporary of a killed writer, result.json never moved in place
    result = out / "runs" / ids[0] / "result.json"
    result.write_bytes(result.read_bytes()[: result.stat().st_size // 2])
    result = out / "runs" / ids[1] / "result.json"
    data = json.loads(result.read_text())
    data["metrics"]["value"] += 1
    result.write_text(json.dumps(data))
    arrays = out / "runs" / ids[2] / "arrays.npz"
    raw = bytearray(arrays.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    arrays.write_bytes(bytes(raw))
    result = out / "runs" / ids[3] / "result.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    (result.parent / f"result.json.{dead}.abc.tmp").write_bytes(result.read_bytes()[:40])
    result.unlink()

    table = sweep.load(out, as_frame=False)
    assert [r["status"] for r in table] == ["pending"] * 4 + ["done"]
    assert all(r["kept"] is None and "value" not in r for r in table[:4])
    assert sweep.status(out)["pending_ids"] == ids[:4]
    before = _events(out, "start")
    rows = sweep.run(sweep_functions.sleepy, configs, seeds=[0], out=out, scheduler="serial",
                     progress=False)  # fmt: skip
    assert set(_events(out, "start") - before) == set(ids[:4])
    assert [r["value"] for r in rows] == [0, 10, 20, 30, 40]
    np.testing.assert_array_equal(rows[2]["kept"]["curve"], [0.0, 2.0, 4.0])
    assert not list((out / "runs" / ids[3]).glob("*.tmp"))


def test_kept_arrays_and_models_load_lazily_and_metrics_round_trip(tmp_path):
    rows = sweep.run(sweep_functions.with_model, [{"n": 5}], seeds=[2], out=tmp_path,
                     scheduler="serial", progress=False)  # fmt: skip
    row = rows[0]
    assert set(row["kept"]) == {"net", "x"}
    net = row["kept"]["net"]
    assert isinstance(net, flexrnn.RateRNN) and net.n == 5
    ref = flexrnn.RateRNN.random(n=5, n_in=1, n_out=1, seed=2)
    np.testing.assert_array_equal(net.W, ref.W)
    assert row["kept"]["x"].shape == (4, 5)
    # metrics: numpy scalars become numbers, nested dicts and NaN survive; a metric named
    # like a config key is prefixed
    assert row["norm"] == pytest.approx(float(np.linalg.norm(ref.W)))
    assert row["nested"] == {"a": [1, 2], "b": None} and np.isnan(row["nan"])
    assert row["metrics.n"] == 5 and row["n"] == 5


def test_a_bad_return_value_fails_the_run_with_a_message_naming_it(tmp_path):
    rows = sweep.run(sweep_functions.bad_return, [{"x": 1}], out=tmp_path, scheduler="serial",
                     retries=0, progress=False)  # fmt: skip
    assert rows[0]["status"] == "failed"
    assert "fn: returned 'history'" in rows[0]["error"]


# ------------------------------------------------------------------------------------------
# command line


def test_cli_sweep_runs_a_toml_spec_and_reports_status(tmp_path, cluster, capsys):
    from flexrnn.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text(
        textwrap.dedent("""
        function = "sweep_functions:sleepy"
        seeds = [0, 1]
        out = "runs"

        [grid]
        x = [1, 2, 3]
        sleep = [0.0]
    """)
    )
    assert main(["sweep", str(spec), "--scheduler", cluster.scheduler_address,
                 "--no-progress"]) == 0  # fmt: skip
    out = tmp_path / "runs"  # relative to the spec's folder
    assert len(_results(out)) == 6
    capsys.readouterr()
    assert main(["sweep", "--status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 runs" in text and "6 done, 0 failed, 0 pending" in text
    (out / "runs" / sweep.run_id({"x": 2, "sleep": 0.0}, 1) / "result.json").unlink()
    main(["sweep", "--status", str(out)])
    assert "5 done, 0 failed, 1 pending" in capsys.readouterr().out


def test_cli_sweep_bad_spec_is_named(tmp_path, capsys):
    from flexrnn.cli import main

    spec = tmp_path / "spec.toml"
    for text, name in [
        ('function = "sweep_functions"\nseeds = [0]\n[grid]\nx = [1]\n', "function"),
        ('function = "sweep_functions:sleepy"\nseeds = [0]\n', "grid"),
        ('function = "sweep_functions:nope"\nseeds = [0]\n[grid]\nx = [1]\n', "function"),
    ]:
        spec.write_text(text)
        with pytest.raises(SystemExit) as info:  # one line on stderr, not a traceback
            main(["sweep", str(spec)])
        assert info.value.code == 2
        assert f"flexrnn sweep: error: {name}: " in capsys.readouterr().err


def test_load_is_a_dataframe_when_pandas_is_installed(tmp_path):
    pd = pytest.importorskip("pandas")
    sweep.run(sweep_functions.sleepy, sweep.grid(x=[1, 2]), seeds=[0, 1], out=tmp_path,
              scheduler="serial", progress=False)  # fmt: skip
    table = sweep.load(tmp_path)
    assert isinstance(table, pd.DataFrame) and len(table) == 4
    assert table.groupby("x").value.mean().tolist() == [10.5, 20.5]
    np.testing.assert_array_equal(table.kept[3]["curve"], [1.0, 3.0, 5.0])


def test_load_as_frame_without_pandas_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    sweep.run(sweep_functions.sleepy, [{"x": 1}], out=tmp_path, scheduler="serial",
              progress=False)  # fmt: skip
    assert isinstance(sweep.load(tmp_path), list)
    with raises_naming("as_frame", ImportError):
        sweep.load(tmp_path, as_frame=True)


def test_a_run_that_keeps_killing_its_worker_is_reported_failed_while_others_finish(tmp_path):
    import dask

    configs = [{"x": x, "die": x == 2} for x in range(5)]
    # Dask gives up on a task after its workers died more than allowed-failures times
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        rows = sweep.run(sweep_functions.dies, configs, out=tmp_path, workers=2, progress=False)
    assert [r["status"] for r in rows] == ["done", "done", "failed", "done", "done"]
    assert "KilledWorker" in rows[2]["error"]
    assert _events(tmp_path, "start")[rows[2]["id"]] == 2  # allowed-failures + 1 deaths
    assert sweep.status(tmp_path)["failed_ids"] == [rows[2]["id"]]
