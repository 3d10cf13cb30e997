"""rl.grading is honest: right answers pass, stubs say "not implemented yet", and typical wrong
answers are rejected with a message that names the mistake (mutation tests, two or more per task)."""
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import recon_lib.grading as grading
from recon_lib.grading import NotImplementedYet, WrongAnswer, check

# --- Right answers, written independently of the solution notebooks ------------------------


def message(model, x, y):
    names, parameters = zip(*model.named_parameters())
    return dict(zip(names, torch.autograd.grad(F.cross_entropy(model(x), y), parameters)))


def batch_mean(per_sample):
    return {name: grads.sum(0) / grads.shape[0] for name, grads in per_sample.items()}


def architecture(msg):
    weights = [grad for grad in msg.values() if grad.ndim == 2]
    return weights[0].shape[1], [w.shape[0] for w in weights[:-1]], weights[-1].shape[0]


def closed_form(grad_w, grad_b):  # written unlike the solution's grad_w / grad_b
    return grad_w * grad_b.reciprocal()


def usable(grad_b):
    return grad_b.abs() > 0


def layer(grad_W, grad_b):  # least squares over units, another fair combination than the mean
    return (grad_b[:, None] * grad_W).sum(0) / grad_b.square().sum()


def direction(grad_W):
    _, _, vh = torch.linalg.svd(grad_W, full_matrices=False)
    return vh[0] if vh[0].sum() > 0 else -vh[0]


def scale(direction_, pixel, value):
    return direction_ / direction_[pixel] * value


RIGHT = {"00.message": message, "00.batch_mean": batch_mean, "00.architecture": architecture,
         "01.closed_form": closed_form, "01.usable": usable, "01.layer": layer,
         "01.direction": direction, "01.scale": scale}


def stub(*args):
    raise NotImplementedError()


# --- The task registry -------------------------------------------------------------------------
def test_chapter_sets_have_the_promised_sizes_and_every_task_a_right_answer_here():
    assert 2 <= len(grading.tasks("00")) <= 3
    assert len(grading.tasks("01")) >= 4
    assert set(grading.tasks("00")) | set(grading.tasks("01")) == set(RIGHT)
    assert all(t.title and t.hint and t.n_cases >= 3 for t in grading.tasks().values())


@pytest.mark.parametrize("task_id", sorted(RIGHT))
def test_right_answer_passes_and_says_so(task_id, capsys):
    check(task_id, RIGHT[task_id])
    assert capsys.readouterr().out.startswith(f"✔ Task {task_id}")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), task_id=st.sampled_from(sorted(RIGHT)))
def test_right_answers_pass_for_any_seed(seed, task_id):
    check(task_id, RIGHT[task_id], seed=seed)


CHAPTERS = sorted(path.stem[2:] for path in Path(grading.__file__).parent.glob("ch[0-9][0-9].py"))
EVERY_TASK = sorted(task_id for chapter in CHAPTERS for task_id in grading.tasks(chapter))


@pytest.mark.parametrize("task_id", EVERY_TASK)
def test_untouched_stub_is_not_implemented_yet(task_id):
    with pytest.raises(NotImplementedYet, match="not implemented yet") as error:
        check(task_id, stub)
    assert "raise NotImplementedError()" in str(error.value)


@pytest.mark.parametrize("bad_id, match", [("1.closed_form", "not a task id"), (1, "not a task id"),
                                           ("01.no_such_task", "01.closed_form"),
                                           ("99.anything", "chapter 99 has none")])
def test_unknown_task_id_is_a_clear_value_error(bad_id, match):
    with pytest.raises(ValueError, match=match):
        check(bad_id, closed_form)


@pytest.mark.parametrize("options", [{"n_cases": 0}, {"n_cases": 2.5}, {"seed": "0"}])
def test_a_check_that_would_test_nothing_is_refused(options):
    with pytest.raises(ValueError, match="positive int"):
        check("01.closed_form", closed_form, **options)


def test_passing_the_result_instead_of_the_function_is_explained():
    with pytest.raises(WrongAnswer, match="function itself"):
        check("01.closed_form", torch.zeros(3))


def test_task_ids_are_validated_at_registration():
    with pytest.raises(ValueError, match="chapter.name"):
        grading.task("one.closed_form", title="t", hint="h")


def test_feedback_renders_without_a_traceback_in_jupyter():
    with pytest.raises(WrongAnswer) as error:
        check("01.closed_form", lambda w, b: w)
    lines = error.value._render_traceback_()
    assert lines[0].startswith("✘ Task 01.closed_form") and lines[-1].lstrip().startswith("Hint:")
    assert not any("Traceback" in line for line in lines)


def test_a_check_leaves_the_learners_random_state_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    check("01.closed_form", closed_form)
    assert torch.equal(torch.random.get_rng_state(), before)


