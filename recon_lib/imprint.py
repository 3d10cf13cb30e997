"""The malicious server (chapter 09): imprint modules and trap weights, Claim 1 at batch scale.

An honest-but-curious server (chapters 00–08) only reads the gradients of the model it trains. A
*malicious* server chooses the model it sends. Two published ways to turn Claim 1 of Qian, Nassar
& Hansen (2021) — x = ∂ℓ/∂w ÷ ∂ℓ/∂b for one unit and one image — into a whole-batch attack:

* **Imprint module** (Fowl et al., *Robbing the Fed*, ICLR 2022): a linear layer of ``bins`` ReLU
  units in front of the model, every unit measuring the *same* scalar statistic s = wᵀx (mean
  brightness by default) against its own threshold T_k, placed at the statistic's quantiles.
  Unit k fires for the images with s > T_k, and every unit passes the same δⱼ = ∂ℓⱼ/∂a back
  (the course's construction: the units' outputs are summed along one fixed direction added to
  the input), so consecutive rows differ by exactly the images of one bin (T_k, T_{k+1}]:

      ∂W_k − ∂W_{k+1} = (1/B) Σ_{j in bin k} δⱼ xⱼ,   ∂b_k − ∂b_{k+1} = (1/B) Σ_{j in bin k} δⱼ.

  An image alone in its bin comes back as their ratio (Claim 1 on differences of rows), through
  any network behind the imprint and through secure aggregation (a sum of messages is the
  message of all the clients' images). :func:`attach`, :func:`recover`, :func:`reconstruct`.
* **Trap weights** (Boenisch et al., *When the Curious Abandon Honesty*, 2023): an ordinary ReLU
  first layer whose weights the server draws so that each unit fires for very few inputs; a unit
  that fires for one image of the batch gives that image by Claim 1 directly. :func:`trap`,
  :func:`recover_trapped`.

Never a silent wrong answer: a bin holding several images gives a mixture, so every candidate is
verified — its own statistic must fall in its bin, and the server recomputes the bin's bias
gradient from the candidate through the network it owns (one forward-mode pass) — and bins that
fail are reported as collisions. The construction details (the return direction, the verification,
the trap calibration) are the course's, built from the papers' descriptions.
"""
from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn
from torch.func import jacrev, jvp, vmap
from torch.nn import functional as F

from . import _validate as check
from . import datasets

STATISTICS = ("brightness", "random")
GAIN = 1e-3  # norm of the imprint's whole return path: the classifier sees x + ≤ GAIN·range(s)
VERIFY_RTOL = 1e-5  # a lone image reproduces its bin's bias gradient to this (relative to the largest bin)


# --- The planted layer ------------------------------------------------------------------------
class Imprint(nn.Module):
    """``bins`` ReLU units a_k = relu(wᵀx − T_k), fed back as x + (Σ_k a_k)·v (v tiny, fixed).

    Attributes:
        linear: the planted ``nn.Linear(d, bins)``: every row w, bias −T_k (what the client
            trains and sends gradients for; Opacus handles it like any Linear).
        thresholds: (bins,) increasing T_k; bin k is (T_k, T_{k+1}], the last one (T_{n−1}, ∞).
        back: (d,) the return direction v; every unit's δ is vᵀ∂ℓ/∂(output), the same for all k.
        in_shape: the shape of one input.
    """

    thresholds: Tensor
    back: Tensor

    def __init__(self, direction: Tensor, thresholds: Tensor, back: Tensor, in_shape: Sequence[int]):
        super().__init__()
        bins, d = thresholds.numel(), direction.numel()
        self.linear = nn.Linear(d, bins, dtype=direction.dtype, device=direction.device)
        with torch.no_grad():
            self.linear.weight.copy_(direction.expand(bins, d))
            self.linear.bias.copy_(-thresholds)
        self.register_buffer("thresholds", thresholds.clone())
        self.register_buffer("back", back.clone())
        self.in_shape = tuple(in_shape)

    def forward(self, x: Tensor) -> Tensor:
        fired = F.relu(self.linear(x.flatten(1))).sum(1, keepdim=True)
        return x + (fired * self.back).view_as(x)

    def statistic(self, x: Tensor) -> Tensor:
        """s = wᵀx per image (N,), with the direction the server planted (a measurement: no graph)."""
        with torch.no_grad():
            return x.flatten(1).to(self.linear.weight) @ self.linear.weight[0]

    def bin_of(self, x: Tensor) -> Tensor:
        """The bin index of each image (N,), −1 below the first threshold (never fires)."""
        return torch.searchsorted(self.thresholds, self.statistic(x).contiguous(), right=False) - 1


