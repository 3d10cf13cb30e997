"""Add the "Check your understanding" cells (rl.grading.quiz) before a chapter's summary; idempotent.

    python scripts/add_quiz_cells.py notebooks/NN_topic.ipynb   # then scripts/run_notebooks.py on it

Use it after a chapter notebook was replaced (e.g. a merge that took the chapter owner's version).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HEADING = "## What you now know"
INTRO = ("## Check your understanding\n\n"
         "Predict first, then answer. Each question checks itself: pick an option or type a number and "
         "press *Check* — a wrong answer gets a hint, *Show answer* explains. Without Jupyter widgets, "
         "answer in code: `rl.grading.question(\"{nn}.q1\", your_answer)`.")


def insert(path: Path, chapter: str | None = None) -> None:
    """Insert the quiz cells into one notebook (chapter from its file name unless given)."""
    nb = nbformat.read(path, as_version=4)
    match = re.match(r"(\d\d)_", path.name)
    if chapter is None and match is None:
        raise ValueError(f"{path.name}: name the chapter with --chapter NN")
    nn = chapter or match.group(1)  # type: ignore[union-attr]
    if f"ch{nn}-quiz-md" in {cell.id for cell in nb.cells}:
        print(path, "already has the quiz")
        return
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and HEADING in c.source)
    cell = nb.cells[index]
    at = cell.source.index(HEADING)
    if at > 0:  # the summary shares its cell with the last section's prose: split it
        summary = nbformat.v4.new_markdown_cell(cell.source[at:], id=f"ch{nn}-summary")
        cell.source = cell.source[:at].rstrip()
        index += 1
        nb.cells.insert(index, summary)
    nb.cells[index:index] = [
        nbformat.v4.new_markdown_cell(INTRO.format(nn=nn), id=f"ch{nn}-quiz-md"),
        nbformat.v4.new_code_cell(f'rl.grading.quiz("{nn}")', id=f"ch{nn}-quiz-code"),
    ]
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids)), path
    nbformat.validate(nb)
    nbformat.write(nb, path)
    print(path, "quiz inserted before cell", index + 2, "split" if at > 0 else "")


if __name__ == "__main__":
    chapter = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--chapter" else None
    for arg in [a for a in sys.argv[1:] if a.endswith(".ipynb")]:
        insert(Path(arg), chapter)
