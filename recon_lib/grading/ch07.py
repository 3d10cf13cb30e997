"""Checks of exercise set 07, defences (``exercises/07_defences.ipynb``).

Every case is a real message: a face from :mod:`recon_lib.grading.cases` sent through a fresh
random MLP by :func:`recon_lib.fl.client_update` (in float64, so the learner's arithmetic and the
reference agree to round-off). Answers are compared with :mod:`recon_lib.defences`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import defences, fl
from . import ask, cases, expect_close, expect_tensor, expected, fail, first_match, task


@dataclass
class Case:
    """One client's first-layer gradients and the private image behind them."""

    label: str
    x: Tensor  # the flat private image (d,), float64
    grad_weight: Tensor  # (h, d)
    grad_bias: Tensor  # (h,)


def make_case(index: int) -> Case:
    """A fresh random MLP and face whose message has a live first-layer unit (δ ≠ 0), float64."""
    for _ in range(20):  # redraw the rare ReLU model whose first-layer units are all dead
        case = _draw_case(index)
        if case.grad_bias.any():
            return case
    raise RuntimeError("could not draw a case with a live unit; report this as a bug")


def _draw_case(index: int) -> Case:
    image = cases.face_batch(1).double()
    activation = cases.ACTIVATIONS[index % len(cases.ACTIVATIONS)]
    model = cases.random_mlp(image.shape[1:], activation, first_width=(3, 12)).double()
    n_classes = cases.n_classes(model)
    grads = fl.client_update(model, image, torch.randint(n_classes, (1,)))
    label = f"case {index + 1} ({cases.describe(model)}, a {tuple(image.shape[2:])} face)"
    return Case(label, image.flatten(), grads["1.weight"], grads["1.bias"])


# --- Task 07.prune ----------------------------------------------------------------------------
def _keep_counts(n: int, ratio: float) -> set[int]:
    """The counts a right answer may keep: k = max(1, ⌈(1 − ratio)·n⌉) computed exactly
    (:func:`recon_lib.defences.keep_count`), and — when (1 − ratio)·n is a whole number up to
    round-off — also the float formula's count, since 0.99 is not exactly 99/100 in binary."""
    counts = {defences.keep_count(n, ratio)}
    product = (1 - ratio) * n
    if abs(product - round(product)) <= 1e-9 * n:
        counts.add(max(1, math.ceil(product)))
    return counts


@task("07.prune", title="top-k pruning of a gradient", n_cases=6,
      hint="rank the entries by |g|, keep the k = ceil((1 − ratio)·n) largest (at least 1), zero the rest.")
def prune(answer: Callable, n_cases: int) -> None:
    """``answer(g, ratio) -> g with the ratio fraction of smallest-|g| entries zeroed``."""
    for index in range(n_cases):
        case = make_case(index)
        g = case.grad_weight
        ratio = (0.5, 0.9, 0.99, 0.0, 0.75, 0.999)[index % 6]
        got = expect_tensor(ask(answer, g, ratio, case=case.label), g.shape, case.label, dtype=g.dtype)
        n = g.numel()
        allowed = _keep_counts(n, ratio)
        wants = [_top_k(g, k) for k in sorted(allowed)]
        want = wants[0]
        if any(_same_top_k(got, right) for right in wants):
            continue
        keep = min(allowed)
        flat = g.flatten()
        by_value = torch.zeros_like(flat).scatter(0, torch.topk(flat, keep).indices, 1.0) * flat
        floor_keep = max(1, math.floor((1 - ratio) * n))
        mistakes = [
            (g - want, "you zeroed the *largest* entries and kept the small ones; top-k keeps the "
                       "largest |g|."),
            (by_value.reshape(g.shape), "you kept the largest *values*; a large negative entry is large "
                                        "too — rank by |g|."),
            ((want != 0).to(g.dtype), "you returned the mask; return the pruned gradient (g where kept, "
                                      "0 elsewhere)."),
        ]
        if floor_keep not in allowed:
            mistakes.append((_top_k(g, floor_keep), "you rounded (1 − ratio)·n down; keep ⌈(1 − ratio)·n⌉ "
                                                    "entries (at least one)."))
        valid = [(value, text) for value, text in mistakes if not any(_same_top_k(value, w) for w in wants)]
        message = first_match(got, valid, atol=1e-12, rtol=1e-9)
        if message:
            fail(message, case.label)
        if not ((got == 0) | (got == g)).all():
            fail("every entry must be either unchanged (kept) or 0 (pruned); some of yours are neither.",
                 case.label)
        kept = int((got != 0).sum())
        fail(f"you kept {kept} entries, {'more' if kept > keep else 'fewer'} than ⌈(1 − ratio)·n⌉"
             if kept not in allowed and int((g != 0).sum()) >= keep else
             f"your kept entries are not those of largest |g| (ratio {ratio}).", case.label)


