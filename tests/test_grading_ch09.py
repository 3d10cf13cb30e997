"""Exercise set 09 checks are honest: independent right answers pass, stubs are "not implemented
yet", and typical wrong answers are rejected with a message naming the mistake."""
import math
from statistics import NormalDist

import pytest
import torch

import recon_lib.grading as grading
from recon_lib.grading import NotImplementedYet, WrongAnswer, check


# --- Right answers, written independently of the solution notebook ----------------------------
def thresholds(mean, std, bins, lower):
    normal = NormalDist(mean, std)
    return torch.tensor([lower] + [normal.inv_cdf(k / bins) for k in range(1, bins)], dtype=torch.float64)


def bins(grad_W, grad_b):
    out = torch.zeros_like(grad_W)
    for k in range(len(grad_b)):
        dw = grad_W[k] - (grad_W[k + 1] if k + 1 < len(grad_b) else 0)
        db = grad_b[k] - (grad_b[k + 1] if k + 1 < len(grad_b) else 0)
        if db != 0:
            out[k] = dw / db
    return out


def fraction(batch, count):
    return math.exp((batch - 1) * math.log1p(-1 / count)) if count > 1 else float(batch == 1)


RIGHT = {"09.thresholds": thresholds, "09.bins": bins, "09.fraction": fraction}


def test_chapter_09_has_three_tasks_each_with_a_right_answer_here():
    assert set(grading.tasks("09")) == set(RIGHT)


@pytest.mark.parametrize("task_id", sorted(RIGHT))
@pytest.mark.parametrize("seed", [0, 7])
def test_right_answer_passes(task_id, seed, capsys):
    check(task_id, RIGHT[task_id], seed=seed)
    assert capsys.readouterr().out.startswith(f"✔ Task {task_id}")


@pytest.mark.parametrize("task_id", sorted(RIGHT))
def test_stub_is_not_implemented_yet(task_id):
    def stub(*args):
        raise NotImplementedError()

    with pytest.raises(NotImplementedYet, match="not implemented yet"):
        check(task_id, stub)


def _quantiles_over_n_plus_1(mean, std, n, lower):
    normal = NormalDist(mean, std)
    return torch.tensor([lower] + [normal.inv_cdf(k / (n + 1)) for k in range(1, n)], dtype=torch.float64)


def _no_differences(gw, gb):
    return torch.where(gb.unsqueeze(1) != 0, gw / torch.where(gb != 0, gb, 1.0).unsqueeze(1), 0.0)


def _without_last(gw, gb):
    out = bins(gw, gb)
    out[-1] = 0
    return out


WRONG = [
    ("09.thresholds", _quantiles_over_n_plus_1, "k/\\(bins \\+ 1\\)"),
    ("09.thresholds", lambda m, s, n, lo: thresholds(m, s * s, n, lo), "variance"),
    ("09.thresholds", lambda m, s, n, lo: thresholds(m, s, n, lo).flip(0), "decrease"),
    ("09.thresholds", lambda m, s, n, lo: torch.cat([torch.tensor([-math.inf]), thresholds(m, s, n, lo)[1:]]),
     "−∞"),
    ("09.thresholds", lambda m, s, n, lo: thresholds(m, s, n, lo)[1:], "shape"),
    ("09.bins", _no_differences, "own bias gradient"),
    ("09.bins", _without_last, "last bin"),
    ("09.bins", lambda gw, gb: ((gw - torch.cat([gw[1:], 0 * gw[:1]]))
                                / (gb - torch.cat([gb[1:], 0 * gb[:1]]))[:, None]), "NaN or inf|empty"),
    ("09.bins", lambda gw, gb: torch.cat([0 * gw[:1], bins(gw, gb)[:-1]]), "shifted"),
    ("09.fraction", lambda b, n: (1 - 1 / n) ** b, "power B"),
    ("09.fraction", lambda b, n: b * (1 - 1 / n) ** (b - 1), "number"),
    ("09.fraction", lambda b, n: 1 - b / n, "first-order"),
    ("09.fraction", lambda b, n: None, "finite number"),
]


@pytest.mark.parametrize("task_id, answer, words", WRONG)
def test_typical_wrong_answers_are_rejected_with_their_reason(task_id, answer, words):
    with pytest.raises(WrongAnswer, match=words) as error:
        check(task_id, answer)
    assert "Hint:" in str(error.value)
