"""When can inputs be reconstructed? The paper's counting conditions, checked numerically.

* Batches (chapter 02, Claim 2): a batch of B inputs needs h ≥ B first-layer units.
* Convolutions (chapter 03, Claim 3): a conv layer needs h ≥ (d/d′)² C kernels.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import analytic


# --- Batches (chapter 02) ------------------------------------------------------------------
def batch_recoverable(h: int, batch_size: int) -> bool:
    """The course's reading of Claim 2: a batch of B inputs is recoverable when h ≥ B.

    The paper's abstract says the number of hidden units must *exceed* the batch size; the
    algebra (∇W = (1/B) Δ Xᵀ, unique Xᵀ = B·Δ⁺∇W iff rank Δ = B) needs only h ≥ B, and
    chapter 02 tests the boundary h = B explicitly. Pure counting: it says nothing about
    numerical conditioning.
    """
    _check_counts(h=h, batch_size=batch_size)
    return h >= batch_size


def generic_rank(h: int, batch_size: int, d: int) -> int:
    """rank ∇W = rank (Δ Xᵀ) for generic Δ (h × B) and X (d × B): min(h, B, d) (chapter 02)."""
    _check_counts(h=h, batch_size=batch_size, d=d)
    return min(h, batch_size, d)


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def first_layer_deltas(model: nn.Module, x: Tensor, y: Tensor,
                       loss: Callable[[Tensor, Tensor], Tensor] | None = None) -> Tensor:
    """Δ = [δ₁ … δ_B] (h × B), δ_b = ∂ℓ_b/∂z_b at the first Linear: the *client's* side.

    Chapter 02 uses it to check the algebra ∇W = (1/B) Δ Xᵀ and ∇b = (1/B) Δ 1; it needs the
    private batch, so no attack may call it. ``loss`` averages over the batch like
    :func:`recon_lib.fl.client_update` (cross-entropy by default).
    """
    name, layer = analytic.first_layer(model)
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"{name} is {type(layer).__name__}; Δ is defined for a first nn.Linear")
    outputs: list[Tensor] = []
    handle = layer.register_forward_hook(lambda _module, _inputs, z: outputs.append(z))
    try:
        value = (F.cross_entropy if loss is None else loss)(model(x), y)
    finally:
        handle.remove()
    (grad_z,) = torch.autograd.grad(value, outputs[0])
    return (grad_z * x.shape[0]).T.detach()


def mixture_weights(delta: Tensor) -> Tensor:
    """Ω (h × B) with ∂Wᵢ/∂bᵢ = Σ_b Ω_ib x_b: what unit i's closed form "reconstructs" (ch. 02).

    Ω_ib = δ_ib / Σ_c δ_ic. Each row sums to 1, so every per-unit ratio is an *affine*
    combination of the batch; weights may be negative or larger than 1 when the δ's of a unit
    differ in sign. Units with Σ_c δ_ic = 0 (∂bᵢ = 0) get a row of NaN: their ratio is undefined.
    """
    if delta.ndim != 2:
        raise ValueError(f"delta must be (h, B), got {tuple(delta.shape)}")
    total = delta.sum(dim=1, keepdim=True)
    return torch.where(total != 0, delta / total, torch.full_like(delta, float("nan")))


def same_gradient_batch(delta: Tensor, x: Tensor, target: Tensor) -> Tensor:
    """A batch X′ with Δ X′ᵀ = Δ Xᵀ that is as close to ``target`` as the null space allows.

    X′ᵀ = Xᵀ + P (Tᵀ − Xᵀ), where P = I − Δ⁺Δ projects ℝᴮ onto the null space of Δ. For a
    *fixed* Δ, X and X′ give the same ∇W = (1/B) Δ Xᵀ (and ∇b does not involve X at all): the
    first layer cannot tell them apart. When rank Δ = B (which needs h ≥ B) P = 0 and X′ = X.
    Assumption (the course's, chapter 02): Δ is held fixed; in a real network Δ depends on X.

    Args:
        delta: (h, B) per-sample first-layer δ's (see :func:`first_layer_deltas`).
        x: (B, ...) the batch. target: (B, ...) the images X′ should move towards.
    """
    if delta.ndim != 2 or x.shape[0] != delta.shape[1] or target.shape != x.shape:
        raise ValueError(f"need delta (h, B) and x, target (B, ...) of one shape; got "
                         f"{tuple(delta.shape)}, {tuple(x.shape)}, {tuple(target.shape)}")
    d64 = delta.detach().to(torch.float64)
    null = torch.eye(d64.shape[1], dtype=torch.float64, device=d64.device) - torch.linalg.pinv(d64) @ d64
    step = null @ (target - x).flatten(1).to(torch.float64)
    return x + step.to(x.dtype).reshape(x.shape)



# --- Convolutions (chapter 03) -------------------------------------------------------------
