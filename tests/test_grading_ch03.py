"""Exercise set 03's checks are honest: the reference answers pass, typical mistakes get a
specific message, the untouched stub says "not implemented yet"."""
import pytest
import torch
from torch.nn import functional as F

import recon_lib as rl
import recon_lib.grading as grading


# --- reference answers (the solution notebook's, written independently of the library) -------
def width_and_bound(d, C, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return d_out, -(-C * d * d // (d_out * d_out))


def predict_invertible(C, d, h, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    taps = torch.arange(d_out)[:, None] * s - p + torch.arange(k)[None, :]
    return bool(h * d_out**2 >= C * d * d and len(torch.unique(taps[(taps >= 0) & (taps < d)])) == d)


def conv_matrix(weight, in_shape, stride, padding):
    n = in_shape[0] * in_shape[1] * in_shape[2]
    basis = torch.eye(n, dtype=weight.dtype).reshape(n, *in_shape)
    return F.conv2d(basis, weight, stride=stride, padding=padding).reshape(n, -1).T


def invert_conv_layer(weight, bias, y, stride, padding, in_shape):
    A = conv_matrix(weight, in_shape, stride, padding)
    return torch.linalg.lstsq(A, (y - bias[:, None, None]).reshape(-1, 1)).solution.reshape(in_shape)


REFERENCES = {"03.bound": width_and_bound, "03.invertible": predict_invertible,
              "03.matrix": conv_matrix, "03.invert_layer": invert_conv_layer}


@pytest.mark.parametrize("task_id", sorted(REFERENCES))
@pytest.mark.parametrize("seed", [0, 2021, 7])
def test_reference_answers_pass(task_id, seed, capsys):
    grading.check(task_id, REFERENCES[task_id], seed=seed)
    assert "passed" in capsys.readouterr().out


def test_chapter_03_has_four_tasks():
    assert set(grading.tasks("03")) == set(REFERENCES)





def no_padding(d, C, k, s, p):
    d_out = (d - k) // s + 1
    return d_out, -(-C * d * d // (d_out * d_out))


def rounded_down(d, C, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return d_out, C * d * d // (d_out * d_out)


def not_squared(d, C, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return d_out, -(-C * d // d_out)


def as_floats(d, C, k, s, p):
    d_out, h = width_and_bound(d, C, k, s, p)
    return float(d_out), float(h)


def count_only(C, d, h, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return h * d_out**2 >= C * d * d


def strict_inequality(C, d, h, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return predict_invertible(C, d, h, k, s, p) and h * d_out**2 > C * d * d


def flipped(weight, in_shape, stride, padding):
    return conv_matrix(weight.flip(2, 3), in_shape, stride, padding)


def transposed(weight, in_shape, stride, padding):
    return conv_matrix(weight, in_shape, stride, padding).T


def bias_kept(weight, bias, y, stride, padding, in_shape):
    return invert_conv_layer(weight, torch.zeros_like(bias), y, stride, padding, in_shape)


def adjoint(weight, bias, y, stride, padding, in_shape):
    A = conv_matrix(weight, in_shape, stride, padding)
    return (A.T @ (y - bias[:, None, None]).flatten()).reshape(in_shape)


def returns_none(*args):
    return None


@pytest.mark.parametrize("task_id, answer, words", [
    ("03.bound", no_padding, "padding"),
    ("03.bound", rounded_down, "Round up"),
    ("03.bound", not_squared, "squared"),
    ("03.bound", as_floats, "Python ints"),
    ("03.invertible", count_only, "never read some pixels"),
    ("03.invertible", strict_inequality, "≥, not >"),
    ("03.matrix", flipped, "flipped the kernel"),
    ("03.matrix", transposed, "transpose of A"),
    ("03.matrix", returns_none, "return"),
    ("03.invert_layer", bias_kept, "subtract the bias"),
    ("03.invert_layer", adjoint, "Aᵀ"),
    ("03.invert_layer", returns_none, "return"),
])
def test_typical_mistakes_get_specific_feedback(task_id, answer, words):
    with pytest.raises(grading.WrongAnswer, match=words) as caught:
        grading.check(task_id, answer)
    assert "Hint:" in str(caught.value)


def test_hard_coded_answer_fails_on_fresh_cases():
    frozen = width_and_bound(32, 3, 5, 2, 2)
    with pytest.raises(grading.WrongAnswer):
        grading.check("03.bound", lambda *args: frozen)


def test_cases_are_reproducible_and_leave_the_learners_rng_alone():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    grading.check("03.invertible", predict_invertible)
    assert torch.equal(torch.rand(2), expected)
    assert rl.conditions.min_kernels(32, 3, 5, 2, 2) == width_and_bound(32, 3, 5, 2, 2)[1]
