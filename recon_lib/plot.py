"""Figures of the course: original beside reconstruction, image grids (all chapters).

Images are torch tensors C×H×W (or H×W) in [0, 1]; grayscale images get a colour bar so that
a learner can read pixel values, colour images are shown as they are.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from . import _validate as check
from . import metrics


def _as_array(image: Tensor) -> np.ndarray:
    array = image.detach().to(torch.float32).cpu().numpy()
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[-1] == 3):
        raise ValueError(f"cannot show an image of shape {tuple(image.shape)}; expected C×H×W")
    return array


def show(ax: Axes, image: Tensor, title: str = "", colorbar: bool = True) -> None:
    """Draw one image on ``ax``: gray with a colour bar for one channel, RGB (clipped) for three."""
    array = _as_array(image)
    if array.ndim == 2:
        shown = ax.imshow(array, cmap="gray", vmin=0, vmax=1)
        if colorbar:
            ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="pixel value")
    else:
        ax.imshow(np.clip(array, 0, 1))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def compare(original: Tensor, reconstruction: Tensor, title: str = "",
            labels: tuple[str, str] = ("original (private)", "reconstruction")) -> Figure:
    """Original, reconstruction and their absolute error, with MSE/PSNR/SSIM in the title."""
    if reconstruction.numel() != original.numel():
        raise ValueError(f"reconstruction {tuple(reconstruction.shape)} has {reconstruction.numel()} "
                         f"values but the original {tuple(original.shape)} has {original.numel()}")
    reconstruction = reconstruction.reshape(original.shape)
    scores = (f"MSE {metrics.mse(reconstruction, original).item():.2e} | "
              f"PSNR {metrics.psnr(reconstruction, original).item():.1f} dB | "
              f"SSIM {metrics.ssim(reconstruction, original).item():.3f}")
    figure, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    show(axes[0], original, labels[0])
    show(axes[1], reconstruction.clamp(0, 1), labels[1])
    error = (reconstruction - original).abs()
    error = error.mean(0) if original.ndim == 3 else error
    shown = axes[2].imshow(error.detach().cpu().numpy(), cmap="magma")
    figure.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.04, label="|error|")
    axes[2].set_title("absolute error", fontsize=9)
    axes[2].set_xticks([])
    axes[2].set_yticks([])
    figure.suptitle(f"{title}\n{scores}" if title else scores, fontsize=10)
    figure.tight_layout()
    return figure


def grid(images: Tensor | Sequence[Tensor], titles: Sequence[str] | None = None,
         ncols: int = 8, title: str = "", size: float = 1.6) -> Figure:
    """A grid of images (N×C×H×W or a list) with optional per-image titles."""
    images = list(images)
    if not images:
        raise ValueError("images must hold at least one image for the grid")
    ncols = check.count("ncols", ncols)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    title_room = 0.3 if titles else 0.0  # per row, so titles never run into the row above
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + title_room) * nrows + 0.4),
                                squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index < len(images):
            show(ax, images[index].clamp(0, 1), titles[index] if titles else "", colorbar=False)
        else:
            ax.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    top = 1 - 0.25 / figure.get_figheight() if title else 1  # keep the suptitle clear of row 1
    figure.tight_layout(rect=(0, 0, 1, top))
    return figure
