"""Checks of exercise set 03, convolutions (``exercises/03_convolutions.ipynb``).

Every case draws a fresh conv geometry (C, d, k, s, p, h) and, where an image is needed, a real
image (faces for one channel, CIFAR-100 photos for three); the learner's answer is compared with
:mod:`recon_lib.conditions` and :mod:`recon_lib.conv` (the references) and with the true image.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .. import conditions, conv, datasets
from . import ask, cases, expect_close, expect_tensor, fail, first_match, task


def _geometry(max_d: int = 9) -> tuple[int, int, int, int, int]:
    """A random (C, d, k, s, p) with p < k ≤ d: every output reads at least one pixel."""
    C, d = cases.randint(1, 3), cases.randint(4, max_d)
    k = cases.randint(1, min(5, d))
    return C, d, k, cases.randint(1, 3), cases.randint(0, k - 1)


def _label(C: int, d: int, k: int, s: int, p: int, h: int | None = None) -> str:
    kernels = "" if h is None else f", h={h}"
    return f"a {C}×{d}×{d} input, k={k}, s={s}, p={p}{kernels}"


# --- Task 03.bound ------------------------------------------------------------------------------
@task("03.bound", title="d′ and the kernel bound", n_cases=12,
      hint="d′ = ⌊(d + 2p − k)/s⌋ + 1; then the smallest whole h with h·d′² ≥ C·d².")
def bound(answer: Callable, n_cases: int) -> None:
    """``answer(d, C, k, s, p) -> (d_out, h_min)``, two ints (rl.conditions)."""
    for _ in range(n_cases):
        C, d, k, s, p = _geometry(max_d=40)
        case = _label(C, d, k, s, p)
        got = ask(answer, d, C, k, s, p, case=case)
        if not (isinstance(got, tuple) and len(got) == 2):
            fail(f"return a pair (d_out, h_min), got {type(got).__name__}"
                 f"{'' if not isinstance(got, tuple) else f' of length {len(got)}'}.", case)
        d_out, h_min = conditions.conv_output_width(d, k, s, p), conditions.min_kernels(d, C, k, s, p)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in got):
            fail(f"return two Python ints (use // and int(...)), got "
                 f"{[type(v).__name__ for v in got]}.", case)
        if got[0] != d_out:
            fail(_explain_width(got[0], d, k, s, p), case)
        if got[1] != h_min:
            fail(_explain_bound(got[1], d, C, d_out), case)


def _explain_width(got: int, d: int, k: int, s: int, p: int) -> str:
    mistakes = {(d - k) // s + 1: "you left out the padding: it adds p pixels on each side.",
                (d + p - k) // s + 1: "the padding adds p pixels on *each* side, 2p in all.",
                (d + 2 * p - k) // s: "you forgot the + 1: a window that fits at position 0 is an output "
                                      "too.",
                -(-(d + 2 * p - k) // s) + 1: "round down, not up: a window that does not fit is no output."}
    return mistakes.get(got, f"d′ = {got} is not the output width of this layer.")


def _explain_bound(got: int, d: int, C: int, d_out: int) -> str:
    if got == C * d * d // (d_out * d_out) and got * d_out**2 < C * d * d:
        return "you rounded down: with that h there are fewer equations than unknowns. Round up."
    if got == -(-d * C // d_out):
        return "the ratio d/d′ enters squared: both image dimensions shrink."
    if got == -(-d * d // (d_out * d_out)) and C > 1:
        return "every kernel has C input channels to recover: multiply by C."
    return f"h = {got} is not the smallest whole h with h·d′² ≥ C·d²."


# --- Task 03.invertible ---------------------------------------------------------------------
@lru_cache(maxsize=None)
def _truth(C: int, d: int, h: int, k: int, s: int, p: int) -> dict:
    return conditions.bound_row(C, d, h, k, s, p)


def _invertible_case(index: int) -> tuple[tuple[int, ...], dict]:
    """Cycle through: below the bound, at it, above it, and count met but pixels unread —
    alternately skipped between windows (stride > kernel) and never reached at the border, so
    a rule that knows only one of the two gaps fails within eight cases."""
    kind = index % 4
    gaps = ("stride > kernel",) if (index // 4) % 2 == 0 else ("border",)
    for _ in range(400):
        C, d, k, s, p = _geometry()
        if d + 2 * p < k:
            continue
        gap, h_min = conditions.bound_gap(d, k, s, p), conditions.min_kernels(d, C, k, s, p)
        h = {0: h_min - 1, 1: h_min, 2: h_min + 1, 3: h_min + cases.randint(0, 2)}[kind]
        wanted_gap = gap in gaps if kind == 3 else gap == ""
        if h >= 1 and wanted_gap and C * d * d <= 300:
            row = _truth(C, d, h, k, s, p)
            if row["gap"] != "edges":
                return (C, d, h, k, s, p), row
    raise RuntimeError("could not draw an invertibility case; please report this as a bug")


@task("03.invertible", title="predict invertibility", n_cases=12,
      hint="the count h·d′² ≥ C·d² is necessary; it is not enough if some pixel is never read.")
def invertible(answer: Callable, n_cases: int) -> None:
    """``answer(C, d, h, k, s, p) -> bool``: full column rank for random kernels (measured)."""
    for index in range(n_cases):
        (C, d, h, k, s, p), row = _invertible_case(index)
        case = _label(C, d, k, s, p, h)
        got = ask(answer, C, d, h, k, s, p, case=case)
        if not isinstance(got, bool):
            fail(f"return True or False (a Python bool), got {type(got).__name__}.", case)
        if got == row["full_rank"]:
            continue
        if got and row["gap"]:
            fail(f"the count is met here (h·d′² = {h * row['d_out'] ** 2} ≥ {C * d * d}) but the measured "
                 f"rank is {row['rank']} < {C * d * d}: the windows never read some pixels "
                 f"({row['gap']}).", case)
        if got:
            fail(f"h·d′² = {h * row['d_out'] ** 2} < C·d² = {C * d * d}: fewer equations than unknowns.",
                 case)
        if h == row["bound"]:
            fail("exactly at the bound h·d′² ≥ C·d² holds (≥, not >): this layer is invertible.", case)
        fail(f"this layer has full rank {C * d * d} (measured): h meets the bound and every pixel is read.",
             case)


# --- Task 03.matrix ---------------------------------------------------------------------------
@task("03.matrix", title="the matrix of a tiny conv", n_cases=6,
      hint="column j of A is the conv (no bias) of the j-th basis image; PyTorch convs do not flip the "
           "kernel.")
def matrix(answer: Callable, n_cases: int) -> None:
    """``answer(weight, in_shape, stride, padding) -> A`` (h·d′² × C·d², rl.conv.as_matrix)."""
    for _ in range(n_cases):
        C, d, k, s, p = _geometry(max_d=6)
        h = cases.randint(1, 3)
        layer = nn.Conv2d(C, h, k, s, p, bias=False)
        case = _label(C, d, k, s, p, h)
        want = conv.as_matrix(layer, (C, d, d)).detach()
        weight = layer.weight.detach()
        got = ask(answer, weight, (C, d, d), s, p, case=case)
        if isinstance(got, Tensor) and got.shape == want.T.shape and want.shape != want.T.shape:
            fail(f"your matrix is {tuple(got.shape)}, the transpose of A: rows are outputs "
                 f"(h·d′² = {want.shape[0]}), columns inputs (C·d² = {want.shape[1]}).", case)
        got = expect_tensor(got, want.shape, case)
        flipped = conv.as_matrix(_with_weight(layer, weight.flip(2, 3)), (C, d, d)).detach()
        message = first_match(got, [(flipped, "you flipped the kernel (true convolution); PyTorch's "
                                               "conv2d is a cross-correlation: it does not flip.")]) \
            if k > 1 else None
        if message:
            fail(message, case)
        expect_close(got, want, "your A times an image is not the conv of that image", case, atol=1e-5)


def _with_weight(layer: nn.Conv2d, weight: Tensor) -> nn.Conv2d:
    pair = tuple[int, int]  # nn.Conv2d stores 2-tuples; torch's stubs say tuple[int, ...]
    other = nn.Conv2d(layer.in_channels, layer.out_channels, cast(pair, layer.kernel_size),
                      cast(pair, layer.stride), cast("str | pair", layer.padding), bias=False)
    with torch.no_grad():
        other.weight.copy_(weight)
    return other


# --- Task 03.invert_layer -------------------------------------------------------------------
@lru_cache(maxsize=4)
def _photos(side: int) -> Tensor:
    return datasets.load("cifar100", size=side)[0]


def _image(C: int, side: int) -> Tensor:
    if C == 1:
        return cases.faces(side)[cases.randint(0, 99)]
    return _photos(side)[cases.randint(0, len(_photos(side)) - 1)]


@task("03.invert_layer", title="invert one conv layer", n_cases=5,
      hint="subtract the bias from every output channel, then solve A x = y − b by least squares.")
def invert_layer(answer: Callable, n_cases: int) -> None:
    """``answer(weight, bias, y, stride, padding, in_shape) -> x`` for y = conv(x) + b above the bound."""
    for index in range(n_cases):
        C, side = (1, 12) if index % 2 else (3, 8)
        k, s = (3, 1) if index % 3 else (4, 2)
        p = 1
        h = conditions.min_kernels(side, C, k, s, p) + 1
        layer = nn.Conv2d(C, h, k, s, p).double()
        bias = layer.bias
        assert bias is not None  # nn.Conv2d has a bias by default
        x = _image(C, side).double()
        y = layer(x[None])[0].detach()
        case = _label(C, side, k, s, p, h) + " (a real image)"
        got = ask(answer, layer.weight.detach(), bias.detach(), y, s, p, (C, side, side), case=case)
        got = expect_tensor(got, x.shape, case)
        weight = layer.weight.detach()
        no_bias, _ = conv.solve(layer, y[None], x.shape, tol=1e-12, max_iter=2000)
        adjoint = F.conv_transpose2d((y - bias.detach()[:, None, None])[None], weight, stride=s,
                                     padding=p, output_padding=side - ((y.shape[-1] - 1) * s - 2 * p + k))[0]
        message = first_match(got, [(no_bias[0], "you forgot to subtract the bias from y first."),
                                    (adjoint, "you applied Aᵀ (the transposed conv) instead of solving "
                                              "A x = y: Aᵀ is not the inverse.")], atol=1e-3, rtol=1e-3)
        if message:
            fail(message, case)
        expect_close(got, x, "your x is not the image that produced y", case, atol=1e-3, rtol=1e-3)
