"""Chapter 04 explorer: one gradient-matching attack re-run for any preset, init and step budget.

The logic is plain functions that tests call without a browser:

* :func:`client` plays the client: the DLG LeNet (or a sigmoid MLP) and one real image's
  FedSGD message;
* :func:`attack` plays the server with :func:`recon_lib.optimize.gradient_matching` and scores
  the result (the private image is used only to score);
* :func:`show` draws the loss curve next to the original and the reconstruction;
* :func:`stored_study` reads a stored over-seeds study and :func:`plot_study` draws it with
  95 % Wilson intervals on the success rates;
* :func:`explorer` wires a preset dropdown, an init dropdown, a step budget and an early-stop
  switch to them. The attacks stop early once the matching loss is small (``fast`` after ~100
  steps on a 32×32 photo), so past that step a larger budget draws the same figure: the title
  says where the run stopped, and with early stopping off every budget runs to its end.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from .. import datasets, fl, metrics, models, optimize, plot
from ..errors import scored_against_truth
from ..runtime import progress_bar

VICTIMS = ("lenet", "mlp")
INITS = ("uniform", "gaussian")  # the stabiliser study: the paper's start and DLG's
WEIGHTS = ("dlg", "pytorch")  # the victim's initialisation: DLG's U(±0.5) or PyTorch's default
SUCCESS_MSE = 1e-3  # iDLG's success criterion: image MSE below this
# Presets that fit whole images (gauss_newton needs span=True, i.e. a biased Linear first layer).
WHOLE_IMAGE_PRESETS = [name for name in optimize.PRESETS
                       if optimize.options(name).optimizer != "levenberg_marquardt"]


@dataclass
class Client:
    """What the client holds and sends: model, private image, label and message."""

    model: nn.Module
    x: Tensor
    y: Tensor
    message: dict[str, Tensor]


@dataclass
class Outcome:
    """One attack, scored against the private image."""

    result: optimize.Result
    original: Tensor
    mse: float
    psnr: float

    @property
    def success(self) -> bool:
        """iDLG's criterion: the image MSE is below :data:`SUCCESS_MSE`."""
        return self.mse < SUCCESS_MSE


def client(kind: str = "cifar100", index: int = 0, victim: str = "lenet", seed: int = 0,
           size: int = 32, batch_size: int = 1, weights: str = "dlg") -> Client:
    """A reproducible victim and the message of ``batch_size`` real size×size RGB images.

    ``victim="lenet"`` is the DLG LeNet; ``"mlp"`` a sigmoid MLP with 64 hidden units. Images
    ``index … index + batch_size − 1`` of ``kind`` (rl.datasets; indices wrap around the sample
    pack, so any seed has a victim), labels made distinct. ``weights="dlg"`` draws the LeNet's
    weights from DLG's U(−0.5, 0.5); ``"pytorch"`` keeps PyTorch's default initialisation
    (``reset_parameters``), what a model someone trains starts from.
    """
    if victim not in VICTIMS:
        raise ValueError(f"unknown victim {victim!r}; choose one of {VICTIMS}")
    if weights not in WEIGHTS:
        raise ValueError(f"unknown weights {weights!r}; choose one of {WEIGHTS}")
    x, y = datasets.load(kind, size=size)
    if batch_size > len(x):
        raise ValueError(f"batch_size {batch_size} exceeds the {len(x)} images of {kind!r}")
    picked = (index + torch.arange(batch_size)) % len(x)
    x = x[picked].expand(batch_size, 3, size, size).contiguous()
    y = y[picked] % 100
    y = y if len(set(y.tolist())) == batch_size else torch.arange(batch_size)  # distinct labels
    torch.manual_seed(seed)
    shape = (3, size, size)
    model = models.lenet_dlg(shape, 100) if victim == "lenet" else models.mlp(shape, [64], 100)
    if weights == "pytorch":
        torch.manual_seed(seed)
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.reset_parameters()
    return Client(model, x, y, fl.client_update(model, x, y))


