"""The benchmark table of chapter 06: every method against every data kind.

One row per (method, data kind, image, seed) with MSE, PSNR, SSIM and the attack's seconds per
image, then mean ± spread per (method, kind). The same code makes the quick table that
``notebooks/06_benchmarks.ipynb`` computes live and the full one of ``benchmarks/table.py``.

This module is the runner: the data each kind sends, the settings per profile, and :func:`run`,
the only function that touches the private images (to send them and to score the answer).
Its parts live beside it and are re-exported here, so ``rl.benchmark.<name>`` keeps working:

* :mod:`recon_lib.benchmark_methods` — the registered attacks and their victims (:data:`METHODS`);
* :mod:`recon_lib.benchmark_tables` — mean ± spread, Markdown, CSV, correlations;
* :mod:`recon_lib.benchmark_figures` — the chapter's figures (loaded on first use, with matplotlib).
"""
from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import torch
from torch import Tensor

from . import _validate as check
from . import datasets, fl, metrics, optimize, runtime
from .benchmark_methods import (  # noqa: F401
    METHODS,
    SEARCHES,
    Attack,
    Builder,
    Message,
    Method,
    biased_mlp,
    closed_form,
    cnn_above_bound,
    cnn_exact,
    dlg_lenet,
    gradient_search,
    kernel_bound,
    methods,
    register,
)
from .benchmark_tables import (  # noqa: F401
    IMAGE_STATS,
    METRICS,
    correlations,
    extremes,
    flat_baseline,
    format_table,
    read_csv,
    summarise,
    write_csv,
)
from .runtime import progress_bar

# Per kind, from its Kind record (recon_lib.kinds): the classes of the victim's head (labels
# are taken modulo this; faces: 10 identities, since a 1-class cross-entropy has zero gradient)
# and the pack images drawn from (fMRI: the first of its two volumes, so that n slices are n
# different positions in one scan).
N_CLASSES = {name: kind.classes for name, kind in datasets.KINDS.items()}
POOLS = {name: slice(*kind.pool) for name, kind in datasets.KINDS.items() if kind.pool is not None}


def _sizes(profile: str) -> dict[str, tuple[int, int]]:
    """The image size of each kind in ``profile`` (``Kind.benchmark_sizes``; missing: native)."""
    return {name: kind.benchmark_sizes[profile] for name, kind in datasets.KINDS.items()
            if profile in kind.benchmark_sizes}


# --- Data ----------------------------------------------------------------------------------
def sample(kind: str, n: int, size: int | tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
    """``n`` images of ``kind`` spread evenly over the sample pack, and labels mod the head's classes.

    Evenly spread, centred indices (not the first n) so that the images differ (e.g. fMRI
    slices from bottom to top of one volume, MNIST digits of different classes). ``n`` is
    capped at what exists.
    """
    check.count("n", n)
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
                      sizes=_sizes("quick")),
    # Paper scale: native sizes, ImageNet at 224×224 (the offline pack is 128×128, upsampled),
    # the paper preset's 1000 steps for every search. Searches get 4 images × 2 seeds per kind: at
    # 224×224 one costs about 10 min on one CPU core (the LeNet head has 37.6 M weights for 1000
    # classes; measured 570-620 s, README).
    "full": Settings(n=8, seeds=(0, 1, 2), steps=1000, optimisation_n=4, optimisation_seeds=(0, 1),
                     sizes=_sizes("full")),
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
    for (method, kind, seed), (x_hat, seconds) in zip(jobs, answers, strict=True):
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
    check.count("workers", workers)
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


FIGURES = ("plot_extremes", "plot_properties", "plot_psnr")


def __getattr__(name: str) -> object:
    """``rl.benchmark.plot_psnr`` and the other :data:`FIGURES`, imported on first use so that
    running the table does not import matplotlib."""
    if name in FIGURES:
        from . import benchmark_figures
        return getattr(benchmark_figures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
