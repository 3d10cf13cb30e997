"""Chapter 02 explorer: a batch attack re-run for any batch size B, width h and method.

The logic is plain functions that tests call without a browser:

* :func:`client_batch` plays the client: a reproducible one-hidden-layer victim of width h,
  a batch of B real images with distinct (or the data's own) labels, and its FedSGD message;
* :func:`attack` plays the server on that message — the leaked span plus a second-order solve
  (:mod:`recon_lib.newton`), span-constrained or unconstrained L-BFGS gradient matching
  (:mod:`recon_lib.optimize`), or chapter 01's closed form, which on a batch only returns
  mixtures — and scores the result after Hungarian matching;
* :func:`transition` runs :func:`attack` over a grid of B × h/B: the phase transition of
  Claim 2, and :func:`plot_transition` draws it as a heat map;
* :func:`run` is one explorer update (client, server, figure), and :func:`explorer` wires
  sliders for B, h, the method and the labels to it (ipywidgets).

Only :func:`client_batch` touches the private images; :func:`attack` sees the model and the
message, and the originals only to score.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from .. import analytic, fl, metrics, models, newton, optimize, plot
from ..errors import scored_against_truth

METHODS = ("newton", "span", "unconstrained", "closed form")
LABELINGS = ("distinct", "data")
LABEL_METHODS = ("distinct", "counts", "oracle")
# Gradient-matching settings of the chapter: plain L-BFGS on the Euclidean distance, uniform
# init, labels read from the head's bias gradient, no priors, no early stop before round-off.
ATTACK: dict[str, Any] = dict(preset=None, steps=300, tol=1e-13)
SUCCESS_DB = 30.0  # an image counts as recovered at PSNR ≥ 30 dB (hard to tell apart by eye)


@dataclass
class Batch:
    """What the client holds and sends: model, private batch, labels and message."""

    model: nn.Sequential
    x: Tensor
    y: Tensor
    message: dict[str, Tensor]
    index: Tensor  # which of the given images form the batch (to pick outsiders)


@dataclass
class Outcome:
    """One attack on one batch, scored after matching reconstructions to originals."""

    batch_size: int
    h: int
    method: str
    images: Tensor  # reconstructions, reordered to pair with the originals
    originals: Tensor
    psnr: Tensor  # (B,) dB per image after matching
    labels_ok: bool  # the labels the attack used equal the client's (as sets)
    loss: float  # final gradient-matching loss (NaN for the closed form)

    @property
    def recovered(self) -> float:
        """Share of the batch at PSNR ≥ :data:`SUCCESS_DB`."""
        return float((self.psnr >= SUCCESS_DB).float().mean())


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {tuple(choices)}")


def client_batch(images: Tensor, labels: Tensor, batch_size: int, h: int, *, seed: int = 0,
                 labeling: str = "distinct", dtype: torch.dtype = torch.float32) -> Batch:
    """The client side: a victim MLP of width h and the message of B real images.

    ``labeling="distinct"`` gives the batch B different labels out of max(10, B) classes
    (the model is untrained, so which class index an image gets does not matter, only that
    no two are equal); ``"data"`` keeps the images' own labels, so B > 10 digits must repeat.
    The global random state is left untouched.
    """
    _check_choice("labeling", labeling, LABELINGS)
    if not 1 <= batch_size <= len(images) or h < 1:
        raise ValueError(f"need 1 ≤ batch_size ≤ {len(images)} images and h ≥ 1, got "
                         f"batch_size={batch_size}, h={h}")
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(images), generator=generator)[:batch_size]
    n_classes = max(10, batch_size) if labeling == "distinct" else int(labels.max()) + 1
    y = (torch.randperm(n_classes, generator=generator)[:batch_size] if labeling == "distinct"
         else labels[pick])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = models.mlp(images.shape[1:], [h], n_classes).to(dtype)
    x = images[pick].to(dtype)
    return Batch(model, x, y, fl.client_update(model, x, y), pick)


def _closed_form(batch: Batch) -> Tensor:
    """Chapter 01's ratio for the B units with the largest |∂b|: each one is a mixture."""
    grad_weight, grad_bias = batch.message["1.weight"], batch.message["1.bias"]
    ratios, _ = analytic.unit_estimates(grad_weight, grad_bias)
    order = grad_bias.abs().argsort(descending=True)
    chosen = order[torch.arange(len(batch.x)) % len(order)]
    return ratios[chosen].reshape(batch.x.shape)


