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

What a check promises (each is tested in ``tests/test_grading*.py``)
------------------------------------------------------------------
* It judges the behaviour the task asks for: values, and where the task states them dtype,
  shape, order, and — for a value an attack minimises — that gradients flow back to the inputs
  (:func:`expect_differentiable`).
* It accepts every correct answer however written, and its cases include the boundary cases
  that separate the right rule from its plausible neighbours (non-square images, rank-deficient
  batches, δ near the usability threshold, …) in the visible check as well as the hidden one.
* It never prints the expected values (tasks register them with :func:`expected`, and the tests
  assert no message contains them) and names a mistake only when the check has established it.
* It survives the learner's session and code: cases are built in float32 whatever
  ``torch.set_default_dtype`` the session set, and the learner's function runs under
  :mod:`recon_lib.grading.guard` — a time limit, ``sys.exit`` and any exception become a failed
  check with a message (``KeyboardInterrupt``, the stop button, still stops the check).

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
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
from torch import Tensor

from . import guard

__all__ = ["check", "task", "tasks", "ask", "fail", "expect_tensor", "expect_close", "first_match",
           "constant_factor", "expect_differentiable", "expected", "GradingError", "NotImplementedYet",
           "WrongAnswer", "Task"]

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
    time_limit: float = guard.TIME_LIMIT  # seconds per call of the learner's function


_TASKS: dict[str, Task] = {}
_time_limit: list[float | None] = [guard.TIME_LIMIT]  # of the check running now
_EXPECTED: list[Any] = []  # the reference answers of the check running now (see expected())


def task(task_id: str, *, title: str, hint: str, n_cases: int = 5,
         time_limit: float = guard.TIME_LIMIT) -> Callable:
    """Register a check function under ``task_id`` (decorator used by the ``chNN`` modules)."""
    if not TASK_ID.match(task_id):
        raise ValueError(f"task id {task_id!r} must look like '01.closed_form' (chapter.name)")

    def register(run: Callable[[Callable[..., Any], int], None]) -> Callable:
        _TASKS[task_id] = Task(task_id, title, hint, n_cases, run, time_limit)
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


