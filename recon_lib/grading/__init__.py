"""Instant feedback for the exercise sets (``exercises/NN_topic.ipynb``, every chapter).

How a learner meets it
----------------------
A task cell asks for a function; the locked check cell right below it calls ::

    rl.grading.check("01.closed_form", unit_closed_form)

The check runs the learner's function on several *fresh* cases (random models, depths,
widths, labels and real face images, drawn from a fixed seed inside ``torch.random.fork_rng``
so the learner's own random state is untouched), compares every answer with the library's
reference, and then either prints one line (``✔ Task 01.closed_form passed …``) or raises:

* :class:`NotImplementedYet` — the function still raises ``NotImplementedError``, the stub
  nbgrader's ClearSolutions leaves in the student copy;
* :class:`WrongAnswer` — says which case failed and what is wrong, recognising typical
  mistakes ("right shape but off by a factor equal to ∂ℓ/∂b — did you divide?"), plus the
  task's hint. It never prints the expected values.

Both are ``AssertionError`` subclasses: nbgrader's autograder scores a failing check cell 0 and
nbval fails. In Jupyter they render as the feedback text alone, without a traceback.

Adding a chapter's checks (the pattern ``ch00.py`` and ``ch01.py`` follow)
-------------------------------------------------------------------------
1. Create ``recon_lib/grading/chNN.py`` (NN = the chapter number). No registration list to
   edit: :func:`check` imports ``chNN`` from the task id ``"NN.name"`` on first use.
2. For each task write ``@task("NN.name", title=..., hint=..., n_cases=...)`` over a function
   ``(answer, n_cases) -> None`` that builds fresh cases with the library and
   :mod:`recon_lib.grading.cases` (real faces of several sizes, random MLPs), calls the learner
   through :func:`ask` (it clones the inputs and turns crashes into feedback), validates with
   :func:`expect_tensor` / :func:`expect_close`, and calls :func:`fail` with a specific message,
   using :func:`first_match` / :func:`constant_factor` to name typical mistakes. Make sure
   the cases contain the edge each typical mistake needs (a dead unit, a negative δ, …).
3. In ``solutions/NN_topic.ipynb`` put the answer between ``### BEGIN SOLUTION`` /
   ``### END SOLUTION`` in a function, follow it with a graded cell calling
   ``rl.grading.check("NN.name", fn)`` (extra seeds between ``### BEGIN HIDDEN TESTS`` /
   ``### END HIDDEN TESTS``). Give every cell a unique stable id, state "**Points:** N in M
   tasks" in the first cell, then run ``python scripts/run_notebooks.py solutions/NN_topic.ipynb``
   and ``python scripts/make_exercises.py``.
4. Add ``tests/test_grading_chNN.py``: a right answer per task that passes, and at least two
   typical wrong answers per task rejected with their specific message (as in
   ``tests/test_grading.py`` for chapters 00 and 01). ``tests/test_exercises.py`` then checks
   the new notebook's metadata, its generated exercise and its stubs without further edits.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
from torch import Tensor

__all__ = ["check", "task", "tasks", "ask", "fail", "expect_tensor", "expect_close", "first_match",
           "constant_factor", "GradingError", "NotImplementedYet", "WrongAnswer", "Task"]

TASK_ID = re.compile(r"^(\d\d)\.[a-z][a-z0-9_]*$")


class GradingError(AssertionError):
    """Feedback that a check did not pass; shown in Jupyter as its message alone."""

    def _render_traceback_(self) -> list[str]:  # IPython calls this instead of printing a traceback
        return str(self).splitlines()


class NotImplementedYet(GradingError):
    """The learner's function is still the stub (it raises ``NotImplementedError``)."""


class WrongAnswer(GradingError):
    """The learner's function ran but its answer is wrong (or it crashed) on some case."""


class _Mismatch(Exception):
    """Raised inside a task by :func:`fail`; :func:`check` adds the task, case and hint."""

    def __init__(self, message: str, case: str | None = None):
        super().__init__(message)
        self.message, self.case = message, case


@dataclass(frozen=True)
class Task:
    """One graded task: its id ``"NN.name"``, a title, a hint and the function that checks it."""

    id: str
    title: str
    hint: str
    n_cases: int
    run: Callable[[Callable[..., Any], int], None]


_TASKS: dict[str, Task] = {}


def task(task_id: str, *, title: str, hint: str, n_cases: int = 5) -> Callable:
    """Register a check function under ``task_id`` (decorator used by the ``chNN`` modules)."""
    if not TASK_ID.match(task_id):
        raise ValueError(f"task id {task_id!r} must look like '01.closed_form' (chapter.name)")

    def register(run: Callable[[Callable[..., Any], int], None]) -> Callable:
        _TASKS[task_id] = Task(task_id, title, hint, n_cases, run)
        return run

    return register


