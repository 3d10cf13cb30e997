"""When can inputs be reconstructed? The paper's counting conditions, checked numerically.

* Batches (chapter 02, Claim 2): a batch of B inputs needs h ≥ B first-layer units.
* Convolutions (chapter 03, Claim 3): a conv layer needs h ≥ (d/d′)² C kernels. The integer
  geometry (``conv_output_width``, ``min_kernels``, ``covered_width``) lives in
  :mod:`recon_lib.geometry` and is re-exported here; this module measures what it misses.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import _validate as check
from . import conv, models
from .geometry import conv_output_width, covered_width, effective_output_width, min_kernels  # noqa: F401


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
        check.count(name, value)


def first_layer_deltas(model: nn.Module, x: Tensor, y: Tensor,
                       loss: Callable[[Tensor, Tensor], Tensor] | None = None) -> Tensor:
    """Δ = [δ₁ … δ_B] (h × B), δ_b = ∂ℓ_b/∂z_b at the first Linear: the *client's* side.

    Chapter 02 uses it to check the algebra ∇W = (1/B) Δ Xᵀ and ∇b = (1/B) Δ 1; it needs the
    private batch, so no attack may call it. ``loss`` averages over the batch like
    :func:`recon_lib.fl.client_update` (cross-entropy by default).
    """
    name, layer = models.first_layer(model)
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
def bound_gap(d: int, k: int, s: int = 1, p: int = 0, dilation: int = 1) -> str:
    """What the count h·d′² ≥ C·d² overlooks for this geometry (chapter 03's table flags).

    Returns ``'stride > kernel'`` (pixels skipped between windows), ``'border'`` (last pixels
    never read), ``'padding rows'`` (outputs that see only padding carry no equation), or
    ``''`` when every pixel is read and every output sees the image. Even then edge and corner
    pixels are read by fewer windows than interior ones, so the bound can still fall short
    (``bound_row`` measures it).
    """
    if covered_width(d, k, s, p, dilation) < d:
        return "stride > kernel" if s > dilation * (k - 1) + 1 else "border"
    if effective_output_width(d, k, s, p, dilation) < conv_output_width(d, k, s, p, dilation):
        return "padding rows"
    return ""


def conv_rank(C: int, d: int, h: int, k: int, s: int = 1, p: int = 0, seed: int = 0,
              dilation: int = 1) -> int:
    """The numerical rank of a C×d×d → h×d′×d′ conv layer with random Gaussian kernels.

    Builds the dense matrix (:func:`recon_lib.conv.as_matrix`, float64) and counts singular
    values above the default tolerance of ``torch.linalg.matrix_rank``. Random kernels give
    the *generic* rank: the rank almost every kernel achieves. Full column rank (= C·d²) is
    what exact inversion of the layer needs. Small layers only: sizes whose SVD would take
    about a minute or more (:data:`recon_lib.conv.SVD_MAX_COST`) are refused.
    """
    _check_counts(C=C, h=h)
    d_out = conv_output_width(d, k, s, p, dilation)
    conv.check_svd(h * d_out * d_out, C * d * d, f"conv_rank(C={C}, d={d}, h={h})")
    generator = torch.Generator().manual_seed(check.seed(seed))
    # skip_init: the default init would draw from the global generator, so the caller's random
    # state would depend on whether this was called (a grading check caching it drew other cases)
    layer = nn.utils.skip_init(nn.Conv2d, C, h, k, stride=s, padding=p, dilation=dilation, bias=False,
                               dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator, dtype=torch.float64))
    return int(torch.linalg.matrix_rank(conv.as_matrix(layer, (C, d, d))))


def bound_row(C: int, d: int, h: int, k: int, s: int = 1, p: int = 0, seed: int = 0) -> dict:
    """One row of chapter 03's bound-vs-truth table: the count against the measured rank.

    Keys: the setting, ``d_out`` (d′), ``bound`` (:func:`min_kernels`), ``meets_bound``,
    ``rank``, ``full_rank`` (rank = C·d²), ``gap`` (:func:`bound_gap`, or ``'edges'`` when
    the bound is met, the geometry looks clean and the rank still falls short: edge pixels
    read by too few windows) and ``bound_sufficient`` (False where the bound is met but the
    layer is still not invertible).
    """
    bound = min_kernels(d, C, k, s, p)
    rank = conv_rank(C, d, h, k, s, p, seed)
    full = rank == C * d * d
    gap = bound_gap(d, k, s, p)
    if not (full or h < bound or gap):
        gap = "edges"
    return {"C": C, "d": d, "k": k, "s": s, "p": p, "h": h, "d_out": conv_output_width(d, k, s, p),
            "bound": bound, "meets_bound": h >= bound, "rank": rank, "full_rank": full,
            "gap": gap, "bound_sufficient": full or h < bound}


def conv1d_symbolic(d: int, k: int, s: int = 1, p: int = 0, h: int = 1):
    """The (h·d′ × d) matrix of a one-channel 1-D conv with symbolic kernels, for sympy.

    Entry (o·d′ + j, i) is w_{o,a} when tap a of output j reads input i = j·s − p + a. Chapter
    03 takes its rank and determinant symbolically to see *why* the count holds or fails
    before measuring it in 2-D. Returns ``(matrix, weights)`` with the weight symbols in
    PyTorch's (o, a) order.
    """
    import sympy  # local: only the symbolic derivation needs it

    width = conv_output_width(d, k, s, p)
    _check_counts(h=h)
    weights = [[sympy.Symbol(f"w_{o}{a}") for a in range(k)] for o in range(h)]
    matrix = sympy.zeros(h * width, d)
    for o, j, a in itertools.product(range(h), range(width), range(k)):
        if 0 <= j * s - p + a < d:
            matrix[o * width + j, j * s - p + a] = weights[o][a]
    return matrix, [w for row in weights for w in row]