def attack(victim: Client, preset: str | None = "stabilised", seed: int = 0, **overrides: Any) -> Outcome:
    """The server's attack on the client's message (:func:`optimize.gradient_matching`), scored.

    For a batch the reconstructions are paired with the originals first (:func:`metrics.match`)
    and the *worst* image's MSE and PSNR are reported: success means every image came back.
    """
    with scored_against_truth():
        result = optimize.gradient_matching(victim.model, victim.message, len(victim.x), preset=preset,
                                            seed=seed, progress=False, **overrides)
    images, _ = metrics.match(result.images.float(), victim.x)
    return Outcome(result, victim.x, float(metrics.mse(images, victim.x).max()),
                   float(metrics.psnr(images.clamp(0, 1), victim.x).min()))


# --- The stabiliser study: configurations × seeds ------------------------------------------------
# The published DLG optimiser (L-BFGS, lr 1, no line search, memory 100) for every configuration,
# so that only the stabiliser changes; every run stops early at iDLG's matching loss of 1e-6.
STUDY_BASE = dict(preset="dlg", tol=1e-6)
STABILISERS = {f"{init} init, {'DLG' if label == 'joint' else 'iDLG'} label{', box' if box else ''}":
               dict(init=init, label=label, box=box)
               for init in INITS for label in ("joint", "recover") for box in (None, "penalty")}


def study(configs: dict[str, dict], seeds: range | list[int], base: dict | None = None,
          progress: bool = True, **client_options: Any) -> list[dict]:
    """Each configuration on each seed (seed s: image s, victim seeded with s, dummy seeded with s).

    Returns one row per configuration: success rate (every image MSE < :data:`SUCCESS_MSE`), the
    median steps and seconds of the successful runs (time to success), and the per-seed runs.
    """
    base = dict(STUDY_BASE if base is None else base)
    clients = {s: client(index=s, seed=s, **client_options) for s in seeds}
    rows = []
    for name, overrides in progress_bar(configs.items(), enabled=progress, desc="configurations"):
        runs = []
        for s in seeds:
            outcome = attack(clients[s], seed=s, **{**base, **overrides})
            runs.append(dict(seed=s, success=outcome.success, mse=outcome.mse,
                             steps=outcome.result.steps, seconds=outcome.result.seconds))
        won = [r for r in runs if r["success"]]
        steps, seconds = [r["steps"] for r in won], [r["seconds"] for r in won]
        rows.append(dict(config=name, success_rate=len(won) / len(runs),
                         median_steps=float(np.median(steps)) if won else float("nan"),
                         median_seconds=float(np.median(seconds)) if won else float("nan"),
                         runs=runs))
    return rows


def stopping_note(result: optimize.Result) -> str:
    """Where the run stopped against its budget: "stopped early at step 110 of 300" or
    "all 300 steps" (the loss curve then ends at the budget)."""
    budget = result.options.steps
    if result.steps < budget:
        return f"stopped early at step {result.steps} of {budget} (loss below its threshold)"
    return f"all {budget} steps"


def show(outcome: Outcome, title: str = "") -> Figure:
    """The matching loss per evaluation (log scale) beside the original and the reconstruction."""
    figure, (curve, left, right) = plt.subplots(1, 3, figsize=(11, 3.3),
                                                gridspec_kw=dict(width_ratios=[1.6, 1, 1]))
    result = outcome.result
    curve.semilogy(result.losses.clamp_min(1e-30).numpy())
    curve.set(xlabel="evaluation of the matching loss", ylabel="gradient distance",
              title=f"{stopping_note(result)}, {result.seconds:.1f} s")
    plot.show(left, outcome.original[0], "original (private)", colorbar=False)
    plot.show(right, result.images[0].float().clamp(0, 1),
              f"MSE {outcome.mse:.1e} ({'success' if outcome.success else 'failure'})")
    figure.suptitle(title or f"loss {result.loss:.1e}, PSNR {outcome.psnr:.1f} dB")
    figure.tight_layout()
    return figure


