"""Convolution as a linear map, and solving it matrix-free (chapter 03).

Without its bias a conv layer is linear: its output is y = A x with one row of A per output
value (h·d′² of them) and one column per input value (C·d² of them). Chapter 03 builds A
explicitly for tiny layers (:func:`as_matrix`, from autograd) to *see* it, then never again:
:func:`cgls` solves A x = y using only the convolution (A x) and its adjoint (Aᵀ y, the
transposed convolution that backpropagation computes), so memory stays O(image) and a
3×224×224 input costs a few hundred convolutions instead of a 150 000² matrix.

Also here: :class:`WeightGradMap` (a conv's weight gradient as more linear equations on its
input, the idea of R-GAP, Zhu & Blaschko 2021), :func:`conv_stack` (a CNN read as conv stages)
and the condition number of a layer (dense, or per frequency for stride 1). The inverses of the
activations between conv layers are in :mod:`recon_lib.activations` (re-exported here).

The solver itself, :func:`recon_lib.cgls.cgls` (re-exported here), is its own module.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.grad import conv2d_input

from . import _validate as check
from . import geometry
from .activations import (  # noqa: F401  (re-exported: rl.conv.invert_activation)
    ACTIVATION_INVERSES,
    NOT_INVERTIBLE,
    Inverse,
    invert_activation,
    register_inverse,
)
from .cgls import SolveInfo, cgls  # noqa: F401  (re-exported: rl.conv.cgls)
from .runtime import intra_op_threads

Shape = tuple[int, int, int]


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _int_padding(layer: nn.Conv2d) -> tuple[int, int]:
    """The layer's zero padding as integers; string paddings ('valid', odd 'same') resolved."""
    padding = layer.padding
    if padding == "valid":
        return 0, 0
    if padding == "same":
        reach = [d * (k - 1) for d, k in zip(layer.dilation, layer.kernel_size, strict=True)]
        if any(r % 2 for r in reach):
            raise TypeError("padding='same' with an even kernel pads asymmetrically, which the "
                            "course does not support; use an odd kernel or integer padding")
        return reach[0] // 2, reach[1] // 2
    if isinstance(padding, str):  # nn.Conv2d accepts no other string; kept for the type checker
        raise ValueError(f"padding={padding!r} is not 'valid', 'same' or integers")
    return _pair(padding)


def layer_geometry(layer: nn.Conv2d) -> dict[str, tuple[int, int]]:
    """Kernel size k, stride s, integer padding p and dilation of a conv layer, per axis, as the
    keyword arguments of :mod:`recon_lib.geometry` (``geometry.kernel_bound(shape, **…)``)."""
    return {"k": _pair(layer.kernel_size), "s": _pair(layer.stride), "p": _int_padding(layer),
            "dilation": _pair(layer.dilation)}


def check_layer(layer: nn.Module) -> nn.Conv2d:
    """Raise a clear error unless ``layer`` is a conv layer the course can treat as a matrix.

    Supported: ``nn.Conv2d`` with zero padding, any kernel size, stride and dilation,
    ``groups=1`` (the counting bound of Claim 3 assumes every kernel sees every channel).
    """
    if not isinstance(layer, nn.Conv2d) or type(layer) is not nn.Conv2d:
        raise TypeError(f"{type(layer).__name__} is not an nn.Conv2d; chapter 03 inverts plain 2-D "
                        "convolutions only (pooling, normalisation and transposed convs are not linear "
                        "maps of this kind or are not invertible)")
    if layer.groups != 1:
        raise ValueError(f"groups={layer.groups}: grouped/depthwise convs split into independent "
                         "convs; the course's bound and solver assume groups=1")
    if layer.padding_mode != "zeros":
        raise ValueError(f"padding_mode={layer.padding_mode!r}: the course treats zero padding only")
    _int_padding(layer)
    return layer


def out_shape(layer: nn.Conv2d, in_shape: Sequence[int]) -> Shape:
    """The output shape (h, H′, W′) of ``layer`` on one input of shape (C, H, W).

    Raises:
        ValueError: if ``in_shape`` is not C×H×W with C = ``layer.in_channels`` or the image is
            smaller than one (dilated) kernel.
    """
    check_layer(layer)
    shape = check.shape("in_shape", in_shape, ndim=3)
    if shape[0] != layer.in_channels:
        raise ValueError(f"in_shape must be (C, H, W) with C = {layer.in_channels} input channels, "
                         f"got {tuple(in_shape)}")
    widths = geometry.output_size(shape, **layer_geometry(layer))
    return layer.out_channels, widths[0], widths[1]


