"""Exact inversion of a CNN from one sample's message (chapter 03, Claim 3).

Chapter 01's closed form on the first biased Linear after ``Flatten`` recovers the flattened
output of the last conv stage; each conv stage is then undone in turn, last first: invert the
activation, subtract the bias, and solve conv(x) = z matrix-free (:func:`recon_lib.conv.solve`).
A layer is determined only when it gives enough equations (:func:`recon_lib.geometry.kernel_bound`,
:func:`recon_lib.geometry.equation_count`) and reads every pixel.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from . import _validate as check
from . import analytic, conv, geometry, head, models, verify
from .errors import ReconstructionError, ReconstructionWarning

# Defaults that meet the verification on R-GAP's CNN6 and chapter 03's models: CGLS to the
# float32 round-off floor (tol 1e-7 ≈ eps), up to 2000 iterations; a message recomputed from an
# exact image agrees to ~1e-6, a wrong image is off by order 1.
TOL, MAX_ITER, RTOL = 1e-7, 2000, 1e-3


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
                      tol: float = TOL, max_iter: int = MAX_ITER, weight_grads: bool = False,
                      rtol: float = RTOL) -> list[tuple[str, Tensor, conv.SolveInfo | None]]:
    """Every intermediate result of :func:`invert_cnn`, from the features back to the input.

    Takes the arguments of :func:`invert_cnn` and verifies the image the same way.

    Returns:
        ``[(name, tensor, info), ...]``: first the features from the closed form (shaped as
        the last conv's output, ``info`` None), then the input of each conv layer, last layer
        first, with the solver's :class:`~recon_lib.conv.SolveInfo`; the last entry is the
        image. Leading client dimensions of the message are kept. Chapter 03 uses it to see
        how far the closed route gets through the DLG LeNet below the bound (``strict=False``).
    """
    check.module(model)
    tol, max_iter = check.nonnegative("tol", tol), check.count("max_iter", max_iter)
    rtol = check.nonnegative("rtol", rtol)
    shape = in_shape if in_shape is not None else getattr(model, "in_shape", None)
    if shape is None:
        raise ValueError("in_shape must be (C, H, W) (or set model.in_shape), got None")
    shape = check.shape("in_shape", shape, ndim=3)
    stages, name, linear = conv.conv_stack(model, shape)
    parts = ("weight", "bias") if linear.bias is not None else ("weight",)
    grad_weight, *grad_bias = check.layer_gradients(grads, name, parts)
    check.floating(f"grads[{name + '.weight'!r}]", grad_weight.dtype, why="CGLS in half precision "
                   "stalls near 1e-3 and would return round-off as an exact image")
    if grad_weight.device != linear.weight.device:
        raise ValueError(f"gradients on {grad_weight.device} but the model on {linear.weight.device}")
    if grad_weight.shape[-2:] != linear.weight.shape:
        raise ValueError(f"the message's {name}.weight is {tuple(grad_weight.shape)} but the model's "
                         f"is {tuple(linear.weight.shape)}: was the message computed on this model?")
    clients = grad_weight.shape[:-2]  # () for one message, (N,) for N stacked messages
    flat_features, head_delta = _head(model, name, linear, grad_weight, grad_bias)
    features = flat_features.reshape(-1, *stages[-1].out_shape)
    results: list[tuple[str, Tensor, conv.SolveInfo | None]] = [(name, features, None)]
    # ∂ℓ/∂(features) = W_linᵀ δ_lin, with δ_lin = ∂ℓ/∂b_lin (one sample per message).
    upstream = (head_delta.reshape(len(features), -1) @ linear.weight.detach().to(head_delta.dtype)
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
    labels = (head_delta.reshape(len(features), -1).argmin(-1) if models.last_linear(model)[1] is linear
              else verify.head_labels(model, grads))  # δ = p − onehot(y) is negative only at y
    _verify(model, grads, results, labels, strict, rtol)
    return [(key, value.reshape(*clients, *value.shape[1:]), info) for key, value, info in results]


def _verify(model: nn.Module, grads: Mapping[str, Tensor],
            results: list[tuple[str, Tensor, conv.SolveInfo | None]], labels: Tensor, strict: bool,
            rtol: float) -> None:
    """Recompute the message from the image: raise (strict) or warn when it does not match, and
    warn whenever a solve stopped before its tolerance (its flag is never dropped)."""
    stopped = [f"{key} ({info.iterations} iterations, residual {info.residual:.1e})"
               for key, _, info in results if info is not None and not info.converged]
    residual = verify.message_residual(model, results[-1][1], labels, grads)
    worst = float(residual.max())
    note = f" The solver stopped before its tolerance at layer(s) {', '.join(stopped)}." if stopped else ""
    if not worst <= rtol:
        text = (f"the reconstruction does not reproduce the message: relative residual {worst:.1e} > "
                f"rtol={rtol:g} (worst parameter, worst client).{note} A layer may be rank-deficient "
                "(the count h ≥ (d/d′)² C is necessary, not sufficient: edge pixels, stride) or badly "
                "conditioned: try a larger max_iter, weight_grads=True, or strict=False for the "
                "minimum-norm guess")
        if strict:
            raise ReconstructionError(text)
        warnings.warn(text, ReconstructionWarning, stacklevel=3)
    elif stopped:
        warnings.warn(f"the image reproduces the message (relative residual {worst:.1e}) but{note}",
                      ReconstructionWarning, stacklevel=3)


def _head(model: nn.Module, name: str, linear: nn.Linear, grad_weight: Tensor,
          grad_bias: list[Tensor]) -> tuple[Tensor, Tensor]:
    """(features, δ_lin) of the Linear after Flatten: chapter 01's ratio, or without a bias the
    scale from the cross-entropy head (:func:`features_without_bias`)."""
    if grad_bias:
        return analytic.invert_linear(grad_weight, grad_bias[0]), grad_bias[0]
    if list(model.children())[-1] is not linear:
        raise ValueError(f"Linear {name} has no bias and is not the model's last layer: its input "
                         "leaks only up to scale (chapter 01). A bias-free Linear is handled only as "
                         "the classification head (cross-entropy loss)")
    if linear.out_features < 3:
        raise ValueError(f"Linear {name} has no bias and {linear.out_features} classes: the scale of "
                         "its input is fixed by the other classes' outputs, so it needs at least 3 classes")
    flat = grad_weight.reshape(-1, *grad_weight.shape[-2:])
    features, delta = head.features_without_bias(flat, linear.weight)
    return features.reshape(*grad_weight.shape[:-2], -1), delta.reshape(*grad_weight.shape[:-1])


def invert_cnn(model: nn.Module, grads: Mapping[str, Tensor], in_shape: Sequence[int] | None = None,
               strict: bool = True, tol: float = TOL, max_iter: int = MAX_ITER,
               weight_grads: bool = False, rtol: float = RTOL) -> Tensor:
    """The private input of a one-sample message through a CNN, in closed form (chapter 03).

    1. Chapter 01's closed form (:func:`invert_linear`) on the first Linear after ``Flatten``
       recovers its input: the flattened output of the last conv stage. When that Linear has
       no bias it must be the cross-entropy head, whose scale :func:`features_without_bias`
       recovers (as R-GAP does).
    2. Each conv stage is undone in turn, last first: invert the activation (sigmoid by logit,
       tanh by atanh, leaky ReLU by rescaling; ReLU loses information and raises), subtract
       the bias, and solve conv(x) = z by CGLS with the convolution and its transpose only
       (:func:`recon_lib.conv.solve`, matrix-free), so it scales to 3×224×224 inputs.

    3. The image is verified: the message is recomputed from it (with the label read from
       the head) and compared, parameter by parameter (:func:`recon_lib.verify.message_residual`).

    The count h ≥ (d/d′)² C of Claim 3 (:func:`recon_lib.geometry.equation_count`) and
    reading every pixel are necessary, not sufficient: a layer can meet both and still be
    rank-deficient (edge pixels read by too few windows: 8×8 input, 3×3 valid conv, 2 kernels
    has rank 56 of 64) or badly conditioned (stride 2 exactly at the bound). The result is
    exact (up to round-off and ``tol``) when every conv's matrix has full column rank and the
    solves converge — which step 3 checks instead of assuming.

    Args:
        model: ``nn.Sequential`` of Conv2d [+ activation] stages, Flatten, a biased Linear, …
            (or Flatten and a bias-free Linear head, last, under cross-entropy).
        grads: the client's message, keyed like ``model.named_parameters()``.
        in_shape: (C, H, W) of one input; defaults to ``model.in_shape``.
        strict: raise when a layer is below the bound, a recovered activation is out of range
            or the image does not reproduce the message; ``False`` returns the minimum-norm
            guess instead (to study the failure) with a :class:`ReconstructionWarning`.
        tol, max_iter: stopping rule of each conv solve (see :func:`recon_lib.conv.cgls`). A
            solve that stops before ``tol`` always warns.
        weight_grads: also use each conv's weight gradient, h·C·k² more linear equations on
            its input once δ at its output is known (it is: W_linᵀ δ_lin, then backwards
            through the recovered layers). Rescues layers at or even below the bound.
        rtol: largest accepted relative residual of the recomputed message (max over parameter
            tensors and clients); round-off of a float32 message is about 1e-6.

    Raises:
        TypeError: unsupported layers (pooling, batch norm, grouped convs...) or model types.
        ValueError: too few kernels (says the bound), no bias, ReLU, bad shapes or gradients.
        ReconstructionError: (a ValueError, strict only) the image does not reproduce the message.
    """
    return invert_cnn_stages(model, grads, in_shape, strict, tol, max_iter, weight_grads, rtol)[-1][1]