def stored_study(path: str | Path, part: str = "stabilisers") -> list[dict]:
    """One table of a stored study printout (``benchmarks/results/optimisation_20seeds.txt``).

    Args:
        path: the printout; its first line is the command, which names ``--seeds N``.
        part: the table's heading (``"stabilisers"`` or ``"fc"``).

    Returns:
        One row per configuration: ``config``, ``seeds``, ``successes`` (the printed rate times
        the seeds, checked to be a whole number), ``median_steps`` and ``median_seconds``.
    """
    lines = Path(path).read_text().splitlines()
    command = re.search(r"--seeds (\d+)", lines[0]) if lines else None
    if command is None:
        raise ValueError(f"{path}: the first line must be the command, naming --seeds N")
    seeds = int(command.group(1))
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{part}:"))
    rows = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        row = re.match(r"(.+?)\s+(\d+)%\s+(\S+)\s+(\S+)$", line)
        if row is None:
            raise ValueError(f"{path}: {line!r} is not a row 'config  rate%  steps  seconds'")
        config, rate, steps, seconds = row.groups()
        successes = int(rate) * seeds / 100
        if abs(successes - round(successes)) > 0.005 * seeds + 1e-9:   # the rate is rounded to 1 %
            raise ValueError(f"{path}: a success rate of {rate} % is not a whole number of {seeds} seeds")
        rows.append(dict(config=config, seeds=seeds, successes=round(successes),
                         median_steps=float(steps), median_seconds=float(seconds)))
    return rows


def plot_study(rows: list[dict], title: str) -> Figure:
    """Success rate with its 95 % Wilson interval, and median steps to success, per configuration."""
    from scipy.stats import binomtest

    names = [row["config"] for row in rows]
    rates = np.array([row["successes"] / row["seeds"] for row in rows])
    intervals = [binomtest(row["successes"], row["seeds"]).proportion_ci(method="wilson") for row in rows]
    errors = np.array([[rate - ci.low, ci.high - rate] for rate, ci in zip(rates, intervals, strict=True)]).T
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 1.6))
    left.barh(names, rates, xerr=errors, capsize=3, color="tab:blue", ecolor="black")
    left.set(xlabel="success rate (image MSE < 1e-3); black: 95 % Wilson interval", xlim=(0, 1.05),
             title="reliability")
    right.barh(names, [row["median_steps"] for row in rows], color="tab:orange")
    right.set(xlabel="median L-BFGS steps to success", title="speed (stored medians: no interval)")
    right.set_yticklabels([])
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def explorer_attack(victim: Client, preset: str, init: str, steps: int, seed: int,
                    stop_early: bool = True) -> Outcome:
    """One explorer run: ``stop_early=False`` turns the loss thresholds off (``tol = rtol = 0``),
    so the budget ``steps`` is always used up and every slider position shows a different run."""
    thresholds = {} if stop_early else dict(tol=0.0, rtol=0.0)
    return attack(victim, preset, seed=seed, init=init, steps=steps, **thresholds)


def explorer(victim: Client):
    """Preset and init dropdowns, a step-budget slider and an early-stop switch; re-runs the
    attack on change and titles the figure with where it stopped (:func:`stopping_note`)."""
    import ipywidgets as widgets

    def update(preset: str, init: str, steps: int, stop_early: bool, seed: int) -> None:
        outcome = explorer_attack(victim, preset, init, steps, seed, stop_early)
        show(outcome, f"preset {preset!r}, init {init}: {stopping_note(outcome.result)}")
        plt.show()

    return widgets.interactive(
        update, preset=widgets.Dropdown(options=WHOLE_IMAGE_PRESETS, value="fast", description="preset"),
        init=widgets.Dropdown(options=optimize.CHOICES["init"], value="uniform", description="init"),
        steps=widgets.IntSlider(60, 10, 300, step=10, description="step budget"),
        stop_early=widgets.Checkbox(True, description="stop early"),
        seed=widgets.IntSlider(0, 0, 9, description="seed"))