def server_labels(batch: Batch, how: str = "distinct") -> Tensor:
    """The labels the server attacks with (sorted), read from the message or given.

    ``"distinct"``: the B most negative head-bias entries (:func:`analytic.recover_labels`);
    ``"counts"``: label counts, repeats allowed (:func:`analytic.recover_label_counts`);
    ``"oracle"``: the client's true labels — not an attack, a control that isolates the
    difficulty of the images from the difficulty of the labels.
    """
    _check_choice("labels", how, LABEL_METHODS)
    size = len(batch.x)
    if how == "oracle":
        return batch.y.sort().values
    if how == "counts":
        return analytic.recover_label_counts(batch.model, batch.message, size)
    return analytic.recover_labels(batch.model, batch.message, size)


def attack(batch: Batch, method: str = "newton", labels: str = "distinct", **options: Any) -> Outcome:
    """The server side: reconstruct the batch from (model, message) and score it.

    Args:
        batch: from :func:`client_batch`.
        method: ``"newton"`` (leaked span + Levenberg–Marquardt, :func:`newton.solve_batch`),
            ``"span"`` (L-BFGS on the span coefficients), ``"unconstrained"`` (L-BFGS, every
            pixel free) or ``"closed form"`` (chapter 01's ratio per unit: mixtures).
        labels: how the server gets the labels (:func:`server_labels`).
        **options: for ``"newton"``, keywords of :func:`newton.solve_batch`; for the L-BFGS
            methods, overrides of :data:`ATTACK` for :func:`optimize.gradient_matching`.
    """
    _check_choice("method", method, METHODS)
    size, h = len(batch.x), cast(nn.Linear, batch.model[1]).out_features  # rl.models.mlp's first Linear
    used = server_labels(batch, labels)
    if method == "closed form":
        images, loss = _closed_form(batch), math.nan
    elif method == "newton":
        solution = newton.solve_batch(batch.model, batch.message, size, labels=used, **options)
        images, loss = solution.images, solution.loss
    else:
        settings = {**ATTACK, **options}
        with scored_against_truth():  # the outcome is scored against the private batch
            result = optimize.gradient_matching(batch.model, batch.message, size, labels=used,
                                                span=method == "span", progress=False, **settings)
        images, loss = result.images, result.loss
    matched, _ = metrics.match(images, batch.x)
    return Outcome(size, h, method, matched.detach(), batch.x, metrics.psnr(matched, batch.x),
                   used.tolist() == sorted(batch.y.tolist()), float(loss))


def widths(batch_size: int, ratios: Sequence[float]) -> list[int | None]:
    """h = ratio · B for each ratio, or None where that is not a positive whole number."""
    out = []
    for ratio in ratios:
        h = ratio * batch_size
        out.append(int(round(h)) if h >= 1 and abs(h - round(h)) < 1e-9 else None)
    return out


@dataclass
class Transition:
    """Share of images recovered on a grid of batch sizes (rows) × h/B (columns)."""

    batch_sizes: list[int]
    ratios: list[float]
    share: np.ndarray  # NaN where h = ratio·B is not a whole number ≥ 1
    trials: np.ndarray  # batches attacked per cell


def transition(images: Tensor, labels: Tensor, batch_sizes: Sequence[int], ratios: Sequence[float],
               images_per_cell: int = 16, method: str = "newton", seed: int = 0,
               **options: Any) -> Transition:
    """The phase transition of Claim 2: share recovered for every (B, h = ratio·B).

    Each cell attacks ⌈images_per_cell / B⌉ independent batches (fresh model, fresh images,
    distinct labels), so small batches get as many scored images as large ones.
    """
    share = np.full((len(batch_sizes), len(ratios)), np.nan)
    trials = np.zeros_like(share, dtype=int)
    for row, size in enumerate(batch_sizes):
        count = max(1, math.ceil(images_per_cell / size))
        for col, h in enumerate(widths(size, ratios)):
            if h is None:
                continue
            outcomes = [attack(client_batch(images, labels, size, h, seed=seed + t), method, **options)
                        for t in range(count)]
            share[row, col] = np.mean([o.recovered for o in outcomes])
            trials[row, col] = count
    return Transition(list(batch_sizes), list(ratios), share, trials)


