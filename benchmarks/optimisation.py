"""Optimisation attacks (chapter 04): the paper's stabilisers, and our preset against published DLG.

    python benchmarks/optimisation.py                    # 20 seeds, 32×32 images (hours on a 2-core CPU)
    python benchmarks/optimisation.py --seeds 5 --size 16   # minutes
    python benchmarks/optimisation.py --smoke            # seconds: checks that the script runs

Seed s attacks CIFAR-100 image s (the offline sample pack) behind a victim seeded with s, with
the dummy seeded with s. Success: image MSE < 1e-3 (iDLG's criterion; for a batch, every
image after Hungarian matching). Parts, each a table, all written to
``benchmarks/results/optimisation.json``:

1. **target** — in one run, side by side: the faithful published DLG loop
   (``benchmarks/dlg_reference.py``: LeNet-DLG, Gaussian init, joint soft label, L-BFGS lr 1,
   300 × 20 iterations) against our ``"fast"`` preset (uniform init, iDLG label, box penalty,
   compact L-BFGS with memory 500 (``rl.lbfgs``), early stop at a matching loss of 1e-6 or
   1e-8 · ‖g*‖²).
   Reports both success rates, the reference's median attack time, our median time to success
   and their ratio (target: ≥ 90 % success and ratio ≤ 1/3).
2. **stabilisers** — LeNet-DLG, the published optimiser, Gaussian vs uniform init × DLG vs iDLG
   label × with/without box prior: success rate, median steps and seconds to success.
3. **fc** — the same eight configurations on a sigmoid MLP (64 hidden units).
4. **batches** — B = 2, 4, 8 on the MLP (h = 64 ≥ B), ``"fast"`` preset with and without the
   orthogonality regulariser.

Attack times exclude building the victim and the message. Use ``--threads 1`` on a shared CPU.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import recon_lib as rl  # noqa: E402
from benchmarks.dlg_reference import run_dlg  # noqa: E402
from recon_lib.widgets import optimisation as wo  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "optimisation.json"
BEST = dict(preset="fast")


def target(seeds: list[int], size: int, steps: int) -> dict:
    """Published DLG vs our best preset on the same victims and images, in one run."""
    reference, ours = [], []
    for s in seeds:
        victim = wo.client(index=s, seed=s, size=size)
        start = time.perf_counter()
        ref = run_dlg(victim.model, victim.message, (3, size, size), 100, steps=steps, seed=s)
        seconds = time.perf_counter() - start
        mse = float(rl.metrics.mse(ref["image"][None], victim.x))
        reference.append(dict(seed=s, success=mse < wo.SUCCESS_MSE, mse=mse, seconds=seconds))
        outcome = wo.attack(victim, seed=s, **BEST)
        ours.append(dict(seed=s, success=outcome.success, mse=outcome.mse,
                         seconds=outcome.result.seconds, steps=outcome.result.steps))
        print(f"  seed {s}: reference {seconds:.1f} s mse {mse:.1e} | ours "
              f"{outcome.result.seconds:.1f} s mse {outcome.mse:.1e}", flush=True)
    ref_time = statistics.median(r["seconds"] for r in reference)
    won = [r["seconds"] for r in ours if r["success"]]
    our_time = statistics.median(won) if won else math.nan
    return dict(reference=dict(success_rate=_rate(reference), median_attack_seconds=ref_time, runs=reference),
                ours=dict(settings=BEST, success_rate=_rate(ours), median_seconds_to_success=our_time,
                          runs=ours),
                time_ratio=our_time / ref_time)


def _rate(runs: list[dict]) -> float:
    return sum(r["success"] for r in runs) / len(runs)


def batches(seeds: list[int], size: int, sizes: tuple[int, ...]) -> list[dict]:
    """Batches on the MLP with and without the orthogonality regulariser ("fast" preset)."""
    rows = []
    for batch_size in sizes:
        configs = {f"B={batch_size}, λ⊥=0": dict(orthogonality=0.0),
                   f"B={batch_size}, λ⊥=1e-4": dict(orthogonality=1e-4)}
        rows += wo.study(configs, seeds, base=BEST, progress=False, victim="mlp", size=size,
                         batch_size=batch_size)
    return rows


def show(title: str, rows: list[dict]) -> None:
    print(f"\n{title}\n{'configuration':<38}{'success':>9}{'median steps':>14}{'median s':>10}")
    for row in rows:
        print(f"{row['config']:<38}{row['success_rate']:>9.0%}{row['median_steps']:>14.0f}"
              f"{row['median_seconds']:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--size", type=int, default=32, help="image side (DLG: 32)")
    parser.add_argument("--steps", type=int, default=300, help="reference DLG step calls")
    parser.add_argument("--parts", default="target,stabilisers,fc,batches")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="2 seeds, 8×8 images, few steps")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds, size, steps = (list(range(2)), 8, 5) if args.smoke else (list(range(args.seeds)), args.size, args.steps)
    parts = args.parts.split(",")
    report = dict(seeds=len(seeds), size=size, threads=args.threads, torch=torch.__version__,
                  machine=platform.platform(), device="cpu")
    if "target" in parts:
        print("target: published DLG vs our 'fast' preset")
        report["target"] = result = target(seeds, size, steps)
        print(f"reference: success {result['reference']['success_rate']:.0%}, median attack "
              f"{result['reference']['median_attack_seconds']:.1f} s | ours: success "
              f"{result['ours']['success_rate']:.0%}, median time to success "
              f"{result['ours']['median_seconds_to_success']:.1f} s | ratio {result['time_ratio']:.2f}")
    for part, victim in (("stabilisers", "lenet"), ("fc", "mlp")):
        if part in parts:
            report[part] = rows = wo.study(wo.STABILISERS, seeds, victim=victim, size=size,
                                           base={**wo.STUDY_BASE, **({"steps": 40} if args.smoke else {})})
            show(f"{part}: {victim}, {size}×{size}, published optimiser, stop at loss 1e-6", rows)
    if "batches" in parts:
        report["batches"] = rows = batches(seeds, size, (2, 4, 8))
        show("batches: MLP h=64, 'fast' preset, with/without orthogonality", rows)
    if not args.smoke:
        out = Path(args.out)
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
