"""Regenerate the student copies in ``exercises/`` from ``solutions/`` (the single source).

    python scripts/make_exercises.py                  # solutions/*.ipynb -> exercises/
    python scripts/make_exercises.py --out /tmp/ex    # somewhere else (the sync test does this)
    python scripts/make_exercises.py solutions/01_one_hidden_node.ipynb

It runs nbgrader's own preprocessors, in the order ``nbgrader generate_assignment`` uses them
(minus the gradebook steps): LockCells makes check cells read-only, ClearSolutions swaps the code
between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` for ``raise NotImplementedError()``,
ClearOutput drops stored outputs, ClearHiddenTests drops ``### BEGIN HIDDEN TESTS`` regions,
ClearMarkScheme drops marking schemes, and CheckCellMetadata validates the nbgrader metadata.
The result depends only on the solution files, so re-running it gives identical bytes: never edit
``exercises/`` by hand (``tests/test_exercises.py`` fails when the two drift apart).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearOutput,
                                    ClearSolutions, LockCells)

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = (LockCells, ClearSolutions, ClearOutput, ClearHiddenTests, ClearMarkScheme, CheckCellMetadata)
# Cell metadata that records a run rather than the content (nbclient's timings, UI state).
VOLATILE_METADATA = {"collapsed", "scrolled", "execution", "ExecuteTime"}
GENERATED_NOTE = ("Generated from solutions/{name} by scripts/make_exercises.py; "
                  "edit the solution, not this file.")


def student_copy(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The exercise version of one solution notebook (a new object; the input is not changed)."""
    notebook = nbformat.from_dict(notebook)  # deep copy
    resources: dict = {}
    for preprocessor in PIPELINE:
        options = {"remove_metadata_fields": VOLATILE_METADATA} if preprocessor is ClearOutput else {}
        notebook, resources = preprocessor(**options).preprocess(notebook, resources)
    notebook.metadata.pop("language_info", None)  # written by whichever kernel ran the solution
    notebook.metadata["recon_lib"] = {"generated": GENERATED_NOTE.format(name=name)}
    return notebook


def generate(sources: list[Path], out: Path) -> list[Path]:
    """Write the student copy of every solution notebook in ``sources`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        notebook = nbformat.read(source, as_version=4)
        nbformat.validate(notebook)
        target = out / source.name
        nbformat.write(student_copy(notebook, source.name), target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="solution notebooks (default: every solutions/*.ipynb)")
    parser.add_argument("--out", type=Path, default=ROOT / "exercises", help="output folder")
    args = parser.parse_args(argv)
    sources = args.notebooks or sorted((ROOT / "solutions").glob("*.ipynb"))
    if not sources:
        parser.error("no solution notebooks found")
    for target in generate(sources, args.out):
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
