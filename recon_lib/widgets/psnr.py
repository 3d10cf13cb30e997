"""Chapter 06 explorer: one image distorted to a chosen PSNR, by contrast, noise or blur.

The logic is a plain function that tests call without a browser: :func:`compare` draws the
original beside :func:`recon_lib.distortions.at_psnr`'s distortion, titled with the PSNR and
SSIM actually measured (contrast and blur cannot reach every PSNR: the title says what they
reached). :func:`explorer` wires a menu for the distortion and a slider for the target.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor

from .. import distortions, metrics, plot


def compare(x: Tensor, how: str = "noise", target_db: float = 20.0) -> Figure:
    """The C×H×W image ``x`` beside itself distorted by ``how`` to ``target_db`` dB."""
    y = distortions.at_psnr(x, how, target_db)
    figure, axes = plt.subplots(1, 2, figsize=(5, 2.6))
    plot.show(axes[0], x, "original", colorbar=False)
    plot.show(axes[1], y, f"{how}: {float(metrics.psnr(y, x)):.1f} dB, "
              f"SSIM {float(metrics.ssim(y, x)):.2f}", colorbar=False)
    figure.suptitle(f"One image at a chosen PSNR ({target_db:g} dB asked)")
    figure.tight_layout()
    return figure


def explorer(x: Tensor):
    """A distortion menu and a target-PSNR slider (5–40 dB) for the image ``x``."""
    import ipywidgets as widgets

    def update(how: str, target_db: float) -> None:
        compare(x, how, target_db)
        plt.show()

    return widgets.interactive(
        update, how=widgets.Dropdown(options=list(distortions.DISTORTIONS), value="noise",
                                     description="distortion"),
        target_db=widgets.FloatSlider(value=20.0, min=5.0, max=40.0, step=2.5, description="PSNR (dB)"))
