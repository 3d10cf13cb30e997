"""Closed-form attacks: what the server computes from the message alone, no optimisation.

Chapter 01 (Claim 1 of Qian, Nassar & Hansen 2021). For a first layer z = Wx + b followed by
*any* differentiable network and loss, unit i receives δᵢ = ∂ℓ/∂zᵢ and

    ∂ℓ/∂Wᵢ = δᵢ · x        ∂ℓ/∂bᵢ = δᵢ        so   x = (∂ℓ/∂Wᵢ) / (∂ℓ/∂bᵢ)  when δᵢ ≠ 0.

Depth, loss and label only enter through δᵢ, which cancels. Every function here sees only
the model (its architecture and weights) and the message, never the private data.

The closed forms of later chapters live in their own modules and are re-exported here, so
``rl.analytic.<name>`` keeps working: labels (:mod:`recon_lib.labels`), the span of a batch
(:mod:`recon_lib.span`), CNN inversion (:mod:`recon_lib.cnn`); model inspection
(``first_layer``, ``last_linear``) lives in :mod:`recon_lib.models`.
"""
from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from math import prod
from typing import Any

import torch
from torch import Tensor, nn

from . import _validate as check
from ._validate import all_finite  # also re-exported: rl.analytic.all_finite
from ._validate import gradient_pair as _check_pair
from ._validate import layer_gradients as _layer_grads
from .models import (  # noqa: F401
    PASS_THROUGH_FUNCTIONS,
    PASS_THROUGH_METHODS,
    PASS_THROUGH_MODULES,
    first_layer,
    last_linear,
)

# invert_linear sums over units with a matmul up to this width (fast, float32 round-off ≤ ~3e-7 on
# [0, 1] pixels); wider layers use torch's cascaded sum, whose error does not grow with h.
MATMUL_MAX_UNITS = 16
# invert_linear divides a large batch in chunks of this many bytes, small enough to stay in the
# L2 cache of a laptop CPU while the chunk is summed for validation.
CHUNK_BYTES = 1 << 20
# Layer types that ``reconstruct`` cannot invert in closed form, and where the course goes next.
HANDLED_ELSEWHERE: dict[type[nn.Module], str] = {
    nn.Conv2d: "a convolution comes first: chapter 03 inverts it (rl.analytic.invert_cnn)",
    nn.Conv1d: "a convolution comes first: chapter 03 discusses conv layers",
}


def usable_units(grad_bias: Tensor, tol: float | None = None) -> Tensor:
    """Mask of units whose ∂ℓ/∂bᵢ = δᵢ is large enough to divide by.

    A unit is unusable when δᵢ = 0 (a dead ReLU unit, or a sample the model already fits
    perfectly) or so small that it is no longer a normal floating-point number, where the
    ratio loses precision. ``tol`` defaults to the smallest normal number of the dtype.

    Raises:
        ValueError: a negative or non-finite ``tol``.
    """
    tol = torch.finfo(grad_bias.dtype).tiny if tol is None else check.nonnegative("tol", tol)
    return grad_bias.abs() > tol


def unit_estimates(grad_weight: Tensor, grad_bias: Tensor,
                   tol: float | None = None) -> tuple[Tensor, Tensor]:
    """The per-unit ratios ∂ℓ/∂Wᵢ ÷ ∂ℓ/∂bᵢ and which of them are usable.

    Args:
        grad_weight: (..., h, d) gradient of the first layer's weight.
        grad_bias: (..., h) gradient of its bias.
        tol: smallest |∂ℓ/∂bᵢ| that counts as usable (see :func:`usable_units`).

    Returns:
        ``(ratios, usable)``: (..., h, d) estimates (zero rows where unusable) and the (..., h)
        boolean mask. With one sample every usable row equals x; with a batch each row is a
        δ-weighted mixture of the images (chapter 02).
    """
    _check_pair(grad_weight, grad_bias)
    usable = usable_units(grad_bias, tol)
    safe_bias = torch.where(usable, grad_bias, torch.ones_like(grad_bias))
    ratios = grad_weight / safe_bias.unsqueeze(-1) * usable.unsqueeze(-1)
    return ratios, usable


