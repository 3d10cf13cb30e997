"""The benchmark table of chapter 06: every method against every data kind.

One row per (method, data kind, image, seed) with MSE, PSNR, SSIM and the attack's seconds per
image, then mean ± spread per (method, kind). The same code makes the quick table that
``notebooks/06_benchmarks.ipynb`` computes live and the full one of ``benchmarks/table.py``.

A *method* is what a server would run on a message, together with the victim model it is
defined for (the attack only applies to some architectures):

* ``closed_form`` — chapter 01: x = ∂ℓ/∂W ÷ ∂ℓ/∂b on a sigmoid MLP with a biased first layer;
* ``cnn_exact`` — chapter 03: closed form on the head, then each conv undone exactly, on a
  sigmoid CNN with one kernel above the bound h ≥ (d/d′)² C of Claim 3 (4×4 kernels, stride 2);
* ``paper`` — chapter 04's ``"paper"`` gradient-matching preset (uniform init, box prior, L-BFGS) on the
  DLG LeNet, where no closed form applies (its second conv has 12 kernels, the bound asks 48);
* ``fast`` — chapter 04's ``"fast"`` preset (box as a penalty, 500-pair compact L-BFGS, early
  stop) on the same LeNet, with the same step budget.

Each attack is a function ``(model, messages, in_shape) -> images`` that sees only the model
and the messages of N one-image clients (leading dimension N); only :func:`run` touches the
private images, to send them and to score the answer.
"""
from __future__ import annotations

import csv
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats
from torch import Tensor, nn

from . import analytic, conditions, datasets, fl, metrics, models, optimize, plot, runtime
from .runtime import progress_bar

Message = Mapping[str, Tensor]
Attack = Callable[..., Tensor]
Builder = Callable[[tuple[int, ...], int], nn.Module]

# Classes of the victim's head per kind (labels are taken modulo this). Faces come with one
# label ("face") in the pack; a 1-class cross-entropy has zero gradient, so the face model is
# a 10-identity classifier, as on full LFW where the label is the person.
N_CLASSES = {"fmri": 24, "wbc": 8, "mnist": 10, "kmnist": 10, "cifar100": 100,
             "imagenet": 1000, "faces": 10}
# Which images of the sample pack a kind draws from: fMRI uses the first of its two volumes,
# so that n slices are n different positions in one scan (the second volume repeats them).
POOLS = {"fmri": slice(0, 24)}
METRICS = ("mse", "psnr", "ssim", "seconds")
IMAGE_STATS = ("tv", "contrast", "unknowns")


@dataclass(frozen=True)
class Method:
    """One row group of the table: an attack and the victim architecture it is defined for.

    Attributes:
        name: registry key, e.g. ``"closed_form"``.
        title: what the table prints.
        victim: the victim model in words.
        build: ``build(in_shape, n_classes) -> model`` (called after seeding).
        attack: ``attack(model, messages, in_shape, **options) -> N × C × H × W``.
        options: keyword settings passed to ``attack`` (e.g. the optimiser's ``steps``).
    """

    name: str
    title: str
    victim: str
    build: Builder
    attack: Attack
    options: Mapping[str, object] = field(default_factory=dict)

    def with_options(self, **options: object) -> "Method":
        """A copy with some attack settings changed: ``METHODS["paper"].with_options(steps=50)``."""
        return replace(self, options={**self.options, **options})

    def __call__(self, model: nn.Module, messages: Message, in_shape: Sequence[int]) -> Tensor:
        return self.attack(model, messages, tuple(in_shape), **self.options)


METHODS: dict[str, Method] = {}


def register(name: str, *, title: str, victim: str, build: Builder, **options: object) -> Callable:
    """Add an attack function to :data:`METHODS` under ``name`` (decorator)."""
    def add(attack: Attack) -> Attack:
        METHODS[name] = Method(name, title, victim, build, attack, dict(options))
        return attack
    return add


