"""The span of a batch, leaked in closed form by a biased first Linear layer (chapter 02).

∇W = (1/B) Δ Xᵀ: every row of the first layer's weight gradient is a combination of the B
images, so its row space is span{xᵢ} when rank Δ = B (h ≥ B, Claim 2). :func:`batch_span`
reads an orthonormal basis of it; :func:`span_residual` tests whether an image lies in it.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import _validate as check


def batch_span(grad_weight: Tensor, grad_bias: Tensor, batch_size: int,
               rtol: float | None = None) -> Tensor:
    """An orthonormal basis (d × r) of the span of the batch, leaked in closed form.

    ∇W = (1/B) Δ Xᵀ, so every row of ∇W is a combination of the B images and, when the h × B
    matrix Δ has rank B (which needs h ≥ B), the row space of ∇W is exactly span{xᵢ}. The SVD
    gives it: the right singular vectors whose singular values are not round-off. r is the
    numerical rank, at most min(h, B, d); r < B means the span is only partly leaked.

    Args:
        grad_weight: (h, d) first-layer weight gradient of the batch message.
        grad_bias: (h,) its bias gradient (checked for consistency and finiteness).
        batch_size: B, known to the server in FedSGD.
        rtol: singular values below ``rtol · σ_max`` count as zero; default max(h, d)·eps.
    """
    check.gradient_pair(grad_weight, grad_bias)
    if grad_weight.ndim != 2:
        raise ValueError(f"batch_span takes one message, (h, d); got {tuple(grad_weight.shape)}")
    check.count("batch_size", batch_size)
    check.floating("grad_weight", grad_weight.dtype, why="the SVD has no half-precision kernel")
    _, singular_values, vh = torch.linalg.svd(grad_weight, full_matrices=False)
    if singular_values[0] == 0:
        raise ValueError("∇W is zero: every unit has δ = 0, so nothing about the batch leaks")
    rtol = (max(grad_weight.shape) * torch.finfo(grad_weight.dtype).eps if rtol is None
            else check.real("rtol", rtol, low=0.0, high=1.0))
    rank = int((singular_values > rtol * singular_values[0]).sum().clamp(max=batch_size))
    return vh[:rank].T


def span_residual(images: Tensor, basis: Tensor) -> Tensor:
    """Relative distance of each image from the leaked span: ‖x − VVᵀx‖ / ‖x‖ (chapter 02).

    With V from :func:`batch_span`, a residual at round-off level (≤ 1e-5 in float32) says
    the image lies in the span of the batch: a *membership test* the server can run on any
    candidate image without reconstructing anything.

    Args:
        images: (N, ...) candidate images, flattened to d values each.
        basis: (d, r) orthonormal columns.

    Returns:
        (N,) relative residuals in [0, 1].
    """
    flat = images.reshape(images.shape[0], -1)
    if basis.ndim != 2 or flat.shape[1] != basis.shape[0]:
        raise ValueError(f"images have {flat.shape[1]} values each but the basis is "
                         f"{tuple(basis.shape)}; expected (d, r) from batch_span")
    if flat.dtype != basis.dtype or flat.device != basis.device:
        raise TypeError(f"images ({flat.dtype}, {flat.device}) and basis ({basis.dtype}, "
                        f"{basis.device}) must share dtype and device")
    norms = flat.norm(dim=1)
    if (norms == 0).any():
        raise ValueError("an all-zero image has no direction; its relative residual is undefined")
    return (flat - flat @ basis @ basis.T).norm(dim=1) / norms