def thresholds(mean: float, std: float, bins: int, lower: float) -> Tensor:
    """Thresholds at the quantiles of N(mean, std²): T_0 = lower, T_k = mean + std·Φ⁻¹(k/bins).

    With the statistic distributed as assumed, each of the ``bins`` bins holds an image with
    probability 1/bins; T_0 sits below every possible value, so every image fires unit 0 and none
    is lost below the first bin.
    """
    bins = check.integer("bins", bins, low=1)
    std = check.positive("std", std)
    mean, lower = check.real("mean", mean), check.real("lower", lower)
    levels = torch.arange(1, bins, dtype=torch.float64) / bins
    inner = mean + std * math.sqrt(2) * torch.erfinv(2 * levels - 1)
    return torch.cat([torch.tensor([lower], dtype=torch.float64), inner.clamp(min=lower)])


def _direction(statistic: str | Tensor, d: int, generator: torch.Generator) -> Tensor:
    if isinstance(statistic, Tensor):
        if statistic.numel() != d or not torch.isfinite(statistic).all() or not statistic.any():
            raise ValueError(f"a statistic given as weights needs {d} finite values, not all zero; "
                             f"got shape {tuple(statistic.shape)}")
        return statistic.detach().flatten().double().cpu()
    check.choice("statistic", statistic, STATISTICS)
    if statistic == "brightness":
        return torch.full((d,), 1.0 / d, dtype=torch.float64)
    return torch.randn(d, generator=generator, dtype=torch.float64) / math.sqrt(d)


def public_images(in_shape: Sequence[int]) -> Tensor:
    """The default public data: 80 tiles of the ImageNet sample pack at ``in_shape`` (grey if C = 1).

    Each of the pack's 20 photos is resized to twice the target side and cut into its 4 quarters:
    small views of photos, like the clients' images, and more of them than the pack's photos.
    """
    channels, height, width = in_shape
    x = datasets.load("imagenet", size=(2 * height, 2 * width))[0]
    x = x.unfold(2, height, height).unfold(3, width, width).permute(0, 2, 3, 1, 4, 5)
    x = x.reshape(-1, 3, height, width)
    if channels == 1:
        return x.mean(1, keepdim=True)
    if channels != 3:
        raise ValueError(f"no default public data for {channels} channels; pass public= images")
    return x


