"""How long ``rl.datasets.load`` takes from the offline sample pack, per kind.

    python benchmarks/datasets_load.py            # prints a table, writes results/datasets_load.json

Each notebook loads its images once, so these times bound the data cost of a chapter: the
column "native" is the whole pack at its stored size, "size=32" adds the antialiased resize.
Times are medians of ``--repeats`` runs; with ``--device cuda`` each load includes the copy to
the GPU (``.to(device)``, synchronised).
"""
from __future__ import annotations

import argparse
import functools
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


def median_ms(call, repeats: int) -> float:
    """Median wall time of ``call()`` in milliseconds (one untimed warm-up run first)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def load(name: str, device: torch.device, size: int | None = None) -> None:
    """Load the kind ``name`` and move its images to ``device``: what a chapter pays."""
    rl.datasets.load(name, size=size)[0].to(device)
    common.synchronize(device)


def measure(repeats: int, device: torch.device = common.CPU) -> list[dict]:
    rows = []
    for name in rl.datasets.NAMES:
        x, _ = rl.datasets.load(name)
        pack = rl.datasets.DATA_DIR / f"{name}.npz"
        rows.append({
            "name": name, "shape": list(x.shape),
            "pack_kB": round(pack.stat().st_size / 1e3, 1) if pack.exists() else None,
            "native_ms": round(median_ms(functools.partial(load, name, device), repeats), 2),
            "size32_ms": round(median_ms(functools.partial(load, name, device, size=32), repeats), 2),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="time rl.datasets.load per kind")
    parser.add_argument("--repeats", type=int, default=5)
    common.add_device_argument(parser)
    args = parser.parse_args()
    repeats, device = args.repeats, common.chosen_device(args.device)
    rows = measure(repeats, device)
    print(f"{'kind':9s} {'shape':20s} {'pack kB':>8s} {'native ms':>10s} {'size=32 ms':>11s}")
    for r in rows:
        pack = "-" if r["pack_kB"] is None else f"{r['pack_kB']:.1f}"
        print(f"{r['name']:9s} {str(tuple(r['shape'])):20s} {pack:>8s} "
              f"{r['native_ms']:10.2f} {r['size32_ms']:11.2f}")
    out = common.results_path("datasets_load", device)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "torch": torch.__version__,
                               "threads": torch.get_num_threads(), "repeats": repeats,
                               "device": device.type, "rows": rows,
                               "command": " ".join(["python benchmarks/datasets_load.py", *sys.argv[1:]])},
                              indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
