"""README "For instructors" and the students' side, run as a class would run them.

One temporary folder outside the repository holds the instructor's course, three students'
home folders and the exchange between them. Every step is the command the README gives, run in
a subprocess with its own HOME and Jupyter folders, so no file outside the temporary folder is
read or written (in particular not nbgrader's system exchange /usr/local/share/nbgrader):

    init → generate_assignment → release_assignment → fetch_assignment → submit (alice: the
    solution, bob: the untouched exercise, carol: one wrong answer) → collect → autograde →
    generate_feedback → export → release_feedback → fetch_feedback

and asserts the grades (full / 0 / partial), that every check's message reaches the feedback
while no hidden test does, and that nothing handed to students holds solution code. Chapter 00
(3 tasks) keeps it short. Nothing here depends on running as root (CI does, learners do not).
"""
import csv
import html
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import recon_lib.grading as grading

ROOT = Path(__file__).resolve().parents[1]
CHAPTER, ASSIGNMENT, NOTEBOOK = "00", "ps00", "00_threat_model.ipynb"
WRONG = {  # carol's one wrong answer: the batch's message as the sum, not the mean
    "task2": ("def batch_message(per_sample):\n"
              "    return {name: grads.sum(dim=0) for name, grads in per_sample.items()}\n"),
}
STUDENTS = ("alice", "bob", "carol")


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _between(source: str, begin: str, end: str) -> list[str]:
    """The non-blank lines strictly between the nbgrader markers ``begin`` and ``end``."""
    inside, lines = False, []
    for line in source.splitlines():
        if begin in line or end in line:
            inside = begin in line
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def _text(path: Path) -> str:
    """A feedback page as plain text: tags and ANSI colours dropped, entities decoded."""
    page = re.sub(r"<[^>]+>", "", path.read_text())
    return html.unescape(re.sub(r"\x1b\[[0-9;]*m", "", page))