def _ratio_label(ratio: float) -> str:
    return f"1/{round(1 / ratio)}" if ratio < 1 else f"{ratio:g}"


def plot_transition(result: Transition, title: str = "") -> Figure:
    """Heat map of the share recovered, rows B, columns h/B; the line h = B is marked."""
    figure, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = plt.get_cmap("viridis").with_extremes(bad="lightgrey")   # n/a cells: grey, not blank
    shown = ax.imshow(np.ma.masked_invalid(result.share), cmap=colours, vmin=0, vmax=1,
                      origin="lower", aspect="auto")
    figure.colorbar(shown, ax=ax, label=f"share recovered (PSNR ≥ {SUCCESS_DB:g} dB)")
    for (row, col), value in np.ndenumerate(result.share):
        text = "n/a:\nh not whole" if np.isnan(value) else f"{value:.0%}"
        ax.text(col, row, text, ha="center", va="center", fontsize=7 if np.isnan(value) else 8,
                color="black" if np.isnan(value) or value > 0.5 else "white")
    ax.set_xticks(range(len(result.ratios)), [_ratio_label(r) for r in result.ratios])
    ax.set_yticks(range(len(result.batch_sizes)), [str(b) for b in result.batch_sizes])
    if 1 in result.ratios:
        ax.axvline(result.ratios.index(1) - 0.5, color="red", linestyle="--", label="h = B")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("hidden units per image, h / B")
    ax.set_ylabel("batch size B")
    ax.set_title(title or "Claim 2: share of the batch recovered")
    figure.tight_layout()
    return figure


def show(outcome: Outcome, ncols: int = 8) -> Figure:
    """Originals above their matched reconstructions, PSNR in each title."""
    size = outcome.batch_size
    cols = min(ncols, size)
    blocks = math.ceil(size / cols)
    figure, axes = plt.subplots(2 * blocks, cols, figsize=(1.5 * cols, 3.3 * blocks + 0.6),
                                squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(size):
        row, col = 2 * (i // cols), i % cols
        plot.show(axes[row, col], outcome.originals[i], f"x{i} (private)", colorbar=False)
        plot.show(axes[row + 1, col], outcome.images[i].clamp(0, 1),
                  f"{outcome.psnr[i]:.0f} dB", colorbar=False)
    figure.suptitle(f"{outcome.method}: B={size}, h={outcome.h} | {outcome.recovered:.0%} recovered "
                    f"(≥ {SUCCESS_DB:g} dB) | labels {'right' if outcome.labels_ok else 'WRONG'}\n"
                    "odd rows: originals; even rows: their matched reconstructions", fontsize=10)
    figure.tight_layout()
    figure.colorbar(axes[0, 0].images[0], ax=axes, fraction=0.02, pad=0.01, label="pixel value")
    return figure


def run(images: Tensor, labels: Tensor, batch_size: int, h: int, method: str = "newton",
        labeling: str = "distinct", seed: int = 0) -> Figure:
    """One explorer update: client and server for (B, h, method, labels), then :func:`show`.

    Distinct labels are read with :func:`analytic.recover_labels`, the data's own labels as counts.
    """
    batch = client_batch(images, labels, batch_size, h, seed=seed, labeling=labeling)
    return show(attack(batch, method, labels="distinct" if labeling == "distinct" else "counts"))


def explorer(images: Tensor, labels: Tensor):
    """Sliders for B, h, the method and the labelling; re-runs :func:`run` on change."""
    import ipywidgets as widgets

    def update(batch_size: int, h: int, method: str, labeling: str, seed: int) -> None:
        run(images, labels, batch_size, h, method, labeling, seed)
        plt.show()

    return widgets.interactive(
        update, batch_size=widgets.IntSlider(4, 1, 16, description="B"),
        h=widgets.IntSlider(8, 1, 64, description="h"),
        method=widgets.Dropdown(options=METHODS, value="newton", description="method"),
        labeling=widgets.Dropdown(options=LABELINGS, value="distinct", description="labels"),
        seed=widgets.IntSlider(0, 0, 9, description="seed"))
