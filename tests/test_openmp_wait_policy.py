"""flexrnn makes idle OpenMP threads sleep (OMP_WAIT_POLICY=passive) unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import flexrnn

# the folder this flexrnn was imported from (the checkout's python/ or site-packages)
PYTHON_DIR = str(Path(flexrnn.__file__).resolve().parents[1])


def _policy_after_import(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([PYTHON_DIR, env.get("PYTHONPATH", "")])
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    code = "import os, flexrnn; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return out.stdout.strip()


def test_importing_flexrnn_makes_idle_openmp_threads_sleep_by_default():
    assert _policy_after_import(None) == "passive"


def test_a_wait_policy_the_user_set_is_kept():
    assert _policy_after_import("active") == "active"
