"""The tutorials in docs/tutorials/ run as written, and the docs site lists every page.

Each tutorial's ``python`` code blocks run in order in one namespace, in a temporary folder
(they write figures and models), so a broken example fails CI. The blocks are compiled with
the Markdown file's name and line numbers: a traceback points at the line of the page.
"""

from __future__ import annotations

import re
from pathlib import Path

import flexrnn as fr
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))

# A fenced block: ```python (or ```{code-block} python) ... ``` at the start of lines.
FENCE = re.compile(r"^```(?:\{code-block\} )?(\w+)[^\n]*\n(.*?)^```\s*$", re.M | re.S)


def code_blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """The page's ``language`` blocks as (line of the block's first line, code)."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1) == language:
            first_line = text.count("\n", 0, match.start(2)) + 1
            blocks.append((first_line, match.group(2)))
    return blocks


def python_tutorials() -> list[Path]:
    return [p for p in TUTORIALS if code_blocks(p, "python")]


def test_every_tutorial_is_found_with_its_code():
    names = {p.stem for p in TUTORIALS}
    assert {"decision", "force", "neuromop", "cpp"} <= names
    assert {p.stem for p in python_tutorials()} >= {"decision", "force", "neuromop"}


@pytest.fixture
def restore_threads():
    threads = fr.get_num_threads()
    yield
    fr.set_num_threads(threads)


@pytest.mark.parametrize("path", python_tutorials(), ids=lambda p: p.stem)
def test_tutorial_code_runs_as_written(path, tmp_path, monkeypatch, restore_threads):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__tutorial__"}
    for first_line, code in code_blocks(path, "python"):
        # Padding puts the code at its own line numbers in the page's file.
        exec(compile("\n" * (first_line - 1) + code, str(path), "exec"), namespace)


TOCTREE = re.compile(r"^```\{toctree\}[^\n]*\n(.*?)^```\s*$", re.M | re.S)


def toctree_entries(page: Path) -> set[str]:
    """The documents a page's toctrees list (options, ``:glob:`` patterns included)."""
    return {
        line.strip()
        for match in TOCTREE.finditer(page.read_text())
        for line in match.group(1).splitlines()
        if line.strip() and not line.strip().startswith(":")
    }


def test_site_index_lists_every_tutorial_and_page():
    entries = toctree_entries(DOCS / "index.md")
    for path in TUTORIALS:
        assert f"tutorials/{path.stem}" in entries, path.name
    shipped = [p.stem for p in DOCS.glob("*.md") if p.stem not in ("README", "index")]
    assert shipped and all(stem in entries for stem in shipped), sorted(set(shipped) - entries)
