"""Chapter 05 explorer: how many kernels does a hospital's CNN need before a scan leaks exactly?

The logic is plain functions that tests call without a browser:

* :func:`conv_attack` plays both sides once: a hospital's sigmoid CNN (one 4×4 stride-2 conv of
  h kernels, then a biased linear head) computes the FedSGD message of one private image, and
  the server inverts it with :func:`recon_lib.analytic.invert_cnn` (``strict=False``, so below
  Claim 3's bound it returns the minimum-norm guess instead of raising);
* :func:`kernel_sweep` runs it for several h and :func:`plot_sweep` draws PSNR against h with
  the bound ⌈C·H·W / (H′·W′)⌉ marked;
* :func:`explorer` wires sliders for the slice and h (ipywidgets).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .. import analytic, benchmark, fl, metrics, models, plot


@dataclass
class ConvOutcome:
    """One CNN inversion: the kernel count, the bound, the reconstruction and its scores."""

    kernels: int
    bound: int
    reconstruction: Tensor
    psnr: float
    ssim: float


def conv_attack(image: Tensor, kernels: int, label: int = 0, n_classes: int = 24,
                seed: int = 0, max_iter: int = 100) -> ConvOutcome:
    """Send ``image`` (C×H×W) through a seeded h-kernel CNN and invert the message (chapter 05).

    ``max_iter`` caps the CGLS solve: above the bound it converges in far fewer iterations;
    below it there is no exact answer to converge to, only the minimum-norm guess.
    """
    if image.ndim != 3:
        raise ValueError(f"image must be C×H×W, got shape {tuple(image.shape)}")
    if isinstance(kernels, bool) or not isinstance(kernels, int) or kernels < 1:
        raise ValueError(f"kernels must be a positive int, got {kernels!r}")
    if not 0 <= label < n_classes:
        raise ValueError(f"label {label} is not one of the {n_classes} classes")
    torch.manual_seed(seed)
    shape = tuple(image.shape)
    model = models.cnn(shape, [kernels], n_classes, kernel_size=4, stride=2, padding=1)
    message = fl.client_update(model, image[None], torch.tensor([label]))
    x_hat = analytic.invert_cnn(model, message, strict=False, max_iter=max_iter)
    return ConvOutcome(kernels, benchmark.kernel_bound(shape), x_hat.detach(),
                       float(metrics.psnr(x_hat, image)), float(metrics.ssim(x_hat, image)))


def kernel_sweep(image: Tensor, kernels: Sequence[int], seed: int = 0) -> list[ConvOutcome]:
    """:func:`conv_attack` for every kernel count in ``kernels``."""
    return [conv_attack(image, h, seed=seed) for h in kernels]


def plot_sweep(outcomes: Sequence[ConvOutcome], title: str = "") -> Figure:
    """PSNR of the inverted image against the number of kernels h, with Claim 3's bound."""
    figure, ax = plt.subplots(figsize=(5.5, 3.2))
    kernels = [o.kernels for o in outcomes]
    ax.plot(kernels, [o.psnr for o in outcomes], "o-", label="PSNR of the inverted image")
    ax.set_xticks(range(min(kernels), max(kernels) + 1))   # kernels are whole numbers
    ax.axvline(outcomes[0].bound, color="red", ls="--", label=f"bound (d/d′)²C = {outcomes[0].bound}")
    ax.axhline(40, color="grey", lw=0.8, ls=":", label="40 dB")
    ax.set_xlabel("kernels h in the first conv layer")
    ax.set_ylabel("PSNR of the reconstruction (dB)")
    ax.set_title(title or "Exact CNN inversion needs h ≥ (d/d′)² C")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def explorer(images: Tensor, max_kernels: int = 8):
    """Sliders for the slice (index into ``images``, N×C×H×W) and the kernel count h."""
    import ipywidgets as widgets

    def update(index: int, kernels: int) -> None:
        outcome = conv_attack(images[index], kernels)
        figure, axes = plt.subplots(1, 2, figsize=(6, 2.8))
        plot.show(axes[0], images[index], f"slice {index} (private)")
        plot.show(axes[1], outcome.reconstruction.clamp(0, 1),
                  f"h = {kernels} (bound {outcome.bound}): {outcome.psnr:.1f} dB")
        figure.suptitle("A hospital's CNN, inverted from its gradient")
        figure.tight_layout()
        plt.show()

    return widgets.interactive(
        update, index=widgets.IntSlider(value=len(images) // 2, min=0, max=len(images) - 1,
                                        description="slice"),
        kernels=widgets.IntSlider(value=5, min=1, max=max_kernels, description="kernels h"))