def _load_chapter(chapter: str) -> None:
    try:
        importlib.import_module(f"{__name__}.ch{chapter}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.ch{chapter}":
            raise


def tasks(chapter: str | None = None) -> dict[str, Task]:
    """All registered tasks, or those of one chapter (``"01"``), importing its module first."""
    if chapter is not None:
        _load_chapter(chapter)
        return {key: value for key, value in _TASKS.items() if key.startswith(f"{chapter}.")}
    return dict(_TASKS)


def _get(task_id: str) -> Task:
    match = TASK_ID.match(task_id) if isinstance(task_id, str) else None
    if match is None:
        raise ValueError(f"{task_id!r} is not a task id; they look like '01.closed_form'")
    known = tasks(match.group(1))
    if task_id not in known:
        raise ValueError(f"no task {task_id!r}; chapter {match.group(1)} has {sorted(known) or 'none'}")
    return known[task_id]


def check(task_id: str, answer: Callable[..., Any], *, seed: int = 0, n_cases: int | None = None) -> None:
    """Check the learner's function ``answer`` for task ``task_id`` on fresh seeded cases.

    Args:
        task_id: ``"NN.name"``, as written in the exercise's check cell.
        answer: the learner's function itself (not its result).
        seed: seeds the cases; hidden tests use other seeds, so hard-coded answers fail.
        n_cases: how many cases (default: the task's own number).

    Raises:
        NotImplementedYet: the function is still the stub.
        WrongAnswer: the function crashed or gave a wrong answer; the message says why.
        ValueError: ``task_id`` does not exist (a typo in the check cell).
    """
    found = _get(task_id)
    if not isinstance(seed, int) or (n_cases is not None and (not isinstance(n_cases, int) or n_cases < 1)):
        raise ValueError(f"seed must be an int and n_cases a positive int, got {seed!r} and {n_cases!r}")
    if not callable(answer):
        raise WrongAnswer(_format(found, f"check() needs your function itself, got a "
                                         f"{type(answer).__name__}. Pass the name without "
                                         "calling it: check(..., my_function), not my_function(...).", None))
    count = found.n_cases if n_cases is None else n_cases
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            found.run(answer, count)
    except NotImplementedError:
        raise NotImplementedYet(
            f"✘ Task {found.id} ({found.title}) is not implemented yet: your function (or one it "
            "calls) still raises NotImplementedError.\n  Replace the line `raise NotImplementedError()` "
            "with your code, run that cell, then run this check again.") from None
    except _Mismatch as mismatch:
        raise WrongAnswer(_format(found, mismatch.message, mismatch.case)) from None
    print(f"✔ Task {found.id} ({found.title}) passed on {count} fresh cases.")


def _format(found: Task, message: str, case: str | None) -> str:
    where = f"  On {case}:\n" if case else ""
    return (f"✘ Task {found.id} ({found.title}) is not right yet.\n{where}  {message}\n"
            f"  Hint: {found.hint}")


# --- Helpers for the chNN modules ----------------------------------------------------------
def fail(message: str, case: str | None = None) -> NoReturn:
    """Stop the check with a specific message (``case`` names the failing case)."""
    raise _Mismatch(message, case)


def _clone(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, Mapping):
        return {key: _clone(item) for key, item in value.items()}
    return value


def ask(answer: Callable[..., Any], *args: Any, case: str) -> Any:
    """Call the learner's function on copies of ``args``; a crash becomes feedback.

    ``NotImplementedError`` passes through (:func:`check` reports the stub). Inputs are cloned
    so that in-place edits by the learner cannot change the reference the answer is compared to.
    """
    try:
        return answer(*(_clone(arg) for arg in args))
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 - any crash of learner code is feedback, not a bug
        fail(f"your function raised {type(error).__name__}: {error}. Call it yourself on a small "
             "example to debug it.", case)


def expect_tensor(got: Any, shape: Sequence[int], case: str, what: str = "your function") -> Tensor:
    """The answer as a tensor of ``shape``, or a specific complaint (None, type, shape, NaN)."""
    if got is None:
        fail(f"{what} returned None. Did you forget the `return` statement?", case)
    if not isinstance(got, Tensor):
        fail(f"{what} returned a {type(got).__name__}; return a torch.Tensor.", case)
    if tuple(got.shape) != tuple(shape):
        fail(f"{what} returned shape {tuple(got.shape)} but this case needs {tuple(shape)}.", case)
    if got.is_floating_point() and not torch.isfinite(got).all():
        fail(f"{what} returned NaN or inf values. A division by zero somewhere?", case)
    return got.detach().cpu()  # compared with CPU references, whatever device the learner used


def expect_close(got: Tensor, want: Tensor, message: str, case: str,
                 atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """``fail(message)`` unless ``got`` equals ``want`` up to float round-off."""
    if not torch.allclose(got.detach().double().cpu(), want.detach().double().cpu(), atol=atol, rtol=rtol):
        error = (got.detach().double().cpu() - want.detach().double().cpu()).abs().max().item()
        fail(f"{message} (largest error {error:.2g}).", case)


def _same(a: Tensor, b: Tensor, atol: float, rtol: float) -> bool:
    return a.shape == b.shape and torch.allclose(a.detach().double().cpu(), b.detach().double().cpu(),
                                                 atol=atol, rtol=rtol)


def first_match(got: Tensor, mistakes: Sequence[tuple[Tensor, str]], right: Tensor | None = None,
                atol: float = 1e-4, rtol: float = 1e-4) -> str | None:
    """The message of the first typical mistake whose result equals ``got``, else None.

    Pass the reference as ``right``: on some cases a mistake gives the right answer too (dividing
    by Σ|δ| when every δ is positive, dividing by a known pixel whose value is 1), and then a
    correct answer must not be blamed for it, so such mistakes are skipped.
    """
    for result, message in mistakes:
        if _same(got, result, atol, rtol) and not (right is not None and _same(result, right, atol, rtol)):
            return message
    return None


def constant_factor(got: Tensor, want: Tensor, rtol: float = 1e-4) -> float | None:
    """c if ``got ≈ c · want`` for one scalar c (a scale mistake), else None."""
    got, want = got.detach().double().flatten().cpu(), want.detach().double().flatten().cpu()
    if got.shape != want.shape or not want.any():
        return None
    c = float(got @ want / (want @ want))
    residual = (got - c * want).norm() / want.norm()
    return c if residual < rtol * max(1.0, abs(c)) else None
