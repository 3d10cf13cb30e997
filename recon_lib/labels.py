"""Labels from the head's gradient (chapters 01–02): what the server reads before any image.

* one sample, :func:`recover_label` — under cross-entropy the head's bias gradient is
  p − onehot(y), negative only at the true class (iDLG, Zhao et al. 2020);
* a batch of distinct labels, :func:`recover_labels`, and one with repeats,
  :func:`recover_label_counts` — the count estimates n̂_k = B (p̂_k − ∇c_k) with p̂ the model's
  prediction on a probe (by default chapter 01's closed form on the batch message).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from . import _validate as check
from .analytic import reconstruct
from .models import last_linear
from .verify import head_scores


def recover_label(model: nn.Module, grads: Mapping[str, Tensor]) -> int:
    """The label of a single cross-entropy sample, from the head's gradient (iDLG).

    Under cross-entropy the head's bias gradient is p − onehot(y): negative only at the true
    class. Without a bias, iDLG reads the row sums of the weight gradient, (pᵢ − yᵢ)·Σa, whose
    minimum is the true class when the features a are non-negative (sigmoid, ReLU).

    Raises:
        ValueError: a missing, non-finite or all-zero head gradient (no label to read).
    """
    name, _ = last_linear(model)
    scores = head_scores(model, grads)
    if scores.ndim != 1 or not torch.isfinite(scores).all():
        raise ValueError(f"expected a finite gradient of one head, got shape {tuple(scores.shape)}")
    if not scores.any():
        raise ValueError(f"the head {name}'s gradient is zero: the message carries no label "
                         "(a perfectly fitted sample, or an empty message)")
    return int(scores.argmin())


def _head_bias_gradient(model: nn.Module, grads: Mapping[str, Tensor], batch_size: int) -> Tensor:
    """The head's bias gradient ∇c, checked (chapter 02's label recovery reads it)."""
    name, head = last_linear(model)
    if head.bias is None:
        raise ValueError(f"the head {name} has no bias; batch labels are read from its bias gradient")
    (scores,) = check.layer_gradients(grads, name, ("bias",))
    check.count("batch_size", batch_size)
    if not torch.isfinite(scores).all():
        raise ValueError("the head's bias gradient contains NaN or inf")
    return scores


def _count_estimates(model: nn.Module, grads: Mapping[str, Tensor], batch_size: int,
                     probe: Tensor | None, scores: Tensor) -> Tensor:
    """n̂_k = B (p̂_k − ∇c_k): how many images of class k, with p̂ the prediction on ``probe``.

    ``probe=None`` uses chapter 01's closed form on the batch message (an affine mixture of the
    batch images). Raises what :func:`reconstruct` raises when that is impossible.
    """
    probe = reconstruct(model, grads).unsqueeze(0) if probe is None else probe
    parameter = next(model.parameters())  # the model runs in its own dtype; the message may not
    with torch.no_grad():
        predicted = model(probe.to(parameter)).softmax(-1).mean(0).to(scores)
    return batch_size * (predicted - scores)


def recover_labels(model: nn.Module, grads: Mapping[str, Tensor], batch_size: int,
                   probe: Tensor | None = None) -> Tensor:
    """The labels of a batch with distinct labels, from the head's bias gradient (sorted).

    Under cross-entropy ∇c = (1/B) Σᵢ (pᵢ − onehot(yᵢ)): a class present in the batch gets
    (Σᵢ pᵢ,c − 1)/B, an absent class Σᵢ pᵢ,c / B ≥ 0. The sign rule "the B most negative
    entries" fails when the model already favours a present class (Σᵢ pᵢ,c ≥ 1; 3 of 45
    batches of 8 MNIST digits in notebook 02). So the classes are ranked by the estimated
    count n̂_c = B (p̂_c − ∇c_c) instead, p̂ being the model's prediction on a ``probe`` image (by
    default chapter 01's closed form on the message: a mixture of the batch); where no probe can
    be made (a first layer the closed form cannot invert) p̂ = 0, which is the sign rule.
    Repeated labels break both (one entry per class): see :func:`recover_label_counts`.
    """
    scores = _head_bias_gradient(model, grads, batch_size)
    if batch_size > scores.numel():
        raise ValueError(f"batch_size {batch_size} must be between 1 and the {scores.numel()} classes "
                         "(distinct labels need at least B classes)")
    try:
        estimates = _count_estimates(model, grads, batch_size, probe, scores)
    except (TypeError, ValueError):  # no closed-form probe for this model: the sign rule
        estimates = -scores
    return torch.sort(torch.topk(estimates, batch_size).indices).values


def recover_label_counts(model: nn.Module, grads: Mapping[str, Tensor], batch_size: int,
                         probe: Tensor | None = None) -> Tensor:
    """The labels of a batch *with repeats*, as a sorted multiset of B class indices (ch. 02).

    ∇c_k = (1/B)(Σᵢ pᵢ,k − n_k), so n_k = Σᵢ pᵢ,k − B·∇c_k. The server does not know the
    pᵢ; it approximates each by the model's prediction p̂ on a ``probe`` image, by default
    chapter 01's closed form on the batch message — an affine mixture of the batch images —
    then rounds, keeping Σ n_k = B (largest remainders). Exact when the predictions vary
    little across the batch (an untrained model, as here: error |Σᵢ(pᵢ − p̂)| < 1/2 per class);
    a confident, trained model breaks it. A simplified form of the count estimates of Geng et
    al. (2021, "Towards general deep leakage in federated learning").
    """
    scores = _head_bias_gradient(model, grads, batch_size)
    raw = _count_estimates(model, grads, batch_size, probe, scores).clamp(min=0)
    counts = raw.floor()
    short = batch_size - int(counts.sum())
    if short > 0:
        counts[torch.topk(raw - counts, short).indices] += 1
    elif short < 0:
        counts[torch.topk(torch.where(counts > 0, raw - counts, 2.0), -short, largest=False).indices] -= 1
    return torch.repeat_interleave(torch.arange(len(scores), device=scores.device), counts.long())