@dataclass(frozen=True)
class ConvMap:
    """The linear part of a conv layer as a matrix-free operator: A x and Aᵀ y.

    ``apply`` is the convolution without its bias; ``adjoint`` is its transpose, the map
    backpropagation uses for ∂ℓ/∂x (``torch.nn.grad.conv2d_input``). Both act on batches.
    """

    layer: nn.Conv2d
    in_shape: Shape

    @classmethod
    def of(cls, layer: nn.Module, in_shape: Sequence[int]) -> ConvMap:
        """Check ``layer`` and ``in_shape`` and wrap them."""
        conv = check_layer(layer)
        out_shape(conv, in_shape)  # checks that in_shape is (C, H, W)
        channels, height, width = (int(s) for s in in_shape)
        return cls(conv, (channels, height, width))

    @property
    def out_shape(self) -> Shape:
        return out_shape(self.layer, self.in_shape)

    def _args(self) -> dict:
        return {"stride": self.layer.stride, "padding": _int_padding(self.layer),
                "dilation": self.layer.dilation}

    def apply(self, x: Tensor) -> Tensor:
        """A x: the convolution of a batch N×C×H×W, without the bias."""
        return F.conv2d(x, self.layer.weight.detach().to(x.dtype), None, **self._args())

    def adjoint(self, y: Tensor) -> Tensor:
        """Aᵀ y: the transposed convolution of a batch N×h×H′×W′ back to N×C×H×W.

        For stride 1 the transpose is itself a convolution, with the kernels flipped and the
        in/out channels swapped (a several-fold faster path on CPU); otherwise it is the
        input-gradient of the convolution (``torch.nn.grad.conv2d_input``).
        """
        weight = self.layer.weight.detach().to(y.dtype)
        padding = _int_padding(self.layer)
        reach = [d * (k - 1) for d, k in zip(self.layer.dilation, self.layer.kernel_size, strict=True)]
        if self.layer.stride == (1, 1) and all(p <= r for p, r in zip(padding, reach, strict=True)):
            flipped = weight.flip(2, 3).transpose(0, 1)
            return F.conv2d(y, flipped, None, padding=[r - p for r, p in zip(reach, padding, strict=True)],
                            dilation=self.layer.dilation)
        return conv2d_input((y.shape[0], *self.in_shape), weight, y, **self._args())


# Dense helpers refuse what would take minutes: as_matrix up to 5·10⁷ entries (400 MB in
# float64); an SVD of an m×n matrix costs about m·n·min(m, n) operations, measured at 2-3·10⁹
# per second on one core of this project's CPU, so 1.5·10¹¹ is about a minute there.
DENSE_MAX_ENTRIES = 5e7
SVD_MAX_COST = 1.5e11


def check_svd(rows: int, columns: int, what: str) -> None:
    """Refuse a dense SVD whose cost m·n·min(m, n) exceeds :data:`SVD_MAX_COST`, naming ``what``."""
    check.limit(f"the SVD of the {rows}×{columns} matrix for {what}", rows * columns * min(rows, columns),
                SVD_MAX_COST, " operations", "use a smaller input (or dense=False: the Fourier estimate)")


def as_matrix(layer: nn.Module, in_shape: Sequence[int]) -> Tensor:
    """The matrix A (h·H′·W′ × C·H·W) of a conv layer's linear part, for small demos.

    Column j of A is the layer's response to the j-th basis image e_j (bias left out), so A
    is built by convolving the whole identity basis at once, one batch of C·H·W images: the
    vectorised form of ``torch.func.jacfwd`` (tests check it equals ``jacrev``). Rows and
    columns follow PyTorch's C-order flattening, so ``A @ x.flatten() == conv(x).flatten()``
    minus the bias. Dense: for inputs of a few thousand values at most; solvers never need it.
    """
    conv = ConvMap.of(layer, in_shape)
    n_in, n_out = prod(conv.in_shape), prod(conv.out_shape)
    check.limit(f"as_matrix on in_shape {conv.in_shape} ({n_out}×{n_in} matrix)", n_in * n_out,
                DENSE_MAX_ENTRIES, " entries", "as_matrix is for small demos; use rl.conv.ConvMap "
                "(matrix-free) for larger inputs")
    basis = torch.eye(n_in, dtype=conv.layer.weight.dtype, device=conv.layer.weight.device)
    return conv.apply(basis.reshape(n_in, *conv.in_shape)).reshape(n_in, n_out).T