def _user(home: Path) -> dict[str, str]:
    """The environment of a user whose home folder is ``home``: own Jupyter and IPython folders."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "NBGRADER"))}
    env.update(HOME=str(home), IPYTHONDIR=str(home / ".ipython"), JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
               JUPYTER_RUNTIME_DIR=str(home / ".runtime"),
               JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"),
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    return env


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """Run the whole loop once; return the folders and the source notebook."""
    base = tmp_path_factory.mktemp("classroom")
    def run(*command: str, cwd: Path, home: Path) -> str:
        done = subprocess.run([sys.executable, "-m", *command], cwd=cwd, env=_user(home), text=True,
                              capture_output=True, timeout=300)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    course, teacher = base / "mycourse", base / "teacher"  # the instructor's home is not the course
    run("recon_lib.course", "init", "mycourse", "--chapters", CHAPTER, cwd=base, home=teacher)
    run("nbgrader", "generate_assignment", ASSIGNMENT, cwd=course, home=teacher)
    run("nbgrader", "release_assignment", ASSIGNMENT, cwd=course, home=teacher)
    source = nbformat.read(course / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    for student in STUDENTS:
        home = base / student
        home.mkdir()
        (home / "nbgrader_config.py").write_text((course / "students" / "nbgrader_config.py").read_text())
        run("nbgrader", "fetch_assignment", ASSIGNMENT, cwd=home, home=home)
        _answer(home / ASSIGNMENT / NOTEBOOK, student, source)
        # One OS account plays three students, so each names itself (a real class has logins).
        run("nbgrader", "submit", ASSIGNMENT, f"--student={student}", cwd=home, home=home)
    log = run("nbgrader", "collect", ASSIGNMENT, cwd=course, home=teacher)
    log += run("nbgrader", "autograde", ASSIGNMENT, "--create", cwd=course, home=teacher)
    log += run("nbgrader", "generate_feedback", ASSIGNMENT, cwd=course, home=teacher)
    run("nbgrader", "export", cwd=course, home=teacher)
    run("nbgrader", "release_feedback", ASSIGNMENT, cwd=course, home=teacher)
    for student in STUDENTS:
        home = base / student
        run("nbgrader", "fetch_feedback", ASSIGNMENT, f"--student={student}", cwd=home, home=home)
    return {"base": base, "course": course, "source": source, "log": log}


def _answer(path: Path, student: str, source: nbformat.NotebookNode) -> None:
    """alice pastes the solutions, bob leaves the exercise untouched, carol gets task 2 wrong."""
    if student == "bob":
        return
    notebook = nbformat.read(path, as_version=4)
    solutions = {cell.id: cell.source for cell in source.cells}
    for cell in notebook.cells:
        if _meta(cell).get("solution"):
            cell.source = WRONG[cell.id] if student == "carol" and cell.id in WRONG else solutions[cell.id]
    nbformat.write(notebook, path)


def _points(source) -> dict[str, float]:
    return {cell.id: _meta(cell)["points"] for cell in source.cells if _meta(cell).get("grade")}


@pytest.mark.slow  # the loop takes about a minute on a loaded 2-core CPU
def test_the_grades_are_full_zero_and_partial(classroom):
    points = _points(classroom["source"])
    with open(classroom["course"] / "grades.csv") as table:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                  for row in csv.DictReader(table)}
    total = sum(points.values())
    assert scores == {"alice": (total, total), "bob": (0.0, total),
                      "carol": (total - points["check_task2"], total)}
    assert 0 < scores["carol"][0] < total


@pytest.mark.slow  # the loop takes about a minute on a loaded 2-core CPU
def test_what_students_receive_holds_no_solution_and_no_hidden_test(classroom):
    course, base, source = classroom["course"], classroom["base"], classroom["source"]
    secret = [line for cell in source.cells
              for line in _between(cell.source, "BEGIN SOLUTION", "END SOLUTION")
              + _between(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")]
    assert secret, "the source must have solutions and hidden tests for this test to mean anything"
    handed_out = [course / "release" / ASSIGNMENT / NOTEBOOK,
                  course / "exchange" / "recon" / "outbound" / ASSIGNMENT / NOTEBOOK,
                  base / "bob" / ASSIGNMENT / NOTEBOOK]  # bob's is the fetched copy, untouched
    for path in handed_out:
        text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        assert "SOLUTION" not in text and "HIDDEN" not in text, path
        assert not [line for line in secret if line in text], path


@pytest.mark.slow  # the loop takes about a minute on a loaded 2-core CPU
def test_feedback_holds_every_checks_message_and_no_hidden_test(classroom):
    course, base, source = classroom["course"], classroom["base"], classroom["source"]
    hidden = [line for cell in source.cells
              for line in _between(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")]
    tasks = [re.match(r'rl\.grading\.check\("([\w.]+)"', cell.source)[1]
             for cell in source.cells if _meta(cell).get("grade")]
    autograded = (course / "autograded" / "alice" / ASSIGNMENT / NOTEBOOK).read_text()
    assert all(json_line in autograded for json_line in ("BEGIN HIDDEN TESTS", hidden[0].replace('"', '\\"')))
    wrong_message = _message_for_wrong_batch_mean()
    for student in STUDENTS:
        pages = [course / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html"),
                 *(base / student / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK.replace('.ipynb', '.html')}")]
        assert len(pages) == 2, pages  # generated for the instructor, fetched by the student
        for page in pages:
            text = _text(page)
            assert "HIDDEN TESTS" not in text and not [line for line in hidden if line in text], page
            for task in tasks:
                expected = {"alice": "passed", "bob": "is not implemented yet",
                            "carol": "passed" if task != "00.batch_mean" else ""}[student]
                assert re.search(rf"Task {re.escape(task)} \([^)]*\) {expected}", text), (student, task)
            if student == "carol":
                assert all(line in text for line in wrong_message), page


def _message_for_wrong_batch_mean() -> list[str]:
    """The lines of what the visible check tells carol (same seed as her check cell)."""
    namespace: dict = {}
    exec(WRONG["task2"], namespace)
    with pytest.raises(grading.WrongAnswer) as caught:
        grading.check("00.batch_mean", namespace["batch_message"])
    return [line.strip() for line in str(caught.value).splitlines() if line.strip()]


@pytest.mark.slow  # the loop takes about a minute on a loaded 2-core CPU
def test_autograde_warns_only_about_the_restored_check_cells(classroom):
    """nbgrader restores each locked check cell with its hidden tests and says its checksum changed.

    README "For instructors" explains these warnings: one per check cell, none for other cells.
    """
    warnings = [line for line in classroom["log"].splitlines() if "WARNING" in line]
    changed = {match[1] for line in warnings
               if (match := re.search(r"checksum' for cell (\w+) has changed", line))}
    assert changed == set(_points(classroom["source"]))


@pytest.mark.parametrize("exchange", [None, "shared/exchange"])
def test_init_writes_configs_nbgrader_reads_and_copies_the_solutions(tmp_path, exchange):
    from nbgrader.converters import GenerateFeedback
    from nbgrader.preprocessors import ClearHiddenTests
    from traitlets.config.loader import PyFileConfigLoader

    from recon_lib import course

    written = course.init(tmp_path / "c", ["01", "04"], exchange=exchange and tmp_path / exchange)
    assert [path.relative_to(tmp_path / "c").as_posix() for path in written] == [
        "source/ps01/01_one_hidden_node.ipynb", "source/ps04/04_optimisation_attacks.ipynb"]
    assert written[0].read_bytes() == (ROOT / "solutions" / "01_one_hidden_node.ipynb").read_bytes()
    expected = tmp_path / (exchange or "c/exchange")
    for folder in ("c", "c/students"):
        config = PyFileConfigLoader("nbgrader_config.py", str(tmp_path / folder)).load_config()
        assert config.CourseDirectory.course_id == "recon" and config.Exchange.root == str(expected)
    config = PyFileConfigLoader("nbgrader_config.py", str(tmp_path / "c")).load_config()
    classes = [getattr(importlib.import_module(name.rpartition(".")[0]), name.rpartition(".")[2])
               for name in config.GenerateFeedback.preprocessors]
    # nbgrader's own feedback pipeline, unchanged, with ClearHiddenTests added at the end
    assert classes == [*GenerateFeedback.class_traits()["preprocessors"].default(), ClearHiddenTests]


def test_init_refuses_an_unknown_chapter_and_an_existing_assignment(tmp_path, capsys):
    from recon_lib import course

    course.init(tmp_path / "c", ["00"])
    with pytest.raises(ValueError, match="already exist"):
        course.init(tmp_path / "c", ["00"])
    with pytest.raises(SystemExit):
        course.main(["init", str(tmp_path / "d"), "--chapters", "99"])
    assert "chapters must be one of" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_the_package_list_holds_every_subpackage_and_the_solutions():
    """pyproject lists the packages (to map solutions/ into the wheel); a new one must be added."""
    import tomllib
    from setuptools import find_packages

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_packages(str(ROOT), include=["recon_lib*"]))
    assert found | {"recon_lib.solutions"} == set(setup["packages"])
    assert setup["package-dir"] == {"recon_lib.solutions": "solutions"}
    assert "*.ipynb" in setup["package-data"]["recon_lib.solutions"]


def hidden_test_rows() -> list[str]:
    """README's table of what the hidden tests do, from the solutions: seeds and case counts.

    Case counts are read from the stored outputs of each check cell ("passed on N fresh cases"),
    whose first line is the visible check's and second the hidden test's.
    """
    rows = []
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")):
        visible, hidden = [], []
        for cell in nbformat.read(path, as_version=4).cells:
            if not _meta(cell).get("grade"):
                continue
            output = "".join(out.get("text", "") for out in cell.outputs)
            counts = re.findall(r"passed on (\d+) fresh cases", output)
            seeds = re.findall(r"seed=(\d+)", "\n".join(_between(cell.source, "BEGIN HIDDEN", "END HIDDEN")))
            assert len(counts) == 1 + len(seeds) and len(seeds) <= 1, (path.name, cell.id)
            visible.append(counts[0])
            seed = "" if not seeds or seeds[0] == "2021" else f" (seed {seeds[0]})"
            hidden.append(counts[1] + seed if seeds else "none")
        rows.append(f"  | {path.name[:2]} | {', '.join(visible)} | {', '.join(hidden)} |")
    return rows


def test_readme_says_what_the_hidden_tests_do_per_chapter():
    readme = (ROOT / "README.md").read_text()
    assert all(row in readme.splitlines() for row in hidden_test_rows()), "\n".join(hidden_test_rows())


@pytest.mark.slow  # about 30 s
def test_the_readme_dry_run_runs_verbatim_from_an_empty_folder(tmp_path):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    block = next(b for b in blocks if "recon_lib.course init" in b)
    folder = tmp_path / "empty"
    folder.mkdir()
    done = subprocess.run(["bash", "-e", "-c", block], cwd=folder, env=_user(tmp_path / "home"), text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(folder / "mycourse" / "grades.csv") as table:
        (row,) = csv.DictReader(table)
    points = sum(_points(nbformat.read(ROOT / "solutions" / NOTEBOOK, as_version=4)).values())
    assert (row["student_id"], float(row["score"]), float(row["max_score"])) == ("alice", 0.0, points)
    assert f"score 0.0 of max_score {points:.1f}" in readme


def test_the_instructors_guide_is_linked_from_the_readme_and_its_links_resolve():
    guide = (ROOT / "INSTRUCTORS.md").read_text()
    assert "](INSTRUCTORS.md)" in (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(#[^)]*)?\)", guide)
    chapters = {f"notebooks/{path.name}" for path in (ROOT / "notebooks").glob("0[0-7]_*.ipynb")}
    assert chapters <= {target for target, _ in targets}
    assert all((ROOT / target).exists() for target, _ in targets), targets
    anchors = {"#" + re.sub(r"[^\w\- ]", "", line.lstrip("# ").lower()).replace(" ", "-")
               for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("#")}
    assert {anchor for _, anchor in targets if anchor} <= anchors
