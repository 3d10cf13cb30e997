"""Where first-order matching stalls (chapter 02): repeated labels and the boundary h = B.

    python benchmarks/batch_repeated.py             # 5 batches per case (a few minutes)
    python benchmarks/batch_repeated.py --smoke     # 1 batch per case, B = 8

Two cases, each on fresh batches of real 28×28 MNIST digits (offline sample pack) behind a
fresh sigmoid MLP (784 → h → classes), attacked in the leaked span:

* ``repeated labels`` — B = 16 digits with their own labels (10 classes, so labels repeat),
  h = 32; the server reads the label *counts* (``rl.analytic.recover_label_counts``);
* ``boundary h = B`` — B = 16 digits with distinct labels (16-way head), h = 16; the server
  reads the labels with ``rl.analytic.recover_labels``.

Methods: ``span + LM`` (``rl.newton.solve_batch``, Levenberg–Marquardt) and ``span + L-BFGS``
(``rl.optimize.gradient_matching(span=True)``, 300 iterations as in notebook 02). Per case and
method: share of images at ≥ 30 dB and ≥ 40 dB after Hungarian matching, the share among images
whose label is unique in their batch vs shared, and the median seconds per batch (after one
warm-up). Prints a table and writes ``benchmarks/results/batch_repeated.json``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import recon_lib as rl  # noqa: E402
from benchmarks import common  # noqa: E402
from recon_lib.widgets import batches  # noqa: E402

CASES = {"repeated labels": dict(h_per_image=2, labeling="data", labels="counts"),
         "boundary h = B": dict(h_per_image=1, labeling="distinct", labels="distinct")}
METHODS = ("newton", "span")
NAMES = {"newton": "span + LM", "span": "span + L-BFGS"}


def on(device: torch.device, batch: batches.Batch) -> batches.Batch:
    """The client's batch with model, images, labels and message on ``device``."""
    model, message = common.on(device, batch.model, batch.message)
    return batches.Batch(model, batch.x.to(device), batch.y.to(device), message, batch.index)


def one_case(case: dict, batch_size: int, trials: int, digits, labels,
             device: torch.device = common.CPU) -> dict:
    """Attack ``trials`` fresh batches with each method; scores per image, time per batch."""
    h = case["h_per_image"] * batch_size
    rows: dict[str, dict[str, list]] = {NAMES[m]: dict(seconds=[], psnr=[], alone=[]) for m in METHODS}
    warm = on(device, batches.client_batch(digits, labels, batch_size, h, seed=999,
                                           labeling=case["labeling"]))
    for method in METHODS:
        batches.attack(warm, method, labels=case["labels"])
    for trial in range(trials):
        batch = on(device, batches.client_batch(digits, labels, batch_size, h, seed=trial,
                                                labeling=case["labeling"]))
        alone = [int((batch.y == y).sum()) == 1 for y in batch.y]
        for method in METHODS:
            start = time.perf_counter()
            outcome = batches.attack(batch, method, labels=case["labels"])
            common.synchronize(device)
            row = rows[NAMES[method]]
            row["seconds"].append(time.perf_counter() - start)
            row["psnr"] += outcome.psnr.clamp(max=200).tolist()
            row["alone"] += alone
    return {name: summary(row) for name, row in rows.items()} | {"h": h}


def share(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def summary(row: dict) -> dict:
    hits = [p >= 30 for p in row["psnr"]]
    pairs = list(zip(hits, row["alone"], strict=True))
    return dict(median_seconds=statistics.median(row["seconds"]), images=len(hits),
                share_30db=share(hits), share_40db=share([p >= 40 for p in row["psnr"]]),
                share_30db_label_unique=share([hit for hit, a in pairs if a]),
                share_30db_label_shared=share([hit for hit, a in pairs if not a]),
                min_psnr_db=min(row["psnr"]))


def percent(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.0%}"


def table(report: dict) -> str:
    lines = [f"B = {report['batch_size']}, {report['trials']} batches per case, 28x28 MNIST, "
             f"torch threads = {report['threads']}",
             f"{'case':<17}{'method':<15}{'s/batch':>8}{'>=30dB':>8}{'>=40dB':>8}"
             f"{'unique':>8}{'shared':>8}{'min dB':>8}"]
    for case, rows in report["cases"].items():
        for name in NAMES.values():
            row = rows[name]
            lines.append(f"{case:<17}{name:<15}{row['median_seconds']:>8.2f}{percent(row['share_30db']):>8}"
                         f"{percent(row['share_40db']):>8}{percent(row['share_30db_label_unique']):>8}"
                         f"{percent(row['share_30db_label_shared']):>8}{row['min_psnr_db']:>8.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="B = 8, one batch per case, no JSON")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared CPU)")
    common.add_device_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = common.chosen_device(args.device)
    batch_size, trials = (8, 1) if args.smoke else (16, args.trials)
    digits, labels = rl.datasets.load("mnist")
    report = dict(batch_size=batch_size, trials=trials, threads=args.threads,
                  cases={name: one_case(case, batch_size, trials, digits, labels, device)
                         for name, case in CASES.items()},
                  torch=torch.__version__, machine=platform.platform(), device=device.type,
                  command=" ".join(["python benchmarks/batch_repeated.py", *sys.argv[1:]]))
    print(table(report))
    if not args.smoke:
        out = common.results_path("batch_repeated", device)
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
