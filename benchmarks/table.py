"""The benchmark table of chapter 06: every method × every data kind, written to CSV and JSON.

    python benchmarks/table.py                       # the active profile ($RECON_PROFILE, default quick)
    RECON_PROFILE=full python benchmarks/table.py --workers 2 --name table_full
        # paper scale: native sizes, ImageNet 224×224; closed forms on 8 images × 3 seeds, the
        # 1000-step search on 4 images × 2 seeds; one process per CPU core (CUDA: leave --workers 1)
    python benchmarks/table.py --n 4 --seeds 0 1 --steps 300     # anything in between

Methods (``recon_lib.benchmark.METHODS``): the closed form of chapter 01 on a biased MLP, exact
CNN inversion of chapter 03 one kernel above Claim 3's bound, and chapter 04's two optimisation
presets ("stabilised", "fast") on the DLG LeNet. Prints the Markdown table (mean ± sample standard deviation
over images and seeds) and writes ``benchmarks/results/table.csv`` (one row per method, kind,
image and seed) and ``benchmarks/results/table.json`` (the settings, the summary, the run time).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import recon_lib as rl  # noqa: E402
from benchmarks.common import chosen_device  # noqa: E402
from recon_lib import benchmark as bm  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(bm.SETTINGS), default=None,
                        help="settings to start from (default: $RECON_PROFILE, else quick)")
    parser.add_argument("--n", type=int, help="images per kind (every method)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (every method)")
    parser.add_argument("--steps", type=int, help="optimiser step budget of each search (stabilised, fast)")
    parser.add_argument("--methods", nargs="+", default=list(bm.METHODS), choices=list(bm.METHODS),
                        help="methods to run (default: all)")
    parser.add_argument("--kinds", nargs="+", default=list(rl.datasets.NAMES), choices=rl.datasets.NAMES)
    parser.add_argument("--device", default=None, choices=("cpu", "cuda"),
                        help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--workers", type=int, default=1,
                        help="CPU processes attacking side by side, threads shared among them (default 1)")
    parser.add_argument("--name", default="table", help="output file stem")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="output folder (default benchmarks/results)")
    return parser.parse_args(argv)


def chosen_settings(args: argparse.Namespace) -> bm.Settings:
    """The profile's settings with the command-line overrides applied."""
    chosen = bm.settings(args.profile)
    changes: dict[str, Any] = {}
    if args.n is not None:
        changes.update(n=args.n, optimisation_n=args.n)
    if args.seeds is not None:
        changes.update(seeds=tuple(args.seeds), optimisation_seeds=tuple(args.seeds))
    if args.steps is not None:
        changes.update(steps=args.steps)
    return dataclasses.replace(chosen, **changes)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    chosen = chosen_settings(args)
    device = rl.device() if args.device is None else chosen_device(args.device)
    start = time.perf_counter()
    table = bm.run_profile(chosen, args.kinds, device, workers=args.workers, names=args.methods)
    total = time.perf_counter() - start
    summary = bm.summarise(table.rows)
    print(bm.format_table(summary))
    print(f"\ntotal {total:.0f} s on {device.type} ({platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, {args.workers} worker(s))")
    args.out.mkdir(parents=True, exist_ok=True)
    bm.write_csv(table.rows, args.out / f"{args.name}.csv")
    report = dict(settings={**dataclasses.asdict(chosen), "sizes": {k: v for k, v in chosen.sizes.items()}},
                  methods=args.methods, kinds=args.kinds, device=device.type,
                  gpu=torch.cuda.get_device_name() if device.type == "cuda" else None,
                  threads=torch.get_num_threads(), workers=args.workers, torch=torch.__version__,
                  python=platform.python_version(), total_seconds=total, summary=summary,
                  profile=args.profile or rl.profile(),
                  command=(f"RECON_PROFILE={args.profile or rl.profile()} python benchmarks/table.py "
                           + " ".join(argv if argv is not None else sys.argv[1:])))
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


if __name__ == "__main__":
    main()