def check(task_id: str, answer: Callable[..., Any], *, seed: int = 0, n_cases: int | None = None,
          time_limit: float | None = None) -> None:
    """Check the learner's function ``answer`` for task ``task_id`` on fresh seeded cases.

    Args:
        task_id: ``"NN.name"``, as written in the exercise's check cell.
        answer: the learner's function itself (not its result).
        seed: seeds the cases; hidden tests use other seeds, so hard-coded answers fail.
        n_cases: how many cases (default: the task's own number).
        time_limit: seconds one call of ``answer`` may take (default: the task's own, 30 s
            unless the task says otherwise); a slower call fails the check with a message.

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
    if time_limit is not None and not (isinstance(time_limit, numbers.Real) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    _time_limit.append(found.time_limit if time_limit is None else float(time_limit))
    _EXPECTED.clear()
    try:
        with torch.random.fork_rng(devices=[]), guard.case_dtype(), torch.enable_grad():
            torch.manual_seed(seed)
            found.run(answer, count)
    except NotImplementedError:
        raise NotImplementedYet(
            f"✘ Task {found.id} ({found.title}) is not implemented yet: your function (or one it "
            "calls) still raises NotImplementedError.\n  Replace the line `raise NotImplementedError()` "
            "with your code, run that cell, then run this check again.") from None
    except _Mismatch as mismatch:
        raise WrongAnswer(_format(found, mismatch.message, mismatch.case)) from None
    finally:
        _time_limit.pop()
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


def ask(answer: Callable[..., Any], *args: Any, case: str,
        explain: Callable[[BaseException], str | None] | None = None) -> Any:
    """Call the learner's function on copies of ``args``; a crash, exit or hang becomes feedback.

    ``NotImplementedError`` passes through (:func:`check` reports the stub). Inputs are cloned
    so that in-place edits by the learner cannot change the reference the answer is compared to
    (a clone of a tensor that requires grad stays connected to it, so gradients still flow).
    The call runs under :func:`recon_lib.grading.guard.call`: the learner's default dtype, a
    time limit, and every exception caught. ``explain`` may turn an exception the task knows
    (e.g. autograd's "does not require grad" without ``create_graph=True``) into a specific message.
    """
    limit = _time_limit[-1]
    try:
        return guard.call(answer, tuple(_clone(arg) for arg in args), limit)
    except guard.TimedOut:
        fail(f"your function did not return within {limit:g} s on this case, so the check stopped it. "
             "An endless loop (a `while` whose condition never changes), a `time.sleep` or an "
             "`input()`? Call it yourself on a small example.", case)
    except guard.Crashed as crashed:
        error = crashed.error
        if isinstance(error, SystemExit):
            fail("your function called sys.exit() (or exit()/quit()), which would end the program; "
                 "return a value instead.", case)
        known = explain(error) if explain is not None else None
        fail(f"your function raised {type(error).__name__}: {error}. " + (known or "Call it yourself on "
             "a small example to debug it."), case)


def expected(*values: Any) -> None:
    """Register the reference answer(s) of the current case: no message may contain them.

    The tests run wrong answers and assert that no feedback text holds a registered value
    (``tests/test_grading_promises.py``); the check itself never prints them.
    """
    _EXPECTED.extend(values)


def expect_tensor(got: Any, shape: Sequence[int], case: str, what: str = "your function",
                  dtype: torch.dtype | None = None) -> Tensor:
    """The answer as a tensor of ``shape`` (and ``dtype`` where the task states one), or a
    specific complaint (None, type, shape, dtype, NaN)."""
    if got is None:
        fail(f"{what} returned None. Did you forget the `return` statement?", case)
    if not isinstance(got, Tensor):
        fail(f"{what} returned a {type(got).__name__}; return a torch.Tensor.", case)
    if tuple(got.shape) != tuple(shape):
        fail(f"{what} returned shape {tuple(got.shape)} but this case needs {tuple(shape)}.", case)
    if dtype is not None and got.dtype != dtype:
        fail(f"{what} returned dtype {got.dtype}, but the task asks for {dtype}"
             f"{' (cast with .to(' + str(dtype) + '))' if got.is_floating_point() else ''}.", case)
    if got.is_floating_point() and not torch.isfinite(got).all():
        fail(f"{what} returned NaN or inf values. A division by zero somewhere?", case)
    return got.detach().cpu()  # compared with CPU references, whatever device the learner used


def expect_close(got: Tensor, want: Tensor, message: str, case: str,
                 atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """``fail(message)`` unless ``got`` equals ``want`` up to float round-off."""
    if not torch.allclose(got.detach().double().cpu(), want.detach().double().cpu(), atol=atol, rtol=rtol):
        error = (got.detach().double().cpu() - want.detach().double().cpu()).abs().max().item()
        fail(f"{message} (largest error {error:.2g}).", case)


def expect_differentiable(got: Any, inputs: Sequence[Tensor], want: Sequence[Tensor] | None, case: str,
                          what: str = "your value", atol: float = 1e-6, rtol: float = 1e-4) -> None:
    """``got`` must be a tensor whose autograd gradient with respect to ``inputs`` is ``want``.

    With ``want=None`` only that it has an autograd graph (call this before the value checks,
    and again with the reference gradients after them).

    For a value an attack minimises (a distance, a penalty): the right numbers computed through
    ``.item()``, ``.detach()``, NumPy or ``torch.tensor(...)`` cannot be minimised, so they fail.
    """
    if isinstance(got, numbers.Number) or (isinstance(got, Tensor) and got.grad_fn is None):
        how = ("a Python number" if isinstance(got, numbers.Number)
               else "a tensor with no autograd graph (requires_grad is False)")
        fail(f"{what} is {how}, so an attack cannot minimise it: gradients do not flow back to "
             "the inputs. Did you use .item(), .detach(), .numpy(), float(...), torch.tensor(...) "
             "or torch.no_grad()? Keep every step a torch operation on the inputs.", case)
    if want is None or not isinstance(got, Tensor) or got.numel() != 1:
        return  # the value checks say what is wrong with it
    grads = torch.autograd.grad(got.sum(), list(inputs), allow_unused=True)
    for grad, reference in zip(grads, want, strict=True):
        if grad is None or not torch.isfinite(grad).all():
            fail(f"{what} does not pass a finite gradient to every input: part of it is computed "
                 "outside autograd (or through a step with no gradient, such as sqrt at 0).", case)
        if not _same(grad, reference, atol, rtol):
            fail(f"{what} has the right value but the wrong gradient with respect to its inputs: "
                 "part of it is computed outside autograd (e.g. a .detach() on one term).", case)


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