def _inputs_seen(task_id, seed):
    calls = []
    check(task_id, lambda w, b: calls.append(w.clone()) or w / b, seed=seed, n_cases=4)
    return calls


def test_the_same_seed_gives_the_same_cases_and_other_seeds_other_cases():
    first, again, other = (_inputs_seen("01.closed_form", seed) for seed in (0, 0, 1))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, other))


def test_cases_vary_the_image_size_so_a_hard_coded_d_fails():
    assert len({w.numel() for w in _inputs_seen("01.closed_form", 0)}) > 1


def test_in_place_edits_by_the_learner_cannot_corrupt_the_reference():
    check("01.closed_form", lambda w, b: w.div_(b))
    check("01.layer", lambda W, b: layer(W.mul_(1), b.mul_(1)))


def test_a_crash_in_learner_code_is_reported_with_its_type():
    with pytest.raises(WrongAnswer, match="raised ZeroDivisionError: boom"):
        check("01.scale", lambda d, p, v: (_ for _ in ()).throw(ZeroDivisionError("boom")))


def test_a_hard_coded_answer_fails():
    remembered = {}

    def memorised(grad_w, grad_b):
        return remembered.setdefault("x", grad_w / grad_b)  # right once, then always the same

    with pytest.raises(WrongAnswer, match="case 2"):
        check("01.closed_form", memorised)


# --- Typical wrong answers (mutation tests) --------------------------------------------------
def _sum_loss(model, x, y):
    names, parameters = zip(*model.named_parameters())
    loss = F.cross_entropy(model(x), y, reduction="sum")
    return dict(zip(names, torch.autograd.grad(loss, parameters)))


def _backward_without_zeroing(model, x, y):
    F.cross_entropy(model(x), y).backward()
    return {name: p.grad for name, p in model.named_parameters()}


def _takes_a_step(model, x, y):
    grads = message(model, x, y)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p -= 0.1 * grads[name]
    return grads


def _mse_loss(model, x, y):
    names, parameters = zip(*model.named_parameters())
    target = F.one_hot(y, model[-1].out_features).float()
    return dict(zip(names, torch.autograd.grad(F.mse_loss(model(x), target), parameters)))


def _weights(msg):
    return [grad for grad in msg.values() if grad.ndim == 2]


def _first_row(grad_W):
    return grad_W[0] / grad_W[0].norm()


def _largest_row(grad_W):
    return grad_W[grad_W.norm(dim=1).argmax()]


MUTANTS = [
    ("00.message", _sum_loss, "B = \\d+ times too large"),
    ("00.message", _backward_without_zeroing, "accumulates"),
    ("00.message", _takes_a_step, "changed the model's weights"),
    ("00.message", lambda m, x, y: {k: -v for k, v in message(m, x, y).items()}, "wrong sign"),
    ("00.message", lambda m, x, y: {k: v for k, v in message(m, x, y).items() if "weight" in k},
     "missing \\['1.bias'"),
    ("00.message", _mse_loss, "differs from the client's"),
    ("00.message", lambda m, x, y: None, "forget the `return`"),
    ("00.batch_mean", lambda ps: {k: v.sum(0) for k, v in ps.items()}, "B = \\d+ times too large"),
    ("00.batch_mean", lambda ps: ps, "leading client dimension"),
    ("00.batch_mean", lambda ps: {k: v.mean(-1) for k, v in ps.items()}, "shape of its parameter"),
    ("00.batch_mean", lambda ps: list(ps.values()), "return a dict"),
    ("00.architecture", lambda m: (_weights(m)[0].shape[0], [w.shape[1] for w in _weights(m)[1:]],
                                   _weights(m)[-1].shape[1]), "wrong way round"),
    ("00.architecture", lambda m: (_weights(m)[0].shape[1], [w.shape[0] for w in _weights(m)],
                                   _weights(m)[-1].shape[0]), "include the head"),
    ("00.architecture", lambda m: (list(m.values())[0].shape[1],
                                   [w.shape[0] for w in list(m.values())[0:-2:2]],
                                   list(m.values())[-1].shape[0]), "as if each layer had a bias"),
    ("00.architecture", lambda m: architecture(m)[:2], "return a tuple"),
    ("01.closed_form", lambda w, b: w, "off by a factor equal to ∂ℓ/∂b — did you divide\\?"),
    ("01.closed_form", lambda w, b: w * b, "multiplied by ∂ℓ/∂b"),
    ("01.closed_form", lambda w, b: b / w, "wrong way round"),
    ("01.closed_form", lambda w, b: -w / b, "sign flipped"),
    ("01.closed_form", lambda w, b: 2 * w / b, "times a constant 2"),
    ("01.closed_form", lambda w, b: (w / b)[None], "shape \\(1, \\d+\\)"),
    ("01.usable", lambda b: b > 0, "negative"),
    ("01.usable", lambda b: b == 0, "opposite"),
    ("01.usable", lambda b: torch.ones_like(b, dtype=torch.bool), "∂ℓ/∂b = 0 \\(dead\\)"),
    ("01.usable", lambda b: (b != 0).float(), "boolean mask"),
    ("01.usable", lambda b: b.abs() > 1e-3, "left out"),
    ("01.layer", lambda W, b: (W / b[:, None]).mean(0), "NaN"),
    ("01.layer", lambda W, b: W[0] / b[0], "NaN"),
    ("01.layer", lambda W, b: (W[b != 0] / b[b != 0, None]).sum(0), "did you add"),
    ("01.layer", lambda W, b: torch.nan_to_num(W / b[:, None]).mean(0), "dead units' zeros"),
    ("01.layer", lambda W, b: torch.nan_to_num(W / b[:, None]), "one image per unit"),
    ("01.direction", lambda W: _largest_row(W) / _largest_row(W).norm(), "wrong way"),
    ("01.direction", _first_row, "zero \\(a dead unit\\)"),
    ("01.direction", lambda W: _largest_row(W) * torch.sign(_largest_row(W).sum()), "normalise it"),
    ("01.direction", lambda W: W.sum(0) / W.sum(0).norm() + 1e-2, "not parallel"),
    ("01.scale", lambda d, p, v: d * v, "did not divide by the direction's own value"),
    ("01.scale", lambda d, p, v: d / d[p], "known pixel is 1"),
    ("01.scale", lambda d, p, v: d, "unchanged"),
    ("01.scale", lambda d, p, v: d * v / d.max(), "differs from x"),
]


