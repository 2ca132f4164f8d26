"""Every fenced python block of README.md runs on its own, in a fresh process and an empty
folder (the blocks keep their iteration counts small; their comments give the real ones)."""

import os
import subprocess
import sys
from pathlib import Path

import flexrnn
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks(text: str) -> list[tuple[str, str]]:
    """(id, code) of each ```python block, the id from the heading above it."""
    blocks, heading, code, fence = [], "top", None, None
    for line in text.splitlines(keepends=True):
        if code is None and line.startswith("```"):
            fence, code = line.strip(), ""
        elif code is not None and line.startswith("```"):
            if fence == "```python":
                blocks.append((f"{len(blocks)}-{heading}", code))
            code = None
        elif code is not None:
            code += line
        elif line.startswith("#"):
            heading = line.lstrip("#").split("(")[0].strip().lower().replace(" ", "-")
    return blocks


BLOCKS = _python_blocks(README.read_text())


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("code", [c for _, c in BLOCKS], ids=[i for i, _ in BLOCKS])
def test_readme_block_runs_on_its_own(code, tmp_path):
    path = os.pathsep.join(
        [str(Path(flexrnn.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    )
    env = {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}
    # `python -c`, as code pasted into an interpreter: a LocalCluster's worker processes do
    # not re-run it, and the functions it defines travel to them by value
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
