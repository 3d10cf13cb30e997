"""Exact batch reconstruction: the leaked span, then a second-order solve (chapter 02).

With a biased first Linear layer of h ≥ B units the message leaks the span of the batch in
closed form (:func:`recon_lib.span.batch_span`, an orthonormal d × r basis V). Writing the
batch as X = C Vᵀ leaves only the B × r coefficients C unknown, and the message gives many
more equations than that: h·d for the first layer alone. The gradient-matching residual

    r(C) = ∇θ L(C Vᵀ, labels) − g*

is therefore an over-determined nonlinear least-squares problem in about B² unknowns. As the
first layer's weight gradient of any candidate lies in the span, only its r coordinates per unit
are kept, so the residual does not grow with the image size; the problem is small enough to
form its Jacobian (forward-mode autodiff, ``torch.func.jacfwd``) and hand it to a
Levenberg–Marquardt solver (MINPACK through ``scipy.optimize.least_squares``). Where a
first-order method (L-BFGS) stalls because the problem is ill-conditioned — at the boundary
h = B, or when labels repeat and the δ's of same-label images are nearly parallel — the
second-order solve still converges to round-off. This goes beyond the paper (the course's own
method); the attacker sees only the model and the message.

Tested for sigmoid, tanh and GELU networks of depth 1–3 after the first layer. With ReLU the
residual is only piecewise smooth (the activation pattern of the candidate can differ from the
client's) and the solve can stop in a wrong pattern: try other ``seed`` values there.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jacfwd
from torch.nn import functional as F

from . import _validate as check
from .labels import recover_label_counts
from .models import first_layer, last_linear
from .runtime import intra_op_threads, threads_for
from .span import batch_span

Message = Mapping[str, Tensor]


@dataclass
class Solution:
    """What :func:`solve_batch` returns.

    Attributes:
        images: B × (model.in_shape) reconstruction, in the message's dtype.
        labels: the B labels used (given, or recovered as counts).
        loss: final Σ‖∇θ − g*‖² (gradient-matching loss, Euclidean).
        evaluations: residual evaluations of the solver.
        rank: r, the dimension of the leaked span (< B means h < B: the batch cannot fit).
    """

    images: Tensor
    labels: Tensor
    loss: float
    evaluations: int
    rank: int


def _residual(model: nn.Module, target: Message, basis: Tensor, labels: Tensor,
              shape: tuple[int, ...], first: str | None = None,
              reduced: bool = False) -> Callable[[Tensor], Tensor]:
    """r(c) = ∇θ L(x(c)) − g*, flattened; c holds the B × r coefficients as one vector.

    ``first=None``: the full residual over every parameter (to report the matching loss).
    ``first`` names the first Linear: its weight gradient (1/B) Δ X̂ᵀ lies in the span for every
    candidate, and so (up to round-off, or a constant when r < B) does its target, so only its
    coordinates (∇W − ∇W*) V (h × r instead of h × d) are kept: the same least-squares problem.
    ``reduced=True`` goes further: z = W (V c) + b = (W V) c + b, so the model runs with first
    weight W V on the r coefficients directly and ∂L/∂(W V) = ∇W V; nothing scales with d.
    """
    dtype, size = basis.dtype, len(labels)
    names = list(target)
    params = {k: p.detach().to(dtype) for k, p in model.named_parameters()}
    buffers = {k: b.to(dtype) if b.is_floating_point() else b for k, b in model.named_buffers()}
    weight = None if first is None else f"{first}.weight"
    if reduced:
        if weight is None:
            raise ValueError("reduced=True needs first, the name of the first Linear")
        params[weight] = params[weight] @ basis

    def project(name: str, g: Tensor, is_target: bool) -> Tensor:
        return g @ basis if name == weight and (is_target or not reduced) else g

    flat_target = torch.cat([project(k, target[k].to(dtype), True).flatten() for k in names])

    def loss(trainable: dict[str, Tensor], x: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(model, ({**params, **trainable}, buffers), (x,)), labels)

    def residual(c: Tensor) -> Tensor:
        x = c.reshape(size, -1)
        x = x if reduced else (x @ basis.T).reshape(size, *shape)
        g = grad(loss)({k: params[k] for k in names}, x)
        return torch.cat([project(k, g[k], False).flatten() for k in names]) - flat_target

    return residual


def _fastest_residual(model: nn.Module, target: Message, basis: Tensor, labels: Tensor,
                      shape: tuple[int, ...], first: str, start: Tensor) -> Callable[[Tensor], Tensor]:
    """The reduced residual when the model accepts flat r-vectors (Flatten, view(B, -1)) and
    agrees with the projected one at ``start``; else the projected one."""
    projected = _residual(model, target, basis, labels, shape, first)
    reduced = _residual(model, target, basis, labels, shape, first, reduced=True)
    try:
        same = torch.allclose(reduced(start), projected(start), rtol=1e-6, atol=1e-12)
    except (RuntimeError, ValueError):  # the model reshapes its input to a fixed image shape
        same = False
    return reduced if same else projected


def _labels(model: nn.Module, grads: Message, batch_size: int, labels: Tensor | None,
            device: torch.device) -> Tensor:
    if labels is None:
        return recover_label_counts(model, grads, batch_size).to(device)
    classes = last_linear(model)[1].out_features
    return check.labels("labels", torch.as_tensor(labels).reshape(-1), classes, batch_size).to(device)


def _first_layer(model: nn.Module, grads: Message) -> str:
    name, layer = first_layer(model)
    if not isinstance(layer, nn.Linear) or layer.bias is None:
        raise TypeError(f"solve_batch needs a biased nn.Linear first layer (the span leaks there); "
                        f"{name} is {type(layer).__name__}"
                        f"{' without bias' if isinstance(layer, nn.Linear) else ''}")
    missing = sorted({n for n, p in model.named_parameters() if p.requires_grad} - set(grads))
    if missing:
        raise ValueError(f"the gradient dict has no {missing}; key it like model.named_parameters()")
    return name


def solve_batch(model: nn.Module, grads: Message, batch_size: int, labels: Tensor | None = None,
                *, max_evaluations: int = 100, seed: int = 0, dtype: torch.dtype = torch.float64,
                in_shape: Sequence[int] | None = None) -> Solution:
    """Reconstruct a batch from its FedSGD message: span in closed form, coefficients by LM.

    Args:
        model: the global model; its first layer must be a biased ``nn.Linear`` and its loss
            cross-entropy (as in :func:`recon_lib.fl.client_update`).
        grads: the message, keyed like ``model.named_parameters()``.
        batch_size: B, known to the server.
        labels: the B labels if known; else read from the head's bias gradient as counts
            (:func:`recon_lib.labels.recover_label_counts`, repeats allowed).
        max_evaluations: residual evaluations the solver may spend (each iteration costs one
            Jacobian of r × (B·r) entries plus one or more residuals).
        seed: seeds the start, U(0, 1) images projected onto the span.
        dtype: the attacker's precision (float64 by default: the solve reaches the round-off
            of the message itself).
        in_shape: shape of one input; defaults to ``model.in_shape``, else flat (d,).

    Raises:
        TypeError: the first layer is not a biased Linear. ValueError: bad batch size,
            labels, message (missing keys, NaN, zero gradient).
    """
    from scipy.optimize import least_squares  # local: scipy.optimize takes a while to import

    check.count("batch_size", batch_size)
    max_evaluations, seed = check.count("max_evaluations", max_evaluations), check.seed(seed)
    check.floating("dtype", dtype, why="the span's SVD and the Jacobian solve have no half kernel")
    first = _first_layer(model, grads)
    grad_weight, grad_bias = grads[f"{first}.weight"], grads[f"{first}.bias"]
    device = grad_weight.device
    shape = tuple(in_shape if in_shape is not None else getattr(model, "in_shape", (grad_weight.shape[1],)))
    basis = batch_span(grad_weight.to(dtype), grad_bias.to(dtype), batch_size)
    used = _labels(model, grads, batch_size, labels, device)
    target = {n: grads[n] for n, p in model.named_parameters() if p.requires_grad}
    generator = torch.Generator().manual_seed(seed)
    start = torch.rand(batch_size, basis.shape[0], generator=generator, dtype=dtype).to(device) @ basis
    residual = _fastest_residual(model, target, basis, used, shape, first, start.flatten())

    def as_tensor(c: np.ndarray) -> Tensor:
        return torch.from_numpy(c).to(device=device, dtype=dtype)

    with intra_op_threads(threads_for(batch_size * basis.shape[0], device)):  # small: one thread
        fit = least_squares(lambda c: residual(as_tensor(c)).cpu().numpy(), start.flatten().cpu().numpy(),
                            jac=lambda c: jacfwd(residual)(as_tensor(c)).cpu().numpy(), method="lm",
                            xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=max_evaluations)
    images = (as_tensor(fit.x).reshape(batch_size, -1) @ basis.T).reshape(batch_size, *shape)
    full = _residual(model, target, basis, used, shape)(as_tensor(fit.x))
    return Solution(images.to(grad_weight.dtype), used, float(full.square().sum()),
                    int(fit.nfev), basis.shape[1])