def _weighted_sum(bias: Tensor, grad_weight: Tensor) -> Tensor:
    """Σᵢ bᵢ ∂Wᵢ per client, reading ∂W once."""
    if grad_weight.shape[-2] > MATMUL_MAX_UNITS:  # a BLAS matvec sums sequentially (error ~ h·eps)
        return (bias.unsqueeze(-1) * grad_weight).sum(-2)  # torch's sum is cascaded
    if bias.ndim == 1:
        return bias @ grad_weight
    return torch.matmul(bias.unsqueeze(-2), grad_weight).squeeze(-2)


def _direct(grad_weight: Tensor, grad_bias: Tensor) -> Tensor | None:
    """x = Σᵢ (∂bᵢ / Σⱼ ∂bⱼ²) ∂Wᵢ in one pass over ∂W, or None when it cannot be trusted.

    The weights are formed on the small (..., h) tensor, so ∂W is read once and x written once.
    With one unit the sum is the ratio ∂W₁ / ∂b₁ itself: one division, one rounding (the careful
    path's answer bit for bit), at the speed of a copy where a batch of 1×1 matmuls is slow.
    Validation is one reduction over x (a NaN or inf in either input, or an overflow, makes its
    sum non-finite) and the range of Σ ∂bᵢ² per client: it must be finite and ≥ tiny/eps, else
    δ² underflowed or overflowed; the careful path handles those messages.
    """
    if grad_weight.shape[-2] == 1:
        x, total = _ratio_and_sum(grad_weight.squeeze(-2), grad_bias)
        low, high = (grad_bias.item() ** 2,) * 2 if grad_bias.numel() == 1 else _extremes(grad_bias.square())
    else:
        one = grad_bias.ndim == 1
        squares = torch.dot(grad_bias, grad_bias) if one else torch.linalg.vecdot(grad_bias, grad_bias)
        x = _weighted_sum(grad_bias / (squares if one else squares.unsqueeze(-1)), grad_weight)
        low, high = _extremes(squares)
        total = float(x.sum())
    info = torch.finfo(x.dtype)
    trusted = info.tiny / info.eps <= low and high <= info.max and math.isfinite(total)
    return x if trusted else None