# --- Victims -------------------------------------------------------------------------------
def biased_mlp(in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Sigmoid MLP with 16 biased first-layer units (chapter 01's setting)."""
    return models.mlp(in_shape, [16], n_classes)


def kernel_bound(in_shape: Sequence[int], k: int = 4, s: int = 2, p: int = 1) -> int:
    """Claim 3's h ≥ (d/d′)² C for a C×H×W input, per side: ⌈C·H·W / (H′·W′)⌉."""
    channels, height, width = in_shape
    out = conditions.conv_output_width(height, k, s, p) * conditions.conv_output_width(width, k, s, p)
    return -(-channels * height * width // out)


def cnn_above_bound(in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Sigmoid CNN, one 4×4 stride-2 conv with one kernel more than Claim 3's bound.

    4C + 1 kernels for an even side; an odd side (25×25 faces) has a smaller d′ and needs more.
    """
    kernels = kernel_bound(in_shape) + 1
    return models.cnn(in_shape, [kernels], n_classes, kernel_size=4, stride=2, padding=1)


def dlg_lenet(in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The DLG/iDLG LeNet (12 kernels per conv): below the bound, so no closed form."""
    return models.lenet_dlg(in_shape, n_classes)


# --- Attacks (see only model and messages) ------------------------------------------------
@register("closed_form", title="closed form (ch. 01)", victim="sigmoid MLP, biased FC, h = 16",
          build=biased_mlp)
def closed_form(model: nn.Module, messages: Message, in_shape: tuple[int, ...]) -> Tensor:
    """x = ∂ℓ/∂W ÷ ∂ℓ/∂b for N clients at once (:func:`recon_lib.analytic.reconstruct`)."""
    return analytic.reconstruct(model, messages, in_shape)


@register("cnn_exact", title="exact CNN inversion (ch. 03)",
          victim="sigmoid CNN, bound + 1 kernels, 4×4, stride 2", build=cnn_above_bound)
def cnn_exact(model: nn.Module, messages: Message, in_shape: tuple[int, ...]) -> Tensor:
    """Closed form on the head, then CGLS through each conv (:func:`recon_lib.analytic.invert_cnn`)."""
    return analytic.invert_cnn(model, messages, in_shape)


@register("paper", title="optimisation, 'paper' preset (ch. 04)", victim="DLG LeNet (sigmoid)",
          build=dlg_lenet, preset="paper", steps=300, seed=0)
def gradient_search(model: nn.Module, messages: Message, in_shape: tuple[int, ...], *,
                    preset: str = "paper", steps: int = 300, seed: int = 0) -> Tensor:
    """Gradient matching (:func:`recon_lib.optimize.gradient_matching`), one client at a time."""
    n = next(iter(messages.values())).shape[0]
    images = [optimize.gradient_matching(model, {k: g[i] for k, g in messages.items()}, 1,
                                         preset=preset, steps=steps, seed=seed, progress=False).images
              for i in range(n)]
    return torch.cat(images).reshape(n, *in_shape)


# The course's engineered preset of chapter 04 (box as a penalty, long compact L-BFGS memory).
register("fast", title="optimisation, 'fast' preset (ch. 04)", victim="DLG LeNet (sigmoid)",
         build=dlg_lenet, preset="fast", steps=300, seed=0)(gradient_search)
# Methods that search (costly: seconds to minutes per image); the others are closed forms.
SEARCHES = ("paper", "fast")


def methods(names: Iterable[str] | None = None, **options: Mapping[str, object]) -> list[Method]:
    """Registered methods by name (all if None), with per-method settings: ``paper={"steps": 50}``."""
    names = list(METHODS) if names is None else list(names)
    unknown = sorted(set(names) - set(METHODS)) + sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"unknown or unselected method(s) {unknown}; registered: {sorted(METHODS)}")
    return [METHODS[n].with_options(**options.get(n, {})) for n in names]


# --- Data ----------------------------------------------------------------------------------
def sample(kind: str, n: int, size: int | tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
    """``n`` images of ``kind`` spread evenly over the sample pack, and labels mod the head's classes.

    Evenly spread, centred indices (not the first n) so that the images differ (e.g. fMRI
    slices from bottom to top of one volume, MNIST digits of different classes). ``n`` is
    capped at what exists.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    x, y = datasets.load(kind, size=size)
    pool = POOLS.get(kind, slice(None))
    x, y = x[pool], y[pool]
    n = min(n, len(x))
    index = ((torch.arange(n) + 0.5) * len(x) / n).long()
    return x[index], y[index] % N_CLASSES[kind]


def image_stats(x: Tensor) -> dict[str, Tensor]:
    """Per-image properties that might make a kind easier (chapter 06), one value per image.

    ``tv``: total variation (smoothness, :func:`recon_lib.optimize.total_variation`);
    ``contrast``: the pixels' standard deviation; ``unknowns``: C·H·W, the size of the search.
    """
    return {"tv": optimize.total_variation(x[:, None]), "contrast": x.flatten(1).std(1),
            "unknowns": torch.full((len(x),), x[0].numel())}


# --- Settings per profile (plain data; chapter 06 and benchmarks/table.py share them) --------
@dataclass(frozen=True)
class Settings:
    """How big the table is: images and seeds per kind, image sizes, optimiser steps.

    The optimisation attack costs seconds per image where the closed forms cost milliseconds,
    so it gets its own (smaller) number of images and seeds.
    """

    n: int
    seeds: tuple[int, ...]
    sizes: Mapping[str, tuple[int, int] | None]
    steps: int
    optimisation_n: int
    optimisation_seeds: tuple[int, ...]


SETTINGS = {
    # CPU, under a minute in the notebook: ~32 px images; fMRI keeps its 3:4 aspect.
    "quick": Settings(n=3, seeds=(0, 1), steps=100, optimisation_n=2, optimisation_seeds=(0,),
                      sizes={"fmri": (24, 32), "wbc": (32, 32), "imagenet": (32, 32)}),
    # Paper scale: native sizes, ImageNet at 224×224 (the offline pack is 128×128, upsampled),
    # the paper preset's 1000 steps for every search. Searches get 4 images × 2 seeds per kind: at
    # 224×224 one costs about 10 min on one CPU core (the LeNet head has 37.6 M weights for 1000
    # classes; measured 570-620 s, README).
    "full": Settings(n=8, seeds=(0, 1, 2), steps=1000, optimisation_n=4, optimisation_seeds=(0, 1),
                     sizes={"imagenet": (224, 224)}),
}


def settings(profile: str | None = None) -> Settings:
    """The :data:`SETTINGS` of ``profile`` (default: the active one, ``$RECON_PROFILE``)."""
    name = runtime.profile() if profile is None else profile
    if name not in SETTINGS:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(SETTINGS)}")
    return SETTINGS[name]


def run_profile(chosen: Settings, kinds: Sequence[str] = datasets.NAMES,
                device: torch.device | str | None = None, progress: bool = True,
                workers: int = 1, names: Sequence[str] | None = None) -> Table:
    """The table under ``chosen`` settings for the methods ``names`` (default: all registered).

    Closed forms run on ``n`` images × ``seeds``; the searches (:data:`SEARCHES`) on
    ``optimisation_n`` × ``optimisation_seeds`` with a budget of ``steps`` optimiser steps.
    """
    chosen_methods = methods(names)
    exact = [m for m in chosen_methods if m.name not in SEARCHES]
    searches = [m.with_options(steps=chosen.steps) for m in chosen_methods if m.name in SEARCHES]
    parts = ([run(exact, kinds, chosen.n, chosen.seeds, chosen.sizes, device, progress, workers)]
             if exact else [])
    if searches:
        parts.append(run(searches, kinds, chosen.optimisation_n, chosen.optimisation_seeds, chosen.sizes,
                         device, progress, workers))
    return Table([row for part in parts for row in part.rows],
                 {key: value for part in parts for key, value in part.images.items()})


# --- Running the table -----------------------------------------------------------------------
@dataclass
class Table:
    """What :func:`run` returns: one row per (method, kind, image, seed), and the images.

    ``images[(method, kind, seed)]`` is ``(originals, reconstructions)``, both N×C×H×W on the CPU.
    """

    rows: list[dict]
    images: dict[tuple[str, str, int], tuple[Tensor, Tensor]]


def attack_kind(method: Method, x: Tensor, y: Tensor, kind: str, seed: int,
                device: torch.device) -> tuple[Tensor, float]:
    """Seed, build the victim, send N one-image messages, attack them; (images, seconds per image)."""
    runtime.seed_everything(seed)
    in_shape = tuple(x.shape[1:])
    model = method.build(in_shape, N_CLASSES[kind]).to(device)
    messages = fl.client_updates(model, x.to(device), y.to(device))
    start = time.perf_counter()
    attack = method.with_options(seed=seed) if "seed" in method.options else method
    x_hat = attack(model, messages, in_shape)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / len(x)
    if tuple(x_hat.shape) != tuple(x.shape):
        raise ValueError(f"{method.name} returned {tuple(x_hat.shape)} for {kind} images "
                         f"{tuple(x.shape)}; an attack must return N×C×H×W")
    if not torch.isfinite(x_hat).all():
        raise ValueError(f"{method.name} returned NaN or inf on {kind} (seed {seed})")
    return x_hat.detach().cpu(), seconds


def run(methods: Sequence[Method], kinds: Sequence[str], n: int, seeds: Sequence[int],
        sizes: Mapping[str, int | tuple[int, int] | None] | None = None,
        device: torch.device | str | None = None, progress: bool = True, workers: int = 1) -> Table:
    """The benchmark: every method × kind × seed on ``n`` images per kind.

    Args:
        methods: from :func:`methods` (or :data:`METHODS`).
        kinds: data kinds, names of :data:`recon_lib.datasets.NAMES`.
        n: images per kind (capped at what the sample pack holds).
        seeds: each seeds the victim's weights and the attack's initialisation.
        sizes: side (or (h, w)) per kind; a missing kind keeps its native size.
        device: where models and attacks run; default :func:`recon_lib.device`.
        progress: a tqdm bar over (method, kind, seed).
        workers: CPU processes that attack (method, kind, seed) jobs side by side, each with
            its share of the threads; 1 runs them in this process. The rows are the same
            either way (every job seeds itself); only registered methods can be sent to a worker.

    Returns:
        a :class:`Table`; ``rows`` hold method, kind, status (real / STAND-IN), image (index in
        the sample), seed, size, the four :data:`METRICS` and the :data:`IMAGE_STATS`.
    """
    if not methods or not kinds or not seeds:
        raise ValueError("need at least one method, one kind and one seed")
    device = runtime.device() if device is None else torch.device(device)
    sizes = dict(sizes or {})
    rows, images = [], {}
    jobs = [(m, k, s) for m in methods for k in kinds for s in seeds]
    data = {k: sample(k, n, sizes.get(k)) for k in kinds}
    answers = _attack_all(jobs, data, device, workers, progress)
    for (method, kind, seed), (x_hat, seconds) in zip(jobs, answers):
        x = data[kind][0]
        images[(method.name, kind, seed)] = (x, x_hat)
        rows += _rows(method, kind, seed, x, x_hat, seconds)
    return Table(rows, images)


def _attack_all(jobs: Sequence[tuple[Method, str, int]], data: Mapping[str, tuple[Tensor, Tensor]],
                device: torch.device, workers: int, progress: bool) -> list[tuple[Tensor, float]]:
    """:func:`attack_kind` for every job, answers in job order; in ``workers`` processes if > 1.

    Worker processes are started with ``spawn`` (forking a process whose torch thread pool is
    running can deadlock) and get the jobs largest first (unknowns × classes, which sets the
    cost of the victim's head), so that the long ImageNet attacks do not start last.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if workers == 1:
        return [attack_kind(method, *data[kind], kind, seed, device)
                for method, kind, seed in progress_bar(jobs, enabled=progress, desc="benchmark")]
    if device.type != "cpu":
        raise ValueError(f"workers > 1 splits the CPU between processes; on {device.type} use workers=1")
    cost = [data[kind][0][0].numel() * N_CLASSES[kind] for _, kind, _ in jobs]
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")
    answers: dict[int, tuple[Tensor, float]] = {}
    with ProcessPoolExecutor(workers, mp_context=context, initializer=torch.set_num_threads,
                             initargs=(threads,)) as pool:
        def submit(i: int):
            method, kind, seed = jobs[i]
            return pool.submit(attack_kind, method, *data[kind], kind, seed, device)
        futures = {submit(i): i for i in sorted(range(len(jobs)), key=lambda i: -cost[i])}
        for future in progress_bar(as_completed(futures), total=len(jobs), enabled=progress,
                                   desc=f"benchmark ({workers} workers)"):
            answers[futures[future]] = future.result()
    return [answers[i] for i in range(len(jobs))]


def _rows(method: Method, kind: str, seed: int, x: Tensor, x_hat: Tensor, seconds: float) -> list[dict]:
    scores = {"mse": metrics.mse(x_hat, x), "psnr": metrics.psnr(x_hat, x),
              "ssim": metrics.ssim(x_hat, x), **image_stats(x)}
    status = datasets.KINDS[kind].status
    return [{"method": method.name, "kind": kind, "status": status, "image": i, "seed": seed,
             "size": "×".join(map(str, x.shape[1:])), "seconds": seconds,
             **{key: float(value[i]) for key, value in scores.items()}} for i in range(len(x))]


# --- Aggregating and writing ----------------------------------------------------------------
def _mean_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value); ∞ stays ∞ (a perfect copy)."""
    mean = sum(values) / len(values)
    if len(values) < 2 or math.isinf(mean):
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarise(rows: Sequence[Mapping], by: Sequence[str] = ("method", "kind")) -> list[dict]:
    """Mean ± spread (sample standard deviation over images and seeds) per group.

    Returns one dict per group, in first-seen order: the ``by`` keys, ``status``, ``n`` and
    ``<metric>_mean`` / ``<metric>_std`` for every metric of :data:`METRICS` the rows have.
    """
    if not rows:
        raise ValueError("no rows to summarise")
    groups: dict[tuple, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in by), []).append(row)
    summary = []
    for key, members in groups.items():
        entry = {**dict(zip(by, key)), "status": members[0].get("status", ""), "n": len(members)}
        for metric in (m for m in METRICS if m in rows[0]):
            entry[f"{metric}_mean"], entry[f"{metric}_std"] = _mean_spread([r[metric] for r in members])
        summary.append(entry)
    return summary


def format_table(summary: Sequence[Mapping]) -> str:
    """A Markdown table (method, kind, n, MSE, PSNR, SSIM, seconds per image), mean ± spread.

    Stand-in data kinds are marked with an asterisk, e.g. ``kmnist*``.
    """
    lines = ["| method | kind | n | MSE | PSNR (dB) | SSIM | s / image |",
             "|---|---|---|---|---|---|---|"]
    for s in summary:
        kind = s["kind"] + ("*" if s.get("status") == "STAND-IN" else "")
        lines.append(f"| {s['method']} | {kind} | {s['n']} | {s['mse_mean']:.1e} ± {s['mse_std']:.0e} | "
                     f"{s['psnr_mean']:.1f} ± {s['psnr_std']:.1f} | {s['ssim_mean']:.3f} ± {s['ssim_std']:.3f} | "
                     f"{s['seconds_mean']:.2g} |")
    return "\n".join(lines)


def write_csv(rows: Sequence[Mapping], path: str | Path) -> Path:
    """Write rows (all with the same keys) to ``path`` with the csv module; returns the path."""
    if not rows:
        raise ValueError("no rows to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: str | Path) -> list[dict]:
    """Rows written by :func:`write_csv`, numbers converted back to int or float."""
    def number(text: str) -> object:
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    with Path(path).open(newline="") as handle:
        return [{key: number(value) for key, value in row.items()} for row in csv.DictReader(handle)]


# --- Reading the table (chapter 06 figures) ------------------------------------------------
def _title(method: str) -> str:
    return METHODS[method].title if method in METHODS else method


def flat_baseline(x: Tensor) -> Tensor:
    """PSNR (per image) of a flat image at each image's own mean: what "no information" scores.

    A reference point, not an attack (the mean is private too): a reconstruction below it has
    recovered less than a uniform grey guess would. Equals 10·log10(1 / pixel variance).
    """
    flat = x.flatten(1).mean(1).reshape(-1, *[1] * (x.ndim - 1)).expand_as(x)
    return metrics.psnr(flat, x)


def extremes(rows: Sequence[Mapping], method: str) -> dict[str, tuple[Mapping, Mapping]]:
    """Per kind, the (best, worst) row of ``method`` by PSNR."""
    chosen = [r for r in rows if r["method"] == method]
    if not chosen:
        raise ValueError(f"no rows of method {method!r}")
    kinds = dict.fromkeys(r["kind"] for r in chosen)
    return {k: (max((r for r in chosen if r["kind"] == k), key=lambda r: r["psnr"]),
                min((r for r in chosen if r["kind"] == k), key=lambda r: r["psnr"])) for k in kinds}


def correlations(rows: Sequence[Mapping], method: str,
                 properties: Sequence[str] = IMAGE_STATS) -> dict[str, float]:
    """Spearman's ρ between each image property and the PSNR of ``method`` (scipy.stats)."""
    chosen = [r for r in rows if r["method"] == method]
    if len(chosen) < 3:
        raise ValueError(f"need at least 3 rows of {method!r} to correlate, got {len(chosen)}")
    psnr = [r["psnr"] for r in chosen]
    return {p: float(stats.spearmanr([r[p] for r in chosen], psnr).statistic) for p in properties}


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


def plot_extremes(table: Table, method: str) -> Figure:
    """Best and worst image of ``method`` per kind: original above reconstruction, PSNR in titles."""
    pairs = extremes(table.rows, method)
    figure, axes = plt.subplots(4, len(pairs), figsize=(1.7 * len(pairs), 7.2), squeeze=False)
    for col, (kind, rows) in enumerate(pairs.items()):
        for pair, (label, row) in enumerate(zip(("best", "worst"), rows)):
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
    for ax, prop in zip(axes, IMAGE_STATS):
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
