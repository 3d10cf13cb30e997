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
import json
from pathlib import Path

import nbformat
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    LockCells,
)

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = (LockCells, ClearSolutions, ClearOutput, ClearHiddenTests, ClearMarkScheme, CheckCellMetadata)
# Cell metadata that records a run rather than the content (nbclient's timings, UI state).
VOLATILE_METADATA = {"collapsed", "scrolled", "execution", "ExecuteTime"}
GENERATED_NOTE = ("Generated from solutions/{name} by scripts/make_exercises.py; "
                  "edit the solution, not this file.")


def read_source(path: Path) -> nbformat.NotebookNode:
    """Read a solution notebook, refusing missing or repeated cell ids.

    nbformat would silently invent random ids for them, so the student copy would change on
    every run (and nbgrader could not match cells); hence the raw JSON is checked first.
    """
    ids = [cell.get("id") for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    if None in ids or len(set(ids)) != len(ids):
        raise ValueError(f"{path.name}: every cell needs its own stable id (nbformat 4.5+); found "
                         f"{'missing' if None in ids else 'repeated'} ids. Give each cell a unique id.")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    return notebook


def check_source(notebook: nbformat.NotebookNode, name: str) -> None:
    """Refuse a solution notebook whose nbgrader metadata is invalid (e.g. repeated grade ids)."""
    try:
        MetadataValidator().validate_nb(notebook)
    except ValidationError as error:
        raise ValueError(f"{name}: invalid nbgrader cell metadata: {error}") from None


def student_copy(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The exercise version of one solution notebook (a new object; the input is not changed)."""
    check_source(notebook, name)
    notebook = nbformat.from_dict(notebook)  # deep copy
    resources: dict = {}
    try:
        for preprocessor in PIPELINE:
            options = {"remove_metadata_fields": VOLATILE_METADATA} if preprocessor is ClearOutput else {}
            notebook, resources = preprocessor(**options).preprocess(notebook, resources)
    except RuntimeError as error:  # nbgrader's complaint about BEGIN/END markers
        raise ValueError(f"{name}: {error}. Every ### BEGIN SOLUTION needs an ### END SOLUTION in "
                         "the same cell, and that cell must be marked as a solution cell "
                         "(likewise HIDDEN TESTS in grade cells).") from None
    notebook.metadata.pop("language_info", None)  # written by whichever kernel ran the solution
    notebook.metadata["recon_lib"] = {"generated": GENERATED_NOTE.format(name=name)}
    return notebook


def generate(sources: list[Path], out: Path) -> list[Path]:
    """Write the student copy of every solution notebook in ``sources`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        notebook = read_source(source)
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
    try:
        written = generate(sources, args.out)
    except ValueError as error:
        parser.exit(1, f"make_exercises: {error}\n")
    for target in written:
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
