"""The exercise sets keep their promises (nbval runs the solutions themselves, see pyproject):

* ``exercises/`` is exactly what ``scripts/make_exercises.py`` makes from ``solutions/``;
* solutions carry valid nbgrader metadata, one locked check cell per task, with hidden tests;
* an untouched exercise runs, and every check cell says "not implemented yet" (nbclient);
* nbgrader itself imports a solution, releases it, and autogrades a filled-in copy to full
  marks and an untouched copy to zero.
"""
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.preprocessors import CheckCellMetadata

import recon_lib.grading as grading

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts import make_exercises  # noqa: E402
from scripts.notebook_env import STORED_OUTPUT_ENV  # noqa: E402

SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
NAMES = [path.name for path in SOLUTIONS]
CHECK_CALL = re.compile(r'^rl\.grading\.check\("(\d\d\.\w+)", (\w+)\)$')


def read(folder: str, name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / name, as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def tasks_of(notebook) -> list[tuple]:
    """(solution cell, check cell) pairs, in order."""
    cells = notebook.cells
    return [(cell, cells[i + 1]) for i, cell in enumerate(cells) if nbgrader_meta(cell).get("solution")]


def test_there_are_solution_sets_for_chapters_00_and_01():
    assert {"00_threat_model.ipynb", "01_one_hidden_node.ipynb"} <= set(NAMES)


def test_exercises_are_exactly_what_the_command_generates(tmp_path):
    make_exercises.main(["--out", str(tmp_path)])
    generated = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert generated == sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb")) == NAMES
    for name in generated:
        assert (tmp_path / name).read_bytes() == (ROOT / "exercises" / name).read_bytes(), (
            f"exercises/{name} differs from its solution: run python scripts/make_exercises.py")


def test_generating_twice_gives_identical_bytes(tmp_path):
    make_exercises.generate(SOLUTIONS, tmp_path / "a")
    make_exercises.generate(SOLUTIONS, tmp_path / "b")
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in NAMES)


def _broken(change) -> nbformat.NotebookNode:
    notebook = read("solutions", "01_one_hidden_node.ipynb")
    change(notebook)
    return notebook


def _task_cell(notebook):
    return next(cell for cell in notebook.cells if nbgrader_meta(cell).get("solution"))


BROKEN_SOLUTIONS = {
    "missing id": (lambda nb: nb.cells[1].pop("id"), "stable id"),
    "repeated id": (lambda nb: setattr(nb.cells[2], "id", nb.cells[1].id), "repeated"),
    "no END SOLUTION": (lambda nb: setattr(_task_cell(nb), "source",
                                           _task_cell(nb).source.replace("### END SOLUTION", "")),
                        "END SOLUTION"),
    "solution in an unmarked cell": (lambda nb: nbgrader_meta(_task_cell(nb)).update(solution=False),
                                     "marked as a solution cell"),
    "repeated grade id": (lambda nb: nbgrader_meta(nb.cells[1]).update(grade_id="task1"),
                          "invalid nbgrader cell metadata"),
}


@pytest.mark.parametrize("problem", sorted(BROKEN_SOLUTIONS))
def test_a_broken_solution_gets_a_clear_error_not_a_silent_copy(problem, tmp_path, capsys):
    change, message = BROKEN_SOLUTIONS[problem]
    source = tmp_path / "01_one_hidden_node.ipynb"
    source.write_text(json.dumps(_broken(change)))  # not nbformat.writes: it would repair ids
    with pytest.raises(SystemExit):
        make_exercises.main([str(source), "--out", str(tmp_path / "out")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / source.name).exists()


@pytest.mark.parametrize("name", NAMES)
def test_solution_metadata_is_nbgrader_ready(name):
    notebook = read("solutions", name)
    CheckCellMetadata().preprocess(nbformat.from_dict(notebook), {})  # raises on bad metadata
    ids = [cell.id for cell in notebook.cells]
    assert len(set(ids)) == len(ids), "cell ids must be unique"
    grade_ids = [nbgrader_meta(c)["grade_id"] for c in notebook.cells if nbgrader_meta(c)]
    assert len(set(grade_ids)) == len(grade_ids)
    assert all(nbgrader_meta(c).get("schema_version") == 3 for c in notebook.cells if nbgrader_meta(c))


@pytest.mark.parametrize("name", NAMES)
def test_every_task_is_a_function_followed_by_its_locked_check(name):
    notebook, chapter = read("solutions", name), name[:2]
    checked = []
    for solution, check_cell in tasks_of(notebook):
        meta = nbgrader_meta(check_cell)
        assert meta["grade"] and meta["locked"] and meta["points"] > 0 and not meta["solution"]
        first_line, *rest = check_cell.source.splitlines()
        task_id, function = CHECK_CALL.match(first_line).groups()
        assert task_id.startswith(f"{chapter}.") and f"def {function}(" in solution.source
        assert "### BEGIN SOLUTION" in solution.source
        assert rest[0] == "### BEGIN HIDDEN TESTS" and rest[-1] == "### END HIDDEN TESTS"
        assert f'rl.grading.check("{task_id}", {function}, seed=' in "\n".join(rest)
        checked.append(task_id)
    assert sorted(checked) == sorted(grading.tasks(chapter)), "each registered task checked once"


@pytest.mark.parametrize("name", NAMES)
def test_the_intro_states_the_real_points_and_task_count(name):
    notebook = read("solutions", name)
    points = sum(nbgrader_meta(c).get("points", 0) for c in notebook.cells if nbgrader_meta(c).get("grade"))
    stated = re.search(r"\*\*Points:\*\* (\d+) in (\d+) tasks", notebook.cells[0].source)
    assert stated and (int(stated[1]), int(stated[2])) == (points, len(tasks_of(notebook)))


@pytest.mark.parametrize("name", NAMES)
def test_solutions_store_passing_checks_for_nbval(name):
    for _, check_cell in tasks_of(read("solutions", name)):
        text = "".join(output.get("text", "") for output in check_cell.outputs)
        assert text.startswith("✔ Task") and "✘" not in text


@pytest.mark.parametrize("name", NAMES)
def test_exercise_hides_solutions_hidden_tests_and_outputs(name):
    exercise = read("exercises", name)
    text = "\n".join(cell.source for cell in exercise.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in exercise.cells if cell.cell_type == "code")
    assert [c.id for c in exercise.cells] == [c.id for c in read("solutions", name).cells]
    for solution, check_cell in tasks_of(exercise):
        assert "raise NotImplementedError()" in solution.source
        assert check_cell.metadata["editable"] is False


@pytest.mark.parametrize("name", NAMES)
def test_untouched_exercise_fails_every_check_with_not_implemented_yet(name, monkeypatch):
    for key, value in STORED_OUTPUT_ENV.items():
        monkeypatch.setenv(key, value)
    notebook = read("exercises", name)
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(ROOT / "exercises")}}).execute()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        errors = [output for output in cell.outputs if output.output_type == "error"]
        if nbgrader_meta(cell).get("grade"):
            assert len(errors) == 1 and errors[0].ename == "NotImplementedYet", cell.id
            assert "is not implemented yet" in errors[0].evalue
            assert "Traceback" not in "".join(errors[0].traceback)  # feedback only, no stack
        else:
            assert not errors, f"{name}:{cell.id} must run cleanly in the student copy"


