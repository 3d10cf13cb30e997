"""The markdown of every notebook reads as written: no control characters, balanced maths.

A Python string such as ``"\\approx"`` written without a raw prefix turns ``\\a`` into a bell
character (``\\b``, ``\\t``, ``\\f``, ``\\v`` likewise), and the rendered formula breaks silently.
These tests catch that, and an unbalanced ``$`` that would run maths into the following prose.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for folder in ("notebooks", "solutions", "exercises")
                   for p in (ROOT / folder).glob("*.ipynb"))
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")   # every control character but the newline
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # code is not maths: its $ do not count


def markdown_cells(path: Path) -> list[tuple[int, str]]:
    """(index, source) of each markdown cell of one notebook."""
    notebook = nbformat.read(path, as_version=4)
    return [(i, cell.source) for i, cell in enumerate(notebook.cells) if cell.cell_type == "markdown"]


def unbalanced_dollars(text: str) -> bool:
    """True when a cell's maths delimiters do not pair up ($…$ and $$…$$; code and \\$ excluded)."""
    prose = CODE.sub("", text).replace(r"\$", "")
    display = prose.count("$$")
    return display % 2 == 1 or prose.replace("$$", "").count("$") % 2 == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_markdown_has_no_control_characters(path: Path) -> None:
    bad = [(i, repr(m.group())) for i, text in markdown_cells(path) for m in CONTROL.finditer(text)]
    assert not bad, f"control characters (cell, char) in {path.name}: {bad}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_markdown_maths_is_balanced(path: Path) -> None:
    bad = [i for i, text in markdown_cells(path) if unbalanced_dollars(text)]
    assert not bad, f"unbalanced $ in markdown cells {bad} of {path.name}"


def test_the_checks_can_fail() -> None:
    assert CONTROL.search("$x \\approx y$".replace("\\a", "\a"))
    assert not CONTROL.search("line one\nline two")
    assert unbalanced_dollars("costs $5 and $x$")
    assert unbalanced_dollars("$$x = 1$ and more")
    assert not unbalanced_dollars("$x$, $$y$$, `a $ in code`, a price \\$5")
