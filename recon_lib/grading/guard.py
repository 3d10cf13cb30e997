"""Run a learner's function so that nothing it does can break the check or the kernel.

:func:`recon_lib.grading.ask` calls the learner through :func:`call`, which

* restores the learner's own default dtype while their code runs (the check builds its cases
  in float32 whatever ``torch.set_default_dtype`` the learner's session chose, see
  :func:`case_dtype`), so an answer behaves as it does in the learner's notebook;
* stops an answer that does not return within a time limit (an endless loop, ``time.sleep``,
  ``input()``): in the main thread (a Jupyter kernel runs cells there) with ``SIGALRM``, which
  also interrupts a sleep; elsewhere (another thread, Windows) by running the answer in a
  daemon thread, waiting at most the limit, then asking that thread to stop
  (``PyThreadState_SetAsyncExc``: it stops at its next Python instruction; a single C call that
  never returns keeps its thread busy, but the check and the kernel go on);
* turns ``sys.exit()``/``exit()`` (``SystemExit``) and any other exception into :class:`Crashed`,
  which the check reports as a failed check with the message.

``KeyboardInterrupt`` is *not* caught: it is how Jupyter's stop button and Ctrl-C end a cell,
and a check must stop when the learner asks it to (the cell then errors, which scores 0 under
nbgrader, like any other failing check). An answer that calls ``os._exit`` or crashes the
interpreter in C still ends the kernel: only a separate process could prevent that.
"""
from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

TIME_LIMIT = 30.0  # seconds one call of the learner's function may take, unless a task says otherwise

_learner_dtype: list[torch.dtype] = [torch.float32]  # the learner's default dtype while a check runs


class TimedOut(BaseException):
    """The learner's function ran past the time limit (a BaseException: ``except Exception``
    in the learner's code must not swallow it)."""


class Crashed(Exception):
    """The learner's function raised (or called ``sys.exit``); ``error`` is what it raised."""

    def __init__(self, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


@contextmanager
def case_dtype() -> Iterator[None]:
    """Build cases in float32 (the library's references assume it); remember the learner's dtype."""
    learner = torch.get_default_dtype()
    _learner_dtype.append(learner)
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        _learner_dtype.pop()
        torch.set_default_dtype(learner)


def learner_dtype() -> torch.dtype:
    """The default dtype of the learner's session (for a task whose cases must match it)."""
    return _learner_dtype[-1]


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _raise_timed_out(signum: int, frame: Any) -> None:
    raise TimedOut()


def _with_alarm(function: Callable[[], Any], seconds: float) -> Any:
    previous = signal.signal(signal.SIGALRM, _raise_timed_out)
    outer = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return function()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer[0] > 0:  # somebody else's timer was running: give it back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer[0] - seconds, 1e-3), outer[1])


def _in_thread(function: Callable[[], Any], seconds: float) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = function()
        except BaseException as error:  # noqa: B036 - carried to the calling thread
            box["error"] = error

    worker = threading.Thread(target=target, name="rl.grading answer", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident or 0),
                                                   ctypes.py_object(TimedOut))
        raise TimedOut()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def call(function: Callable[..., Any], args: tuple, seconds: float | None) -> Any:
    """``function(*args)`` under the learner's dtype and a time limit.

    Raises:
        NotImplementedError: passed through (the stub; :func:`recon_lib.grading.check` says so).
        TimedOut: no return within ``seconds``.
        Crashed: any other exception, ``SystemExit`` included.
        KeyboardInterrupt: passed through (the learner stopped the cell).
    """
    def run() -> Any:
        with _default_dtype(_learner_dtype[-1]):
            return function(*args)

    try:
        if seconds is None:
            return run()
        return _with_alarm(run, seconds) if _can_alarm() else _in_thread(run, seconds)
    except (NotImplementedError, TimedOut, KeyboardInterrupt):
        raise
    except BaseException as error:  # noqa: B036 - SystemExit and the rest become feedback
        raise Crashed(error) from None
