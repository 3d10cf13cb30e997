"""The gradient-matching objective's pieces (chapters 02 and 04): distances between a dummy
gradient and the message, and the priors on the dummy images.

Each works on one candidate or on many stacked in leading dimensions (one value per restart), so
:mod:`recon_lib.optimize` evaluates all restarts in one tensor program. Distances: DLG's squared
Euclidean (Zhu et al. 2019), the cosine of Geiping et al. (2020) and the course's normalised one
(every parameter tensor in its own units, chapter 04). Priors: total variation (Geiping et al.),
the orthogonality regulariser (one published reading of Qian, Nassar & Hansen's) and a box
penalty on the pixel range.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import cast

import torch
from torch import Tensor

from .presets import Options

Message = Mapping[str, Tensor]


def _total(values: Tensor, trailing: int) -> Tensor:
    """Sum over the last ``trailing`` dimensions, keeping the leading (restart) ones."""
    return values.flatten(values.ndim - trailing).sum(-1) if trailing else values


def _sum(terms: Iterable[Tensor]) -> Tensor:
    """Python's ``sum`` of tensors, typed (a message is never empty: check.message)."""
    return cast(Tensor, sum(terms))


def flat(g: Message, target: Message) -> Tensor:
    """The entries of ``g`` for every parameter of ``target``, in one (…, N) vector per leading
    index: one subtraction and one sum then replace one per parameter (fewer, larger ops)."""
    return torch.cat([g[k].flatten(g[k].ndim - t.ndim) for k, t in target.items()], -1)


def euclidean_distance(g: Message, target: Message) -> Tensor:
    """Σ over parameters of ‖g − g*‖²: DLG's gradient distance (leading dims of g kept)."""
    return (flat(g, target) - flat(target, target)).square().sum(-1)


def cosine_distance(g: Message, target: Message) -> Tensor:
    """1 − ⟨g, g*⟩ / (‖g‖ ‖g*‖) over all parameters at once (Geiping et al. 2020).

    Blind to the gradient's scale, so it does not care how confident the model is.
    """
    dot = _sum(_total(g[k] * t, t.ndim) for k, t in target.items())
    norm_g = _sum(_total(g[k].square(), t.ndim) for k, t in target.items()).sqrt()
    norm_t = _sum(t.square().sum() for t in target.values()).sqrt()
    return 1 - dot / (norm_g * norm_t).clamp_min(torch.finfo(dot.dtype).tiny)


def layer_weights(target: Message) -> dict[str, float]:
    """√n_k / ‖g*_k‖² for every parameter k of the message (n_k entries): the weights of
    :func:`normalised_distance`.

    A parameter whose gradient is exactly zero (a dead layer) gets the weight its size would
    have at the message's mean squared norm per entry, so that it still has to be matched
    without its weight being infinite.
    """
    norms = {k: float(t.double().square().sum()) for k, t in target.items()}
    mean = sum(norms.values()) / sum(t.numel() for t in target.values())
    return {k: t.numel() ** 0.5 / (norms[k] if norms[k] > 0 else mean * t.numel())
            for k, t in target.items()}


def normalised_distance(g: Message, target: Message, weights: Mapping[str, float] | None = None) -> Tensor:
    """Σ_k √n_k ‖g_k − g*_k‖² / ‖g*_k‖²: DLG's distance with every parameter in its own units.

    Under PyTorch's default initialisation the first layer's gradient of LeNet-DLG is ~10⁻³ of
    the last layer's, so in the plain Euclidean sum the layer that sees the image is drowned:
    L-BFGS stalls with the matching loss at 10⁻⁹ of ‖g*‖² and the image still wrong
    (chapter 04). Dividing by ‖g*_k‖² puts every layer on one footing; the factor √n_k, half
    way between "every tensor counts once" and "every entry counts once", converged fastest on
    CIFAR-100, the course's tuning set (``benchmarks/optimisation.py`` measures it elsewhere).
    """
    weights = layer_weights(target) if weights is None else weights
    return _sum(weights[k] * _total((g[k] - t).square(), t.ndim) for k, t in target.items())


def normalised_for(target: Message) -> Callable[[Message, Message], Tensor]:
    """:func:`normalised_distance` for one message, its weights spread over the entries once:
    one weighted sum of squares over the flat residual per evaluation."""
    weights = layer_weights(target)
    entries = torch.cat([torch.full((t.numel(),), weights[k], dtype=t.dtype, device=t.device)
                         for k, t in target.items()])
    reference = flat(target, target)

    def distance(g: Message, t: Message) -> Tensor:
        residual = flat(g, t) - reference
        return torch.linalg.vecdot(residual * entries, residual)  # one fused weighted sum of squares

    return distance


DISTANCES: dict[str, Callable[[Message, Message], Tensor]] = {
    "euclidean": euclidean_distance, "cosine": cosine_distance, "normalised": normalised_distance}


def total_variation(x: Tensor) -> Tensor:
    """Anisotropic TV of a batch (… × B × C × H × W): mean |vertical| + mean |horizontal| differences."""
    vertical = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(-4).mean(-1)
    horizontal = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(-4).mean(-1)
    return vertical + horizontal


def orthogonality(x: Tensor) -> Tensor:
    """Σ_{i≠j} mean_k (x_{i,k} x_{j,k})² over the B dummy images of a batch (… × B × C × H × W).

    Penalises pairs of images that are bright in the same pixels, pushing the dummies apart so
    that they do not all drift to the same average (one published reading of the paper's term).
    """
    squares = x.flatten(-3).square()
    pair = squares @ squares.transpose(-1, -2) / squares.shape[-1]  # mean_k x_ik² x_jk²
    return pair.sum((-1, -2)) - pair.diagonal(dim1=-2, dim2=-1).sum(-1)


def box_penalty(x: Tensor) -> Tensor:
    """Σ of squared distances of the pixels outside [0, 1] (… × B × C × H × W)."""
    return (x - x.clamp(0, 1)).square().flatten(-4).sum(-1)


def distance_for(opts: Options, target: Message) -> Callable[[Message, Message], Tensor]:
    """The distance of ``opts``, with the normalised distance's weights computed once."""
    return normalised_for(target) if opts.distance == "normalised" else DISTANCES[opts.distance]


def stop_threshold(opts: Options, target: Message) -> float:
    """Stop below ``max(tol, rtol · D(0, g*))``: ``rtol`` is relative to the distance of a zero
    gradient, the scale of the message in the chosen distance (Σ‖g*‖² for DLG's, Σ√n_k for the
    normalised one, 1 for the cosine)."""
    if not opts.rtol:
        return opts.tol
    zero = {k: torch.zeros_like(t).unsqueeze(0) for k, t in target.items()}
    return max(opts.tol, opts.rtol * float(distance_for(opts, target)(zero, target)))
