"""Checks of exercise set 01, one hidden node (``exercises/01_one_hidden_node.ipynb``).

Every case is a real face image sent through a fresh random MLP (depth, widths, activation,
classes and label drawn per case) by :func:`recon_lib.fl.client_update`; the learner's answer is
compared with :mod:`recon_lib.analytic` (the reference) and with the true image.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .. import analytic, fl
from . import (
    ask,
    cases,
    constant_factor,
    expect_close,
    expect_tensor,
    fail,
    first_match,
    task,
)


@dataclass
class Case:
    """One client's message, the first layer's gradients and the private image behind them."""

    label: str
    x: Tensor  # the flat private image (d,), only for comparing answers
    grad_weight: Tensor  # (h, d)
    grad_bias: Tensor | None  # (h,), None without bias

    @property
    def bias_gradient(self) -> Tensor:
        """``grad_bias`` of a case drawn with a bias (the tasks that divide by it)."""
        if self.grad_bias is None:
            raise RuntimeError("this case was drawn without a bias; please report this as a bug")
        return self.grad_bias


def make_case(index: int, *, bias: bool = True, activation: str | None = None,
              width: tuple[int, int] = (2, 8), kill_first_unit: bool = False,
              tiny_unit: float | None = None, accept: Callable[[Case], bool] | None = None,
              black_corner: bool = False) -> Case:
    """A fresh random MLP and face image, and the one-sample message the client sends.

    ``kill_first_unit`` makes unit 0 a dead ReLU (δ = 0 exactly); ``tiny_unit`` scales unit 1's
    outgoing weights by that factor (1e-6, or 1e-30: far below any "small" threshold a learner
    might pick, yet a normal float32) so that its δ is tiny but not zero (needs a width ≥ 2);
    ``accept`` redraws until the case has a property a task needs (e.g. a negative δ);
    ``black_corner`` sets the image's top-left 2×2 pixels to 0 (as an MNIST digit's corner).
    """
    activation = activation or cases.ACTIVATIONS[index % len(cases.ACTIVATIONS)]
    for _ in range(50):  # redraw models whose units are all dead for this image, or not accepted
        x = cases.face_batch(1)
        if black_corner:
            x[..., :2, :2] = 0.0
        model = cases.random_mlp(x.shape[1:], activation, bias=bias, first_width=width)
        first, second, head = model[1], model[3], model[-1]  # Flatten, Linear, activation, Linear…
        assert isinstance(first, nn.Linear) and isinstance(second, nn.Linear) and isinstance(head, nn.Linear)
        with torch.no_grad():
            if kill_first_unit:  # z = -|w|·x - 1 < 0 for any image x ≥ 0
                first.weight[0] = -first.weight[0].abs()
                if bias:
                    first.bias[0] = -1.0
            if tiny_unit is not None:
                second.weight[:, 1] *= tiny_unit
        y = torch.randint(head.out_features, (1,))
        grads = fl.client_update(model, x, y)
        label = (f"case {index + 1} ({cases.describe(model)}, one "
                 f"{x.shape[-2]}×{x.shape[-1]} face, label {int(y)})")
        case = Case(label, x.flatten(), grads["1.weight"], grads.get("1.bias"))
        if case.grad_weight.any() and (accept is None or accept(case)):
            return case
    raise RuntimeError("could not draw a case with a live unit; please report this as a bug")


# --- Task 01.closed_form --------------------------------------------------------------------
@task("01.closed_form", title="x from one unit", n_cases=6,
      hint="for one unit ∂ℓ/∂w = δ·x and ∂ℓ/∂b = δ; which operation makes δ cancel?")
def closed_form(answer: Callable, n_cases: int) -> None:
    """``answer(grad_w_i, grad_b_i) -> x`` for the unit with the largest |δ|."""
    for index in range(n_cases):
        case = make_case(index)
        unit = int(case.bias_gradient.abs().argmax())
        grad_w, grad_b = case.grad_weight[unit], case.bias_gradient[unit]
        got = ask(answer, grad_w, grad_b, case=case.label)
        if isinstance(got, Tensor) and got.shape == grad_w.shape and torch.isfinite(got).all():
            _explain_closed_form(got, case, grad_w, grad_b)
        got = expect_tensor(got, grad_w.shape, case.label)
        ratios, _ = analytic.unit_estimates(case.grad_weight, case.bias_gradient)
        expect_close(got, ratios[unit], "your x differs from the reference closed form", case.label)


def _explain_closed_form(got: Tensor, case: Case, grad_w: Tensor, grad_b: Tensor) -> None:
    b = float(grad_b)
    mistakes = [
        (grad_w, "your reconstruction has the right shape but is off by a factor equal to ∂ℓ/∂b — "
                 "did you divide?"),
        (grad_w * grad_b, "you multiplied by ∂ℓ/∂b; the bias gradient has to cancel δ, not square it."),
        (grad_b / grad_w, "you divided the wrong way round: which of the two gradients carries x?"),
        (-case.x, "your image is the true one with every pixel's sign flipped." + (
            " Here ∂ℓ/∂b is negative: dividing by its absolute value (or dropping a sign) does that; "
            "δ's sign must cancel as well." if b < 0 else "")),
    ]
    message = first_match(got, mistakes, right=case.x, rtol=1e-3)
    if message:
        fail(message, case.label)
    factor = constant_factor(got, case.x, rtol=1e-3)
    if factor is not None and abs(factor - 1) > 1e-3:
        fail(f"your image is the true one times a constant {factor:.3g}; a scale slipped in.", case.label)


# --- Task 01.usable ---------------------------------------------------------------------------
@task("01.usable", title="which units are usable", n_cases=6,
      hint="a unit can be divided by only when its ∂ℓ/∂b = δ is not zero; δ can be negative.")
def usable(answer: Callable, n_cases: int) -> None:
    """``answer(grad_b) -> bool mask (h,)``: True where |∂ℓ/∂b| > 0 (as rl.analytic.usable_units)."""
    for index in range(n_cases):
        case = make_case(index, activation=None if index % 2 else "relu", width=(6, 16),
                         kill_first_unit=index % 2 == 0, tiny_unit=(1e-30, 1e-6, None)[index % 3],
                         accept=lambda case: bool(analytic.usable_units(case.bias_gradient).any()))
        got = expect_tensor(ask(answer, case.bias_gradient, case=case.label), case.bias_gradient.shape,
                            case.label)
        if got.dtype != torch.bool:
            fail(f"return a boolean mask (dtype torch.bool, e.g. from a comparison), not {got.dtype}.",
                 case.label)
        want = analytic.usable_units(case.bias_gradient)
        if not torch.equal(got, want):
            fail(_explain_usable(got, want, case.bias_gradient), case.label)


def _explain_usable(got: Tensor, want: Tensor, grad_b: Tensor) -> str:
    if torch.equal(got, ~want) and want.any() and not want.all():
        return "your mask is the opposite: True should mark units you *can* divide by."
    if (got & ~want).any():
        return f"{int((got & ~want).sum())} unit(s) you marked usable have ∂ℓ/∂b = 0 (dead): 0/0 is NaN."
    missed = want & ~got
    if torch.equal(missed, want & (grad_b < 0)):
        return "you dropped the units whose ∂ℓ/∂b is negative; a negative δ divides just as well."
    smallest = float(grad_b[missed].abs().min())
    return (f"you left out {int(missed.sum())} usable unit(s), the smallest with |∂ℓ/∂b| = "
            f"{smallest:.1e}. A tiny but non-zero δ still divides out exactly; only δ = 0 does not.")


# --- Task 01.layer ----------------------------------------------------------------------------
@task("01.layer", title="one x from a layer of h units", n_cases=6,
      hint="every usable unit's ratio is the same x; skip the dead ones and combine the rest.")
def layer(answer: Callable, n_cases: int) -> None:
    """``answer(grad_W, grad_b) -> x`` from all usable units (reference rl.analytic.invert_linear)."""
    for index in range(n_cases):
        case = make_case(index, activation="relu" if index % 2 else None, width=(4, 12),
                         kill_first_unit=index % 2 == 1)
        got = ask(answer, case.grad_weight, case.bias_gradient, case=case.label)
        if isinstance(got, Tensor) and got.shape == case.grad_weight.shape:
            fail(f"you returned one image per unit, shape {tuple(got.shape)}; combine the usable "
                 f"units into one image of shape {tuple(case.x.shape)}.", case.label)
        if isinstance(got, Tensor) and got.shape == case.x.shape and not torch.isfinite(got).all():
            fail("your image contains NaN or inf: some units here have ∂ℓ/∂b = 0 (a dead ReLU), "
                 "and 0/0 is NaN.", case.label)
        got = expect_tensor(got, case.x.shape, case.label)
        _explain_layer(got, case)
        want = analytic.invert_linear(case.grad_weight, case.bias_gradient)
        expect_close(got, want, "your x differs from the reference inversion", case.label, atol=1e-3)


def _explain_layer(got: Tensor, case: Case) -> None:
    usable_count = int(analytic.usable_units(case.bias_gradient).sum())
    factor = constant_factor(got, case.x, rtol=1e-3)
    if factor is None or abs(factor - 1) < 1e-3:
        return
    h = case.bias_gradient.numel()
    if abs(factor - usable_count) < 1e-2 * usable_count and usable_count > 1:
        fail(f"your image is {usable_count}× too bright, the number of usable units: "
             "did you add the units' ratios instead of averaging them?", case.label)
    if abs(factor - usable_count / h) < 1e-2:
        fail(f"your image is too dark by {usable_count}/{h}, the fraction of usable units: "
             "the dead units' zeros went into your average.", case.label)
    fail(f"your image is the true one times a constant {factor:.3g}; a scale slipped in.", case.label)


# --- Task 01.direction ------------------------------------------------------------------------
@task("01.direction", title="the direction of x without a bias", n_cases=6,
      hint="with no bias ∂ℓ/∂W = δ xᵀ: every non-zero row points along x; images are non-negative.")
def direction(answer: Callable, n_cases: int) -> None:
    """``answer(grad_W) -> unit vector`` along x with positive pixel sum (no bias)."""
    for index in range(n_cases):
        case = _direction_case(index)
        got = ask(answer, case.grad_weight, case=case.label)
        if isinstance(got, Tensor) and got.shape == case.x.shape and not torch.isfinite(got).all():
            fail("your direction contains NaN or inf. Did you normalise a row of ∂ℓ/∂W that is zero "
                 "(a dead unit)?", case.label)
        got = expect_tensor(got, case.x.shape, case.label)
        unit_x = case.x / case.x.norm()
        factor = constant_factor(got, unit_x, rtol=1e-3)
        if factor is not None and abs(factor + 1) < 1e-3:
            fail("your direction points the wrong way (its pixels sum to a negative number); "
                 "images are non-negative, so flip it.", case.label)
        if factor is not None and factor > 0 and abs(factor - 1) > 1e-3:
            fail(f"right direction, but its length is {got.norm():.4g}, not 1: normalise it.", case.label)
        want = analytic.direction_without_bias(case.grad_weight)
        expect_close(got, want, "your vector is not parallel to x", case.label, atol=1e-3)


def _direction_case(index: int) -> Case:
    """Even cases: a dead ReLU unit 0 and a negative δ on the largest row; odd: smooth activations."""
    if index % 4 == 1:  # a black first pixel and a negative largest row: only the pixel sum fixes the sign
        return make_case(index, bias=False, activation=("sigmoid", "tanh")[index // 2 % 2], width=(3, 10),
                         black_corner=True, accept=_negative_largest_row)
    if index % 2:
        return make_case(index, bias=False, activation=("sigmoid", "tanh")[index // 2 % 2], width=(3, 10))
    return make_case(index, bias=False, activation="relu", width=(3, 10), kill_first_unit=True,
                     accept=_negative_largest_row)


def _negative_largest_row(case: Case) -> bool:
    return bool(case.grad_weight[case.grad_weight.norm(dim=1).argmax()].sum() < 0)


# --- Task 01.scale ----------------------------------------------------------------------------
@task("01.scale", title="fix the scale with one known pixel", n_cases=5,
      hint="x = c · direction for one number c; the known pixel tells you c.")
def scale(answer: Callable, n_cases: int) -> None:
    """``answer(direction, pixel, value) -> x`` given one known pixel (rl.analytic.fix_scale)."""
    for index in range(n_cases):
        case = make_case(index, bias=False, activation="sigmoid")
        unit_direction = analytic.direction_without_bias(case.grad_weight)
        bright = (case.x > 0.2).nonzero().flatten()
        pixel = int(bright[cases.randint(0, len(bright) - 1)])
        value = float(case.x[pixel])
        got = ask(answer, unit_direction, pixel, value, case=case.label)
        got = expect_tensor(got, case.x.shape, case.label)
        mistakes = [
            (unit_direction * value, "you multiplied by the known value but did not divide by the "
                                     "direction's own value at that pixel."),
            (unit_direction / unit_direction[pixel], "your image has the right shape but the known "
                                                     "pixel is 1, not its known value."),
            (unit_direction, "you returned the direction unchanged; it still needs a scale."),
        ]
        want = analytic.fix_scale(unit_direction, pixel=pixel, value=value)
        message = first_match(got, mistakes, right=want, rtol=1e-3)
        if message:
            fail(message, case.label)
        expect_close(got, want, "your image differs from x", case.label, atol=1e-3)