def attach(model: nn.Module, in_shape: Sequence[int], bins: int, statistic: str | Tensor = "brightness",
           seed: int = 0, *, public: Tensor | None = None, gain: float = GAIN) -> nn.Sequential:
    """A copy of ``model`` with an imprint module planted in front of it (Fowl et al. 2022).

    Args:
        model: any classifier taking inputs of ``in_shape`` (left unchanged; a copy is wrapped).
        in_shape: C×H×W (or any shape) of one input, pixels in [0, 1].
        bins: number of planted units = number of bins.
        statistic: ``"brightness"`` (mean pixel), ``"random"`` (a random direction drawn from
            ``seed``), or a tensor of d weights (any linear statistic).
        seed: seeds the random direction and the return direction v.
        public: images the server holds (N × in_shape) to fit the statistic's distribution, a
            normal N(μ, σ²); default: the ImageNet sample pack, resized (:func:`public_images`).
        gain: norm of the return path; the classifier's input moves by at most ``gain``·range(s).

    Returns:
        ``nn.Sequential(imprint, model)`` with ``in_shape`` set; the imprint is its module ``0``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    shape = tuple(check.integer("in_shape entry", s, low=1) for s in in_shape)
    bins = check.integer("bins", bins, low=1)
    seed, gain = check.integer("seed", seed), check.positive("gain", gain)
    d = math.prod(shape)
    generator = torch.Generator().manual_seed(seed)
    direction = _direction(statistic, d, generator)
    if public is None:
        public = public_images(shape) if len(shape) == 3 else None
    if public is None or public[0].numel() != d or len(public) < 2:
        raise ValueError(f"public must hold at least 2 images of shape {shape} to fit the statistic")
    values = public.flatten(1).double().cpu() @ direction
    lower = float(direction.clamp(max=0).sum()) - 1e-3 * float(direction.abs().sum())
    placed = thresholds(float(values.mean()), max(float(values.std()), 1e-6), bins, lower)
    back = torch.randn(d, generator=generator, dtype=torch.float64)
    back *= gain / (bins * float(back.norm()) * max(float(direction.abs().sum()), 1e-12))
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    device = parameter.device if parameter is not None else torch.device("cpu")
    imprint = Imprint(direction.to(device, dtype), placed.to(device, dtype), back.to(device, dtype), shape)
    planted = nn.Sequential(imprint, copy.deepcopy(model))
    planted.in_shape = shape  # type: ignore[assignment]  # torch types module attributes as Tensor | Module
    return planted


# --- The attack: differences of consecutive rows ----------------------------------------------
@dataclass
class Recovery:
    """What :func:`recover` finds in one message.

    Attributes:
        images: k × in_shape, the verified lone images (float64), in bin order.
        bins: (k,) the bin of each image.
        labels: (k,) each image's label, read off the verification (the one that reproduces it).
        collisions: bins that hold something that is *not* one image (a mixture: several images
            fell in that bin), or that could not be verified; their candidates are not returned.
        empty: number of bins with no image (or only images whose δ is zero).
        candidates: bins × in_shape, every bin's raw ratio (zeros where empty), for figures.
        scale: the number of images the message averages (B; N·B for a mean secure aggregate),
            given or inferred from the lone bins; 0 if it could not be inferred.
    """

    images: Tensor
    bins: Tensor
    labels: Tensor
    collisions: Tensor
    empty: int
    candidates: Tensor
    scale: int


def _find(model: nn.Module) -> Imprint:
    if not isinstance(model, nn.Sequential) or len(model) < 2 or not isinstance(model[0], Imprint):
        raise TypeError("model must come from rl.imprint.attach (an nn.Sequential whose module 0 "
                        "is the planted Imprint)")
    return model[0]


def _differences(grads: Mapping[str, Tensor], model: nn.Module) -> tuple[Tensor, Tensor]:
    """Per-bin (∂W_k − ∂W_{k+1}, ∂b_k − ∂b_{k+1}) in float64; the last bin is the last row."""
    check.message(grads, "grads")
    imprint = _find(model)
    missing = [k for k in ("0.linear.weight", "0.linear.bias") if k not in grads]
    if missing:
        raise KeyError(f"grads has no {missing}: pass the whole message of the attached model")
    gw, gb = grads["0.linear.weight"].double().cpu(), grads["0.linear.bias"].double().cpu()
    if gw.shape != imprint.linear.weight.shape or gb.shape != imprint.linear.bias.shape:
        raise ValueError(f"the imprint gradients have shapes {tuple(gw.shape)}, {tuple(gb.shape)}; "
                         f"this model's imprint needs {tuple(imprint.linear.weight.shape)}")
    zero_w, zero_b = torch.zeros_like(gw[:1]), torch.zeros_like(gb[:1])
    return gw - torch.cat([gw[1:], zero_w]), gb - torch.cat([gb[1:], zero_b])


def _predicted_bias(model: nn.Module, images: Tensor) -> Tensor:
    """c(x, y) = ∂ℓ(x, y)/∂a_k for every candidate x and every label y (k × classes).

    The units all feed the network through v, so ∂ℓ/∂a_k = vᵀ∇ℓ at the imprint's output; with
    cross-entropy that is uᵀp − u_y, u = J·v the network's directional derivative along v, which
    one forward-mode pass gives for all candidates at once.
    """
    imprint, rest = _find(model), cast(nn.Sequential, model)[1:]  # _find checked it is one
    parameter = imprint.linear.weight
    with torch.no_grad():
        out = imprint(images.to(parameter))
        direction = imprint.back.view(1, *imprint.in_shape).expand_as(out)
        logits, tangent = jvp(rest, (out,), (direction,))  # type: ignore[misc]  # stub: 2 or 3 (has_aux)
    if logits.ndim != 2:
        raise ValueError(f"the network behind the imprint must return N × classes logits, got "
                         f"{tuple(logits.shape)}")
    u, p = tangent.double().cpu(), logits.double().softmax(-1).cpu()
    return (u * p).sum(-1, keepdim=True) - u


def recover(model: nn.Module, grads: Mapping[str, Tensor], *, batch_size: int | None = None) -> Recovery:
    """Every image alone in its bin, in closed form and verified; the other bins flagged.

    Args:
        model: the planted model from :func:`attach`, as the server sent it.
        grads: the client's message (``rl.fl.client_update``) or a secure aggregate of many
            (``rl.defences.secure_aggregate``: the mean, or their sum).
        batch_size: the number of images the message averages over, if the server knows it (B for
            FedSGD, N·B for a mean of N clients, B for a sum); else inferred from the lone bins.

    Returns:
        a :class:`Recovery`. Assumes the client's loss is cross-entropy (as in ``rl.fl``).

    Raises:
        TypeError/KeyError/ValueError: a model not from :func:`attach`, a message of another
            model, NaN/inf, a bad ``batch_size``.
    """
    dw, db = _differences(grads, model)
    imprint = _find(model)
    if batch_size is not None:
        batch_size = check.integer("batch_size", batch_size, low=1)
    floor = 64 * torch.finfo(grads["0.linear.bias"].dtype).eps * float(db.abs().max())
    occupied = db.abs() > max(floor, torch.finfo(torch.float64).tiny)
    safe = torch.where(occupied, db, torch.ones_like(db))
    candidates = (dw / safe.unsqueeze(1) * occupied.unsqueeze(1)).reshape(-1, *imprint.in_shape)
    index = occupied.nonzero().flatten()
    in_bin = imprint.bin_of(candidates[index]) == index  # a mixture with weights of both signs leaves
    predicted = (_predicted_bias(model, candidates[index]) if len(index)
                 else torch.zeros(0, 1, device=db.device))
    ratio = predicted / db[index].unsqueeze(1)  # = the scale for the right label of a lone image
    scale = batch_size if batch_size is not None else _infer_scale(ratio[in_bin])
    # |c(x̂, y) − S·Δb_k| against the largest bin's S·|Δb|: a lone image with a tiny δ still counts
    error = (predicted - scale * db[index].unsqueeze(1)).abs() / (max(scale, 1) * float(db.abs().max()))
    best, labels = torch.zeros(0, device=db.device), torch.zeros(0, dtype=torch.long, device=db.device)
    if len(index):
        best, labels = error.min(1).values, error.min(1).indices
    good = in_bin & (best < VERIFY_RTOL) & (scale > 0)
    return Recovery(images=candidates[index[good]], bins=index[good], labels=labels[good],
                    collisions=index[~good], empty=int((~occupied).sum()), candidates=candidates,
                    scale=int(scale))


def _infer_scale(ratio: Tensor) -> int:
    """The image count most lone bins agree on (ratios within 10·VERIFY_RTOL of an integer; ≥ 3 votes)."""
    near = ratio[(ratio >= 0.5) & ((ratio - ratio.round()).abs() < 10 * VERIFY_RTOL * ratio)].round()
    if near.numel() == 0:
        return 0
    values, counts = near.unique(return_counts=True)
    return int(values[counts.argmax()]) if int(counts.max()) >= 3 else 0  # a hit or two may be chance


def reconstruct(model: nn.Module, grads: Mapping[str, Tensor], *, batch_size: int | None = None,
                return_bins: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """The images alone in their bins (k × C × H × W, float64), recovered from one message.

    Warns when bins held collisions (or could not be verified): their mixtures are never
    returned as images. ``return_bins=True`` returns ``(images, collision_bins)`` instead; the
    full account (bins, labels, empty bins, raw candidates) is :func:`recover`.
    """
    found = recover(model, grads, batch_size=batch_size)
    if len(found.collisions) and not return_bins:
        warnings.warn(f"{len(found.collisions)} bin(s) held collisions or failed verification "
                      f"(bins {found.collisions.tolist()[:10]}{'…' if len(found.collisions) > 10 else ''}); "
                      "their images are not returned", stacklevel=2)
    return (found.images, found.collisions) if return_bins else found.images


def expected_fraction(batch_size: int, bins: int) -> float:
    """The binomial expectation of the fraction of a batch alone in its bin: (1 − 1/bins)^(B−1)."""
    batch_size = check.integer("batch_size", batch_size, low=1)
    bins = check.integer("bins", bins, low=1)
    return (1 - 1 / bins) ** (batch_size - 1)


def first_layer_signals(linear: nn.Linear, images: Tensor) -> tuple[int, float]:
    """What a client can check on the first Linear layer it received (chapter 09's detection).

    Returns the rank of the weight matrix (an imprint's rows are one direction: rank 1) and the
    fraction of (unit, image) pairs of the client's batch whose pre-activation is positive
    (trap weights make it small; a random init fires for about half).
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    with torch.no_grad():
        rank = int(torch.linalg.matrix_rank(linear.weight.detach().double()))
        rate = (linear(images.flatten(1).to(linear.weight.dtype)) > 0).float().mean().item()
    return rank, rate


def sample_batch(name: str, size: int, seed: int = 0, side: int | None = None) -> tuple[Tensor, Tensor]:
    """``size`` distinct real images of kind ``name`` for the chapter's batches, with labels.

    The offline pack holds few images (20 CIFAR-100 and 20 ImageNet photos), fewer than a batch
    of 64. The batch is the pack's images in a random order, then — only as many as needed — random
    crops of them (a random square of 30–85 % of the area at a random place, resized back, flipped
    half the time), each a new image with its own brightness. Crops of one photo have correlated
    statistics, so collisions are, if anything, more frequent than with independent photos; with
    ``source="full"`` data at home the same measurement runs on distinct photos.
    """
    size = check.integer("size", size, low=1)
    x, y = datasets.load(name, size=side)
    generator = torch.Generator().manual_seed(check.integer("seed", seed))
    order = torch.randperm(len(x), generator=generator)
    x, y = x[order], y[order]
    crops, labels = [x[:size]], [y[:size]]
    height, width = x.shape[-2:]
    for _ in range(max(0, size - len(x))):
        j = int(torch.randint(len(x), (1,), generator=generator))
        area = float(torch.empty(1).uniform_(0.3, 0.85, generator=generator))
        h, w = max(2, round(height * area ** 0.5)), max(2, round(width * area ** 0.5))
        top = int(torch.randint(height - h + 1, (1,), generator=generator))
        left = int(torch.randint(width - w + 1, (1,), generator=generator))
        crop = x[j:j + 1, :, top:top + h, left:left + w]
        crop = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)
        if float(torch.rand(1, generator=generator)) < 0.5:
            crop = crop.flip(-1)
        crops.append(crop.clamp(0, 1))
        labels.append(y[j:j + 1])
    return torch.cat(crops), torch.cat(labels)


# --- Trap weights: an ordinary ReLU layer, initialised by the server ---------------------------
def trap(model: nn.Module, seed: int = 0, *, public: Tensor | None = None, rate: float = 0.02) -> nn.Module:
    """A copy of ``model`` whose first Linear layer holds trap weights (Boenisch et al. 2023).

    Each unit's row is |N(0, 1)| noise with random signs, its negative half scaled by α so that the
    unit fires (wᵀx > 0, bias 0) for only a fraction ``rate`` of the ``public`` images: α is the
    (1 − rate)-quantile of P·x / N·x over them (P, N the positive and negative halves). The layer
    looks like an ordinary random initialisation; a unit that fires for one image of the batch
    hands the server that image by Claim 1.

    Args:
        model: a network whose first layer is a biased ``nn.Linear`` followed by ``nn.ReLU``.
        seed: seeds the rows. public: images to calibrate α (default: :func:`public_images`).
        rate: the fraction of inputs each unit should fire for (about 1/B suits a batch of B).
    """
    from . import analytic  # the first-layer walk of chapter 01

    rate = check.real("rate", rate, low=0.0, high=1.0, open_low=True)
    trapped = copy.deepcopy(model)
    name, layer = analytic.first_layer(trapped)
    modules = list(trapped.modules())
    after = modules[modules.index(layer) + 1] if layer in modules[:-1] else None
    if not isinstance(layer, nn.Linear) or layer.bias is None or not isinstance(after, nn.ReLU):
        raise TypeError(f"trap weights need a biased nn.Linear first layer followed by nn.ReLU; {name} "
                        f"is {type(layer).__name__} followed by {type(after).__name__}")
    shape = tuple(getattr(model, "in_shape", (layer.in_features,)))
    public = public_images(shape) if public is None else public
    flat = public.flatten(1).double().cpu()
    if flat.shape[1] != layer.in_features or len(flat) < 2:
        raise ValueError(f"public must hold at least 2 images of {layer.in_features} values")
    generator = torch.Generator().manual_seed(check.integer("seed", seed))
    size = (layer.out_features, layer.in_features)
    magnitude = torch.randn(size, generator=generator, dtype=torch.float64).abs()
    negative = torch.rand(size, generator=generator, dtype=torch.float64) < 0.5
    positive_part, negative_part = magnitude * ~negative, magnitude * negative
    ratios = (flat @ positive_part.T) / (flat @ negative_part.T).clamp(min=1e-12)
    alpha = torch.quantile(ratios, 1 - rate, dim=0)
    with torch.no_grad():
        layer.weight.copy_(positive_part - alpha.unsqueeze(1) * negative_part)
        layer.bias.zero_()
    return trapped


def recover_trapped(model: nn.Module, grads: Mapping[str, Tensor], *, batch_size: int | None = None,
                    rtol: float = 1e-4) -> Tensor:
    """Images the trap caught, each verified; k × in_shape, float64.

    A unit that fired for one image gives that image exactly (Claim 1); a unit that fired for several
    gives a δ-weighted mixture. Candidates that at least two units agree on (to ``rtol``) are grouped;
    as same-label images can have nearly parallel δ's, agreement alone is not proof, so each group is
    then verified like the imprint's bins: the server recomputes every unit's δ from the candidate
    through the network it owns (one Jacobian, every label tried), and a lone image reproduces the
    units' bias gradients times the number of images (``batch_size``, else inferred) to 10⁻³.

    Args:
        model: the trapped model (an ``nn.Sequential`` as from :func:`trap`), as sent.
        grads: the client's message (or a secure aggregate, with ``batch_size`` = N·B for a mean).
        batch_size: the number of images the message averages over, if known.
        rtol: how close two units' ratios must be to count as the same candidate.
    """
    from . import analytic

    check.message(grads, "grads")
    name, layer = analytic.first_layer(model)
    if not isinstance(model, nn.Sequential) or layer not in list(model):
        raise TypeError("recover_trapped needs an nn.Sequential whose first Linear is a top-level module")
    shape = tuple(getattr(model, "in_shape", (layer.in_features,)))
    gw, gb = (grads[f"{name}.{part}"].double().cpu() for part in ("weight", "bias"))
    floor = 64 * torch.finfo(grads[f"{name}.bias"].dtype).eps * float(gb.abs().max())
    ratios, usable = analytic.unit_estimates(gw, gb, tol=floor)
    index = usable.nonzero().flatten()
    candidates = ratios[index]
    close = torch.cdist(candidates, candidates) <= rtol * candidates.norm(dim=1, keepdim=True)
    seen = torch.zeros(len(candidates), dtype=torch.bool)
    groups: list[tuple[Tensor, Tensor]] = []
    for i in range(len(candidates)):
        group = close[i] & ~seen
        if not seen[i] and int(group.sum()) >= 2:
            groups.append((candidates[group].mean(0), index[group]))
            seen |= group
    if not groups:
        return torch.zeros(0, *shape, dtype=torch.float64)
    deltas = _unit_deltas(model, list(model).index(layer), torch.stack([c for c, _ in groups]))
    ratio = [deltas[k][:, units] / gb[units] for k, (_, units) in enumerate(groups)]  # classes × |units|
    if batch_size is None:
        middle = [r.median(1).values for r in ratio]
        steady = [m[((r - m.unsqueeze(1)).abs().amax(1) < 1e-3 * m.abs())]
                  for r, m in zip(ratio, middle, strict=True)]
        scale = _infer_scale(torch.cat(steady))
    else:
        scale = check.integer("batch_size", batch_size, low=1)
    good = [scale > 0 and bool(((r - scale).abs().amax(1) < 1e-3 * scale).any()) for r in ratio]
    kept = [c for (c, _), ok in zip(groups, good, strict=True) if ok]
    return torch.stack(kept).reshape(-1, *shape) if kept else torch.zeros(0, *shape, dtype=torch.float64)


def _unit_deltas(model: nn.Sequential, position: int, images: Tensor) -> Tensor:
    """δ_i(x, y) = ∂ℓ(x, y)/∂z_i for every candidate, label and first-layer unit (k × classes × h)."""
    layer, rest = model[position], model[position + 1:]
    with torch.no_grad():
        z = layer(images.flatten(1).to(next(layer.parameters())))
        jacobian = vmap(jacrev(lambda zi: rest(zi.unsqueeze(0)).squeeze(0)))(z).double()
        p = rest(z).softmax(-1).double()
    return ((p.unsqueeze(1) @ jacobian) - jacobian).cpu()
