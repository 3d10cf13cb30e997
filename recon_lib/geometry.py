"""Conv geometry in integers: output widths, the kernel bound of Claim 3, and what it counts.

One place for the arithmetic that :mod:`recon_lib.conv`, :mod:`recon_lib.conditions`,
:mod:`recon_lib.cnn` and :mod:`recon_lib.benchmark` share (chapter 03). Everything here is
plain integer arithmetic on sizes: no layer, no tensor of data. Per axis a conv with kernel k,
stride s, zero padding p and dilation q maps d input positions to

    d′ = ⌊(d + 2p − q(k − 1) − 1)/s⌋ + 1

outputs. The paper's count (Claim 3): h kernels give h·d′² equations for C·d² unknowns, so
full column rank needs h ≥ (d/d′)² C. :func:`covered_width` and
:func:`effective_output_width` are the course's refinements: pixels no window reads, and
outputs that see only padding.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import _validate as check

Pair = int | Sequence[int]


def _check_conv(d: int, k: int, s: int, p: int, dilation: int) -> None:
    for name, value in (("d", d), ("k", k), ("s", s), ("dilation", dilation)):
        check.count(name, value)
    check.integer("padding p", p, low=0)


def conv_output_width(d: int, k: int, s: int = 1, p: int = 0, dilation: int = 1) -> int:
    """d′ = ⌊(d + 2p − dilation·(k − 1) − 1)/s⌋ + 1, the output width of a conv (Claim 3).

    With dilation 1 this is the paper's ⌊(d + 2p − k)/s⌋ + 1.

    Raises:
        ValueError: a size that is not a positive integer (p: non-negative), or a padded
            input smaller than the (dilated) kernel, so that no output exists.
    """
    _check_conv(d, k, s, p, dilation)
    reach = dilation * (k - 1) + 1
    if d + 2 * p < reach:
        raise ValueError(f"the padded input (d + 2p = {d + 2 * p}) is smaller than the kernel "
                         f"({reach}); no output exists")
    return (d + 2 * p - reach) // s + 1


def _pair(value: Pair) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return first, second


def output_size(in_shape: Sequence[int], k: Pair, s: Pair = 1, p: Pair = 0,
                dilation: Pair = 1) -> tuple[int, int]:
    """(H′, W′) of a conv on a C×H×W input; each of k, s, p, dilation an int or a pair."""
    _, height, width = _shape(in_shape)
    axes = zip((height, width), _pair(k), _pair(s), _pair(p), _pair(dilation), strict=True)
    first, second = (conv_output_width(*axis) for axis in axes)
    return first, second


def kernel_bound(in_shape: Sequence[int], k: Pair, s: Pair = 1, p: Pair = 0, dilation: Pair = 1) -> int:
    """Claim 3's bound as the smallest integer h: ⌈C·H·W / (H′·W′)⌉ for a C×H×W input.

    Exact integer arithmetic; for a square input this is (d/d′)² C rounded up.
    """
    channels, height, width = _shape(in_shape)
    out_h, out_w = output_size(in_shape, k, s, p, dilation)
    return -(-channels * height * width // (out_h * out_w))


def min_kernels(d: int, C: int, k: int, s: int = 1, p: int = 0, dilation: int = 1) -> int:
    """The paper's kernel bound h ≥ (d/d′)² C as the smallest integer h (Claim 3, chapter 03).

    Counting: h kernels give h·d′² equations for C·d² unknowns, so full column rank needs
    h·d′² ≥ C·d². Necessary, not sufficient: see :func:`covered_width` for what it misses.
    Exact integer arithmetic, ⌈C d² / d′²⌉: e.g. 3×32×32, k=5, s=2, p=2 gives d′=16 and 12.
    """
    check.count("C", C)
    _check_conv(d, k, s, p, dilation)
    return kernel_bound((C, d, d), k, s, p, dilation)


def equation_count(in_shape: Sequence[int], h: int, k: Pair, s: Pair = 1, p: Pair = 0,
                   dilation: Pair = 1, weight_grads: bool = False) -> int:
    """Linear equations a conv layer gives on its C×H×W input: h·H′·W′, plus h·C·k_h·k_w.

    The first term is the layer's output (Claim 3's count). With ``weight_grads`` the layer's
    weight gradient ∂ℓ/∂K = δ ⋆ x adds one equation per weight once δ at its output is known
    (the idea of R-GAP, Zhu & Blaschko 2021; the course's extension of the count). Enough
    equations (≥ C·H·W) is necessary for a unique input, not sufficient: the rank can fall
    short (edges, stride), which :func:`recon_lib.conv.solve`'s verification catches.
    """
    channels = _shape(in_shape)[0]
    h = check.count("h", h)
    out_h, out_w = output_size(in_shape, k, s, p, dilation)
    k_h, k_w = _pair(k)
    return h * out_h * out_w + (h * channels * k_h * k_w if weight_grads else 0)


def _taps(d: int, k: int, s: int, p: int, dilation: int) -> Tensor:
    """d′ × k input positions read by each output position's kernel taps along one axis."""
    width = conv_output_width(d, k, s, p, dilation)
    return torch.arange(width)[:, None] * s - p + torch.arange(k)[None, :] * dilation


def covered_width(d: int, k: int, s: int = 1, p: int = 0, dilation: int = 1) -> int:
    """How many of the d input positions along one axis some kernel tap ever reads.

    An input pixel no window touches has a zero column in A, so no number of kernels can
    recover it: this happens when the stride exceeds the kernel's reach (pixels skipped
    between windows) or when ⌊·⌋ in d′ drops the last pixels (border). The course's own
    refinement of the count (not in the paper).
    """
    taps = _taps(d, k, s, p, dilation)
    return int(torch.unique(taps[(taps >= 0) & (taps < d)]).numel())


def reads_every_pixel(in_shape: Sequence[int], k: Pair, s: Pair = 1, p: Pair = 0,
                      dilation: Pair = 1) -> bool:
    """Whether some kernel tap reads every input pixel, along both axes (see :func:`covered_width`)."""
    _, height, width = _shape(in_shape)
    axes = zip((height, width), _pair(k), _pair(s), _pair(p), _pair(dilation), strict=True)
    return all(covered_width(*axis) == axis[0] for axis in axes)


def effective_output_width(d: int, k: int, s: int = 1, p: int = 0, dilation: int = 1) -> int:
    """How many of the d′ output positions along one axis read at least one real input pixel.

    Outputs whose window lies entirely in the zero padding give rows of zeros in A: they are
    counted by h·d′² but carry no equation. Large padding makes d′ > d and the paper's count
    (d/d′)² C smaller than C, which no layer can beat (the course's refinement).
    """
    taps = _taps(d, k, s, p, dilation)
    return int(((taps >= 0) & (taps < d)).any(dim=1).sum())


def _shape(in_shape: Sequence[int]) -> tuple[int, int, int]:
    channels, height, width = check.shape("in_shape", in_shape, ndim=3)
    return channels, height, width
