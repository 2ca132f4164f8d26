"""flexrnn._io: atomic writes keep the previous file on failure; stale temporaries go."""

import os
import subprocess
import sys

import numpy as np
import pytest
from flexrnn._io import atomic_savez, atomic_write, atomic_write_json, remove_stale_temporaries


def test_failed_write_keeps_previous_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.npz"
    atomic_savez(path, {"x": np.arange(3)})

    def broken(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    with np.load(path) as data:
        np.testing.assert_array_equal(data["x"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_stale_temporary_of_dead_writer_is_removed_on_next_write(tmp_path):
    path = tmp_path / "r.json"
    # a pid that is certainly gone: a child that has exited and been reaped
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(child.stdout)
    stale = tmp_path / f"r.json.{dead}.abc123.tmp"
    stale.write_bytes(b"half")
    live = tmp_path / f"r.json.{os.getpid()}.def456.tmp"  # a concurrent writer: kept
    live.write_bytes(b"busy")
    other = tmp_path / "other.json.1.x.tmp"  # another target's temporary: kept
    other.write_bytes(b"")
    atomic_write_json(path, {"a": 1})
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert remove_stale_temporaries(path) == []


def test_missing_folder_is_reported_before_writing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write_json(tmp_path / "nope" / "r.json", {})
