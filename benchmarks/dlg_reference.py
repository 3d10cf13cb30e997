"""A faithful re-implementation of the published DLG loop, as the baseline of the benchmarks.

Deep Leakage from Gradients (Zhu, Liu & Han, NeurIPS 2019) with the settings of its paper and
reference code, re-written here from the paper's description (no code copied):

* victim: the sigmoid LeNet of DLG (``rl.models.lenet_dlg``), one image, cross-entropy;
* dummy image x̂ ~ N(0, 1) and a dummy *soft* label ŷ ~ N(0, 1) (logits), optimised jointly;
* dummy loss: cross-entropy of the prediction against softmax(ŷ);
* objective: Euclidean gradient distance Σ_params ‖∇θ ℓ(x̂, ŷ) − ∇θ ℓ(x, y)‖²;
* optimiser: ``torch.optim.LBFGS`` with its defaults (lr 1, history_size 100, max_iter 20 inner
  iterations per step), 300 ``step`` calls — the "300 iterations" of the published loop.

Chapter 04 compares its improved attacks with this loop, and ``benchmarks/closed_form.py``
times it against the closed form of chapter 01. The server's view is respected: the function
sees the model and the message only, never the private image.

    from benchmarks.dlg_reference import run_dlg
    result = run_dlg(model, grads, in_shape=(3, 32, 32), n_classes=100)
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _target_gradients(model: nn.Module, grads: Mapping[str, Tensor]) -> list[Tensor]:
    """The message as a list in ``model.named_parameters()`` order, with a clear error if keys miss."""
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    missing = [name for name in names if name not in grads]
    if missing:
        raise ValueError(f"the gradient dict has no {missing}; key it like model.named_parameters()")
    targets = [grads[name].detach() for name in names]
    if not all(torch.isfinite(g).all() for g in targets):
        raise ValueError("the message contains NaN or inf; DLG would match garbage")
    return targets


def gradient_distance(model: nn.Module, dummy_x: Tensor, dummy_label: Tensor,
                      targets: Sequence[Tensor]) -> Tensor:
    """DLG's objective: squared Euclidean distance between dummy and true gradients.

    The dummy gradient is taken with ``create_graph=True`` so that the distance can itself be
    differentiated with respect to the dummy image and label (a second-order derivative).
    """
    prediction = model(dummy_x)
    dummy_loss = F.cross_entropy(prediction, F.softmax(dummy_label, dim=-1))
    params = [p for p in model.parameters() if p.requires_grad]
    dummy_grads = torch.autograd.grad(dummy_loss, params, create_graph=True)
    return cast(Tensor, sum(((g - t) ** 2).sum() for g, t in zip(dummy_grads, targets, strict=True)))


def run_dlg(model: nn.Module, grads: Mapping[str, Tensor], in_shape: Sequence[int],
            n_classes: int, steps: int = 300, seed: int = 0, max_iter: int = 20) -> dict:
    """Run the published DLG attack on a one-image message.

    Args:
        model: the victim model (DLG used ``rl.models.lenet_dlg``); its weights are not changed.
        grads: the client's message, ``{name: gradient}`` as from ``rl.fl.client_update``.
        in_shape: shape of one input, e.g. ``(3, 32, 32)``.
        n_classes: size of the dummy soft label.
        steps: number of L-BFGS ``step`` calls (300 in DLG).
        seed: seeds the Gaussian dummy image and label.
        max_iter: inner L-BFGS iterations per step (torch's default 20, used by DLG).

    Returns:
        ``dict(image=C×H×W tensor, label=int (argmax of the soft label), losses=list of the
        gradient distance at the start of each step, then the final one, seconds=wall time of the
        optimisation)``.
    """
    if steps < 1 or n_classes < 1:
        raise ValueError(f"steps and n_classes must be positive, got {steps} and {n_classes}")
    targets = _target_gradients(model, grads)
    reference = targets[0]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    dummy_x = torch.randn(1, *in_shape, generator=generator).to(reference)
    dummy_label = torch.randn(1, n_classes, generator=generator).to(reference)
    dummy_x.requires_grad_(True)
    dummy_label.requires_grad_(True)
    optimizer = torch.optim.LBFGS([dummy_x, dummy_label], lr=1, max_iter=max_iter, history_size=100)

    def closure() -> Tensor:
        optimizer.zero_grad()
        distance = gradient_distance(model, dummy_x, dummy_label, targets)
        # Gradients for the dummies only: the victim model's .grad stays untouched.
        dummy_x.grad, dummy_label.grad = torch.autograd.grad(distance, [dummy_x, dummy_label])
        return distance.detach()

    losses: list[float] = []
    start = time.perf_counter()
    for _ in range(steps):
        losses.append(float(optimizer.step(closure)))  # the distance at the start of the step
        if not math.isfinite(losses[-1]):
            break  # L-BFGS diverged: later steps only propagate NaN
    seconds = time.perf_counter() - start
    losses.append(float(gradient_distance(model, dummy_x, dummy_label, targets).detach()))
    return dict(image=dummy_x.detach()[0], label=int(dummy_label.detach().argmax()),
                losses=losses, seconds=seconds)

