"""The federated client (chapter 00): what a FedSGD client sends to the server.

In FedSGD the server sends weights θ, the client computes the gradient of its loss averaged
over its local batch, ∇θ L = (1/B) Σᵢ ∇θ ℓ(f_θ(xᵢ), yᵢ), and sends it back. That gradient —
a dict keyed like ``model.named_parameters()`` — is *all* an honest-but-curious server sees,
and the input to every attack in this course.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from . import _validate as check

Loss = Callable[[Tensor, Tensor], Tensor]
Message = dict[str, Tensor]
_check_inputs = check.client_batch  # the one check of (model, x, y), shared with defences


def _forward(model: nn.Module, x: Tensor) -> Tensor:
    """``model(x)``, with a shape mismatch reported as an error about ``x``."""
    try:
        return model(x)
    except RuntimeError as err:
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit the model: {err}") from err


def client_update(model: nn.Module, x: Tensor, y: Tensor, loss: Loss | None = None) -> Message:
    """The FedSGD message of one client: gradients of the batch-averaged loss.

    Args:
        model: the global model as sent by the server (left unchanged: no ``.grad`` is set).
        x: the client's private batch, B × (input shape), on the model's device and dtype.
        y: its targets: class indices in [0, classes) for the default cross-entropy (or
            B × classes probabilities).
        loss: ``loss(outputs, y) -> scalar`` averaged over the batch; cross-entropy if None.

    Returns:
        ``{name: gradient}`` for every trainable parameter, detached, on the model's device.

    Raises:
        ValueError: an empty batch, NaN/inf in x, x of a shape the model does not take, labels
            out of range, a model with no trainable parameter.
        TypeError: x or y not tensors, non-integer labels, x of another dtype than the model.
    """
    _check_inputs(model, x, y)
    outputs = _forward(model, x)
    if loss is None:
        if not (y.is_floating_point() and y.shape == outputs.shape):   # soft labels pass as they are
            check.labels("y", y, n_classes=outputs.shape[-1])
        loss = F.cross_entropy
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    value = loss(outputs, y)
    if value.ndim != 0:
        raise ValueError(f"loss must return a scalar (averaged over the batch), got shape "
                         f"{tuple(value.shape)}")
    grads = torch.autograd.grad(value, [p for _, p in named], allow_unused=True)
    return {name: (torch.zeros_like(p) if g is None else g.detach())
            for (name, p), g in zip(named, grads, strict=True)}


def client_updates(model: nn.Module, x: Tensor, y: Tensor, loss: Loss | None = None) -> Message:
    """Messages of N clients that each hold *one* sample, computed in one vectorised call.

    Equivalent to stacking ``client_update(model, x[i:i+1], y[i:i+1])`` over i (tests check
    this), but uses ``torch.func.vmap`` so that thousands of clients cost one tensor program.

    Returns:
        ``{name: gradients}`` with a leading client dimension N.
    """
    _check_inputs(model, x, y)
    if loss is None:                             # one image tells the shape and the classes
        with torch.no_grad():
            n_classes = _forward(model, x[:1]).shape[-1]
        if not (y.is_floating_point() and y.shape == (len(x), n_classes)):
            check.labels("y", y, n_classes=n_classes)
        loss = F.cross_entropy
    else:
        with torch.no_grad():
            _forward(model, x[:1])
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}

    def one_client(params: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        return loss(functional_call(model, params, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    return vmap(grad(one_client), in_dims=(None, 0, 0))(params, x, y)
