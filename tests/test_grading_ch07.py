"""Exercise set 07 checks are honest: independent right answers pass, stubs are "not implemented
yet", and typical wrong answers are rejected with a message naming the mistake."""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recon_lib.grading as grading
from recon_lib.grading import WrongAnswer, check


# --- Right answers, written independently of the solution notebook (NumPy where it fits) -------
def prune(g, ratio):
    flat = g.flatten().numpy()
    keep = max(1, math.ceil((1 - ratio) * flat.size))
    out = np.zeros_like(flat)
    order = np.argsort(-np.abs(flat), kind="stable")[:keep]
    out[order] = flat[order]
    return torch.from_numpy(out).reshape(g.shape)


def quantize(g, bits):
    m = g.abs().max()
    if m == 0:
        return torch.zeros_like(g)
    levels = m * (2 * torch.arange(2 ** bits, dtype=g.dtype) / (2 ** bits - 1) - 1)
    return levels[(g.unsqueeze(-1) - levels).abs().argmin(-1)]


def noise_mse(delta, x, std):
    return std ** 2 * float((1 + x ** 2).mean()) / float((delta ** 2).sum())


def dp_bound(sigma, x):
    return -10 * math.log10(noise_mse(torch.ones(1), x, sigma) * (1 + float(x @ x)))


RIGHT = {"07.prune": prune, "07.quantize": quantize, "07.noise_mse": noise_mse, "07.dp_bound": dp_bound}



def test_chapter_07_has_at_least_three_tasks_each_with_a_right_answer_here():
    new = {"07.secure_sum", "07.sa_span", "07.epsilon"}  # their answers: test_grading_new_tasks.py
    assert set(grading.tasks("07")) == set(RIGHT) | new and len(RIGHT) >= 3


@pytest.mark.parametrize("task_id", sorted(RIGHT))
def test_right_answer_passes(task_id, capsys):
    check(task_id, RIGHT[task_id])
    assert capsys.readouterr().out.startswith(f"✔ Task {task_id}")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), task_id=st.sampled_from(sorted(RIGHT)))
def test_right_answers_pass_for_any_seed(seed, task_id):
    check(task_id, RIGHT[task_id], seed=seed)




# --- Typical mistakes ----------------------------------------------------------------------------
def keep_smallest(g, ratio):
    return g - prune(g, ratio)


def keep_largest_values(g, ratio):
    flat = g.flatten()
    keep = max(1, math.ceil((1 - ratio) * flat.numel()))
    out = torch.zeros_like(flat)
    index = torch.topk(flat, keep).indices
    out[index] = flat[index]
    return out.reshape(g.shape)


def rounds_down(g, ratio):
    flat = g.flatten()
    keep = max(1, int((1 - ratio) * flat.numel()))
    out = torch.zeros_like(flat)
    index = torch.topk(flat.abs(), keep).indices
    out[index] = flat[index]
    return out.reshape(g.shape)


def step_over_2_to_the_b(g, bits):
    m = g.abs().max()
    if m == 0:
        return g.clone()
    step = 2 * m / 2 ** bits
    return -m + step * torch.round((g + m) / step)


def mid_tread(g, bits):
    m = g.abs().max()
    if m == 0:
        return g.clone()
    if bits == 1:
        return torch.sign(g) * m
    step = m / (2 ** (bits - 1) - 1)
    return step * torch.round(g / step)


def no_zero_guard(g, bits):
    m = g.abs().max()
    step = 2 * m / (2 ** bits - 1)
    return -m + step * torch.round((g + m) / step)


@pytest.mark.parametrize("task_id, wrong, match", [
    ("07.prune", keep_smallest, "largest"),
    ("07.prune", keep_largest_values, "rank by"),
    ("07.prune", lambda g, r: (prune(g, r) != 0).to(g.dtype), "mask"),
    ("07.prune", rounds_down, "rounded \\(1 − ratio\\)·n down"),
    ("07.quantize", step_over_2_to_the_b, "2\\^b − 1"),
    ("07.quantize", mid_tread, "mid-tread"),
    ("07.quantize", no_zero_guard, "NaN"),
    ("07.noise_mse", lambda d, x, s: s ** 2 / float((d ** 2).sum()), "1 \\+ mean x²"),
    ("07.noise_mse", lambda d, x, s: s * float((1 + x ** 2).mean()) / float((d ** 2).sum()), "variance"),
    ("07.noise_mse", lambda d, x, s: s ** 2 * float((1 + x ** 2).mean()) / float((d ** 2).mean()), "sum"),
    ("07.noise_mse", lambda d, x, s: torch.tensor([1.0, 2.0]), "one number"),
    ("07.dp_bound", lambda s, x: -10 * math.log10(s ** 2 * float((1 + x ** 2).mean())), "1 \\+ ‖x‖²"),
    ("07.dp_bound", lambda s, x: -dp_bound(s, x), "sign"),
    ("07.dp_bound", lambda s, x: -10 * math.log10(s ** 2 * float((1 + x ** 2).mean()) * (1 + float(x.norm()))), "‖x‖"),
    ("07.dp_bound", lambda s, x: None, "return"),
])
def test_typical_mistakes_are_named(task_id, wrong, match):
    with pytest.raises(WrongAnswer, match=match):
        check(task_id, wrong)
