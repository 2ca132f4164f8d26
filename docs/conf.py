"""Sphinx configuration of flexrnn's documentation site (API reference, tutorials, pages).

Build (from the repository root, with the package importable and ``pip install ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs build/docs

The Markdown pages of this folder are read by myst-parser as they are; the ones the package
installs (models.md, learning_rules.md, ...) stay plain Markdown that reads on GitHub too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import flexrnn

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "flexrnn"
author = "flexrnn developers"
copyright = "flexrnn developers"
release = flexrnn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "plain_sections",
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# README.md is the folder's index for readers of the repository (index.md is the site's);
# the JSON files beside the reports are their data, linked from the reports.
exclude_patterns = ["README.md", "_build", "**/*.json"]

# Markdown: heading anchors so that the pages' in-page links ("#notation") resolve.
myst_heading_anchors = 4
myst_enable_extensions = ["dollarmath"]

# The API reference: signatures and docstrings as written, members in source order.
# (No "Bases:" lines: most bases are private helpers, e.g. RateRNN's _RateBase.)
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autosummary_generate = False
add_module_names = False

html_theme = "alabaster"
html_title = f"flexrnn {release}"
html_static_path: list[str] = []
