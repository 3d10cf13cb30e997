"""Chapter 00 explorer: what the first layer's weight gradient shows as the batch grows.

Each row of ∂L/∂W of the first layer is a δ-weighted sum of the batch's images: for one image
it *is* the image, scaled (|cos| = 1); for B > 1 it is a blend that matches none of them. The
logic is plain functions that tests call without a browser:

* :func:`first_layer_rows` plays the client once (``rl.fl.client_update`` on a sigmoid MLP) and
  returns the rows as images with each row's |cos| to each private image;
* :func:`plot_rows` draws the batch above the first rows, the best |cos| in each title;
* :func:`explorer` wires a slider for the batch size B (ipywidgets).
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor
from torch.nn import functional as F

from .. import analytic, fl, models, plot


@dataclass
class RowView:
    """One client's message, seen through its first layer.

    Attributes:
        batch: the client's B private images, B × C × H × W.
        rows: the h rows of the first layer's weight gradient, reshaped to h × C × H × W.
        cosines: |cos(row_i, x_j)|, h × B: 1 means row i is image j, scaled.
    """

    batch: Tensor
    rows: Tensor
    cosines: Tensor


def first_layer_rows(x: Tensor, y: Tensor, batch_size: int, width: int = 8, n_classes: int = 10,
                     seed: int = 0) -> RowView:
    """The first ``batch_size`` images of ``x`` sent as one client's FedSGD message.

    The victim is a sigmoid MLP with ``width`` biased units, initialised from ``seed`` without
    touching the global random state.
    """
    if x.ndim != 4 or y.shape != (len(x),):
        raise ValueError(f"need N×C×H×W images and N labels, got {tuple(x.shape)} and {tuple(y.shape)}")
    if not 1 <= batch_size <= len(x):
        raise ValueError(f"batch_size must be between 1 and {len(x)} (the images given), got {batch_size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = models.mlp(x.shape[1:], [width], n_classes)
    batch = x[:batch_size]
    message = fl.client_update(model, batch, y[:batch_size] % n_classes)
    name, _ = analytic.first_layer(model)
    rows = message[f"{name}.weight"]
    cosines = F.cosine_similarity(rows[:, None], batch.flatten(1)[None], dim=2).abs()
    return RowView(batch, rows.reshape(len(rows), *x.shape[1:]), cosines)


def plot_rows(view: RowView, shown: int = 4) -> Figure:
    """Up to ``shown`` private images (top) and gradient rows as |row| images (bottom)."""
    columns = min(shown, max(len(view.batch), len(view.rows)))
    figure, axes = plt.subplots(2, columns, figsize=(1.9 * columns, 4.2), squeeze=False)
    for j, ax in enumerate(axes[0]):
        if j < len(view.batch):
            plot.show(ax, view.batch[j], f"private x_{j}", colorbar=False)
        else:
            ax.axis("off")
    for i, ax in enumerate(axes[1]):
        row = view.rows[i].abs() / view.rows[i].abs().max().clamp_min(torch.finfo(view.rows.dtype).tiny)
        best = int(view.cosines[i].argmax())
        plot.show(ax, row, f"|row {i}| of ∂L/∂W\nmax |cos| = {float(view.cosines[i, best]):.3f} (x_{best})",
                  colorbar=False)
    figure.suptitle(f"B = {len(view.batch)}: " + ("each row is the image, scaled" if len(view.batch) == 1
                                                  else "each row is a blend of the batch"))
    figure.tight_layout()
    return figure


def explorer(x: Tensor, y: Tensor, max_batch: int = 8):
    """A slider for the batch size B (1 to ``max_batch``) over the images ``x`` with labels ``y``."""
    import ipywidgets as widgets

    def update(batch_size: int) -> None:
        plot_rows(first_layer_rows(x, y, batch_size))
        plt.show()

    return widgets.interactive(update, batch_size=widgets.IntSlider(
        value=1, min=1, max=min(max_batch, len(x)), description="batch B"))
