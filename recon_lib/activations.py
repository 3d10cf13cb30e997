"""Undoing the element-wise activations between conv layers (chapter 03): a small registry.

Sigmoid by logit, tanh by atanh, leaky ReLU by rescaling; ReLU, GELU, pooling and batch norm
lose information and raise with the reason (:data:`NOT_INVERTIBLE`). Add an activation with
:func:`register_inverse`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn

Inverse = Callable[[nn.Module, Tensor], Tensor]
ACTIVATION_INVERSES: dict[type[nn.Module], Inverse] = {}
NOT_INVERTIBLE: dict[type[nn.Module], str] = {
    nn.ReLU: "ReLU maps every negative pre-activation to 0, so those values (about half of "
             "them) are lost and the equations of the next conv are missing; use sigmoid, tanh or "
             "leaky ReLU, or gradient matching (chapter 04)",
    nn.GELU: "GELU is not one-to-one (it has a minimum near −0.75), so its input is ambiguous",
    nn.MaxPool2d: "max pooling keeps one value per window and discards the rest",
    nn.AvgPool2d: "average pooling is a conv with fewer outputs than inputs: not invertible alone",
    nn.BatchNorm2d: "batch norm in train mode mixes the batch; fold it into the conv first",
}


def register_inverse(kind: type[nn.Module]) -> Callable[[Inverse], Inverse]:
    """Register the inverse of an element-wise activation (the opacus-style registry)."""
    def decorate(inverse: Inverse) -> Inverse:
        ACTIVATION_INVERSES[kind] = inverse
        return inverse
    return decorate


def _check_range(a: Tensor, low: float, high: float, name: str) -> None:
    if not bool(((a > low) & (a < high)).all()):
        raise ValueError(f"recovered {name} outputs leave its open range ({low}, {high}) "
                         f"(min {float(a.min()):.3g}, max {float(a.max()):.3g}): the layer above was "
                         "not inverted exactly (too few kernels?); pass strict=False to clamp")


@register_inverse(nn.Sigmoid)
def _sigmoid_inverse(_: nn.Module, a: Tensor) -> Tensor:
    _check_range(a, 0.0, 1.0, "sigmoid")
    return torch.logit(a)


@register_inverse(nn.Tanh)
def _tanh_inverse(_: nn.Module, a: Tensor) -> Tensor:
    _check_range(a, -1.0, 1.0, "tanh")
    return torch.atanh(a)


@register_inverse(nn.LeakyReLU)
def _leaky_relu_inverse(module: nn.Module, a: Tensor) -> Tensor:
    slope = cast(nn.LeakyReLU, module).negative_slope  # the registry dispatches on the type
    if slope <= 0:
        raise ValueError(f"negative_slope={slope} makes leaky ReLU not invertible")
    return torch.where(a >= 0, a, a / slope)


@register_inverse(nn.Identity)
def _identity_inverse(_: nn.Module, a: Tensor) -> Tensor:
    return a


def invert_activation(module: nn.Module, a: Tensor, strict: bool = True) -> Tensor:
    """The pre-activation z with module(z) = a, for the activations in the registry.

    With ``strict=False`` values outside the activation's range (what an inexact solve of the
    layer above produces) are clamped just inside it instead of raising.
    """
    kind = type(module)
    if kind in NOT_INVERTIBLE:
        raise ValueError(f"cannot invert {kind.__name__}: {NOT_INVERTIBLE[kind]}")
    if kind not in ACTIVATION_INVERSES:
        raise TypeError(f"no inverse registered for {kind.__name__}; known: "
                        f"{sorted(k.__name__ for k in ACTIVATION_INVERSES)}")
    if not strict and kind in (nn.Sigmoid, nn.Tanh):
        low = 0.0 if kind is nn.Sigmoid else -1.0
        margin = torch.finfo(a.dtype).eps
        a = a.clamp(low + margin, 1.0 - margin)
    return ACTIVATION_INVERSES[kind](module, a)
