"""Set up an nbgrader course directory from the graded solutions (README, "For instructors").

``python -m recon_lib.course init DIR --chapters 01 04`` makes ``DIR`` a course that nbgrader's
own commands (``generate_assignment``, ``release_assignment``, ``collect``, ``autograde``,
``generate_feedback``, ``export``) run in unchanged. Only the setup is ours; the grading is
nbgrader's. The setup writes:

* ``DIR/nbgrader_config.py``: the course id, an exchange inside ``DIR`` (nbgrader's default is a
  system folder, which a normal user cannot create and root creates world-writable), and a
  feedback pipeline that strips the hidden tests (nbgrader's ``ClearHiddenTests``) while keeping
  every check's output, so students read each check's message but never the hidden seed;
* ``DIR/students/nbgrader_config.py``: the two lines a student's nbgrader needs to fetch and
  submit through that exchange;
* ``DIR/source/psNN/NN_topic.ipynb``: the chosen chapters' solutions, one assignment each.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from . import _validate as check

PACKAGE = Path(__file__).resolve().parent
#: Where the solutions are: inside the installed package (a wheel: pyproject maps ``solutions/``
#: to ``recon_lib/solutions``), or next to it in a clone (``pip install -e .`` or PYTHONPATH).
SEARCH_PATH = (PACKAGE / "solutions", PACKAGE.parent / "solutions")

FEEDBACK_PREPROCESSORS = (
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests",
)


def solutions_dir() -> Path:
    """The folder holding the solution notebooks ``NN_topic.ipynb``.

    Raises:
        FileNotFoundError: neither the installed package nor a clone around it holds them.
    """
    for folder in SEARCH_PATH:
        if any(folder.glob("[0-9][0-9]_*.ipynb")):
            return folder
    raise FileNotFoundError(
        f"no solution notebooks in {' or '.join(map(str, SEARCH_PATH))}; install recon_lib from a "
        "clone of the course repository (pip install -e .) or from its wheel")


def available_chapters() -> dict[str, Path]:
    """Chapter number ("01") → its solution notebook."""
    return {path.name[:2]: path for path in sorted(solutions_dir().glob("[0-9][0-9]_*.ipynb"))}


def config_text(course_id: str, exchange: Path) -> str:
    """The instructor's ``nbgrader_config.py``: course id, private exchange, safe feedback."""
    preprocessors = ",\n    ".join(f'"{name}"' for name in FEEDBACK_PREPROCESSORS)
    return f'''"""nbgrader settings of course {course_id!r}, written by python -m recon_lib.course init."""
c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = {course_id!r}
# The exchange through which release/fetch/submit/collect pass. nbgrader's default is
# /usr/local/share/nbgrader/exchange; every student's config must name this same folder.
c.Exchange.root = {str(exchange)!r}
# Feedback shows each check's output (its message) but not the hidden tests' source (their seeds).
c.GenerateFeedback.preprocessors = [
    {preprocessors},
]
'''


def student_config_text(course_id: str, exchange: Path) -> str:
    """The ``nbgrader_config.py`` a student needs for ``fetch_assignment`` and ``submit``."""
    return (f'c = get_config()  # noqa: F821\nc.CourseDirectory.course_id = {course_id!r}\n'
            f'c.Exchange.root = {str(exchange)!r}\n')


def init(directory: str | Path, chapters: list[str], course_id: str = "recon",
         exchange: str | Path | None = None) -> list[Path]:
    """Make ``directory`` an nbgrader course with one assignment ``psNN`` per chapter.

    Args:
        directory: the course folder (created if missing; an existing ``source/psNN`` is kept).
        chapters: two-digit chapter numbers, e.g. ``["01", "04"]``.
        course_id: nbgrader's course id, also in the students' config.
        exchange: the exchange folder; default ``directory/exchange``. A class sharing one machine
            or JupyterHub needs a folder every student can write to.

    Returns:
        The source notebooks written.

    Raises:
        ValueError: an unknown chapter, or a source assignment that already exists.
    """
    known = available_chapters()
    if not chapters:
        raise ValueError("chapters must name at least one chapter, e.g. ['01']")
    for chapter in chapters:
        check.choice("chapters", chapter, sorted(known))
    root = Path(directory).expanduser().resolve()
    exchange_root = Path(exchange).expanduser().resolve() if exchange else root / "exchange"
    targets = {chapter: root / "source" / f"ps{chapter}" for chapter in chapters}
    existing = [str(target) for target in targets.values() if target.exists()]
    if existing:
        raise ValueError(f"chapters: {', '.join(existing)} already exist; remove them first")
    (root / "students").mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(config_text(course_id, exchange_root))
    (root / "students" / "nbgrader_config.py").write_text(student_config_text(course_id, exchange_root))
    written = []
    for chapter, target in targets.items():
        target.mkdir(parents=True)
        written.append(Path(shutil.copy(known[chapter], target)))
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m recon_lib.course init DIR --chapters 01 04``."""
    parser = argparse.ArgumentParser(prog="python -m recon_lib.course",
                                     description="Set up an nbgrader course from the graded solutions.")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("init", help="make DIR an nbgrader course with the chosen chapters")
    setup.add_argument("directory")
    setup.add_argument("--chapters", nargs="+", required=True, metavar="NN",
                       help=f"chapters to assign, of {' '.join(available_chapters())}")
    setup.add_argument("--course-id", default="recon")
    setup.add_argument("--exchange", default=None, help="exchange folder (default: DIR/exchange)")
    args = parser.parse_args(argv)
    try:
        written = init(args.directory, args.chapters, args.course_id, args.exchange)
    except ValueError as error:
        parser.error(str(error))
    for path in written:
        print(f"wrote {path}")
    print(f"Next: cd {args.directory} && nbgrader generate_assignment {written[0].parent.name}; "
          "give students students/nbgrader_config.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
