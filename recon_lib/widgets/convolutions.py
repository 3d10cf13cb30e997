"""Chapter 03 explorer: kernel size, stride, padding and kernel count h of one conv layer.

The logic is plain functions that tests call without a browser:

* :func:`victim` builds a reproducible one-conv sigmoid CNN (``rl.models.cnn``);
* :func:`run_case` computes d′, the paper's bound, the measured rank (small images) and the
  reconstruction from the client's message (``rl.analytic.invert_cnn``, non-strict so that
  below the bound one sees the minimum-norm guess);
* :func:`transition` sweeps h across the bound for a batch of images at once (one vmapped
  message per image), the data of chapter 03's transition figure;
* :func:`explorer` wires sliders to :func:`run_case` (ipywidgets).
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from .. import analytic, conditions, conv, fl, metrics, models, plot

DENSE_LIMIT = 1200  # largest C·d² for which the explorer measures the rank densely


def victim(in_shape: Sequence[int], h: int, k: int, s: int, p: int, n_classes: int = 10,
           seed: int = 0, activation: str = "sigmoid") -> nn.Sequential:
    """A one-conv CNN (h kernels k×k, stride s, padding p) and a linear head, from ``seed``.

    The global random state is left untouched (``fork_rng``).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return models.cnn(in_shape, [h], n_classes, kernel_size=k, stride=s, padding=p,
                          activation=activation)


def _check_image(image: Tensor) -> tuple[int, int]:
    if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[1] != image.shape[2]:
        raise ValueError(f"image must be one square C×d×d tensor, got {getattr(image, 'shape', image)}")
    return image.shape[0], image.shape[1]


def run_case(image: Tensor, k: int, s: int, p: int, h: int, seed: int = 0, label: int = 0,
             weight_grads: bool = False) -> dict:
    """One setting of the explorer: the count, the rank, and what the server reconstructs.

    ``weight_grads`` adds the conv's weight-gradient equations to the solve (see
    :func:`recon_lib.analytic.invert_cnn`), which rescues layers at and below the bound.

    Returns:
        A dict with the settings, ``d_out``, ``bound``, ``gap`` (see
        :func:`recon_lib.conditions.bound_gap`), ``rank`` and ``full_rank`` (None when C·d²
        exceeds :data:`DENSE_LIMIT`), ``x_hat``, ``psnr`` and ``iterations`` of the solve.
    """
    channels, d = _check_image(image)
    bound = conditions.min_kernels(d, channels, k, s, p)  # validates the geometry first
    model = victim(image.shape, h, k, s, p, seed=seed)
    message = fl.client_update(model, image[None], torch.tensor([label]))
    stages = analytic.invert_cnn_stages(model, message, image.shape, strict=False,
                                        weight_grads=weight_grads)
    x_hat, info = stages[-1][1], stages[-1][2]
    rank = conditions.conv_rank(channels, d, h, k, s, p, seed) if channels * d * d <= DENSE_LIMIT else None
    return dict(C=channels, d=d, k=k, s=s, p=p, h=h, d_out=conditions.conv_output_width(d, k, s, p),
                bound=bound, gap=conditions.bound_gap(d, k, s, p),
                rank=rank, full_rank=None if rank is None else rank == channels * d * d,
                x_hat=x_hat, psnr=float(metrics.psnr(x_hat, image)), iterations=info.iterations,
                weight_grads=weight_grads)


def describe(row: dict) -> str:
    """One line saying what the count predicts and what happened."""
    verdict = "meets" if row["h"] >= row["bound"] else "is below"
    rank = "" if row["rank"] is None else (f", rank {row['rank']}/{row['C'] * row['d'] ** 2}"
                                           f"{' (full)' if row['full_rank'] else ''}")
    gap = f", count misses: {row['gap']}" if row["gap"] else ""
    equations = " (+ weight-gradient equations)" if row.get("weight_grads") else ""
    return (f"d′ = {row['d_out']}, bound h ≥ {row['bound']}: h = {row['h']} {verdict} it{rank}{gap}; "
            f"reconstruction{equations} {row['psnr']:.1f} dB after {row['iterations']} CGLS iterations")


def figure(image: Tensor, row: dict) -> Figure:
    """Original beside the reconstruction of one case (``rl.plot.compare``)."""
    title = f"k={row['k']}, s={row['s']}, p={row['p']}, h={row['h']} (bound {row['bound']})"
    return plot.compare(image, row["x_hat"].to(image.dtype), title)


def transition(images: Tensor, k: int, s: int, p: int, kernels: Sequence[int], seed: int = 0,
               max_iter: int = 500) -> dict[str, Tensor]:
    """PSNR of the closed-form reconstruction of every image as h sweeps across the bound.

    For each h one victim is built, each image is one client (``rl.fl.client_updates``, one
    vmapped call), and ``rl.analytic.invert_cnn`` (non-strict) inverts all messages at once.

    Returns:
        ``h``, ``ratio`` (h / bound) of shape K, and ``psnr`` of shape K × N images.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be N×C×d×d, got {tuple(images.shape)}")
    channels, d = _check_image(images[0])
    bound = conditions.min_kernels(d, channels, k, s, p)
    labels = torch.zeros(len(images), dtype=torch.long)
    scores = []
    for h in kernels:
        model = victim(images.shape[1:], h, k, s, p, seed=seed)
        messages = fl.client_updates(model, images, labels)
        x_hat = analytic.invert_cnn(model, messages, images.shape[1:], strict=False, max_iter=max_iter)
        scores.append(metrics.psnr(x_hat, images))
    counts = torch.tensor(list(kernels))
    return {"h": counts, "ratio": counts / bound, "psnr": torch.stack(scores)}


def explorer(image: Tensor, max_kernels: int = 16):
    """Sliders for k, s, p, h and a weight-gradient switch that re-run :func:`run_case` (ipywidgets)."""
    import ipywidgets as widgets

    def update(k: int, s: int, p: int, h: int, weight_grads: bool) -> None:
        try:
            row = run_case(image, k, s, p, h, weight_grads=weight_grads)
        except ValueError as error:  # e.g. kernel larger than the padded image
            print(f"not a valid layer: {error}")
            return
        print(describe(row))
        figure(image, row)
        plt.show()

    return widgets.interactive(
        update,
        k=widgets.IntSlider(value=3, min=1, max=7, description="kernel k"),
        s=widgets.IntSlider(value=1, min=1, max=4, description="stride s"),
        p=widgets.IntSlider(value=1, min=0, max=3, description="padding p"),
        h=widgets.IntSlider(value=image.shape[0] + 1, min=1, max=max_kernels, description="kernels h"),
        weight_grads=widgets.Checkbox(value=False, description="use weight gradients"))


def condition_sweep(in_shape: Sequence[int], kernels: Sequence[int], k: int = 5, seed: int = 0,
                    dense: bool | None = None) -> Tensor:
    """Condition number of one C→h "same" stride-1 conv for each h (chapter 03's finding)."""
    values = []
    for h in kernels:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layer = nn.Conv2d(in_shape[0], h, k, padding=k // 2)
        values.append(conv.condition_number(layer, in_shape, dense=dense))
    return torch.tensor(values, dtype=torch.float64)
