"""Check-your-understanding questions at the end of every chapter, with instant feedback.

A chapter's last section calls ``rl.grading.quiz("02")``: in Jupyter it shows each question with
radio buttons or a number box and a *Check* button; anywhere else (a terminal, a stored notebook,
nbval) it shows the same questions as plain text. A learner can also answer in code::

    rl.grading.question("02.q1", 8)            # a number: 8, 8.0, "8", "7/8", "87.5%", ...
    rl.grading.question("02.q3", "b")          # a choice: its letter or its text
    rl.grading.question("02.q3", reveal=True)  # the answer and its explanation

Like :func:`recon_lib.grading.check`, a wrong answer gets a hint that does not give the answer
away; the answer and its explanation appear only once the learner got it right or asked for it.
The logic (:func:`judge`, :func:`parse_number`, :func:`parse_choice`) is plain functions, tested
without a browser; the widgets only wire buttons to them. The questions are plain data in
:mod:`recon_lib.grading.question_bank`.
"""
from __future__ import annotations

import html
import math
import numbers
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .question_bank import QUESTIONS, Question

__all__ = ["question", "quiz", "judge", "bank", "parse_number", "parse_choice", "Verdict", "Quiz"]

QUESTION_ID = re.compile(r"^(\d\d)\.q\d+$")
LETTERS = "abcdefgh"
_BY_ID: dict[str, Question] = {q.id: q for q in QUESTIONS}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one answer: ``status`` is right, wrong, invalid (not readable) or revealed."""

    status: str
    message: str

    @property
    def right(self) -> bool:
        return self.status == "right"


def bank(chapter: str) -> tuple[Question, ...]:
    """The questions of one chapter (``"02"``), in order.

    Raises:
        ValueError: no question belongs to ``chapter``.
    """
    found = tuple(q for q in QUESTIONS if q.id.startswith(f"{chapter}."))
    if not found:
        chapters = sorted({q.id[:2] for q in QUESTIONS})
        raise ValueError(f"chapter {chapter!r} has no questions; chapters with questions: {chapters}")
    return found


def _get(question_id: str) -> Question:
    if not isinstance(question_id, str) or not QUESTION_ID.match(question_id):
        raise ValueError(f"{question_id!r} is not a question id; they look like '02.q1'")
    if question_id not in _BY_ID:
        raise ValueError(f"no question {question_id!r}; chapter {question_id[:2]} has "
                         f"{[q.id for q in bank(question_id[:2])]}")
    return _BY_ID[question_id]


def parse_number(answer: Any) -> float | None:
    """``answer`` as a float, or None if it is not a number.

    Accepts ints, floats, NumPy scalars, one-element tensors/arrays, and strings such as
    ``"12"``, ``" 1e-3 "``, ``"44,874"``, ``"44 874"``, ``"7/8"``, ``"87.5%"``, ``"−2"``, ``"≈ 0.61"``.
    """
    if isinstance(answer, bool):
        return None
    if not isinstance(answer, (str, numbers.Real)) and callable(getattr(answer, "item", None)):
        numel = getattr(answer, "numel", None)  # a torch tensor, else a NumPy array or scalar
        if (numel() if callable(numel) else getattr(answer, "size", None)) != 1:
            return None
        answer = answer.item()
    if isinstance(answer, numbers.Real) and not isinstance(answer, bool):
        value = float(answer)
        return value if math.isfinite(value) else None
    if not isinstance(answer, str):
        return None
    text = answer.strip().lstrip("≈~").strip().replace("−", "-").replace("_", "").replace("\u202f", "")
    if re.fullmatch(r"[+-]?[1-9]\d{0,2}([ ,]\d{3})+(\.\d*)?%?", text):  # 44,874 or 44 874, not 0,875
        text = re.sub(r"[ ,]", "", text)
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1].strip(), 0.01
    try:
        value = float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value * scale if math.isfinite(value) else None


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def parse_choice(found: Question, answer: Any) -> int | None:
    """The index of the option ``answer`` names (its letter, ``"b)"``, ``"(b)"``, or its text), else None."""
    if isinstance(answer, bool) or not isinstance(answer, (str, numbers.Real)):
        return None
    text = _normal(str(answer))
    for index, option in enumerate(found.options):
        if text == _normal(option):
            return index
    letter = text.strip("()[]. ")
    if len(letter) == 1 and letter in LETTERS[:len(found.options)]:
        return LETTERS.index(letter)
    match = re.match(r"^\(?([a-h])[).:]\s*(.*)$", text)  # "b) the mean …" as shown in the quiz
    if match and match.group(1) in LETTERS[:len(found.options)]:
        index = LETTERS.index(match.group(1))
        if not match.group(2) or match.group(2) == _normal(found.options[index]):
            return index
    return None


def _right_answer(found: Question) -> str:
    if found.kind == "choice":
        index = LETTERS.index(str(found.answer))
        return f"{LETTERS[index]}) {found.options[index]}"
    return f"{float(found.answer):g}"


def judge(question_id: str, answer: Any = None, *, reveal: bool = False) -> Verdict:
    """Judge one answer; the message holds the answer only when the verdict is right or revealed.

    Args:
        question_id: ``"NN.qK"`` as printed by :func:`quiz`.
        answer: a number (any numeric type or a string) or an option (letter or text).
        reveal: show the answer and its explanation, whatever ``answer`` is.

    Raises:
        ValueError: ``question_id`` does not exist.
    """
    found = _get(question_id)
    if reveal:
        return Verdict("revealed", f"→ {found.id}: the answer is {_right_answer(found)}. {found.explanation}")
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return Verdict("invalid", f"{found.id}: no answer yet. {_how_to_answer(found)}")
    if found.kind == "choice":
        index = parse_choice(found, answer)
        if index is None:
            return Verdict("invalid", f"{found.id}: {answer!r} is not one of the options. "
                                      f"{_how_to_answer(found)}")
        right = LETTERS[index] == found.answer
    else:
        value = parse_number(answer)
        if value is None:
            return Verdict("invalid", f"{found.id}: {answer!r} is not a number. {_how_to_answer(found)}")
        want = float(found.answer)
        right = abs(value - want) <= max(found.tolerance, found.rel_tolerance * abs(want))
    if right:
        return Verdict("right", f"✔ {found.id} right. {found.explanation}")
    return Verdict("wrong", f"✘ {found.id} not yet. Hint: {found.hint} Try again, or "
                            f"rl.grading.question({found.id!r}, reveal=True) shows the answer.")


def _how_to_answer(found: Question) -> str:
    if found.kind == "choice":
        return f"Answer with a letter {LETTERS[0]}–{LETTERS[len(found.options) - 1]} or the option's text."
    return ("Answer with a number: an integer, a decimal, a fraction a/b, a percentage or "
            "scientific notation.")


def question(question_id: str, answer: Any = None, *, reveal: bool = False) -> None:
    """Print the feedback on ``answer`` to one question (without an answer: the question itself).

    Args:
        question_id: ``"NN.qK"``, as shown by :func:`quiz`.
        answer: your answer: a number, or an option's letter or text.
        reveal: print the answer and its explanation instead.

    Raises:
        ValueError: ``question_id`` does not exist.
    """
    if answer is None and not reveal:
        print(_text(_get(question_id)))
        return
    print(judge(question_id, answer, reveal=reveal).message)


def _text(found: Question) -> str:
    lines = [f"{found.id}  {found.prompt}" + ("  [a number]" if found.kind == "number" else "")]
    lines += [f"      {LETTERS[i]}) {option}" for i, option in enumerate(found.options)]
    return "\n".join(lines)


def quiz_text(chapter: str) -> str:
    """The chapter's questions as plain text (what a stored notebook and nbval show)."""
    found = bank(chapter)
    head = (f"Check your understanding — chapter {chapter} ({len(found)} questions). Answer in the "
            f"boxes (Jupyter) or in code: rl.grading.question({found[0].id!r}, your_answer).")
    return "\n\n".join([head] + [_text(q) for q in found])