@dataclass(frozen=True)
class WeightGradMap:
    """x ↦ ∂ℓ/∂W of a conv layer when δ = ∂ℓ/∂(conv output) is known: extra equations on x.

    ∂ℓ/∂W[o, c, a, b] = Σ_positions δ[o, pos] · x[c, pos·s − p + (a, b)·dilation] is linear in x,
    with h·C·k² rows: a patch matrix of x (``F.unfold``) times δ. Chapter 03 adds these rows to
    the conv's own equations, which lifts the stall exactly at the kernel bound.
    """

    layer: nn.Conv2d
    in_shape: Shape
    delta: Tensor  # N × h × H′ × W′

    def _unfold(self) -> dict:
        return {"kernel_size": self.layer.kernel_size, "dilation": self.layer.dilation,
                "padding": _int_padding(self.layer), "stride": self.layer.stride}

    def apply(self, x: Tensor) -> Tensor:
        """N×C×H×W → N×h×(C·k²): the weight gradient each image would produce."""
        patches = F.unfold(x, **self._unfold())  # N × C·k² × positions
        return self.delta.flatten(2).to(x.dtype) @ patches.transpose(1, 2)

    def adjoint(self, g: Tensor) -> Tensor:
        """N×h×(C·k²) → N×C×H×W, the transpose of :meth:`apply`."""
        columns = g.transpose(1, 2) @ self.delta.flatten(2).to(g.dtype)
        return F.fold(columns, self.in_shape[1:], **self._unfold())


def solve(layer: nn.Module, y: Tensor, in_shape: Sequence[int], tol: float = 1e-7,
          max_iter: int = 2000, delta: Tensor | None = None,
          grad_weight: Tensor | None = None) -> tuple[Tensor, SolveInfo]:
    """The input of a conv layer from its output without bias, y = A x, matrix-free (CGLS).

    Args:
        layer: the ``nn.Conv2d`` (its bias is *not* applied: subtract it from y first).
        y: N×h×H′×W′ outputs.
        in_shape: (C, H, W) of one input.
        delta, grad_weight: optionally δ = ∂ℓ/∂y (N×h×H′×W′) and the layer's weight gradient
            from the message (N×h×C×k×k, or h×C×k×k for one image): their h·C·k² equations
            (:class:`WeightGradMap`) are stacked under A x = y, scaled to the same norm.
    """
    conv = ConvMap.of(layer, in_shape)
    layer = conv.layer
    if y.ndim != 4 or tuple(y.shape[1:]) != conv.out_shape:
        raise ValueError(f"y must be N×{'×'.join(map(str, conv.out_shape))} for this layer and "
                         f"in_shape {conv.in_shape}, got {tuple(y.shape)}")
    if y.device != layer.weight.device:
        raise ValueError(f"y is on {y.device} but the layer on {layer.weight.device}")
    if delta is None:
        return cgls(conv.apply, conv.adjoint, y, tol=tol, max_iter=max_iter)
    if grad_weight is None or delta.shape != y.shape or grad_weight.shape[-4:] != layer.weight.shape:
        raise ValueError(f"need delta shaped like y {tuple(y.shape)} and grad_weight shaped like the "
                         f"layer's weight {tuple(layer.weight.shape)}")
    extra = WeightGradMap(conv.layer, conv.in_shape, delta)
    target = grad_weight.reshape(len(y), layer.out_channels, -1).to(y.dtype)
    scale = float(y.norm() / target.norm().clamp_min(torch.finfo(y.dtype).tiny))
    split = y[0].numel()

    def apply(x: Tensor) -> Tensor:
        return torch.cat([conv.apply(x).flatten(1), scale * extra.apply(x).flatten(1)], 1)

    def adjoint(r: Tensor) -> Tensor:
        return (conv.adjoint(r[:, :split].reshape(y.shape))
                + scale * extra.adjoint(r[:, split:].reshape(target.shape)))

    return cgls(apply, adjoint, torch.cat([y.flatten(1), scale * target.flatten(1)], 1), tol, max_iter)


# --- Reading a CNN as a stack of (conv, activation) stages -----------------------------------
@dataclass(frozen=True)
class Stage:
    """One conv layer of a CNN, the activation after it, and the shapes around it."""

    name: str
    conv: nn.Conv2d
    activation: nn.Module
    in_shape: Shape
    out_shape: Shape