# --- The real client: nbgrader generate_assignment, then autograde ---------------------------
def _course(root: Path):
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = "recon"
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'recon'\n")
    return NbGraderAPI(config=config)


def _submit(root: Path, student: str, name: str, filled: bool) -> None:
    released = nbformat.read(root / "release" / "ps01" / name, as_version=4)
    if filled:  # the student's answers: the solution code in the released solution cells
        answers = {cell.id: cell.source for cell in read("solutions", name).cells}
        for cell in released.cells:
            if nbgrader_meta(cell).get("solution"):
                cell.source = answers[cell.id]
    folder = root / "submitted" / student / "ps01"
    folder.mkdir(parents=True)
    nbformat.write(released, folder / name)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's own session use
def test_nbgrader_releases_and_autogrades_full_marks_and_zero(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    for key, value in STORED_OUTPUT_ENV.items():
        monkeypatch.setenv(key, value)
    name = "01_one_hidden_node.ipynb"  # the largest set; chapter 00 is released below too
    for assignment, notebooks in (("ps00", ["00_threat_model.ipynb"]), ("ps01", [name])):
        (tmp_path / "source" / assignment).mkdir(parents=True)
        for notebook in notebooks:
            shutil.copy(ROOT / "solutions" / notebook, tmp_path / "source" / assignment)
    api = _course(tmp_path)
    for assignment in ("ps00", "ps01"):
        result = api.generate_assignment(assignment, force=True)
        assert result["success"], result.get("error")
    for assignment, notebook in (("ps00", "00_threat_model.ipynb"), ("ps01", name)):
        released = nbformat.read(tmp_path / "release" / assignment / notebook, as_version=4)
        assert [c.source for c in released.cells] == [c.source for c in read("exercises", notebook).cells]
    _submit(tmp_path, "alice", name, filled=True)
    _submit(tmp_path, "bob", name, filled=False)
    for student in ("alice", "bob"):
        result = api.autograde("ps01", student, force=True, create=True)
        assert result["success"], result.get("error")
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        alice, bob = (gradebook.find_submission("ps01", s) for s in ("alice", "bob"))
        assert alice.max_score == 8 and alice.score == alice.max_score
        assert bob.score == 0
        assert alice.needs_manual_grade is False


def test_the_feedback_benchmark_times_every_solution_function():
    from benchmarks import grading_checks

    found = grading_checks.solution_functions()
    chapters = {name[:2] for name in NAMES}
    assert sorted(found) == sorted(task for chapter in chapters for task in grading.tasks(chapter))
    assert all(callable(function) for _, function in found.values())


@pytest.fixture(scope="module")
def solution_functions():
    from benchmarks import grading_checks

    return grading_checks.solution_functions()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_every_solution_passes_its_own_check_on_other_seeds(solution_functions, seed):
    """A check that rejects its solution on some seed would reject a right learner there too."""
    failing = {}
    for task_id, (_, function) in solution_functions.items():
        try:
            grading.check(task_id, function, seed=seed)
        except grading.WrongAnswer as error:
            failing[task_id] = str(error).splitlines()[1:3]
    assert not failing, failing