def _top_k(g: Tensor, k: int) -> Tensor:
    flat = g.flatten()
    index = torch.topk(flat.abs(), k).indices
    return torch.zeros_like(flat).index_copy(0, index, flat[index]).reshape(g.shape)


def _same_top_k(got: Tensor, want: Tensor) -> bool:
    """Same multiset of kept magnitudes: any tie-breaking among equal |g| is a valid top-k."""
    if got.shape != want.shape:
        return False
    return torch.allclose(got.abs().flatten().sort().values, want.abs().flatten().sort().values,
                          atol=1e-12, rtol=1e-9)


# --- Task 07.quantize ---------------------------------------------------------------------------
LEVEL_TOL = 1e-6  # relative to m: float32 round-off of a level (6e-8·m) passes, half a step never does


@task("07.quantize", title="uniform quantisation to b bits", n_cases=6,
      hint="2^b levels from −m to m, both included, are m·(2k/(2^b − 1) − 1); snap each entry to the "
           "nearest.")
def quantize(answer: Callable, n_cases: int) -> None:
    """``answer(g, bits) -> g snapped to 2^bits levels evenly spaced over [−max|g|, max|g|]``."""
    for index in range(n_cases):
        case = make_case(index)
        bits = (1, 2, 3, 4, 8, 2)[index % 6]
        g = torch.zeros(5, dtype=torch.float64) if index == 5 else case.grad_weight
        label = case.label if index != 5 else f"case {index + 1} (an all-zero gradient: a frozen layer)"
        got = expect_tensor(ask(answer, g, bits, case=label), g.shape, label)
        want = defences.quantize({"g": g}, bits)["g"]
        top = g.abs().max()
        mistakes = []
        if top > 0:
            step = 2 * top / 2 ** bits
            mistakes.append((-top + step * torch.round((g + top) / step),
                             "your grid step is 2m/2^b; 2^b levels from −m to m leave 2^b − 1 gaps, "
                             "so the step is 2m/(2^b − 1)."))
            if bits > 1:
                mid = top / (2 ** (bits - 1) - 1)
                mistakes.append((mid * torch.round(g / mid), "your grid has a level at 0 (a mid-tread "
                                 "quantiser, 2^b − 1 levels); this task asks for 2^b levels from −m to m."))
        message = first_match(got, _differ(mistakes, want), atol=LEVEL_TOL * float(top), rtol=0)
        if message:
            fail(message, label)
        _expect_nearest_levels(got, g, want, bits, label)


def _expect_nearest_levels(got: Tensor, g: Tensor, want: Tensor, bits: int, label: str) -> None:
    """Every entry on the grid and at a nearest level (an entry midway between two, such as an
    exact 0 with an even number of levels, may take either); both up to LEVEL_TOL·m, so a grid
    built in float32 passes for a float64 gradient."""
    top = float(g.abs().max())
    if top == 0:
        expect_close(got, want, "an all-zero gradient must stay zero", label, atol=1e-12, rtol=0)
        return
    tol = LEVEL_TOL * top
    step = 2 * top / (2 ** bits - 1)
    index = ((got.double() + top) / step).round()
    on_grid = (got.double() - (-top + step * index)).abs() <= tol
    if not on_grid.all() or index.min() < 0 or index.max() > 2 ** bits - 1:
        fail(f"some of your values are not among the 2^{bits} levels m·(2k/(2^b − 1) − 1) with "
             "m = max|g|.", label)
    if index.unique().numel() > 2 ** bits:
        fail(f"your answer takes more than the {2 ** bits} values {bits} bit(s) allow.", label)
    if ((got.double() - g).abs() > (want - g).abs() + tol).any():
        fail(f"your {bits}-bit values are on the grid but not always the *nearest* level to each entry.",
             label)


# --- Task 07.noise_mse ------------------------------------------------------------------------
@task("07.noise_mse", title="predict the closed form's error under noise", n_cases=5,
      hint="each pixel's error is Σᵢ δᵢ(ε_Wᵢⱼ − xⱼ ε_bᵢ)/Σᵢ δᵢ²; take its variance, then average over "
           "pixels.")
