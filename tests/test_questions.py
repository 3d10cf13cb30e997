"""Check-your-understanding questions: every key is what the library computes, every right answer
is accepted however written, wrong ones are rejected, and no feedback shows the answer unearned."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import recon_lib as rl
from recon_lib.grading import questions as Q
from recon_lib.grading.question_bank import QUESTIONS, Question

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("00", "01", "02", "03", "04", "05", "06", "07", "08", "09")


def _answer(qid: str) -> Question:
    return next(q for q in QUESTIONS if q.id == qid)


# --- the bank -----------------------------------------------------------------------------
def test_every_chapter_has_three_to_five_well_formed_questions():
    ids = [q.id for q in QUESTIONS]
    assert len(ids) == len(set(ids))
    for chapter in CHAPTERS:
        found = Q.bank(chapter)
        assert 3 <= len(found) <= 5, chapter
        assert [q.id for q in found] == [f"{chapter}.q{k}" for k in range(1, len(found) + 1)]
    for q in QUESTIONS:
        assert q.kind in ("choice", "number") and q.prompt and q.hint and q.explanation
        if q.kind == "choice":
            assert len(q.options) >= 2 and q.answer in Q.LETTERS[:len(q.options)]
            assert len({o.casefold() for o in q.options}) == len(q.options)
        else:
            assert not q.options and isinstance(q.answer, (int, float))


def test_chapters_without_questions_and_bad_ids_raise_clearly():
    with pytest.raises(ValueError, match="chapter '10' has no questions"):
        Q.quiz("10")
    with pytest.raises(ValueError, match="not a question id"):
        Q.judge("02.1", 8)
    with pytest.raises(ValueError, match="no question '02.q9'"):
        Q.question("02.q9", 8)


# --- accepting and rejecting --------------------------------------------------------------
def _right_forms(q: Question) -> list:
    if q.kind == "choice":
        index = Q.LETTERS.index(str(q.answer))
        option = q.options[index]
        return [q.answer, str(q.answer).upper(), f"({q.answer})", f"{q.answer})", f" {option.upper()} ",
                f"{q.answer}) {option}"]
    want = float(q.answer)
    forms: list = [want, str(want), f"{want:.6g}", f" {want:g} ", torch.tensor(want), np.float32(want),
                   np.array([want])]
    if want == int(want):
        forms += [int(want), f"{int(want):,}", np.int64(int(want))]
    if 0 < want < 1:
        forms.append(f"{100 * want:g}%")
    return forms


def _wrong_forms(q: Question) -> list:
    if q.kind == "choice":
        wrong = [i for i in range(len(q.options)) if Q.LETTERS[i] != q.answer]
        return [Q.LETTERS[i] for i in wrong] + [q.options[i] for i in wrong]
    want = float(q.answer)
    return [want + 1, want - 1, 2 * want + 1, str(want + 1), -want - 0.5, want * 10 + 1e-3]


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_every_right_answer_is_accepted_however_written(q: Question):
    for form in _right_forms(q):
        verdict = Q.judge(q.id, form)
        assert verdict.right, (form, verdict.message)
        assert q.explanation in verdict.message


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_wrong_answers_are_rejected_with_the_hint_and_without_the_answer(q: Question):
    for form in _wrong_forms(q):
        verdict = Q.judge(q.id, form)
        assert verdict.status == "wrong", (form, verdict.message)
        assert q.hint in verdict.message
        _assert_no_answer(q, verdict.message, form)
    for junk in (None, "", "  ", "no idea", True, [1, 2], "z"):
        verdict = Q.judge(q.id, junk)
        assert verdict.status == "invalid", (junk, verdict.message)
        _assert_no_answer(q, verdict.message, junk)


def _assert_no_answer(q: Question, message: str, given: object):
    text = message.replace(q.id, "").replace(repr(given), "")  # the learner's own input may be echoed
    assert q.explanation not in text
    if q.kind == "choice":
        assert q.options[Q.LETTERS.index(str(q.answer))].casefold() not in text.casefold()
    else:
        want = float(q.answer)
        tokens = {f"{want:g}", f"{want:.2g}"} | ({f"{want:,.0f}"} if want == int(want) else set())
        for token in tokens:
            assert not re.search(rf"(?<![\d.]){re.escape(token)}(?![\d])", text), (token, text)


def test_reveal_shows_answer_and_explanation_and_question_prints(capsys):
    q = _answer("02.q3")
    verdict = Q.judge("02.q3", "a", reveal=True)
    assert verdict.status == "revealed" and q.options[1] in verdict.message
    assert q.explanation in verdict.message
    Q.question("02.q1")
    shown = capsys.readouterr().out
    assert _answer("02.q1").prompt in shown and _answer("02.q1").explanation not in shown
    rl.grading.question("02.q1", "8")
    assert capsys.readouterr().out.startswith("✔ 02.q1 right.")
    rl.grading.question("02.q1", 12)
    assert capsys.readouterr().out.startswith("✘ 02.q1 not yet.")


def test_number_parsing_reads_common_forms_and_refuses_others():
    assert Q.parse_number("7/8") == 0.875 and Q.parse_number("87.5 %") == 0.875
    assert Q.parse_number("−2") == -2 and Q.parse_number("≈ 0.61") == 0.61
    assert Q.parse_number("44 874") == 44874 and Q.parse_number("1e-3") == 1e-3
    assert Q.parse_number("1,234,567.5") == 1234567.5 and Q.parse_number("-44 874") == -44874
    for bad in ("1/0", "nan", "inf", True, torch.ones(2), "1,2", "0,875", "12,34", object()):
        assert Q.parse_number(bad) is None, bad


def test_relative_tolerance_for_tiny_numbers():
    assert Q.judge("01.q5", "1.2e-38").right and Q.judge("01.q5", 2 ** -126).right
    assert not Q.judge("01.q5", "1.4e-45").right and not Q.judge("01.q5", "2.2e-308").right


# --- the widgets, without a browser ---------------------------------------------------------
def test_quiz_widgets_give_feedback_and_show_stable_text():
    quiz = rl.grading.quiz("02")
    text = repr(quiz)
    assert text == Q.quiz_text("02") == repr(rl.grading.quiz("02"))
    assert quiz._repr_mimebundle_()["text/plain"] == text
    assert all(q.explanation not in text for q in Q.bank("02"))
    entry, check, show, feedback = quiz.rows["02.q1"]
    entry.value = "12"
    check.click()
    assert "not yet" in feedback.value and _answer("02.q1").explanation not in feedback.value
    entry.value = "8.0"
    check.click()
    assert "right" in feedback.value
    entry, check, show, feedback = quiz.rows["02.q3"]
    check.click()
    assert "no answer yet" in feedback.value
    entry.value = entry.options[1]
    check.click()
    assert "right" in feedback.value
    entry.value = entry.options[0]
    check.click()
    assert "not yet" in feedback.value
    show.click()
    assert "the answer is b)" in feedback.value


# --- every numeric key recomputed with the library -----------------------------------------
def _key(qid: str) -> float:
    return float(_answer(qid).answer)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_00_message_size_and_parallel_rows():
    model = rl.models.mlp((1, 25, 25), [64, 64], n_classes=10)
    message = rl.fl.client_update(model, torch.rand(1, 1, 25, 25), torch.tensor([3]))
    assert sum(g.numel() for g in message.values()) == _params(model) == _key("00.q1")
    assert message["1.weight"].shape == (64, 625)
    x = torch.rand(1, 1, 25, 25)
    message = rl.fl.client_update(rl.models.mlp((1, 25, 25), [8], n_classes=10), x, torch.tensor([3]))
    cos = torch.nn.functional.cosine_similarity(message["1.weight"], x.flatten()[None], dim=1)
    assert torch.allclose(cos.abs(), torch.full_like(cos, _key("00.q4")), atol=1e-4)


def test_01_factors_dead_unit_and_smallest_normal():
    _, factors = rl.symbolic.chain(6)
    assert len(factors) == _key("01.q2")
    model = rl.models.mlp((1, 5, 5), [4], n_classes=3, activation="relu")
    with torch.no_grad():
        model[1].bias.fill_(-100.0)
    message = rl.fl.client_update(model, torch.rand(1, 1, 5, 5), torch.tensor([1]))
    assert torch.all(message["1.bias"] == _key("01.q4"))
    assert torch.finfo(torch.float32).tiny == pytest.approx(_key("01.q5"), rel=1e-6)


def _digits_message(h: int, batch: int):
    digits, _ = rl.datasets.load("mnist", n=batch)
    model = rl.models.mlp(digits.shape[1:], [h], n_classes=max(10, batch))
    message = rl.fl.client_update(model, digits, torch.arange(batch))
    return message


def test_02_rank_span_and_unknowns():
    assert int(torch.linalg.matrix_rank(_digits_message(8, 12)["1.weight"])) == _key("02.q1")
    assert rl.conditions.generic_rank(8, 12, 784) == _key("02.q1")
    message = _digits_message(16, 8)
    assert rl.analytic.batch_span(message["1.weight"], message["1.bias"], 8).shape[1] == _key("02.q2")
    message = _digits_message(16, 12)
    basis = rl.analytic.batch_span(message["1.weight"], message["1.bias"], 12)
    assert 12 * basis.shape[1] == _key("02.q4")


def test_02_boundary_answer_matches_the_stored_chapter_output():
    stored = (ROOT / "notebooks/02_batches.ipynb").read_text()
    boundary = "{1: '100%', 2: '100%', 4: '100%', 8: '100%', 16: '100%'}"
    assert f"measured at the boundary h = B: {boundary}" in stored
    assert _answer("02.q5").answer == "b"


def test_03_output_width_and_bounds():
    assert rl.geometry.conv_output_width(64, 3, 2, 1) == _key("03.q1")
    assert rl.geometry.min_kernels(64, 3, 3, 2, 1) == _key("03.q2")
    h, width = int(_key("03.q2")), rl.geometry.conv_output_width(64, 3, 2, 1)
    assert h * width ** 2 >= 3 * 64 ** 2 > (h - 1) * width ** 2  # the count h·d′² ≥ C·d², tight
    assert rl.geometry.min_kernels(12, 5, 3, 1, 1) == _key("03.q3")


def test_04_cosine_distance_ignores_scale():
    g = {"w": torch.randn(5, 3), "b": torch.randn(5)}
    doubled = {k: 2 * v for k, v in g.items()}
    assert float(rl.optimize.cosine_distance(doubled, g)) == pytest.approx(_key("04.q2"), abs=1e-6)


def test_05_message_size_and_kernel_bound():
    model = rl.models.mlp((1, 96, 128), [16], n_classes=24)
    assert model[1].weight.numel() == _key("05.q1")
    assert rl.geometry.output_size((1, 48, 64), 4, 2, 1) == (24, 32)
    assert rl.geometry.min_kernels(48, 1, 4, 2, 1) == rl.geometry.min_kernels(64, 1, 4, 2, 1) == _key("05.q2")


def test_06_psnr_and_stored_ssim_ranking():
    x = torch.rand(1, 1, 8, 8) * 0.8
    assert float(rl.metrics.psnr(x + 0.1, x)) == pytest.approx(_key("06.q1"), abs=1e-3)
    stored = json.loads((ROOT / "notebooks/06_benchmarks.ipynb").read_text())
    line = next(t for c in stored["cells"] for o in c.get("outputs", []) for t in o.get("text", [])
                if t.startswith("at 20.0 dB, SSIM:"))
    ssim = ast.literal_eval(line.split("SSIM:")[1].strip())  # the dict the chapter printed
    assert max(ssim, key=ssim.get) == "contrast" and _answer("06.q2").answer == "a"


def test_07_aggregation_and_pruning_threshold():
    digits, _ = rl.datasets.load("mnist", n=8)
    model = rl.models.mlp(digits.shape[1:], [16], n_classes=10)
    labels = torch.arange(8)
    clients = [rl.fl.client_update(model, digits[2 * n:2 * n + 2], labels[2 * n:2 * n + 2]) for n in range(4)]
    aggregate = {k: sum(c[k] for c in clients) / 4 for k in clients[0]}
    one = rl.fl.client_update(model, digits, labels)
    assert all(torch.allclose(aggregate[k], one[k], atol=1e-6) for k in one)
    assert int(torch.linalg.matrix_rank(aggregate["1.weight"])) == len(digits) == _key("07.q2")
    p = rl.defences.pruning_threshold()
    symbols = {s.name: s for s in p.free_symbols}
    assert float(p.subs({symbols["B"]: 1, symbols["h"]: 8})) == pytest.approx(_key("07.q3"))


def test_08_fedavg_message_bias_gradient_and_rank():
    sent, received = {"w": torch.tensor([0.30])}, {"w": torch.tensor([0.20])}
    message = rl.flower.to_message(sent, received, ["w"], lr=0.1, local_steps=5)
    assert float(message["w"]) == pytest.approx(_key("08.q1"), abs=1e-6)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(25, 6), torch.nn.BatchNorm1d(6),
                                torch.nn.Sigmoid(), torch.nn.Linear(6, 3)).train().double()
    x = torch.rand(4, 1, 5, 5, dtype=torch.float64)
    grads = rl.fl.client_update(model, x, torch.tensor([0, 1, 2, 0]))
    assert grads["1.bias"].abs().max() < 1e-15 < 1e-3 < grads["1.weight"].abs().max()  # BatchNorm: ∂b = 0
    assert _answer("08.q2").options[2].startswith("BatchNorm in train mode")
    assert int(torch.linalg.matrix_rank(_digits_message(8, 16)["1.weight"])) == _key("08.q4")


def test_09_expected_fraction_and_imprint_rank():
    assert rl.imprint.expected_fraction(64, 128) == pytest.approx(_key("09.q1"), abs=1e-4)
    planted = rl.imprint.attach(rl.models.mlp((3, 8, 8), [4], n_classes=10, activation="relu"), (3, 8, 8), 16)
    layer = next(m for m in planted.modules() if isinstance(m, rl.imprint.Imprint))
    assert int(torch.linalg.matrix_rank(layer.linear.weight.detach())) == _key("09.q2")