class Quiz:
    """The widgets of one chapter's quiz; displays as widgets in Jupyter and as text elsewhere.

    ``rows`` maps each question id to its (answer widget, Check button, Show-answer button,
    feedback HTML), so tests drive it without a browser.
    """

    def __init__(self, chapter: str):
        import ipywidgets as widgets

        self.chapter, self.rows = chapter, {}
        boxes = []
        for found in bank(chapter):
            if found.kind == "choice":
                entry: Any = widgets.RadioButtons(
                    options=[f"{LETTERS[i]}) {o}" for i, o in enumerate(found.options)], value=None,
                    layout=widgets.Layout(width="auto"))
            else:
                entry = widgets.Text(placeholder="your answer (a number)")
            check, show = widgets.Button(description="Check"), widgets.Button(description="Show answer")
            feedback = widgets.HTML()
            check.on_click(lambda _, q=found, e=entry, f=feedback: _show(f, judge(q.id, e.value)))
            show.on_click(lambda _, q=found, f=feedback: _show(f, judge(q.id, reveal=True)))
            self.rows[found.id] = (entry, check, show, feedback)
            boxes.append(widgets.VBox([widgets.HTML(f"<b>{found.id}</b> {html.escape(found.prompt)}"),
                                       entry, widgets.HBox([check, show]), feedback]))
        self.widget = widgets.VBox(boxes)

    def __repr__(self) -> str:
        return quiz_text(self.chapter)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        data["text/plain"] = quiz_text(self.chapter)  # stable text: nbval compares it
        return data


def _show(feedback: Any, verdict: Verdict) -> None:
    colour = {"right": "green", "wrong": "firebrick", "revealed": "steelblue"}.get(verdict.status, "black")
    feedback.value = f'<span style="color:{colour}">{html.escape(verdict.message)}</span>'


def quiz(chapter: str) -> Quiz:
    """The check-your-understanding questions of ``chapter`` (``"02"``), answerable in place.

    Raises:
        ValueError: the chapter has no questions.
    """
    bank(chapter)
    return Quiz(chapter)