def noise_mse(answer: Callable, n_cases: int) -> None:
    """``answer(delta, x, std) -> float``: first-order MSE of the least-squares closed form."""
    for index in range(n_cases):
        case = make_case(index)
        std = float(10.0 ** torch.empty(()).uniform_(-6, -3)) * float(case.grad_bias.abs().max())
        got = ask(answer, case.grad_bias, case.x, std, case=case.label)
        got = _number(got, case.label)
        want = defences.predicted_mse(case.grad_bias, case.x, std)
        total, mean_x2 = float(case.grad_bias.square().sum()), float(case.x.square().mean())
        mistakes = [
            (std ** 2 / total, "you left out the noise on ∂b: it enters multiplied by x, giving the "
                               "factor (1 + mean x²)."),
            (std * (1 + mean_x2) / total, "std is a standard deviation; the MSE needs the variance std²."),
            (std ** 2 * (1 + mean_x2) / float(case.grad_bias.square().mean()),
             "you divided by the *mean* of δᵢ²; least squares over h units divides by their *sum*."),
            (std ** 2 * (1 + mean_x2) / total ** 2, "you divided by (Σ δᵢ²)²; one factor Σ δᵢ² cancels "
                                                   "against the variance of the numerator."),
        ]
        for value, message in mistakes:
            if math.isclose(got, value, rel_tol=1e-6):
                fail(message, case.label)
        expected(want)
        if not math.isclose(got, want, rel_tol=1e-6):
            fail(f"your prediction is {'larger' if got > want else 'smaller'} than the first-order MSE "
                 "of this case.", case.label)


# --- Task 07.dp_bound -------------------------------------------------------------------------
@task("07.dp_bound", title="the PSNR ceiling under DP-SGD", n_cases=5,
      hint="after clipping Σ δᵢ² ≤ C²/(1 + ‖x‖²); noise std is σC; put both into your noise_mse.")
def dp_bound(answer: Callable, n_cases: int) -> None:
    """``answer(sigma, x) -> float``: −10 log10(σ² (1 + mean x²)(1 + ‖x‖²)) (PSNR in dB)."""
    for index in range(n_cases):
        case = make_case(index)
        sigma = float(10.0 ** torch.empty(()).uniform_(-4, 0))
        got = _number(ask(answer, sigma, case.x, case=case.label), case.label)
        want = defences.dp_psnr_bound(sigma, case.x)
        expected(want)
        mean_x2, norm2 = float(case.x.square().mean()), float(case.x.square().sum())
        mistakes = [
            (-10 * math.log10(sigma ** 2 * (1 + mean_x2)), "you forgot that clipping caps Σ δᵢ² at "
                                                          "C²/(1 + ‖x‖²): the factor (1 + ‖x‖²) is missing."),
            (-10 * math.log10(sigma ** 2 * (1 + mean_x2) * (1 + math.sqrt(norm2))),
             "you used ‖x‖ where the bound has ‖x‖² (the squared norm of the image)."),
            (10 * math.log10(sigma ** 2 * (1 + mean_x2) * (1 + norm2)),
             "the sign is flipped: PSNR = −10 log10(MSE) for pixels in [0, 1]."),
            (-20 * math.log10(sigma * (1 + mean_x2) * (1 + norm2)), "only σ is squared in the MSE; "
                                                                    "(1 + mean x²)(1 + ‖x‖²) are not."),
        ]
        for value, message in mistakes:
            if math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-9):
                fail(message, case.label)
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6):
            fail(f"your bound is {got:.4g} dB; for this image and σ = {sigma:.3g} it is not the DP ceiling.",
                 case.label)


def _differ(mistakes: list[tuple[Tensor, str]], want: Tensor) -> list[tuple[Tensor, str]]:
    """Only the typical mistakes that give a *different* answer on this case."""
    return [(value, message) for value, message in mistakes
            if value.shape != want.shape or not torch.allclose(value, want, atol=1e-12, rtol=1e-9)]


def _number(got: object, case: str) -> float:
    """A plain finite number from the learner's answer (a float or a 0-d tensor)."""
    if got is None:
        fail("your function returned None. Did you forget the `return` statement?", case)
    if isinstance(got, Tensor):
        if got.numel() != 1:
            fail(f"return one number, not a tensor of shape {tuple(got.shape)}.", case)
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isfinite(got):
        fail(f"return one finite number (a float), got {got!r}.", case)
    return float(got)
from . import ch07_aggregation  # noqa: E402,F401  (registers 07.secure_sum, 07.sa_span, 07.epsilon)
