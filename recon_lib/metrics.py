"""How close is a reconstruction? MSE, PSNR and SSIM on images in [0, 1] (chapters 01–07).

All three are *batch-aware*: a 4-D input N×C×H×W gives one value per image (a tensor of N),
anything else is treated as one image and gives a float-valued 0-d tensor.

Inputs are torch tensors or NumPy arrays of real numbers, non-empty and finite (a diverged
attack's NaN is an error, not a score). The *original* ``x`` must lie in [0, 1]; pass
``data_range`` for other images (e.g. 255 for uint8), and then ``x`` must span at most that.
The reconstruction ``x_hat`` is scored as it is, even where it overshoots the range (clamp it
first to score the clamped image).

* MSE — mean squared pixel error; 0 is perfect.
* PSNR — 10·log10(1 / MSE) in dB for a data range of 1: ≈20 dB is a blurry likeness, ≥30 dB is
  hard to tell apart by eye, ≥40 dB is exact up to rounding; ∞ when identical.
* SSIM — structural similarity (Wang et al. 2004), from scikit-image; 1 is perfect.
* :func:`match` — pairs a batch of reconstructions with its originals (Hungarian method,
  scipy) before any of the above is computed: a batch attack returns images in no order.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from skimage.metrics import structural_similarity
from torch import Tensor

from . import _validate as check

Image = Tensor | np.ndarray


def _pair(x_hat: Image, x: Image) -> tuple[Tensor, Tensor]:
    x_hat, x = check.tensor("x_hat", x_hat, arrays=True), check.tensor("x", x, arrays=True)
    if x_hat.shape != x.shape:
        raise ValueError(f"reconstruction {tuple(x_hat.shape)} and original {tuple(x.shape)} "
                         "differ in shape; reshape the reconstruction to the image shape first")
    return x_hat.detach().to(torch.float64).cpu(), x.detach().to(torch.float64).cpu()


def _scale(x: Tensor, data_range: float | None) -> float:
    """The peak value: 1 for images in [0, 1], else ``data_range`` (checked against ``x``)."""
    if data_range is None:
        low, high = float(x.min()), float(x.max())
        if low < -1e-6 or high > 1 + 1e-6:                # float rounding aside
            raise ValueError(f"the original x must lie in [0, 1] (got values in [{low:.4g}, "
                             f"{high:.4g}]); pass data_range= for other images, e.g. 255 for uint8")
        return 1.0
    peak = check.positive("data_range", data_range)
    spread = float(x.max() - x.min())
    if spread > peak * (1 + 1e-6):
        raise ValueError(f"data_range={peak:g} is smaller than the spread of the original x "
                         f"({spread:.4g}); pass the range its pixels can take")
    return peak


def mse(x_hat: Image, x: Image) -> Tensor:
    """Mean squared error, per image for N×C×H×W input (no range: any real images)."""
    return _mse(*_pair(x_hat, x))


def _mse(x_hat: Tensor, x: Tensor) -> Tensor:
    error = (x_hat - x).square()
    return error.flatten(1).mean(1) if x.ndim == 4 else error.mean()


def psnr(x_hat: Image, x: Image, data_range: float | None = None) -> Tensor:
    """Peak signal-to-noise ratio in dB (∞ for a perfect copy), per image for 4-D input.

    ``data_range``: the peak value; ``None`` (default) means 1 and requires ``x`` in [0, 1].
    """
    x_hat, x = _pair(x_hat, x)
    return 10 * torch.log10(_scale(x, data_range) ** 2 / _mse(x_hat, x))


def _ssim_one(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """SSIM of one C×H×W (or H×W) image pair with a window that fits small images."""
    if a.ndim == 3:
        a, b = np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1)
    side = min(a.shape[0], a.shape[1])
    window = min(7, side if side % 2 else side - 1)
    if window < 3:
        raise ValueError(f"SSIM needs images of at least 3×3 pixels, got {a.shape[:2]}")
    channel_axis = -1 if a.ndim == 3 else None
    return float(structural_similarity(a, b, data_range=data_range, win_size=window,
                                       channel_axis=channel_axis))


def ssim(x_hat: Image, x: Image, data_range: float | None = None) -> Tensor:
    """Structural similarity from scikit-image, per image for N×C×H×W input.

    ``data_range``: as for :func:`psnr` (``None``: 1, with ``x`` in [0, 1]).
    """
    x_hat, x = _pair(x_hat, x)
    data_range = _scale(x, data_range)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"SSIM needs H×W, C×H×W or N×C×H×W images, got shape {tuple(x.shape)}")
    if x.ndim == 4:
        pairs = zip(x_hat.numpy(), x.numpy(), strict=True)
        return torch.tensor([_ssim_one(a, b, data_range) for a, b in pairs], dtype=torch.float64)
    return torch.tensor(_ssim_one(x_hat.numpy(), x.numpy(), data_range), dtype=torch.float64)


def match(x_hat: Image, x: Image) -> tuple[Tensor, Tensor]:
    """Pair a batch of reconstructions with the originals before scoring (chapter 02).

    Gradients are averaged over the batch, so a batch attack returns its images in no
    particular order. The best pairing minimises the total MSE: a linear assignment problem,
    solved exactly by the Hungarian method (``scipy.optimize.linear_sum_assignment``).

    Args:
        x_hat: (N, ...) reconstructions in any order.
        x: (N, ...) originals, same shape.

    Returns:
        ``(x_hat[perm], perm)``: the reconstructions reordered so that row i pairs with
        ``x[i]``, and the permutation (int64, on ``x_hat``'s device).
    """
    a, b = _pair(x_hat, x)
    if a.ndim < 2:
        raise ValueError(f"match needs a batch (N, ...) with N ≥ 1, got shape {tuple(a.shape)}")
    x_hat = check.tensor("x_hat", x_hat, arrays=True)
    cost = torch.cdist(b.flatten(1), a.flatten(1)).square() / a[0].numel()
    _, columns = linear_sum_assignment(cost.numpy())
    perm = torch.as_tensor(columns, dtype=torch.int64, device=x_hat.device)
    return x_hat[perm], perm
