"""Distortions at a chosen PSNR: what the metrics of chapter 06 mean.

Is a reconstruction at 20 dB recognisable? It depends on *how* it is wrong. :func:`at_psnr`
distorts one image just enough to reach a chosen PSNR in three ways (lower contrast, Gaussian
noise, blur): at one PSNR they look very different, and SSIM tells them apart. Chapter 06
shows them side by side; its exercises grade metrics on images distorted by :func:`distort`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from scipy import ndimage
from torch import Tensor

from . import _validate as check
from . import metrics, plot

DISTORTIONS = ("contrast", "noise", "blur")


def _bisect(error_db: Callable[[float], float], target_db: float, high: float, steps: int = 50) -> float:
    """The strength in [0, high] whose PSNR is ``target_db`` (PSNR falls as strength grows)."""
    low = 0.0
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if error_db(middle) > target_db else (low, middle)
    return (low + high) / 2


def distort(x: Tensor, how: str, strength: float, seed: int = 0) -> Tensor:
    """One C×H×W image in [0, 1] distorted, staying in [0, 1].

    * ``contrast``: contrast lowered by the fraction ``strength`` ∈ [0, 1] around mid-grey
      (1 gives a uniform grey image);
    * ``noise``: Gaussian noise of standard deviation ``strength``, clipped to [0, 1] (seeded);
    * ``blur``: Gaussian blur of ``strength`` pixels (``scipy.ndimage.gaussian_filter``).
    """
    x = check.tensor("x", x)
    if x.ndim != 3:
        raise ValueError(f"x must be one C×H×W image, got shape {tuple(x.shape)}")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError(f"x must lie in [0, 1] (got [{float(x.min()):.4g}, {float(x.max()):.4g}]); the "
                         "distortions clip to that range")
    how = check.choice("how", how, DISTORTIONS)
    strength, seed = check.nonnegative("strength", strength), check.seed(seed)
    if how == "contrast":
        return 0.5 + (1 - min(strength, 1.0)) * (x - 0.5)
    if how == "noise":
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
        return (x + strength * noise).clamp(0, 1)
    blurred = ndimage.gaussian_filter(x.double().numpy(), sigma=(0, strength, strength), mode="reflect")
    return torch.from_numpy(blurred).to(x.dtype)


def at_psnr(x: Tensor, how: str, target_db: float, seed: int = 0) -> Tensor:
    """``x`` distorted by ``how`` just enough that its PSNR is ``target_db`` (found by bisection).

    Chapter 06 uses it to answer "is PSNR < 20 dB unrecognisable?": at one PSNR a contrast
    change, noise and blur look very different, and SSIM tells them apart. Contrast and blur
    cannot push every image to every PSNR; they then return the strongest setting (uniform
    grey, a 20-pixel blur): check the PSNR of the result.
    """
    target_db = check.real("target_db", target_db, low=0.0, high=100.0, open_low=True)
    high = {"contrast": 1.0, "noise": 4.0, "blur": 20.0}.get(how, 1.0)
    strength = _bisect(lambda s: float(metrics.psnr(distort(x, how, s, seed), x)), target_db, high)
    return distort(x, how, strength, seed)


def plot_psnr_levels(x: Tensor, levels: Sequence[float] = (10, 15, 20, 25, 30)) -> Figure:
    """One image at several PSNRs, by each distortion; titles give the measured PSNR and SSIM."""
    figure, axes = plt.subplots(len(DISTORTIONS), len(levels) + 1,
                                figsize=(1.8 * (len(levels) + 1), 1.9 * len(DISTORTIONS)), squeeze=False)
    for row, how in enumerate(DISTORTIONS):
        plot.show(axes[row, 0], x, f"original\n({how} row)", colorbar=False)
        for col, level in enumerate(levels, start=1):
            y = at_psnr(x, how, level)
            plot.show(axes[row, col], y, f"{how}\n{float(metrics.psnr(y, x)):.1f} dB, "
                      f"SSIM {float(metrics.ssim(y, x)):.2f}", colorbar=False)
    figure.suptitle("The same PSNR can look very different: contrast, noise, blur")
    figure.tight_layout()
    return figure
