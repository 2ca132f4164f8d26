"""The tutorials in docs/tutorials/ run as written, and the docs site lists every page.

Each tutorial's ``python`` and ``bash`` code blocks run in page order, the Python ones in one
namespace, all in a temporary folder that stands for the repository's root (its examples/
and docs/ linked in; the blocks write figures, models and build folders there), so a broken
example fails CI. Python blocks are compiled with the Markdown file's name and line
numbers: a traceback points at the line of the page. The ``bash`` blocks build C++ against
the installed package (``find_package(flexrnn)``): where flexrnn is not installed with its
CMake package (a development checkout on PYTHONPATH) or CMake is missing, the tutorial runs
up to its first ``bash`` block and the test is skipped there, saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import flexrnn as fr
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))

# A fenced block: ```python (or ```{code-block} python) ... ``` at the start of lines.
FENCE = re.compile(r"^```(?:\{code-block\} )?(\w+)[^\n]*\n(.*?)^```\s*$", re.M | re.S)


def code_blocks(path: Path, languages: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """The page's blocks in one of ``languages``, in order, as (language, line of the
    block's first line, code)."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1) in languages:
            first_line = text.count("\n", 0, match.start(2)) + 1
            blocks.append((match.group(1), first_line, match.group(2)))
    return blocks


def python_tutorials() -> list[Path]:
    return [p for p in TUTORIALS if code_blocks(p, ("python",))]


def cmake_package_installed() -> bool:
    return (Path(fr.get_cmake_dir()) / "flexrnnConfig.cmake").is_file()


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
    for folder in ("examples", "docs"):  # the shell blocks run from the repository's root
        (tmp_path / folder).symlink_to(ROOT / folder, target_is_directory=True)
    bin_dir = tmp_path / "_bin"  # `python` in the shell blocks: this interpreter
    bin_dir.mkdir()
    # a script, not a symlink: a venv's interpreter finds its environment from the path it
    # was started by, so a link to it from elsewhere would run without the venv's packages
    shim = bin_dir / "python"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    can_build = cmake_package_installed() and shutil.which("cmake") is not None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__tutorial__"}
    for language, first_line, code in code_blocks(path, ("python", "bash")):
        where = f"{path.relative_to(ROOT)}:{first_line}"
        if language == "python":
            # Padding puts the code at its own line numbers in the page's file.
            exec(compile("\n" * (first_line - 1) + code, str(path), "exec"), namespace)
            continue
        if not can_build:
            pytest.skip(f"{where}: needs flexrnn installed with its CMake package, and cmake")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"


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


DIRECTIVE = re.compile(
    r"^\.\. (currentmodule|automodule|autoclass|autofunction|autoexception"
    r"|autodata|data|function|class)::\s*(\S+)",
    re.M,
)


def documented_names() -> set[str]:
    """Full names the API pages document (``module.name``), and the modules documented
    with all their members (``module.*``)."""
    names = set()
    for page in sorted((DOCS / "api").glob("*.rst")):
        module = ""
        text = page.read_text()
        for match in DIRECTIVE.finditer(text):
            kind, target = match.groups()
            if kind in ("currentmodule", "automodule"):
                module = target
                rest = text[match.end() :].split("\n.. ", 1)[0]
                if kind == "automodule" and ":no-members:" not in rest:
                    names.add(f"{target}.*")
            else:
                names.add(f"{module}.{target}")
    return names


def test_api_reference_documents_every_public_name():
    import types

    documented = documented_names()
    missing = []
    for module in (fr, fr.tasks, fr.train, fr.analysis, fr.mop, fr.mop.metrics, fr.sweep):
        if f"{module.__name__}.*" in documented:
            continue
        for name in module.__all__:
            if isinstance(getattr(module, name), types.ModuleType):
                continue  # a subpackage: its own page
            if f"{module.__name__}.{name}" not in documented:
                missing.append(f"{module.__name__}.{name}")
    assert missing == [], f"add to docs/api/*.rst: {missing}"


def load_extension():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "plain_sections", DOCS / "_ext" / "plain_sections.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docstring_sections_are_read_as_rubrics_and_definition_lists():
    rewrite = load_extension().rewrite
    doc = [
        "Run the model.",
        "",
        "Parameters",
        "----------",
        "u : (T, B, n_in) inputs, time-major.",
        "gain : a scalar, or an array broadcastable to (T, B)",
        "    (time-varying, per trial).",
        "sigma : float",
        "    Standard deviation of the noise.",
        "",
        "Returns",
        "-------",
        "Trajectory with ``x``: (T, B, n).",
    ]
    assert rewrite(doc) == [
        "Run the model.",
        "",
        ".. rubric:: Parameters",
        "",
        "``u``",
        "    (T, B, n_in) inputs, time-major.",
        "``gain``",
        "    a scalar, or an array broadcastable to (T, B)",
        "    (time-varying, per trial).",
        "``sigma`` : float",
        "    Standard deviation of the noise.",
        "",
        ".. rubric:: Returns",
        "",
        "Trajectory with ``x``: (T, B, n).",
        "",
    ]


def test_docstring_prose_with_colons_is_left_as_written():
    rewrite = load_extension().rewrite
    prose = [
        "Per-epoch records of a training run.",
        "",
        "lifetime : (epochs, B) lifetime of each trajectory; entropy : (epochs,) mean",
        "action entropy over the epoch's steps.",
    ]
    assert rewrite(prose) == [*prose, ""]


def test_docstring_prose_after_an_entry_list_is_a_paragraph_of_its_own():
    rewrite = load_extension().rewrite
    doc = [
        "contexts : None, an int, or one context per epoch",
        "    (of the run).",
        "Other arguments as in :func:`train`.",
    ]
    assert rewrite(doc) == [
        "``contexts``",
        "    None, an int, or one context per epoch",
        "    (of the run).",
        "",
        "Other arguments as in :func:`train`.",
        "",
    ]
