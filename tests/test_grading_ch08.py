"""Exercise set 08 checks are honest: right answers pass (however written), stubs are "not
implemented yet", and typical wrong answers are rejected with a message naming the mistake."""
import pytest

import recon_lib.grading as grading
from recon_lib.grading import NotImplementedYet, WrongAnswer, check


# --- Right answers, written independently of the solution notebook ------------------------------
def to_message(sent, received, lr, local_steps):
    return {name: (sent[name] - received[name]) / (lr * local_steps) for name in sent}


def to_message_loop(sent, received, lr, local_steps):
    out = {}
    for name, before in sent.items():
        out[name] = before.clone().sub_(received[name]).div_(lr).div_(local_steps)
    return out


def closed_form_survives(setup):
    return setup.batch_size == 1 and setup.batchnorm != "train"


def closed_form_survives_verbose(setup):
    if setup.batchnorm == "train":  # ∂b = Σδ = 0
        return False
    if setup.batch_size > 1:  # a mixture of the batch
        return False
    return True  # any activation, any E, BatchNorm in eval mode


def pick_width(batch_size):
    return batch_size


RIGHT = {"08.to_message": [to_message, to_message_loop],
         "08.closed_form_survives": [closed_form_survives, closed_form_survives_verbose],
         "08.pick_width": [pick_width, lambda b: int(b)]}


@pytest.mark.parametrize("task_id, answer", [(t, a) for t, answers in RIGHT.items() for a in answers])
def test_right_answers_pass(task_id, answer, capsys):
    check(task_id, answer)
    check(task_id, answer, seed=7)  # hidden-test seeds
    assert "passed" in capsys.readouterr().out


def test_every_task_is_covered():
    assert set(grading.tasks("08")) == set(RIGHT)


@pytest.mark.parametrize("task_id", sorted(RIGHT))
def test_stub_is_not_implemented_yet(task_id):
    def stub(*args):
        raise NotImplementedError()

    with pytest.raises(NotImplementedYet):
        check(task_id, stub)


# --- Typical wrong answers, each named ----------------------------------------------------------
@pytest.mark.parametrize("wrong, words", [
    (lambda s, r, lr, e: {k: (r[k] - s[k]) / (lr * e) for k in s}, "sign is flipped"),
    (lambda s, r, lr, e: {k: (s[k] - r[k]) / lr for k in s}, "divided by lr only"),
    (lambda s, r, lr, e: {k: s[k] - r[k] for k in s}, "did not divide by lr·E"),
    (lambda s, r, lr, e: {k: (s[k] - r[k]) * lr * e for k in s}, "multiplied by lr·E"),
    (lambda s, r, lr, e: {k: (s[k] - r[k]) / (lr * e) for k in list(s)[:1]}, "one entry per parameter"),
    (lambda s, r, lr, e: [s[k] - r[k] for k in s], "return a dict"),
    (lambda s, r, lr, e: {k: (s[k] - r[k]) / (lr * e) + 1e-3 for k in s}, "is not (θ − θ′)/(lr·E)"),
])
def test_to_message_mistakes_are_named(wrong, words):
    with pytest.raises(WrongAnswer, match=words.replace("(", r"\(").replace(")", r"\)")):
        check("08.to_message", wrong)


@pytest.mark.parametrize("wrong, words", [
    (lambda s: s.batch_size == 1 and s.batchnorm != "train" and s.activation != "relu", "live first-layer"),
    (lambda s: s.batch_size == 1 and s.local_steps == 1 and s.batchnorm != "train", "local steps"),
    (lambda s: s.batch_size == 1 and s.batchnorm == "none", "eval mode"),
    (lambda s: s.batchnorm != "train", "mixture of the batch"),
    (lambda s: s.batch_size == 1 or s.batchnorm == "train", "∂b = Σδ = 0"),
    (lambda s: "yes", "True or False"),
])
def test_closed_form_mistakes_are_named(wrong, words):
    with pytest.raises(WrongAnswer, match=words):
        check("08.closed_form_survives", wrong)


@pytest.mark.parametrize("wrong, words", [
    (lambda b: b - 1, "h = B − 1"),
    (lambda b: b + 1, "not the smallest"),
    (lambda b: 2 * b, "not the smallest"),
    (lambda b: 1, "rank of ∇W is below"),
    (lambda b: float(b), "return an int"),
])
def test_pick_width_mistakes_are_named(wrong, words):
    with pytest.raises(WrongAnswer, match=words):
        check("08.pick_width", wrong)


def test_feedback_never_prints_the_expected_width():
    with pytest.raises(WrongAnswer) as raised:
        check("08.pick_width", lambda b: b + 3)
    assert "smallest h is" not in str(raised.value)
