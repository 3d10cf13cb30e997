"""Checks of exercise set 05, medical images (``exercises/05_medical_images.ipynb``).

* ``05.invert_cnn`` — chapter 05's exact CNN inversion (Claim 3) on one sigmoid conv layer:
  a real fMRI slice or blood-cell crop (H ≠ W) through a 4×4 stride-2 conv one kernel above the
  bound; the reference is the private image itself.
* ``05.attack_wbc`` — a real blood-cell crop (random crop, size and MLP) rebuilt from its message;
  the reference is :func:`recon_lib.analytic.reconstruct` and the private crop itself.
* ``05.in_batch`` — which slices of a scan were in a batch message, from the leaked span; the
  reference is :func:`recon_lib.analytic.batch_span` with :func:`recon_lib.analytic.span_residual`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .. import analytic, datasets, fl, models
from . import ask, cases, expect_close, expect_tensor, expected, fail, first_match, task


# --- Task 05.invert_cnn -----------------------------------------------------------------------
@lru_cache(maxsize=4)
def _slices(size: tuple[int, int]) -> Tensor:
    return datasets.load("fmri", n=24, size=size)[0]


def _cnn_case(index: int) -> tuple[Tensor, nn.Conv2d, str]:
    """A real fMRI slice or blood-cell crop (H ≠ W) and a 4×4 stride-2 conv one kernel above the bound."""
    sizes = ((8, 12), (12, 8), (10, 10))
    size = sizes[index % len(sizes)]
    kind = ("fmri", "wbc")[index % 2]
    pool = _slices(size) if kind == "fmri" else _cells(size)
    x = pool[cases.randint(0, len(pool) - 1)].double()
    C = x.shape[0]
    layer = nn.Conv2d(C, 4 * C + 1, 4, stride=2, padding=1).double()  # d′ = d/2: bound (d/d′)²C = 4C
    return x, layer, (f"case {index + 1} ({kind}, {C}×{size[0]}×{size[1]}, {4 * C + 1} kernels 4×4, "
                      "stride 2, padding 1)")


@task("05.invert_cnn", title="undo a sigmoid conv layer", n_cases=6,
      hint="the sigmoid is invertible: z = logit(a); subtract the bias from every output channel; then "
           "solve A x = z − b by least squares (A from your conv matrix, or torch.linalg.lstsq).")
def invert_cnn(answer: Callable, n_cases: int) -> None:
    """``answer(weight, bias, a, stride, padding, in_shape) -> x`` for a = sigmoid(conv(x) + b)."""
    for index in range(n_cases):
        x, layer, label = _cnn_case(index)
        assert layer.bias is not None  # the case's conv has a bias
        weight, bias = layer.weight.detach(), layer.bias.detach()
        z = layer(x[None])[0].detach()
        a = torch.sigmoid(z)
        got = ask(answer, weight, bias, a, 2, 1, tuple(x.shape), case=label)
        got = expect_tensor(got, x.shape, label)
        if torch.allclose(got.double(), x, atol=1e-4):
            continue
        solve = _least_squares(layer)
        mistakes = [(solve(a - bias[:, None, None]), "you solved with the activations a themselves; the "
                     "sigmoid comes after the conv, so undo it first: z = logit(a) = log(a / (1 − a))."),
                    (solve(z), "you forgot to subtract the bias from every output channel before solving."),
                    (solve(a), "you solved with the activations a themselves: undo the sigmoid (logit) "
                               "and subtract the bias first.")]
        message = first_match(got.double(), mistakes, atol=1e-4, rtol=1e-4)
        if message:
            fail(message, label)
        expect_close(got, x, "your x is not the image behind a (this layer is above the bound, so "
                     "only one image gives a; solve to round-off)", label, atol=1e-4, rtol=0)


def _least_squares(layer: nn.Conv2d) -> Callable[[Tensor], Tensor]:
    """x ↦ the least-squares input of the bias-free conv for an output (for naming mistakes)."""
    def solve(y: Tensor) -> Tensor:
        shape = layer.weight.shape[1], *(2 * n for n in y.shape[1:])
        basis = torch.eye(math.prod(shape), dtype=y.dtype).reshape(-1, *shape)
        matrix = F.conv2d(basis, layer.weight.detach(), stride=2, padding=1).flatten(1).T
        return torch.linalg.lstsq(matrix, y.reshape(-1, 1)).solution.reshape(shape)
    return solve


# --- Task 05.attack_wbc ----------------------------------------------------------------------
@lru_cache(maxsize=4)
def _cells(size: tuple[int, int]) -> Tensor:
    return datasets.load("wbc", size=size)[0]


@task("05.attack_wbc", title="rebuild a blood-cell crop", n_cases=6,
      hint="x = ∂ℓ/∂Wᵢ ÷ ∂ℓ/∂bᵢ for a usable unit (δᵢ ≠ 0), then reshape the d values to "
           "in_shape = (C, H, W) in PyTorch's channel-first order.")
def attack_wbc(answer: Callable, n_cases: int) -> None:
    """``answer(message, in_shape) -> (C, H, W)``: the private crop behind a biased MLP's message."""
    for index in range(n_cases):
        size = ((16, 24), (24, 16), (32, 32))[index % 3]  # H ≠ W: a swapped reshape fails
        pool = _cells(size)
        x = pool[cases.randint(0, len(pool) - 1)]
        activation = cases.ACTIVATIONS[index % len(cases.ACTIVATIONS)]
        model = cases.random_mlp(x.shape, activation, first_width=(4, 12))
        message = fl.client_update(model, x[None], torch.randint(cases.n_classes(model), (1,)))
        if not message["1.bias"].any():
            continue  # every unit dead for this crop: nothing leaks, nothing to grade
        label = f"case {index + 1} ({cases.describe(model)}, one 3×{size[0]}×{size[1]} crop)"
        got = expect_tensor(ask(answer, message, tuple(x.shape), case=label), x.shape, label)
        flat = analytic.invert_linear(message["1.weight"], message["1.bias"])
        channel_last = flat.reshape(*size, 3).permute(2, 0, 1)
        swapped = flat.reshape(3, size[1], size[0]).transpose(1, 2)
        hint = first_match(got, [(channel_last, "right pixels, wrong order: reshape to (C, H, W) directly; "
                                                "PyTorch images are channel-first, not (H, W, C)."),
                                 (swapped, "right pixels, but height and width are swapped: reshape to "
                                           "(C, H, W) with in_shape as given, not (C, W, H) transposed.")])
        if hint:
            fail(hint, label)
        expect_close(got, x, "your crop differs from the private one", label, atol=1e-4)


