"""The figures of chapter 06 from the benchmark's rows: PSNR bars, best/worst images, properties."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import plot
from .benchmark_methods import METHODS
from .benchmark_tables import IMAGE_STATS, correlations, extremes


def _title(method: str) -> str:
    return METHODS[method].title if method in METHODS else method


def plot_psnr(summary: Sequence[Mapping]) -> Figure:
    """Grouped bars: mean PSNR ± spread per kind (x) and method (colour), with 20/30 dB guides."""
    kinds = list(dict.fromkeys(s["kind"] for s in summary))
    names = list(dict.fromkeys(s["method"] for s in summary))
    figure, ax = plt.subplots(figsize=(10, 3.6))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        cells = {s["kind"]: s for s in summary if s["method"] == name}
        means = [cells[k]["psnr_mean"] if k in cells else np.nan for k in kinds]
        spread = [cells[k]["psnr_std"] if k in cells else 0 for k in kinds]
        ax.bar(np.arange(len(kinds)) + (j - (len(names) - 1) / 2) * width, means, width, yerr=spread,
               capsize=3, label=name)
    for level in (20, 30):
        ax.axhline(level, color="grey", lw=0.8, ls="--")
    status = {s["kind"]: s.get("status") for s in summary}
    ax.set_xticks(range(len(kinds)), [k + ("*" if status[k] == "STAND-IN" else "") for k in kinds])
    ax.set_xlabel("data kind (* = stand-in)")
    ax.set_ylabel("PSNR (dB), mean ± spread")
    ax.set_title("Reconstruction quality per method and data kind")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_extremes(table, method: str) -> Figure:
    """Best and worst image of ``method`` per kind: original above reconstruction, PSNR in titles."""
    pairs = extremes(table.rows, method)
    figure, axes = plt.subplots(4, len(pairs), figsize=(1.7 * len(pairs), 7.2), squeeze=False)
    for col, (kind, rows) in enumerate(pairs.items()):
        for pair, (label, row) in enumerate(zip(("best", "worst"), rows, strict=True)):
            x, x_hat = table.images[(method, kind, row["seed"])]
            i = row["image"]
            plot.show(axes[2 * pair, col], x[i], f"{kind}\n{label}: original", colorbar=False)
            plot.show(axes[2 * pair + 1, col], x_hat[i].clamp(0, 1),
                      f"{row['psnr']:.1f} dB, SSIM {row['ssim']:.2f}", colorbar=False)
    figure.suptitle(f"Best (top two rows) and worst (bottom two) reconstructions: {_title(method)}")
    figure.tight_layout()
    return figure


def plot_properties(rows: Sequence[Mapping], method: str) -> Figure:
    """PSNR of ``method`` against each image property, one colour per kind."""
    chosen = [r for r in rows if r["method"] == method]
    figure, axes = plt.subplots(1, len(IMAGE_STATS), figsize=(4 * len(IMAGE_STATS), 3.4))
    labels = {"tv": "total variation (mean |neighbour difference|)", "contrast": "contrast (pixel std)",
              "unknowns": "unknowns C·H·W"}
    rho = correlations(rows, method)
    for ax, prop in zip(axes, IMAGE_STATS, strict=True):
        for kind in dict.fromkeys(r["kind"] for r in chosen):
            members = [r for r in chosen if r["kind"] == kind]
            ax.scatter([r[prop] for r in members], [r["psnr"] for r in members], label=kind, s=25)
        ax.set_xlabel(labels[prop])
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"Spearman ρ = {rho[prop]:.2f}", fontsize=10)
    axes[-1].legend(fontsize=7)
    figure.suptitle(f"What makes a kind easier? {_title(method)}")
    figure.tight_layout()
    return figure
