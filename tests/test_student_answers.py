"""An outside set of student answers, graded by the real checks (issue 14, "Done when").

``tests/student_answers/chNN.py`` holds plausible answers to every graded task of chapters
00–03, written from the task text alone: correct ones written differently from the solutions,
and wrong ones of the kinds learners produce (swapped axes, a wrong threshold, an off-by-one, an
unsorted or float result, …). Each correct answer must pass the visible check (seed 0) and the
hidden test's seed (2021); each wrong one must be rejected by the visible check, so that a
learner is warned before the hidden tests take the points. A known gap is an ``xfail(strict)``
naming it; the module's last test prints the rejection rate.
"""
import importlib
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import recon_lib.grading as grading

CHAPTERS = ("00", "01", "02", "03")
ANSWERS = {task: answers for chapter in CHAPTERS
           for task, answers in importlib.import_module(f"student_answers.ch{chapter}").ANSWERS.items()}
ROOT = Path(__file__).resolve().parents[1]
HIDDEN_SEED = 2021  # the seed of the hidden tests in solutions/

#: Answers the checks grade wrongly today: (task, label) → why. For the checks' owner to fix.
#: (The first run's eight and the second run's four were closed on branch checks.)
KNOWN_GAPS: dict[tuple[str, str], str] = {}

#: Answers whose verdict is not reproducible today: the check keeps state between calls, so the
#: same answer, seed and global random state meet other cases on a later call. Left out of the rates.
UNSTABLE: dict[tuple[str, str], str] = {}


def _cases():
    for task, answers in sorted(ANSWERS.items()):
        for label, function, correct in answers:
            marks = ()
            if (task, label) in KNOWN_GAPS:
                marks = pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[task, label])
            if (task, label) in UNSTABLE:  # not strict: the outcome changes from run to run
                marks = pytest.mark.xfail(strict=False, reason=UNSTABLE[task, label])
            yield pytest.param(task, function, correct, marks=marks, id=f"{task}-{label}")


def _verdict(task: str, function, seed: int, global_seed: int = 0) -> str | None:
    """None when the check passes, else the first line of its message.

    The global random generators are seeded first: a check's cases should depend on ``seed``
    only, but some do not (see ``test_the_verdict_does_not_depend_on_the_global_random_state``).
    """
    torch.manual_seed(global_seed)
    np.random.seed(global_seed)
    random.seed(global_seed)
    try:
        grading.check(task, function, seed=seed)
    except grading.WrongAnswer as error:
        return str(error).strip().splitlines()[0]
    return None


def test_the_set_covers_every_task_with_two_right_and_four_wrong_answers():
    assert sorted(ANSWERS) == sorted(task for chapter in CHAPTERS for task in grading.tasks(chapter))
    for task, answers in ANSWERS.items():
        assert sum(correct for *_, correct in answers) >= 2, task
        assert sum(not correct for *_, correct in answers) >= 4, task
        assert len({label for label, *_ in answers}) == len(answers), task


@pytest.mark.parametrize(("task", "function", "correct"), _cases())
def test_right_answers_pass_and_wrong_answers_are_rejected(task, function, correct):
    if correct:
        for seed in (0, HIDDEN_SEED):
            assert _verdict(task, function, seed) is None, (seed, _verdict(task, function, seed))
    else:
        assert _verdict(task, function, 0) is not None, "the visible check passed a wrong answer"


@pytest.fixture(scope="module")
def rates():
    """(wrong answers rejected, wrong answers, right answers rejected, right answers), printed."""
    graded = [(task, label, fn, ok) for task, answers in ANSWERS.items() for label, fn, ok in answers
              if (task, label) not in UNSTABLE]
    wrong = [(task, label, fn) for task, label, fn, ok in graded if not ok]
    right = [(task, label, fn) for task, label, fn, ok in graded if ok]
    passed = [(task, label) for task, label, fn in wrong if _verdict(task, fn, 0) is None]
    rejected = [(task, label) for task, label, fn in right if _verdict(task, fn, 0) is not None]
    print(f"outside set: {len(wrong) - len(passed)}/{len(wrong)} wrong answers rejected "
          f"({100 * (len(wrong) - len(passed)) / len(wrong):.1f} %), {len(rejected)}/{len(right)} right "
          f"answers rejected; wrong ones passed: {passed}")
    return passed, len(wrong), rejected


def test_the_rejection_rate_is_what_the_known_gaps_say(rates):
    passed, _, rejected = rates
    assert sorted(passed + rejected) == sorted(KNOWN_GAPS)


def test_the_done_when_bar_95_percent_of_wrong_answers_rejected_and_no_right_one(rates):
    passed, n_wrong, rejected = rates
    assert (n_wrong - len(passed)) / n_wrong >= 0.95 and not rejected



def test_a_verdict_is_the_same_on_every_call_with_the_same_seed():
    """A grade must be reproducible: the same answer and seed give the same verdict on every call.

    Run in a fresh process with the global random generators reseeded before each call, so that
    nothing but the check itself can change the cases.
    """
    program = ("import random, numpy, torch\nimport recon_lib.grading as g\n"
               "from student_answers.ch03 import invertible_stride_le_kernel as f\n"
               "for _ in range(4):\n"
               " torch.manual_seed(0); numpy.random.seed(0); random.seed(0)\n"
               " try:\n  g.check('03.invertible', f); print('VERDICT PASS')\n"
               " except g.WrongAnswer:\n  print('VERDICT REJECTED')")
    paths = [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True,
                          timeout=300)
    verdicts = [line for line in done.stdout.splitlines() if line.startswith("VERDICT")]
    assert len(verdicts) == 4, done.stdout + done.stderr
    assert len(set(verdicts)) == 1, verdicts
