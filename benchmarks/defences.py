"""Chapter 07's full privacy–utility curves: every defence × every strength × three attacks.

    python benchmarks/defences.py                 # full curves (minutes on a CPU)
    python benchmarks/defences.py --smoke         # seconds: two strengths, 3 rounds, 5 steps
    python benchmarks/defences.py --only dp prune # some defences only

For each defence of ``rl.defences.DEFENCES`` and each strength of its ``full`` sweep, on the
chapter's lab (``rl.defences.mnist_lab``: real MNIST digits, sigmoid MLP 784→8→10, 10 clients):
PSNR/SSIM of the closed form, the span attack and the optimisation attack (gradient matching,
preset "stabilised", given the true labels), the test accuracy after federated training under the
defence, DP-SGD's ε (Opacus RDP accountant, δ = 1e-5), and the wall time of the row. Prints a
table and writes ``benchmarks/results/defences.json``. Times come from a shared machine unless
you run it on a quiet one; they are reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402
from recon_lib import defences as D  # noqa: E402
from recon_lib import privacy_utility as PU  # noqa: E402


def run(names: list[str], rounds: int, steps: int, smoke: bool, device: torch.device) -> list[dict]:
    """One row per (defence, strength), plus the undefended baseline."""
    lab = PU.mnist_lab(rounds=rounds, steps=steps, device=device)
    start = time.perf_counter()
    rows = [dict(defence="none", knob="-", seconds=0.0, **PU.measure(None, 0, lab))]
    rows[0]["seconds"] = time.perf_counter() - start
    for name in names:
        defence = D.get(name)
        strengths = (defence.off, defence.recommended) if smoke else defence.full
        for strength in strengths:
            start = time.perf_counter()
            row = PU.measure(name, strength, lab)
            rows.append(dict(defence=name, knob=defence.knob, **row,
                             recommended=strength == defence.recommended,
                             seconds=time.perf_counter() - start))
            print(format_row(rows[-1]), flush=True)
    return rows


def format_row(row: dict) -> str:
    """One aligned line: defence, strength, PSNR/SSIM per attack, accuracy, ε, seconds."""
    cells = [f"{min(row.get(f'psnr_{k}', math.nan), 99):5.1f}/{row.get(f'ssim_{k}', math.nan):5.2f}"
             for k in PU.ATTACKS]
    epsilon = row["epsilon"]
    eps = "inf" if math.isinf(epsilon) else ">1000" if epsilon > 1000 else f"{epsilon:.2f}"
    mark = "*" if row.get("recommended") else " "
    return (f"{row['defence']:<19}{mark}{row['knob']:<20} {row['strength']:>7g} {cells[0]:>12} "
            f"{cells[1]:>12} {cells[2]:>12} {row['accuracy']:>6.2f} {eps:>8} {row['seconds']:>7.1f}")


HEADER = (f"{'defence':<20}{'knob':<20} {'value':>7} {'closed form':>12} {'span':>12} "
          f"{'optimisation':>12} {'acc':>6} {'ε':>8} {'s':>7}\n"
          f"{'(* = recommended)':<40} {'':>7} {'PSNR/SSIM':>12} {'PSNR/SSIM':>12} {'PSNR/SSIM':>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="off and recommended only, tiny sizes")
    parser.add_argument("--only", nargs="+", choices=sorted(D.DEFENCES), default=list(D.DEFENCES))
    parser.add_argument("--rounds", type=int, default=100, help="federated training rounds")
    parser.add_argument("--steps", type=int, default=300, help="gradient-matching iterations")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 on a shared machine)")
    common.add_device_argument(parser)
    args = parser.parse_args()
    device = common.chosen_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds, steps = (3, 5) if args.smoke else (args.rounds, args.steps)
    print(HEADER)
    start = time.perf_counter()
    rows = run(args.only, rounds, steps, args.smoke, device)
    print(format_row(rows[0]))
    total = time.perf_counter() - start
    print(f"total {total:.0f} s on {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads")
    out = common.results_path("defences", device)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = dict(rounds=rounds, steps=steps, smoke=args.smoke, lab="mnist_lab(width=8)",
                    n_clients=10, batch_size=8, lr=2.0, delta=1e-5, threads=torch.get_num_threads(),
                    torch=torch.__version__, machine=platform.machine(), total_seconds=total,
                    device=device.type, command=" ".join(["python benchmarks/defences.py", *sys.argv[1:]]))
    clean = [{k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in row.items()}
             for row in rows]
    out.write_text(json.dumps(dict(settings=settings, rows=clean), indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
