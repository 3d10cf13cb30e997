"""A bias-free cross-entropy head read from its weight gradient alone (chapter 03, after R-GAP).

Chapter 01's ratio needs the bias gradient δ; without a bias ∂ℓ/∂W = δ aᵀ leaks the input a
only up to scale. Under cross-entropy the scale is fixed after all: δ = softmax(W a) − e_y
depends on it, as R-GAP (Zhu & Blaschko 2021) uses for its logistic head.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def features_without_bias(grad_weight: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """The input a and output gradient δ of a bias-free cross-entropy head, from ∂ℓ/∂W alone.

    ∂ℓ/∂W = δ aᵀ with δ = p − onehot(y) and p = softmax(W a) (one sample). Its top right
    singular vector u gives a = τ u up to one scalar τ, and v = (∂ℓ/∂W) u = τ δ. The label is
    the one entry of v whose sign differs from the others (δ_y < 0 < δ_k), and for the other
    classes log|v_k| = log|τ| + τ (W u)_k − log Σ exp(τ W u): a line in (W u)_k whose slope is
    τ. The slope starts a few scalar Gauss–Newton steps on ‖τ (softmax(τ W u) − e_y) − v‖. The
    idea — the output's loss derivative fixes the scale a missing bias leaves open — is that of
    R-GAP (Zhu & Blaschko 2021) for its logistic head; the regression is the course's own.

    Args:
        grad_weight: (N, K, F) head weight gradients of N one-sample messages.
        weight: (K, F) the head's weight.

    Returns:
        ``(features, delta)``: (N, F) inputs of the head and (N, K) output gradients p − e_y.

    Raises:
        ValueError: fewer than 3 classes (two classes leave the label's sign ambiguous), a zero
            gradient, or a head whose outputs for the other classes do not differ.
    """
    if grad_weight.shape[-2] < 3:
        raise ValueError(f"a bias-free head needs at least 3 classes to fix the scale, got "
                         f"{grad_weight.shape[-2]}")
    g64, w64 = grad_weight.to(torch.float64), weight.detach().to(torch.float64)
    _, singular, vh = torch.linalg.svd(g64, full_matrices=False)
    if (singular[..., 0] == 0).any():
        raise ValueError("the head's weight gradient is zero: nothing leaks (a perfectly fitted sample)")
    u = vh[..., 0, :]                                             # N × F, ‖u‖ = 1
    v = (g64 @ u.unsqueeze(-1)).squeeze(-1)                       # N × K, = τ δ
    z = u @ w64.T                                                 # N × K, logits per unit τ
    majority = torch.sign(torch.sign(v).sum(-1, keepdim=True))     # the sign of the K − 1 others
    label = (torch.sign(v) != majority).to(torch.float64).argmax(-1)
    onehot = F.one_hot(label, v.shape[-1]).to(torch.float64)
    others = (1 - onehot).bool()
    tau = torch.stack([_slope(z[i][others[i]], v[i][others[i]].abs().log()) for i in range(len(v))])
    for _ in range(30):  # scalar Gauss–Newton on r(τ) = τ (softmax(τ z) − e_y) − v
        p = (tau[:, None] * z).softmax(-1)
        r = tau[:, None] * (p - onehot) - v
        dp = p * (z - (p * z).sum(-1, keepdim=True))              # ∂p/∂τ
        jac = (p - onehot) + tau[:, None] * dp
        tau = tau - (jac * r).sum(-1) / (jac * jac).sum(-1).clamp_min(torch.finfo(torch.float64).tiny)
    features = tau[:, None] * u
    return features.to(grad_weight.dtype), (v / tau[:, None]).to(grad_weight.dtype)


def _slope(x: Tensor, y: Tensor) -> Tensor:
    """Least-squares slope of y on x (the scale τ of :func:`features_without_bias`)."""
    spread = x - x.mean()
    if float(spread.abs().max()) == 0:
        raise ValueError("the head gives every other class the same output, so the scale of its "
                         "input is not determined")
    return (spread * (y - y.mean())).sum() / spread.square().sum()
