"""Batch reconstruction (chapter 02): the leaked span makes gradient matching exact and fast.

    python benchmarks/batch.py               # B = 16 real MNIST digits, h = 32 (about a minute)
    python benchmarks/batch.py --smoke       # seconds: B = 4, to check the script runs

The client holds B real 28×28 MNIST digits (the offline sample pack) with *distinct* labels:
MNIST has 10 digit classes, so the victim is a 16-way sigmoid MLP (784 → h → 16) and the client
labels its digits 0…15 in random order (the head needs at least B classes for distinct labels).
The server sees the model and the averaged message only; labels are read from the head's bias
gradient (``rl.analytic.recover_labels``). Each attack is scored per image after pairing with
the originals (``rl.metrics.match``, Hungarian assignment). Rows:

* ``span + LM`` — ``gradient_matching(preset="gauss_newton", span=True)``: B × r coefficients in
  the leaked span, solved by Levenberg–Marquardt (``rl.newton.solve_batch``);
* ``span + L-BFGS`` — the same coefficients, first-order (``preset=None, span=True``);
* ``unconstrained L-BFGS`` — every pixel free (``preset=None``), B · d unknowns.

Times are medians over ``--repeats`` after one warm-up (the first call of ``torch.func``
imports its compiler stack, a one-off second). Prints a table, the ratio of times, and writes
``benchmarks/results/batch.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import recon_lib as rl  # noqa: E402
from benchmarks import common  # noqa: E402

METHODS: dict[str, dict[str, Any]] = {
    "span + LM": dict(preset="gauss_newton", span=True),
    "span + L-BFGS": dict(preset=None, span=True, steps=1000, tol=1e-13),
    "unconstrained L-BFGS": dict(preset=None, span=False, steps=1000, tol=1e-13),
}


def client(batch_size: int, h: int, seed: int = 0,
           device: str = "cpu") -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, dict]:
    """B real MNIST digits with distinct labels behind a sigmoid MLP with h first-layer units."""
    x, _ = rl.datasets.load("mnist", n=batch_size, size=28)
    torch.manual_seed(seed)
    y = torch.randperm(max(batch_size, 10))[:batch_size]
    model = rl.models.mlp((1, 28, 28), [h], max(batch_size, 10))
    model, message = common.on(device, model, rl.fl.client_update(model, x, y))
    return model, x.to(device), y, message


def attack(model: torch.nn.Module, message: dict, batch_size: int, x: torch.Tensor,
           settings: dict) -> dict:
    """One timed attack (the server's side), then scored against the private batch."""
    start = time.perf_counter()
    result = rl.optimize.gradient_matching(model, message, batch_size, progress=False, **settings)
    common.synchronize(x.device)
    seconds = time.perf_counter() - start
    matched, _ = rl.metrics.match(result.images.float(), x)
    psnr = rl.metrics.psnr(matched, x).clamp(max=200)
    return dict(seconds=seconds, psnr_db=[round(float(p), 2) for p in psnr],
                min_psnr_db=float(psnr.min()), median_psnr_db=float(psnr.median()),
                images_at_40db=int((psnr >= 40).sum()), matching_loss=result.loss, steps=result.steps)


def run(batch_size: int, h: int, repeats: int, device: str = "cpu") -> dict:
    model, x, y, message = client(batch_size, h, device=device)
    rows = {}
    for name, settings in METHODS.items():
        attack(model, message, batch_size, x, settings)  # warm-up
        runs = [attack(model, message, batch_size, x, settings) for _ in range(repeats)]
        rows[name] = {**runs[-1], "seconds": statistics.median(r["seconds"] for r in runs),
                      "best_seconds": min(r["seconds"] for r in runs), "repeats": repeats}
    base = rows["span + LM"]["seconds"]
    for row in rows.values():
        row["time_ratio_vs_span_lm"] = row["seconds"] / base
    return dict(batch_size=batch_size, h=h, image="28x28 MNIST (sample pack)", rows=rows)


def table(report: dict) -> str:
    lines = [f"B = {report['batch_size']}, h = {report['h']}, {report['image']}, "
             f"torch threads = {report['threads']}",
             f"{'method':<22}{'seconds':>9}{'x span+LM':>11}{'min dB':>8}{'median dB':>11}"
             f"{'>=40 dB':>9}{'loss':>10}"]
    for name, row in report["rows"].items():
        lines.append(f"{name:<22}{row['seconds']:>9.2f}{row['time_ratio_vs_span_lm']:>11.1f}"
                     f"{row['min_psnr_db']:>8.1f}{row['median_psnr_db']:>11.1f}"
                     f"{row['images_at_40db']:>5}/{report['batch_size']:<3}{row['matching_loss']:>10.1e}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="B = 4, h = 8, one repeat")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared CPU)")
    common.add_device_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = common.chosen_device(args.device)
    size, h, repeats = (4, 8, 1) if args.smoke else (args.batch_size, args.hidden, args.repeats)
    report = run(size, h, repeats, device.type)
    report.update(threads=args.threads, device=device.type, torch=torch.__version__,
                  machine=platform.platform(), cpus=torch.get_num_threads(),
                  command=" ".join(["python benchmarks/batch.py", *sys.argv[1:]]))
    print(table(report))
    if not args.smoke:
        out = common.results_path("batch", device)
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
