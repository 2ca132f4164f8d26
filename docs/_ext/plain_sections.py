"""Sphinx extension: read flexrnn's docstrings as they are written.

flexrnn's docstrings use numpydoc's section headings (``Parameters`` over a dashed line) but
put a description, not a type, after the colon: ``u : (T, B, n_in) inputs, time-major.``,
continued on indented lines. Plain reST reads such a heading as a misplaced section title
and such an entry as a definition list that ends without a blank line; napoleon reads the
description as a type. This extension rewrites both before Sphinx renders the docstring:

- a heading over a dashed line becomes a ``rubric``;
- a block of entries ``name : text`` (or ``a, b : text``) at the docstring's margin, each
  followed by its indented continuation lines, becomes a definition list whose terms are the
  names as code and whose definitions are the text; where the text is numpydoc's type
  (short, with the description as a sentence on the indented lines below) it is shown as
  the term's classifier instead. Prose at the margin right after an entry's indented text
  becomes a paragraph after the list; any other block with prose at the margin (entries
  run together in sentences) is left as it is.

Everything else passes through unchanged.
"""

from __future__ import annotations

import re
from typing import Any

HEADING = re.compile(r"^[A-Z][A-Za-z ]*$")
RULE = re.compile(r"^-{3,}$")
NAME = r"\*{0,2}[A-Za-z_]\w*"
NAMES = rf"{NAME}(?:, {NAME})*"
ENTRY = re.compile(rf"^({NAMES}) :(?: (.*))?$")
BARE = re.compile(rf"^({NAMES})$")  # numpydoc's entry without a colon: its text is indented
OPEN = re.compile(rf"^({NAMES}),$")  # a list of names that goes on on the next line


def _is_heading(lines: list[str], i: int) -> bool:
    return (
        i + 1 < len(lines)
        and HEADING.match(lines[i]) is not None
        and RULE.match(lines[i + 1]) is not None
        and len(lines[i + 1]) >= len(lines[i])
    )


def _is_type(text: str, next_line: str) -> bool:
    """Whether an entry's text is numpydoc's type (``sigma : float``) rather than the
    description itself: short, and followed by an indented description that does not read
    as its lower-case continuation."""
    first = next_line.strip()[:1]
    described_below = next_line.startswith(" ") and first not in ("", "(") and not first.islower()
    return described_below and len(text) <= 40 and not text.endswith(".")


def _blocks(lines: list[str]) -> list[list[str]]:
    """The docstring split at blank lines (a blank line followed by an indented one stays
    inside its block) and around section headings."""
    blocks: list[list[str]] = [[]]
    i = 0
    while i < len(lines):
        line = lines[i]
        if _is_heading(lines, i):
            blocks += [[line, lines[i + 1]], []]
            i += 2
            continue
        indented_next = i + 1 < len(lines) and lines[i + 1].startswith(" ")
        if not line.strip() and not (blocks[-1] and indented_next):
            blocks.append([])
        else:
            blocks[-1].append(line)
        i += 1
    return [b for b in blocks if b]


def _entries(block: list[str]) -> list[str] | None:
    """The block as a definition list, or None when it is not a list of entries (prose
    that happens to contain ``name : text``, e.g. several entries run together)."""
    out: list[str] = []
    continued = False  # whether the last entry's text went on on indented lines
    i = 0
    while i < len(block):
        start, line = i, block[i]
        if line.startswith(" ") or not line.strip():
            return None  # indented text before any entry: not ours
        while OPEN.match(line) and i + 1 < len(block) and not block[i + 1].startswith(" "):
            i += 1
            line = f"{line} {block[i]}"
        entry = ENTRY.match(line)
        bare = BARE.match(line)
        if entry is None and not (bare and i + 1 < len(block) and block[i + 1].startswith(" ")):
            # Prose at the margin: after an entry whose text went on indented, a paragraph
            # of its own; otherwise the block is prose that contains colons.
            return [*out, "", *block[start:]] if continued else None
        term = ", ".join(f"``{name}``" for name in (entry or bare).group(1).split(", "))
        text = (entry.group(2) or "").strip() if entry else ""
        i += 1
        if text and _is_type(text, block[i] if i < len(block) else ""):
            out.append(f"{term} : {text}")  # a classifier: shown beside the name
        else:
            out += [term, "    " + text] if text else [term]
        continued = i < len(block) and block[i].startswith(" ")
        while i < len(block) and (block[i].startswith(" ") or not block[i].strip()):
            out.append(block[i])
            i += 1
    return out


def rewrite(lines: list[str]) -> list[str]:
    """The docstring ``lines`` (as Sphinx hands them, margin at column 0) in plain reST."""
    out: list[str] = []
    for block in _blocks(lines):
        if len(block) == 2 and _is_heading(block, 0):
            out += [f".. rubric:: {block[0]}", ""]
            continue
        out += (_entries(block) or block) + [""]
    return out


def _process(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    lines[:] = rewrite(lines)


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _process)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