# --- Task 05.in_batch --------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _scan(size: tuple[int, int]) -> Tensor:
    return datasets.load("fmri", n=24, size=size)[0]


@task("05.in_batch", title="which slices were in the batch", n_cases=6,
      hint="an orthonormal basis of the row space of ∂ℓ/∂W (SVD, rank B) spans the batch; a slice "
           "is in it when ‖x − VVᵀx‖/‖x‖ is at round-off level (say < 1e-3).")
def in_batch(answer: Callable, n_cases: int) -> None:
    """``answer(grad_W, grad_b, B, candidates) -> sorted indices`` of candidates in the batch."""
    for index in range(n_cases):
        scan = _scan(((12, 16), (24, 32))[index % 2])
        B = cases.randint(2, 4)
        members = torch.sort(torch.randperm(len(scan))[:B]).values
        model = models.mlp(scan.shape[1:], [B + cases.randint(0, 3)], 24)
        message = fl.client_update(model, scan[members], members)
        label = (f"case {index + 1} (B = {B} of {len(scan)} slices {tuple(scan.shape[2:])}, "
                 f"h = {model[1].out_features})")
        got = ask(answer, message["1.weight"], message["1.bias"], B, scan, case=label)
        basis = analytic.batch_span(message["1.weight"], message["1.bias"], B)
        want = (analytic.span_residual(scan, basis) < 1e-3).nonzero().flatten()
        expected(want.tolist())
        _compare_indices(got, want, len(scan), label)


def _compare_indices(got: object, want: Tensor, n: int, label: str) -> None:
    if got is None:
        fail("your function returned None. Did you forget the `return` statement?", label)
    if not isinstance(got, Tensor) or got.is_floating_point():
        fail(f"return a tensor of integer indices, got {type(got).__name__}"
             f"{'' if not isinstance(got, Tensor) else ' of ' + str(got.dtype)}.", label)
    if got.dtype == torch.bool:
        fail(f"you returned a mask of {got.numel()} booleans; return the indices (mask.nonzero()).", label)
    got = got.flatten().cpu().long()
    if set(got.tolist()) == set(want.tolist()) and not torch.equal(got, want):
        fail("the right slices, but the task asks for them sorted in increasing order "
             "(torch.sort or .sort()), each once.", label)
    extra = sorted(set(got.tolist()) - set(want.tolist()))
    missing = sorted(set(want.tolist()) - set(got.tolist()))
    if extra:
        fail(f"{len(extra)} of the slices you returned {'was' if len(extra) == 1 else 'were'} not in the "
             "batch: is your threshold too loose, or your basis wider than rank B?", label)
    if missing:
        fail(f"you missed {len(missing)} slice(s) that were in the batch: is your basis orthonormal, "
             "and your residual relative to ‖x‖?", label)
    if got.numel() != want.numel():
        fail("you returned a slice more than once: return each index once.", label)