def _ratio_and_sum(numerator: Tensor, denominator: Tensor) -> tuple[Tensor, float]:
    """``numerator / denominator`` (N clients × d over N × 1) and the sum of the result.

    On the CPU a large batch is divided in chunks of :data:`CHUNK_BYTES`, each summed right
    after it is written, while it is still in cache: the validating sum then costs no second
    pass over memory (at N = 1024 clients of 3×32×32 it took the inversion from 47 % to
    about 70 % of a plain copy's bandwidth).
    """
    if numerator.device.type != "cpu" or numerator.numel() * numerator.element_size() <= 2 * CHUNK_BYTES:
        x = numerator / denominator
        return x, float(x.sum())
    x = torch.empty_like(numerator)
    rows = numerator.reshape(-1, numerator.shape[-1])
    out, scale = x.view(rows.shape), denominator.reshape(-1, 1)
    step = max(1, CHUNK_BYTES // (rows.shape[1] * rows.element_size()))
    sums = [torch.div(rows[i:i + step], scale[i:i + step], out=out[i:i + step]).sum()
            for i in range(0, len(rows), step)]
    return x, float(torch.stack(sums).sum())


def _extremes(values: Tensor) -> tuple[float, float]:
    """The smallest and largest entry as Python floats (one value: read without a reduction)."""
    if values.numel() == 1:
        value = values.item()
        return value, value
    low, high = torch.aminmax(values)
    return float(low), float(high)


def invert_linear(grad_weight: Tensor, grad_bias: Tensor, tol: float | None = None) -> Tensor:
    """The input of a biased linear layer from its gradients, using every usable unit.

    Solves the least-squares problem min_x Σᵢ ‖∂Wᵢ − ∂bᵢ·x‖² over usable units, whose answer
    x = Σᵢ ∂bᵢ ∂Wᵢ / Σᵢ ∂bᵢ² weights each unit's ratio by ∂bᵢ²: units with a large |δᵢ|
    count most, and a single bad unit cannot spoil the result. Leading dimensions are
    treated as independent clients, so N messages are inverted in one call.

    With the default ``tol`` one pass over ∂W gives x and one reduction over x validates it
    (:func:`_direct`); messages it cannot trust (NaN/inf, tiny or huge δ) take the careful
    path below, which masks unusable units and rescales ∂b.

    Raises:
        ValueError: on mismatched shapes, NaN/inf, or a client with no usable unit (δ = 0
            everywhere: every unit dead, or the sample already perfectly fitted).
    """
    _check_pair(grad_weight, grad_bias, finite=False)
    if tol is None:  # (_check_pair refused an empty message)
        x = _direct(grad_weight, grad_bias)
        if x is not None:
            return x
    _check_pair(grad_weight, grad_bias)
    usable = usable_units(grad_bias, tol)
    no_unit = ~usable.any(dim=-1)
    if no_unit.any():
        which = no_unit.nonzero().tolist() if no_unit.ndim else "the only client"
        raise ValueError(
            f"no usable unit for {which}: every |∂ℓ/∂b| is zero or below tolerance, i.e. δ = 0 "
            "(all units dead, e.g. ReLU, or a perfectly fitted sample). x cannot be recovered "
            "from this message.")
    # Rescale ∂b by its largest |∂bᵢ| per client, so that tiny δ do not underflow when squared;
    # x = Σᵢ b̃ᵢ ∂Wᵢ / (scale · Σᵢ b̃ᵢ²), reading ∂W once (no rescaled copy of it).
    scale = grad_bias.abs().amax(dim=-1, keepdim=True)
    bias = grad_bias / scale * usable
    weighted = _weighted_sum(bias, grad_weight)
    if not all_finite(weighted):  # the sum overflowed (entries near the dtype's max): rare, redo scaled
        return _invert_scaled(grad_weight, bias, scale)
    return weighted.div_(scale * bias.square().sum(-1, keepdim=True))  # in place: no 2nd N×d buffer


def _invert_scaled(grad_weight: Tensor, bias: Tensor, scale: Tensor) -> Tensor:
    """:func:`invert_linear`'s sum with ∂W divided by its largest |entry| per client first, so
    that no partial sum can overflow; only taken when the plain sum did (one extra pass)."""
    top = grad_weight.abs().amax(dim=(-2, -1)).unsqueeze(-1).clamp_min(torch.finfo(grad_weight.dtype).tiny)
    weighted = (bias.unsqueeze(-1) * (grad_weight / top.unsqueeze(-1))).sum(-2)
    return weighted.div_(scale * bias.square().sum(-1, keepdim=True)).mul_(top)


def direction_without_bias(grad_weight: Tensor) -> Tensor:
    """With no bias only the direction of x leaks: the top right singular vector of ∂W.

    ∂W = δ xᵀ has rank one, so its row space is the line through x. The sign is chosen so that
    the pixels sum to a positive number (images are non-negative). Returns a unit vector.
    """
    if grad_weight.ndim < 2 or not torch.isfinite(grad_weight).all():
        raise ValueError("grad_weight must be a finite (..., h, d) tensor")
    _, _, vh = torch.linalg.svd(grad_weight, full_matrices=False)
    direction = vh[..., 0, :]
    return direction * torch.sign(direction.sum(-1, keepdim=True) + 1e-30)


def fix_scale(direction: Tensor, *, pixel: int | None = None, value: float | None = None,
              norm: float | None = None) -> Tensor:
    """Turn a direction into an image with one extra fact: one known pixel, or the norm ‖x‖."""
    if (pixel is None) == (norm is None) or (pixel is not None and value is None):
        raise ValueError("give either pixel=index and value=..., or norm=...")
    if norm is not None:
        return direction / direction.norm(dim=-1, keepdim=True) * check.positive("norm", norm)
    width = direction.shape[-1]
    pixel = check.integer("pixel", pixel, low=-width, high=width - 1)
    value = check.real("value", value)
    if torch.any(direction[..., pixel] == 0):
        raise ValueError(f"pixel {pixel} is zero in the direction; pick another known pixel")
    return direction * (value / direction[..., pixel:pixel + 1])


# --- From a whole model ------------------------------------------------------------------
def _output_shape(d: int, in_shape: Sequence[int] | None, model: nn.Module) -> tuple[int, ...]:
    shape = tuple(in_shape) if in_shape is not None else getattr(model, "in_shape", (d,))
    if prod(shape) != d:
        raise ValueError(f"in_shape {tuple(shape)} has {prod(shape)} entries but the first layer "
                         f"takes {d} inputs")
    return tuple(shape)


def reconstruct(model: nn.Module, grads: Mapping[str, Tensor],
                in_shape: Sequence[int] | None = None) -> Tensor:
    """The private input of a one-sample message, for a model starting with a biased Linear.

    Finds the first biased ``nn.Linear`` reachable from the input through reshapes, applies
    :func:`invert_linear` to its gradients, and shapes the result as ``in_shape``, else as
    ``model.in_shape`` (set by :mod:`recon_lib.models`), else flat.

    Only the first layer's gradients are read, so only they are checked (types, shapes, NaN/inf
    through :func:`invert_linear`'s own validation): the other entries cannot change the answer.

    Raises:
        ValueError: missing gradient keys, no bias, bad gradients (NaN/inf in the first layer's
            pair, no usable unit), wrong ``in_shape``.
        TypeError: models that do not start with a Linear (names the chapter that handles them),
            a message that is not a dict of floating-point tensors.
    """
    check.module(model)
    name, layer = first_layer(model)
    if type(layer) in HANDLED_ELSEWHERE:
        raise TypeError(f"{name} is {type(layer).__name__}: {HANDLED_ELSEWHERE[type(layer)]}")
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"{name} is {type(layer).__name__}; the closed form of chapter 01 needs "
                        "the input to reach an nn.Linear first")
    weight, bias = layer.weight, layer.bias
    if bias is None:
        raise ValueError(f"{name} has no bias, so x leaks only up to scale: use "
                         "rl.analytic.direction_without_bias and rl.analytic.fix_scale (chapter 01)")
    grads = check.message_form(grads, "grads")  # of its entries, only the pair used is checked
    grad_weight, grad_bias = _layer_grads(grads, name, ("weight", "bias"), (weight, bias))
    try:
        x = invert_linear(grad_weight, grad_bias)
    except ValueError:  # name the entry at fault when it holds a NaN/inf, as check.message would
        check.finite_entries(grads, [f"{name}.weight", f"{name}.bias"], "grads")
        raise
    return x.unflatten(-1, _output_shape(x.shape[-1], in_shape, model))


# --- Names that moved to their own modules (higher layers), resolved on first use -------------
MOVED = {"recover_label": "labels", "recover_labels": "labels", "recover_label_counts": "labels",
         "batch_span": "span", "span_residual": "span",
         "invert_cnn": "cnn", "invert_cnn_stages": "cnn"}


def __getattr__(name: str) -> Any:
    """``rl.analytic.invert_cnn`` and the other :data:`MOVED` names, from their new module.

    Lazy so that this module (a lower layer) never imports the higher ones at import time.
    """
    if name in MOVED:
        return getattr(importlib.import_module(f".{MOVED[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *MOVED])
