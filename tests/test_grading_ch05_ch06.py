"""The checks of exercise sets 05 and 06 are honest: right answers (written here, independently
of the solution notebooks) pass for any seed, stubs say "not implemented yet", and typical wrong
answers are rejected with a message that names the mistake (two or more per task)."""
import math

import pytest
import torch
from torch.nn import functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recon_lib.grading as grading
from recon_lib.grading import WrongAnswer, check


# --- Right answers -----------------------------------------------------------------------------
def invert_cnn(weight, bias, a, stride, padding, in_shape):  # pinv of the conv matrix, log-odds by hand
    n = math.prod(in_shape)
    columns = [F.conv2d(torch.eye(n, dtype=weight.dtype)[j].reshape(1, *in_shape), weight, stride=stride,
                        padding=padding).flatten() for j in range(n)]
    z = (torch.log(a) - torch.log1p(-a) - bias[:, None, None]).flatten()
    return (torch.linalg.pinv(torch.stack(columns, 1)) @ z).reshape(in_shape)


def attack(message, in_shape):  # least squares over units: another fair combination
    W, b = message["1.weight"].double(), message["1.bias"].double()
    return ((b[:, None] * W).sum(0) / b.square().sum()).reshape(in_shape).float()


def in_batch(grad_W, grad_b, B, candidates):
    q, _ = torch.linalg.qr(torch.linalg.svd(grad_W.double(), full_matrices=False).Vh[:B].T)
    flat = candidates.flatten(1).double()
    residual = (flat - (flat @ q) @ q.T).norm(dim=1) / flat.norm(dim=1)
    return torch.where(residual < 1e-3)[0]


def psnr(x_hat, x):
    return -10 * torch.log10((x_hat - x).pow(2).mean(dim=(1, 2, 3)))


def summary(rows):
    out = {}
    for key in {(r["method"], r["kind"]) for r in rows}:
        values = torch.tensor([r["psnr"] for r in rows if (r["method"], r["kind"]) == key], dtype=torch.float64)
        out[key] = (float(values.mean()), float(values.std()) if len(values) > 1 else 0.0)
    return out


def baseline(x):
    return -10 * torch.log10((x - x.mean(dim=(1, 2, 3), keepdim=True)).pow(2).mean(dim=(1, 2, 3)))


def recovered(x_hat, x):
    return psnr(x_hat, x) > baseline(x)


RIGHT = {"05.invert_cnn": invert_cnn, "05.attack_wbc": attack, "05.in_batch": in_batch,
         "06.psnr": psnr, "06.summary": summary, "06.baseline": baseline, "06.recovered": recovered}



def test_each_chapter_has_at_least_three_tasks_each_with_a_right_answer_here():
    assert set(grading.tasks("05")) | set(grading.tasks("06")) == set(RIGHT)
    assert len(grading.tasks("05")) >= 3 and len(grading.tasks("06")) >= 3


@pytest.mark.parametrize("task_id", sorted(RIGHT))
def test_right_answer_passes(task_id, capsys):
    check(task_id, RIGHT[task_id])
    assert capsys.readouterr().out.startswith(f"✔ Task {task_id}")


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), task_id=st.sampled_from(sorted(RIGHT)))
def test_right_answers_pass_for_any_seed(seed, task_id):
    check(task_id, RIGHT[task_id], seed=seed, n_cases=3)




# --- Typical mistakes ------------------------------------------------------------------------------
def no_logit(weight, bias, a, stride, padding, in_shape):  # solves A x = a − b: logit(sigmoid(a)) = a
    return invert_cnn(weight, bias, torch.sigmoid(a), stride, padding, in_shape)


def no_bias(weight, bias, a, stride, padding, in_shape):
    return invert_cnn(weight, torch.zeros_like(bias), a, stride, padding, in_shape)


def swapped_shape(weight, bias, a, stride, padding, in_shape):
    c, h, w = in_shape
    return invert_cnn(weight, bias, a, stride, padding, (c, h, w)).transpose(1, 2).reshape(in_shape)


def channel_last(message, in_shape):
    c, h, w = in_shape
    return attack(message, in_shape).flatten().reshape(h, w, c).permute(2, 0, 1)


def first_unit(message, in_shape):
    return (message["1.weight"][0] / message["1.bias"][0]).reshape(in_shape)


def as_mask(grad_W, grad_b, B, candidates):
    mask = torch.zeros(len(candidates), dtype=torch.bool)
    mask[in_batch(grad_W, grad_b, B, candidates)] = True
    return mask


def every_row(grad_W, grad_b, B, candidates):  # the raw rows, not an orthonormal basis
    flat = candidates.flatten(1)
    rows = grad_W.T
    residual = (flat - flat @ rows @ rows.T).norm(dim=1) / flat.norm(dim=1)
    return torch.where(residual < 1e-3)[0]


def loose(grad_W, grad_b, B, candidates):
    V = torch.linalg.svd(grad_W.double(), full_matrices=False).Vh[:B].T
    flat = candidates.flatten(1).double()
    return torch.where((flat - flat @ V @ V.T).norm(dim=1) / flat.norm(dim=1) < 0.5)[0]


def population_std(rows):
    out = {}
    for key, (mean, _) in summary(rows).items():
        values = [r["psnr"] for r in rows if (r["method"], r["kind"]) == key]
        out[key] = (mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)))
    return out


@pytest.mark.parametrize("task_id, wrong, match", [
    ("05.invert_cnn", no_logit, "undo it first: z = logit"),
    ("05.invert_cnn", no_bias, "subtract the bias"),
    ("05.invert_cnn", swapped_shape, "not the image behind a"),
    ("05.attack_wbc", channel_last, "channel-first"),
    ("05.attack_wbc", first_unit, "NaN|differs"),
    ("05.attack_wbc", lambda message, in_shape: attack(message, in_shape).flatten(), "shape"),
    ("05.in_batch", as_mask, "mask"),
    ("05.in_batch", every_row, "missed|not in the batch"),
    ("05.in_batch", loose, "not in the batch"),
    ("05.in_batch", lambda *args: in_batch(*args).double(), "integer"),
    ("06.psnr", lambda x_hat, x: 2 * psnr(x_hat, x), "factor 20"),
    ("06.psnr", lambda x_hat, x: -10 * torch.log10((x_hat - x).pow(2).mean()), "whole batch"),
    ("06.psnr", lambda x_hat, x: -psnr(x_hat, x), "sign"),
    ("06.summary", population_std, "n − 1"),
    ("06.summary", lambda rows: {r["method"]: (0.0, 0.0) for r in rows}, "keys"),
    ("06.summary", lambda rows: {k: (m + 1, s) for k, (m, s) in summary(rows).items()}, "mean"),
    ("06.baseline", lambda x: -10 * torch.log10(x.flatten(1).var(1)), "sample variance"),
    ("06.baseline", lambda x: -10 * torch.log10(x.flatten(1).std(1, correction=0)), "std"),
    ("06.baseline", lambda x: -10 * torch.log10((x - x.mean()).pow(2).mean(dim=(1, 2, 3))), "own"),
    ("06.recovered", lambda x_hat, x: psnr(x_hat, x) > 20, "judged wrongly"),
    ("06.recovered", lambda x_hat, x: (psnr(x_hat, x) > baseline(x)).float(), "bool"),
])
def test_typical_mistakes_are_named(task_id, wrong, match):
    with pytest.raises(WrongAnswer, match=match):
        check(task_id, wrong)
