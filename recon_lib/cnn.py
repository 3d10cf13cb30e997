"""Exact inversion of a CNN from one sample's message (chapter 03, Claim 3).

Chapter 01's closed form on the first biased Linear after ``Flatten`` recovers the flattened
output of the last conv stage; each conv stage is then undone in turn, last first: invert the
activation, subtract the bias, and solve conv(x) = z matrix-free (:func:`recon_lib.conv.solve`).
A layer is determined only when it gives enough equations (:func:`recon_lib.geometry.kernel_bound`,
:func:`recon_lib.geometry.equation_count`) and reads every pixel.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from . import _validate as check
from . import analytic, conv, geometry


def _check_kernels(stage: conv.Stage, weight_grads: bool = False) -> None:
    """Raise unless the conv of ``stage`` passes the counting bound and reads every pixel.

    With ``weight_grads`` the layer's weight gradient adds h·C·k² equations to its h·d′², so
    the count becomes h·(d′² + C·k²) ≥ C·d² (the course's extension of Claim 3).
    """
    shape, layer = stage.in_shape, stage.conv
    where = conv.layer_geometry(layer)
    h, unknowns = layer.out_channels, shape[0] * shape[1] * shape[2]
    equations = geometry.equation_count(shape, h, weight_grads=weight_grads, **where)
    if equations < unknowns:
        if weight_grads:
            raise ValueError(
                f"conv layer {stage.name}: even with its weight gradient, {h} kernels give "
                f"{equations} equations for {unknowns} unknowns. Pass strict=False for the "
                "minimum-norm guess.")
        raise ValueError(
            f"conv layer {stage.name} has {h} kernels but its {'×'.join(map(str, shape))} "
            f"input needs h ≥ (d/d′)² C = {geometry.kernel_bound(shape, **where)} (Claim 3): more "
            "unknowns than equations, so the input is not determined. Pass strict=False for the "
            "minimum-norm guess.")
    if not geometry.reads_every_pixel(shape, **where):
        raise ValueError(f"conv layer {stage.name} never reads some input pixels (stride larger than "
                         "the kernel, or the border): they cannot be recovered with any h")


def invert_cnn_stages(model: nn.Module, grads: Mapping[str, Tensor],
                      in_shape: Sequence[int] | None = None, strict: bool = True,
                      tol: float = 1e-6, max_iter: int = 500,
                      weight_grads: bool = False) -> list[tuple[str, Tensor, conv.SolveInfo | None]]:
    """Every intermediate result of :func:`invert_cnn`, from the features back to the input.

    Returns:
        ``[(name, tensor, info), ...]``: first the features from the closed form (shaped as
        the last conv's output, ``info`` None), then the input of each conv layer, last layer
        first, with the solver's :class:`~recon_lib.conv.SolveInfo`; the last entry is the
        image. Leading client dimensions of the message are kept. Chapter 03 uses it to see
        how far the closed route gets through the DLG LeNet below the bound (``strict=False``).
    """
    shape = tuple(in_shape) if in_shape is not None else getattr(model, "in_shape", None)
    if shape is None or len(shape) != 3:
        raise ValueError(f"in_shape must be (C, H, W) (or set model.in_shape), got {shape}")
    stages, name, linear = conv.conv_stack(model, shape)
    if linear.bias is None:
        raise ValueError(f"Linear {name} has no bias, so its input leaks only up to scale and the "
                         "conv layers cannot be undone exactly (chapter 01)")
    grad_weight, grad_bias = check.layer_gradients(grads, name, ("weight", "bias"))
    if grad_weight.device != linear.weight.device:
        raise ValueError(f"gradients on {grad_weight.device} but the model on {linear.weight.device}")
    if grad_weight.shape[-2:] != linear.weight.shape:
        raise ValueError(f"the message's {name}.weight is {tuple(grad_weight.shape)} but the model's "
                         f"is {tuple(linear.weight.shape)}: was the message computed on this model?")
    clients = grad_weight.shape[:-2]  # () for one message, (N,) for N stacked messages
    features = analytic.invert_linear(grad_weight, grad_bias).reshape(-1, *stages[-1].out_shape)
    results: list[tuple[str, Tensor, conv.SolveInfo | None]] = [(name, features, None)]
    # ∂ℓ/∂(features) = W_linᵀ δ_lin, with δ_lin = ∂ℓ/∂b_lin (one sample per message).
    upstream = (grad_bias.reshape(len(features), -1) @ linear.weight.detach().to(grad_bias.dtype)
                ).reshape(features.shape)
    for stage in reversed(stages):
        if strict:
            _check_kernels(stage, weight_grads)
        pre = conv.invert_activation(stage.activation, features, strict=strict)
        extra = {}
        if weight_grads:  # δ at the conv output, and the equations of its weight gradient
            delta = torch.func.vjp(stage.activation, pre)[1](upstream)[0]
            (grad_conv,) = check.layer_gradients(grads, stage.name, ("weight",))
            extra = {"delta": delta, "grad_weight": grad_conv}
            upstream = conv.ConvMap.of(stage.conv, stage.in_shape).adjoint(delta)
        if stage.conv.bias is not None:
            pre = pre - stage.conv.bias.detach().to(pre.dtype)[:, None, None]
        features, info = conv.solve(stage.conv, pre, stage.in_shape, tol=tol, max_iter=max_iter, **extra)
        results.append((stage.name, features, info))
    return [(key, value.reshape(*clients, *value.shape[1:]), info) for key, value, info in results]


def invert_cnn(model: nn.Module, grads: Mapping[str, Tensor], in_shape: Sequence[int] | None = None,
               strict: bool = True, tol: float = 1e-6, max_iter: int = 500,
               weight_grads: bool = False) -> Tensor:
    """The private input of a one-sample message through a CNN, in closed form (chapter 03).

    1. Chapter 01's closed form (:func:`invert_linear`) on the first biased Linear after
       ``Flatten`` recovers its input: the flattened output of the last conv stage.
    2. Each conv stage is undone in turn, last first: invert the activation (sigmoid by logit,
       tanh by atanh, leaky ReLU by rescaling; ReLU loses information and raises), subtract
       the bias, and solve conv(x) = z by CGLS with the convolution and its transpose only
       (:func:`recon_lib.conv.solve`, matrix-free), so it scales to 3×224×224 inputs.

    Exact (up to round-off and ``tol``) when every conv has at least (d/d′)² C kernels
    (Claim 3) and reads every pixel; well conditioned from one kernel above the bound.

    Args:
        model: ``nn.Sequential`` of Conv2d [+ activation] stages, Flatten, a biased Linear, ….
        grads: the client's message, keyed like ``model.named_parameters()``.
        in_shape: (C, H, W) of one input; defaults to ``model.in_shape``.
        strict: raise when a layer is below the bound or a recovered activation is out of
            range; ``False`` returns the minimum-norm guess instead (to study the failure).
        tol, max_iter: stopping rule of each conv solve (see :func:`recon_lib.conv.cgls`).
        weight_grads: also use each conv's weight gradient, h·C·k² more linear equations on
            its input once δ at its output is known (it is: W_linᵀ δ_lin, then backwards
            through the recovered layers). Rescues layers at or even below the bound.

    Raises:
        TypeError: unsupported layers (pooling, batch norm, grouped convs...) or model types.
        ValueError: too few kernels (says the bound), no bias, ReLU, bad shapes or gradients.
    """
    return invert_cnn_stages(model, grads, in_shape, strict, tol, max_iter, weight_grads)[-1][1]
