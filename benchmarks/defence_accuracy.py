"""Chapter 07's test accuracies over seeds, with 95 % confidence intervals.

    python benchmarks/defence_accuracy.py                 # 10 seeds, 20 rounds (chapter 07's quick lab)
    python benchmarks/defence_accuracy.py --seeds 20 --rounds 100
    python benchmarks/defence_accuracy.py --device cuda   # defence_accuracy_cuda.json

The chapter trains each defended model once (one seed) and scores it on 100 test digits, which is
too little to rank defences by accuracy. This script repeats the training of chapter 07's lab
(``rl.privacy_utility.mnist_lab``: sigmoid MLP 784→8→10, 10 clients, FedSGD) for every defence at
its *off* and *recommended* settings and for the undefended baseline, on ``--seeds`` seeds (seed s
draws the initial model and the clients' batches and noise), and reports the mean accuracy with a
95 % Student-t interval over seeds. No attack runs here. Writes
``benchmarks/results/defence_accuracy.json`` (``defence_accuracy_cuda.json`` with ``--device cuda``:
the lab's data and model on the GPU). Times are from a shared machine; never asserted.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402
from recon_lib import defences as D  # noqa: E402
from recon_lib import privacy_utility as PU  # noqa: E402


def interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the Student-t confidence interval of the mean over seeds."""
    mean = statistics.fmean(values)
    half = stats.t.ppf((1 + level) / 2, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def settings_to_run() -> list[tuple[str | None, float]]:
    """The baseline, then every defence at its off and recommended strengths."""
    return [(None, 0.0)] + [(name, strength) for name, defence in D.DEFENCES.items()
                            for strength in (defence.off, defence.recommended)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (0, 1, ...)")
    parser.add_argument("--rounds", type=int, default=20, help="federated training rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    common.add_device_argument(parser)
    args = parser.parse_args()
    device = common.chosen_device(args.device)
    results = common.results_path("defence_accuracy", device)
    torch.set_num_threads(args.threads)
    common.synchronize(device)
    start = time.perf_counter()
    accuracies: dict[tuple[str | None, float], list[float]] = {key: [] for key in settings_to_run()}
    for seed in range(args.seeds):
        lab = PU.mnist_lab(rounds=args.rounds, seed=seed, device=device)
        for name, strength in accuracies:
            row = PU.measure(name, strength, lab, attacks=(), seed=seed)
            accuracies[name, strength].append(row["accuracy"])
    rows = []
    for (name, strength), values in accuracies.items():
        mean, low, high = interval(values)
        rows.append(dict(defence=name or "none", strength=strength, mean=mean, ci95=[low, high],
                         accuracies=values))
        print(f"{name or 'none':20s} {strength:>6g}  accuracy {mean:.3f}  95 % CI [{low:.3f}, {high:.3f}]")
    common.synchronize(device)
    total = time.perf_counter() - start
    command = f"python benchmarks/defence_accuracy.py --seeds {args.seeds} --rounds {args.rounds}" + \
        (f" --device {args.device}" if args.device != "cpu" else "")
    settings = dict(seeds=args.seeds, rounds=args.rounds, n_test=100, lab="mnist_lab(width=8)",
                    threads=args.threads, torch=torch.__version__, machine=platform.machine(),
                    total_seconds=total, command=command, device=device.type, where=common.machine(device))
    results.write_text(json.dumps(dict(settings=settings, rows=rows), indent=1))
    print(f"total {total:.0f} s; wrote {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
