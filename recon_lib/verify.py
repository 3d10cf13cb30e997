"""Checking an answer the way the server can: recompute the message from it and compare.

An attack sees the model and the message only, so the one test of a reconstruction it can run
is whether the image (with its label) produces the same message again. A wrong answer — a layer
below full rank, a solver stopped early, a badly conditioned layer — shows up as a residual far
above round-off. The residual is taken per parameter tensor (relative), then the worst one, so
that a small layer whose gradient disagrees is not hidden by a large one that agrees.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from . import _validate as check
from . import fl
from .models import last_linear


def head_scores(model: nn.Module, grads: Mapping[str, Tensor]) -> Tensor:
    """iDLG's per-class scores from the head's gradient, smallest at the label (cross-entropy).

    With a bias, ∂ℓ/∂c = p − onehot(y) is negative only at y; without one, the row sums of ∂W,
    (p − onehot(y))·Σa, are smallest at y when the features a are non-negative (Zhao et al. 2020).
    Shape (..., classes): leading client dimensions of the message are kept.
    """
    name, head = last_linear(model)
    if head.bias is not None:
        (scores,) = check.layer_gradients(grads, name, ("bias",))
        return scores
    (grad_weight,) = check.layer_gradients(grads, name, ("weight",))
    return grad_weight.sum(-1)


def head_labels(model: nn.Module, grads: Mapping[str, Tensor]) -> Tensor:
    """Each one-sample message's label (:func:`head_scores`' argmin): an (N,) tensor for N
    stacked messages (N = 1 for one)."""
    return head_scores(model, grads).reshape(-1, last_linear(model)[1].out_features).argmin(-1)


def message_residual(model: nn.Module, images: Tensor, labels: Tensor,
                     grads: Mapping[str, Tensor]) -> Tensor:
    """max over parameters of ‖g(x̂) − g‖ / ‖g‖ for each of N one-sample messages.

    Args:
        model: the global model (not changed).
        images: N × (input shape) reconstructions.
        labels: N class indices (cross-entropy, as :func:`recon_lib.fl.client_update`).
        grads: the N messages, stacked along dim 0 (or one message when N = 1).

    Returns:
        (N,) relative residuals: round-off level (~1e-6 in float32) when the images reproduce
        the messages, order 1 when they do not. A parameter whose gradient is zero counts
        relative to the whole message's norm.
    """
    parameter = next(model.parameters())
    recomputed = fl.client_updates(model, images.detach().to(parameter), labels.to(parameter.device))
    return _worst_relative(recomputed, grads, len(images))


def batch_residual(model: nn.Module, images: Tensor, labels: Tensor, grads: Mapping[str, Tensor],
                   up_to_scale: bool = False) -> float:
    """max over parameters of ‖g(x̂) − g‖ / ‖g‖ for *one* message of a batch of B images (the
    gradient of the batch-averaged loss, as :func:`recon_lib.fl.client_update` sends it): what
    an attack on a whole batch checks its answer with.

    With ``up_to_scale`` the recomputed message is first rescaled by the one factor that fits
    it best to ``grads``: the check of an attack that matches directions only (the cosine
    distance), for which a message rescaled by the client (clipping, chapter 07) is still matched.
    """
    parameter = next(model.parameters())
    recomputed = fl.client_update(model, images.detach().to(parameter), labels.to(parameter.device))
    if up_to_scale:
        dot = sum(float((recomputed[k].double() * grads[k].double()).sum()) for k in recomputed)
        square = sum(float(recomputed[k].double().square().sum()) for k in recomputed)
        factor = dot / square if square > 0 else 1.0
        recomputed = {k: g * factor for k, g in recomputed.items()}
    return float(_worst_relative(recomputed, grads, 1)[0])


def _worst_relative(recomputed: Mapping[str, Tensor], grads: Mapping[str, Tensor], n: int) -> Tensor:
    """The worst parameter's relative residual for each of ``n`` stacked messages (float64)."""
    given = {k: grads[k].reshape(n, -1).to(torch.float64) for k in recomputed}
    errors = torch.stack([(recomputed[k].reshape(n, -1).to(torch.float64) - given[k]).norm(dim=1)
                          for k in recomputed], 1)
    norms = torch.stack([given[k].norm(dim=1) for k in recomputed], 1)
    floor = norms.square().sum(1, keepdim=True).sqrt() * torch.finfo(torch.float64).eps
    return (errors / torch.maximum(norms, floor).clamp_min(torch.finfo(torch.float64).tiny)).amax(1)