@pytest.mark.parametrize("task_id, wrong, message_pattern", MUTANTS,
                         ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(MUTANTS)])
def test_typical_wrong_answer_is_rejected_with_a_specific_message(task_id, wrong, message_pattern):
    with pytest.raises(WrongAnswer, match=message_pattern) as error:
        check(task_id, wrong)
    assert "Hint:" in str(error.value)


def test_every_task_has_at_least_two_mutants():
    counts = {task_id: sum(t == task_id for t, _, _ in MUTANTS) for task_id in RIGHT}
    assert min(counts.values()) >= 2, counts


def test_the_architecture_task_does_not_print_its_answer():
    with pytest.raises(WrongAnswer) as error:
        check("00.architecture", lambda m: (0, [], 0))
    assert "→" not in str(error.value)


# --- The helpers chapters build their checks from --------------------------------------------
def test_constant_factor_finds_a_scale_and_nothing_else():
    want = torch.rand(50) + 0.1
    assert grading.constant_factor(3 * want, want) == pytest.approx(3)
    assert grading.constant_factor(want + torch.rand(50), want) is None
    assert grading.constant_factor(want, torch.zeros(50)) is None


def test_first_match_names_the_first_matching_mistake():
    x = torch.arange(4.0)
    assert grading.first_match(2 * x, [(x, "same"), (2 * x, "double")]) == "double"
    assert grading.first_match(3 * x, [(x, "same")]) is None


def test_first_match_never_blames_a_right_answer_for_a_mistake_that_coincides_with_it():
    x = torch.rand(5)
    assert grading.first_match(x, [(x.clone(), "a mistake that is right on this case")], right=x) is None


def test_scale_accepts_a_right_answer_when_the_known_pixel_is_exactly_one(monkeypatch):
    from recon_lib.grading import cases

    draw = cases.face_batch

    def saturated(size):  # every pixel the check may reveal is 1.0, so "d / d[p]" is right too
        x = draw(size)
        return torch.where(x > 0.2, 1.0, x)

    monkeypatch.setattr(cases, "face_batch", saturated)
    check("01.scale", scale)
    with pytest.raises(WrongAnswer, match="did not divide"):
        check("01.scale", lambda d, p, v: d * v)


@pytest.mark.parametrize("got, match", [(None, "forget the `return`"), ([1.0], "returned a list"),
                                        (torch.zeros(2, 2), "shape \\(2, 2\\)"),
                                        (torch.tensor([float("nan"), 0.0, 0.0, 0.0]), "NaN")])
def test_expect_tensor_names_the_problem(got, match):
    with pytest.raises(grading._Mismatch, match=match):
        grading.expect_tensor(got, (4,), case="a case")


def _to_cuda(value):
    if isinstance(value, dict):
        return {key: item.cuda() for key, item in value.items()}
    return value.cuda()


@pytest.mark.gpu
@pytest.mark.parametrize("task_id", sorted(set(RIGHT) - {"00.architecture"}))
def test_answers_returned_on_the_gpu_are_accepted(task_id):
    right = RIGHT[task_id]
    check(task_id, lambda *args: _to_cuda(right(*args)))


def test_import_recon_lib_is_enough_for_the_check_cells():
    import recon_lib as rl

    assert rl.grading.check is check