def conv_stack(model: nn.Module, in_shape: Sequence[int]) -> tuple[list[Stage], str, nn.Linear]:
    """Split a CNN into its conv stages and the first linear layer after ``Flatten``.

    The model must be an ``nn.Sequential`` of ``Conv2d`` layers, each optionally followed by
    one element-wise activation, then ``Flatten`` and an ``nn.Linear`` (the rest of the model
    is free). Anything else between the input and that Linear raises a clear error.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"invert_cnn reads the layers of an nn.Sequential, got {type(model).__name__}")
    stages: list[Stage] = []
    shape = tuple(int(s) for s in in_shape)
    children = list(model.named_children())
    for index, (name, module) in enumerate(children):
        if isinstance(module, nn.Flatten):
            return stages, *_linear_after(children[index + 1:], stages, name)
        if isinstance(module, nn.Conv2d):
            check_layer(module)
            out = out_shape(module, shape)  # checks that shape is (C, H, W)
            stages.append(Stage(name, module, nn.Identity(), cast(Shape, shape), out))
            shape = out
        elif stages and isinstance(stages[-1].activation, nn.Identity) and _is_activation(module):
            last = stages[-1]
            stages[-1] = Stage(last.name, last.conv, module, last.in_shape, last.out_shape)
        else:
            raise TypeError(f"layer {name} ({type(module).__name__}) is not supported between the input "
                            "and the first Linear: use Conv2d, one activation per conv, then Flatten"
                            + (f" ({NOT_INVERTIBLE[type(module)]})"
                               if type(module) in NOT_INVERTIBLE else ""))
    raise TypeError("the model has no Flatten followed by a Linear layer after its convolutions")


def _is_activation(module: nn.Module) -> bool:
    return type(module) in ACTIVATION_INVERSES or type(module) in (nn.ReLU, nn.GELU)


def _linear_after(rest: list[tuple[str, nn.Module]], stages: list[Stage],
                  flatten_name: str) -> tuple[str, nn.Linear]:
    if not stages:
        raise TypeError("the model has no Conv2d before Flatten; use rl.analytic.reconstruct")
    name, linear = rest[0] if rest else (flatten_name, None)
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"layer {flatten_name} (Flatten) must be followed by an nn.Linear")
    if linear.in_features != prod(stages[-1].out_shape):
        raise ValueError(f"in_shape gives {prod(stages[-1].out_shape)} features after the convs "
                         f"but Linear {name} takes {linear.in_features}: wrong in_shape?")
    return name, linear


# --- Conditioning (chapter 03's at-the-bound finding) ----------------------------------------
def fourier_singular_values(layer: nn.Module, size: Sequence[int]) -> Tensor:
    """Singular values of a stride-1 conv on an H×W image with *periodic* borders.

    With circular padding the conv is block-circulant, so the 2-D DFT splits it into one small
    h×C matrix K̂(ω) per frequency ω, and its singular values are those of all the K̂(ω)
    together (H·W·min(h, C) values). Zero padding changes only the border, so this is a cheap,
    matrix-free estimate of the spectrum at any size (chapter 03 checks it against the dense
    SVD on small images). Returns an H×W×min(h, C) tensor.
    """
    check_layer(layer)
    if layer.stride != (1, 1):
        raise ValueError(f"stride {layer.stride}: the Fourier picture here is for stride-1 convs")
    height, width = check.shape("size", size, ndim=2)
    weight = check_layer(layer).weight.detach()
    check.floating("the layer's weight", weight.dtype, why="its FFT and SVD have no half kernel")
    spectrum = torch.fft.fft2(weight, s=(height, width))  # h × C × H × W
    return torch.linalg.svdvals(spectrum.permute(2, 3, 0, 1))


def condition_number(layer: nn.Module, in_shape: Sequence[int], dense: bool | None = None) -> float:
    """σ_max / σ_min of a conv layer's matrix on C×H×W inputs (∞ when it has fewer rows than
    columns, i.e. below the bound). ``dense=True`` takes the SVD of :func:`as_matrix` (exact,
    small inputs); ``False`` uses :func:`fourier_singular_values` (periodic-border estimate,
    any size); the default picks dense up to 4096 input values. The dense SVD runs on one
    intra-op thread: with a second core busy (a browser beside the kernel), two threads took a
    3072-column SVD from 2.4 s to a minute in chapter 03 (``benchmarks/notebooks.py``)."""
    conv = ConvMap.of(layer, in_shape)
    if conv.out_shape[0] * conv.out_shape[1] * conv.out_shape[2] < prod(conv.in_shape):
        return float("inf")
    dense = prod(conv.in_shape) <= 4096 if dense is None else dense
    if dense:
        check.floating("the layer's weight", conv.layer.weight.dtype, why="as_matrix in half "
                       "precision would round the matrix before its SVD")
        check_svd(prod(conv.out_shape), prod(conv.in_shape), f"in_shape {conv.in_shape}")
        with intra_op_threads(1):  # LAPACK's SVD: 1.9× slower alone, but minutes faster beside a
            values = torch.linalg.svdvals(as_matrix(layer, in_shape).to(torch.float64))  # busy core
    else:
        if conv.layer.out_channels < conv.layer.in_channels:
            return float("inf")
        values = fourier_singular_values(layer, in_shape[1:]).to(torch.float64)
    return float(values.max() / values.min())
