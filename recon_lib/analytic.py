"""Closed-form attacks: what the server computes from the message alone, no optimisation.

Chapter 01 (Claim 1 of Qian, Nassar & Hansen 2021). For a first layer z = Wx + b followed by
*any* differentiable network and loss, unit i receives δᵢ = ∂ℓ/∂zᵢ and

    ∂ℓ/∂Wᵢ = δᵢ · x        ∂ℓ/∂bᵢ = δᵢ        so   x = (∂ℓ/∂Wᵢ) / (∂ℓ/∂bᵢ)  when δᵢ ≠ 0.

Depth, loss and label only enter through δᵢ, which cancels. Every function here sees only
the model (its architecture and weights) and the message, never the private data.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import prod

import torch
import torch.fx
from torch import Tensor, nn

from . import conv

# Ops that only reshape the input; the first *real* layer is found by walking past them.
PASS_THROUGH_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity)
PASS_THROUGH_METHODS = {"view", "reshape", "flatten", "contiguous"}
PASS_THROUGH_FUNCTIONS = {torch.flatten, torch.reshape}
# invert_linear sums over units with a matmul up to this width (fast, float32 round-off ≤ ~3e-7 on
# [0, 1] pixels); wider layers use torch's cascaded sum, whose error does not grow with h.
MATMUL_MAX_UNITS = 16
# Layer types that ``reconstruct`` cannot invert in closed form, and where the course goes next.
HANDLED_ELSEWHERE = {
    nn.Conv2d: "a convolution comes first: chapter 03 inverts it (rl.analytic.invert_cnn)",
    nn.Conv1d: "a convolution comes first: chapter 03 discusses conv layers",
}


def all_finite(tensor: Tensor) -> bool:
    """No NaN or inf anywhere, in one cheap reduction: any NaN/inf makes the sum non-finite.

    Only when the sum is not finite (a NaN/inf, or an overflow of large finite values) is
    the exact element-wise test run, so large messages are checked at the cost of one sum.
    """
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def _check_pair(grad_weight: Tensor, grad_bias: Tensor) -> None:
    """Shapes, dtypes, devices and finiteness of a (∂W, ∂b) pair; raises a clear error."""
    if not isinstance(grad_weight, Tensor) or not isinstance(grad_bias, Tensor):
        raise TypeError("grad_weight and grad_bias must be torch tensors")
    if grad_weight.ndim < 2 or grad_weight.shape[:-1] != grad_bias.shape:
        raise ValueError(
            f"grad_weight must be (..., h, d) and grad_bias (..., h); got {tuple(grad_weight.shape)} "
            f"and {tuple(grad_bias.shape)}. Did you pass the gradients of the same layer?")
    if not grad_weight.is_floating_point() or grad_weight.dtype != grad_bias.dtype:
        raise TypeError(f"gradients must share one floating dtype, got {grad_weight.dtype} and "
                        f"{grad_bias.dtype}")
    if grad_weight.device != grad_bias.device:
        raise ValueError(f"gradients live on different devices: {grad_weight.device} and "
                         f"{grad_bias.device}")
    if not (all_finite(grad_weight) and all_finite(grad_bias)):
        raise ValueError("the gradients contain NaN or inf; a closed form would return garbage. "
                         "Check the client's loss (e.g. log of 0) before attacking.")


def usable_units(grad_bias: Tensor, tol: float | None = None) -> Tensor:
    """Mask of units whose ∂ℓ/∂bᵢ = δᵢ is large enough to divide by.

    A unit is unusable when δᵢ = 0 (a dead ReLU unit, or a sample the model already fits
    perfectly) or so small that it is no longer a normal floating-point number, where the
    ratio loses precision. ``tol`` defaults to the smallest normal number of the dtype.
    """
    tol = torch.finfo(grad_bias.dtype).tiny if tol is None else tol
    return grad_bias.abs() > tol


def unit_estimates(grad_weight: Tensor, grad_bias: Tensor,
                   tol: float | None = None) -> tuple[Tensor, Tensor]:
    """The per-unit ratios ∂ℓ/∂Wᵢ ÷ ∂ℓ/∂bᵢ and which of them are usable.

    Args:
        grad_weight: (..., h, d) gradient of the first layer's weight.
        grad_bias: (..., h) gradient of its bias.
        tol: smallest |∂ℓ/∂bᵢ| that counts as usable (see :func:`usable_units`).

    Returns:
        ``(ratios, usable)``: (..., h, d) estimates (zero rows where unusable) and the (..., h)
        boolean mask. With one sample every usable row equals x; with a batch each row is a
        δ-weighted mixture of the images (chapter 02).
    """
    _check_pair(grad_weight, grad_bias)
    usable = usable_units(grad_bias, tol)
    safe_bias = torch.where(usable, grad_bias, torch.ones_like(grad_bias))
    ratios = grad_weight / safe_bias.unsqueeze(-1) * usable.unsqueeze(-1)
    return ratios, usable


def invert_linear(grad_weight: Tensor, grad_bias: Tensor, tol: float | None = None) -> Tensor:
    """The input of a biased linear layer from its gradients, using every usable unit.

    Solves the least-squares problem min_x Σᵢ ‖∂Wᵢ − ∂bᵢ·x‖² over usable units, whose answer
    x = Σᵢ ∂bᵢ ∂Wᵢ / Σᵢ ∂bᵢ² weights each unit's ratio by ∂bᵢ²: units with a large |δᵢ|
    count most, and a single bad unit cannot spoil the result. Leading dimensions are
    treated as independent clients, so N messages are inverted in one call.

    Raises:
        ValueError: on mismatched shapes, NaN/inf, or a client with no usable unit (δ = 0
            everywhere: every unit dead, or the sample already perfectly fitted).
    """
    _check_pair(grad_weight, grad_bias)
    usable = usable_units(grad_bias, tol)
    no_unit = ~usable.any(dim=-1)
    if no_unit.any():
        which = no_unit.nonzero().tolist() if no_unit.ndim else "the only client"
        raise ValueError(
            f"no usable unit for {which}: every |∂ℓ/∂b| is zero or below tolerance, i.e. δ = 0 "
            "(all units dead, e.g. ReLU, or a perfectly fitted sample). x cannot be recovered "
            "from this message.")
    # Rescale ∂b by its largest |∂bᵢ| per client, so that tiny δ do not underflow when squared;
    # x = Σᵢ b̃ᵢ ∂Wᵢ / (scale · Σᵢ b̃ᵢ²), reading ∂W once (no rescaled copy of it).
    scale = grad_bias.abs().amax(dim=-1, keepdim=True)
    bias = grad_bias / scale * usable
    if grad_weight.shape[-2] <= MATMUL_MAX_UNITS:   # few units: one batched matmul, no temporary
        weighted = torch.matmul(bias.unsqueeze(-2), grad_weight).squeeze(-2)
    else:  # many units: a BLAS matvec sums sequentially (error ~ h·eps); torch's sum is cascaded
        weighted = (bias.unsqueeze(-1) * grad_weight).sum(-2)
    return weighted.div_(scale * bias.square().sum(-1, keepdim=True))  # in place: no 2nd N×d buffer


def direction_without_bias(grad_weight: Tensor) -> Tensor:
    """With no bias only the direction of x leaks: the top right singular vector of ∂W.

    ∂W = δ xᵀ has rank one, so its row space is the line through x. The sign is chosen so that
    the pixels sum to a positive number (images are non-negative). Returns a unit vector.
    """
    if grad_weight.ndim < 2 or not torch.isfinite(grad_weight).all():
        raise ValueError("grad_weight must be a finite (..., h, d) tensor")
    _, _, vh = torch.linalg.svd(grad_weight, full_matrices=False)
    direction = vh[..., 0, :]
    return direction * torch.sign(direction.sum(-1, keepdim=True) + 1e-30)


def fix_scale(direction: Tensor, *, pixel: int | None = None, value: float | None = None,
              norm: float | None = None) -> Tensor:
    """Turn a direction into an image with one extra fact: one known pixel, or the norm ‖x‖."""
    if (pixel is None) == (norm is None) or (pixel is not None and value is None):
        raise ValueError("give either pixel=index and value=..., or norm=...")
    if norm is not None:
        return direction / direction.norm(dim=-1, keepdim=True) * norm
    if torch.any(direction[..., pixel] == 0):
        raise ValueError(f"pixel {pixel} is zero in the direction; pick another known pixel")
    return direction * (value / direction[..., pixel:pixel + 1])


# --- From a whole model ------------------------------------------------------------------
def _reads_shape_only(node: torch.fx.Node) -> bool:
    """``x.shape`` or ``x.size()``: reads the shape, not the data."""
    return ((node.op == "call_function" and node.target is getattr and node.args[1] == "shape")
            or (node.op == "call_method" and node.target in {"size", "dim"}))


def _first_in_sequence(model: nn.Sequential, prefix: str) -> tuple[str, nn.Module]:
    """First non-reshaping module of a (possibly nested) ``nn.Sequential``."""
    for name, module in model.named_children():
        if isinstance(module, PASS_THROUGH_MODULES):
            continue
        if isinstance(module, nn.Sequential):
            return _first_in_sequence(module, prefix=f"{prefix}{name}.")
        return f"{prefix}{name}", module
    raise TypeError("the nn.Sequential has no layer that acts on the input")


def first_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """The first layer that does arithmetic on the input, walking past reshapes (Flatten, view).

    Returns:
        ``(qualified name, module)`` as in ``model.named_modules()``.

    Raises:
        TypeError: when the model cannot be traced, the input feeds several ops, or the first
            op is not a module (e.g. ``x * 2``).
    """
    if isinstance(model, nn.Sequential):  # the common case: no tracing needed, microseconds
        return _first_in_sequence(model, prefix="")
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as error:  # noqa: BLE001 - fx raises many kinds; all mean "cannot trace"
        raise TypeError(f"cannot follow the input through {type(model).__name__} "
                        f"({error.__class__.__name__}); use an nn.Sequential or rl.models") from error
    node = next(n for n in graph.nodes if n.op == "placeholder")
    while True:
        users = [user for user in node.users if not _reads_shape_only(user)]
        if len(users) != 1:
            raise TypeError(f"the input feeds {len(users)} ops; the closed form needs one first layer")
        node = users[0]
        if node.op == "call_module":
            module = model.get_submodule(node.target)
            if isinstance(module, PASS_THROUGH_MODULES):
                continue
            return node.target, module
        if node.op == "call_method" and node.target in PASS_THROUGH_METHODS:
            continue
        if node.op == "call_function" and node.target in PASS_THROUGH_FUNCTIONS:
            continue
        raise TypeError(f"the input first goes through {node.format_node()}, which is not a layer "
                        "the closed form knows")


def _layer_grads(grads: Mapping[str, Tensor], name: str, parts: Sequence[str]) -> list[Tensor]:
    keys = [f"{name}.{part}" for part in parts]
    missing = [key for key in keys if key not in grads]
    if missing:
        raise ValueError(f"the gradient dict has no {missing}; it should be keyed like "
                         f"model.named_parameters() (it has {sorted(grads)[:6]}...)")
    return [grads[key] for key in keys]


def _output_shape(d: int, in_shape: Sequence[int] | None, model: nn.Module) -> tuple[int, ...]:
    shape = tuple(in_shape) if in_shape is not None else getattr(model, "in_shape", (d,))
    if prod(shape) != d:
        raise ValueError(f"in_shape {tuple(shape)} has {prod(shape)} entries but the first layer "
                         f"takes {d} inputs")
    return tuple(shape)


def reconstruct(model: nn.Module, grads: Mapping[str, Tensor],
                in_shape: Sequence[int] | None = None) -> Tensor:
    """The private input of a one-sample message, for a model starting with a biased Linear.

    Finds the first biased ``nn.Linear`` reachable from the input through reshapes, applies
    :func:`invert_linear` to its gradients, and shapes the result as ``in_shape``, else as
    ``model.in_shape`` (set by :mod:`recon_lib.models`), else flat.

    Raises:
        ValueError: missing gradient keys, no bias, bad gradients, wrong ``in_shape``.
        TypeError: models that do not start with a Linear (names the chapter that handles them).
    """
    name, layer = first_layer(model)
    if type(layer) in HANDLED_ELSEWHERE:
        raise TypeError(f"{name} is {type(layer).__name__}: {HANDLED_ELSEWHERE[type(layer)]}")
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"{name} is {type(layer).__name__}; the closed form of chapter 01 needs "
                        "the input to reach an nn.Linear first")
    if layer.bias is None:
        raise ValueError(f"{name} has no bias, so x leaks only up to scale: use "
                         "rl.analytic.direction_without_bias and rl.analytic.fix_scale (chapter 01)")
    grad_weight, grad_bias = _layer_grads(grads, name, ("weight", "bias"))
    x = invert_linear(grad_weight, grad_bias)
    return x.reshape(*x.shape[:-1], *_output_shape(x.shape[-1], in_shape, model))


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The last ``nn.Linear`` in module order: the classification head."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError(f"{type(model).__name__} has no nn.Linear head to read a label from")
    return linears[-1]


def recover_label(model: nn.Module, grads: Mapping[str, Tensor]) -> int:
    """The label of a single cross-entropy sample, from the head's gradient (iDLG).

    Under cross-entropy the head's bias gradient is p − onehot(y): negative only at the true
    class. Without a bias, iDLG reads the row sums of the weight gradient, (pᵢ − yᵢ)·Σa, whose
    minimum is the true class when the features a are non-negative (sigmoid, ReLU).
    """
    name, head = last_linear(model)
    if head.bias is not None:
        (scores,) = _layer_grads(grads, name, ("bias",))
    else:
        (grad_weight,) = _layer_grads(grads, name, ("weight",))
        scores = grad_weight.sum(-1)
    if scores.ndim != 1 or not torch.isfinite(scores).all():
        raise ValueError(f"expected a finite gradient of one head, got shape {tuple(scores.shape)}")
    return int(scores.argmin())



# --- Batches (chapter 02): the span of the batch and its labels ----------------------------
def batch_span(grad_weight: Tensor, grad_bias: Tensor, batch_size: int,
               rtol: float | None = None) -> Tensor:
    """An orthonormal basis (d × r) of the span of the batch, leaked in closed form.

    ∇W = (1/B) Δ Xᵀ, so every row of ∇W is a combination of the B images and, when the h × B
    matrix Δ has rank B (which needs h ≥ B), the row space of ∇W is exactly span{xᵢ}. The SVD
    gives it: the right singular vectors whose singular values are not round-off. r is the
    numerical rank, at most min(h, B, d); r < B means the span is only partly leaked.

    Args:
        grad_weight: (h, d) first-layer weight gradient of the batch message.
        grad_bias: (h,) its bias gradient (checked for consistency and finiteness).
        batch_size: B, known to the server in FedSGD.
        rtol: singular values below ``rtol · σ_max`` count as zero; default max(h, d)·eps.
    """
    _check_pair(grad_weight, grad_bias)
    if grad_weight.ndim != 2:
        raise ValueError(f"batch_span takes one message, (h, d); got {tuple(grad_weight.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    _, singular_values, vh = torch.linalg.svd(grad_weight, full_matrices=False)
    if singular_values[0] == 0:
        raise ValueError("∇W is zero: every unit has δ = 0, so nothing about the batch leaks")
    rtol = max(grad_weight.shape) * torch.finfo(grad_weight.dtype).eps if rtol is None else rtol
    rank = int((singular_values > rtol * singular_values[0]).sum().clamp(max=batch_size))
    return vh[:rank].T


def _head_bias_gradient(model: nn.Module, grads: Mapping[str, Tensor], batch_size: int) -> Tensor:
    """The head's bias gradient ∇c, checked (chapter 02's label recovery reads it)."""
    name, head = last_linear(model)
    if head.bias is None:
        raise ValueError(f"the head {name} has no bias; batch labels are read from its bias gradient")
    (scores,) = _layer_grads(grads, name, ("bias",))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
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


def span_residual(images: Tensor, basis: Tensor) -> Tensor:
    """Relative distance of each image from the leaked span: ‖x − VVᵀx‖ / ‖x‖ (chapter 02).

    With V from :func:`batch_span`, a residual at round-off level (≤ 1e-5 in float32) says
    the image lies in the span of the batch: a *membership test* the server can run on any
    candidate image without reconstructing anything.

    Args:
        images: (N, ...) candidate images, flattened to d values each.
        basis: (d, r) orthonormal columns.

    Returns:
        (N,) relative residuals in [0, 1].
    """
    flat = images.reshape(images.shape[0], -1)
    if basis.ndim != 2 or flat.shape[1] != basis.shape[0]:
        raise ValueError(f"images have {flat.shape[1]} values each but the basis is "
                         f"{tuple(basis.shape)}; expected (d, r) from batch_span")
    if flat.dtype != basis.dtype or flat.device != basis.device:
        raise TypeError(f"images ({flat.dtype}, {flat.device}) and basis ({basis.dtype}, "
                        f"{basis.device}) must share dtype and device")
    norms = flat.norm(dim=1)
    if (norms == 0).any():
        raise ValueError("an all-zero image has no direction; its relative residual is undefined")
    return (flat - flat @ basis @ basis.T).norm(dim=1) / norms



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



# --- Through convolutions (chapter 03): exact inversion of a CNN ---------------------------
def _kernel_bound(stage: conv.Stage) -> int:
    """⌈C·H·W / (H′·W′)⌉: Claim 3's h ≥ (d/d′)² C for a possibly non-square input."""
    channels, height, width = stage.in_shape
    return -(-channels * height * width // (stage.out_shape[1] * stage.out_shape[2]))


def _check_kernels(stage: conv.Stage, weight_grads: bool = False) -> None:
    """Raise unless the conv of ``stage`` passes the counting bound and reads every pixel.

    With ``weight_grads`` the layer's weight gradient adds h·C·k² equations to its h·d′², so
    the count becomes h·(d′² + C·k²) ≥ C·d² (the course's extension of Claim 3).
    """
    from . import conditions  # local: conditions imports this module

    bound, h = _kernel_bound(stage), stage.conv.out_channels
    channels, height, width = stage.in_shape
    extra = h * stage.conv.weight[0].numel() if weight_grads else 0
    if h * stage.out_shape[1] * stage.out_shape[2] + extra < channels * height * width:
        if weight_grads:
            raise ValueError(
                f"conv layer {stage.name}: even with its weight gradient, {h} kernels give "
                f"{h * stage.out_shape[1] * stage.out_shape[2] + extra} equations for "
                f"{channels * height * width} unknowns. Pass strict=False for the minimum-norm guess.")
        raise ValueError(
            f"conv layer {stage.name} has {h} kernels but its {'×'.join(map(str, stage.in_shape))} "
            f"input needs h ≥ (d/d′)² C = {bound} (Claim 3): more unknowns than equations, so the "
            "input is not determined. Pass strict=False for the minimum-norm guess.")
    (k_h, k_w), (s_h, s_w), (d_h, d_w) = stage.conv.kernel_size, stage.conv.stride, stage.conv.dilation
    p_h, p_w = conv._int_padding(stage.conv)
    if (conditions.covered_width(stage.in_shape[1], k_h, s_h, p_h, d_h) < stage.in_shape[1]
            or conditions.covered_width(stage.in_shape[2], k_w, s_w, p_w, d_w) < stage.in_shape[2]):
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
    grad_weight, grad_bias = _layer_grads(grads, name, ("weight", "bias"))
    if grad_weight.device != linear.weight.device:
        raise ValueError(f"gradients on {grad_weight.device} but the model on {linear.weight.device}")
    if grad_weight.shape[-2:] != linear.weight.shape:
        raise ValueError(f"the message's {name}.weight is {tuple(grad_weight.shape)} but the model's "
                         f"is {tuple(linear.weight.shape)}: was the message computed on this model?")
    clients = grad_weight.shape[:-2]  # () for one message, (N,) for N stacked messages
    features = invert_linear(grad_weight, grad_bias).reshape(-1, *stages[-1].out_shape)
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
            (grad_conv,) = _layer_grads(grads, stage.name, ("weight",))
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
