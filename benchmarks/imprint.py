"""Chapter 09's measurements: the imprint module (Fowl et al. 2022) and trap weights (Boenisch et al. 2023).

    python benchmarks/imprint.py --threads 1          # about a minute on a CPU
    python benchmarks/imprint.py --threads 1 --seeds 5  # fewer seeds for the goal line
    python benchmarks/imprint.py --device cuda          # on a GPU: benchmarks/results/imprint_cuda.json

Prints the goal line (B = 64 CIFAR-100 images, 128 bins: fraction at >= 40 dB over seeds with a
95 % interval, the attack's warm median time and the end-to-end time), the recovered fraction vs B and
bins (CIFAR-100 32x32, ImageNet at 64x64) next to the binomial expectation and the honest server's
span bound (h = 32), secure aggregation of N = 2-64 clients, DP-SGD, and trap weights. Writes
``benchmarks/results/imprint.json`` (``imprint_cuda.json`` with ``--device cuda``: models, messages
and attacks on the GPU; sampling the batches and the trap weights' final matching stay on the CPU).
The offline pack holds 20 CIFAR-100 and 20 ImageNet images;
batches larger than 20 add random crops of them (``rl.imprint.sample_batch``). Times come from a
shared machine; they are reported, never asserted.
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
from benchmarks import common  # noqa: E402
from recon_lib import fl, imprint  # noqa: E402
from recon_lib.widgets import malicious as mal  # noqa: E402


def goal(seeds: int, device: torch.device) -> dict:
    """B = 64, 128 bins on CIFAR-100: fraction per seed, and the attack's time."""
    fractions = [mal.run_case(128, 64, seed=s, device=device)["fraction"] for s in range(seeds)]
    x, y = (t.to(device) for t in imprint.sample_batch("cifar100", 64, seed=0))
    common.synchronize(device)
    start = time.perf_counter()
    planted = imprint.attach(mal.victim((3, 32, 32)).to(device), (3, 32, 32), 128)
    message = fl.client_update(planted, x, y)
    imprint.reconstruct(planted, message, return_bins=True)
    common.synchronize(device)
    end_to_end = time.perf_counter() - start
    times = []
    for _ in range(10):
        start = time.perf_counter()
        imprint.reconstruct(planted, message, return_bins=True)
        common.synchronize(device)
        times.append(time.perf_counter() - start)
    mean, spread = statistics.mean(fractions), statistics.stdev(fractions) if seeds > 1 else 0.0
    half = 1.96 * spread / seeds ** 0.5
    return {"seeds": seeds, "fractions": fractions, "mean": mean, "ci95": [mean - half, mean + half],
            "min": min(fractions), "expected": imprint.expected_fraction(64, 128),
            "end_to_end_s": end_to_end, "warm_median_s": statistics.median(times)}


def table(seeds: int, device: torch.device) -> list[dict]:
    """Recovered fraction vs B and bins, with the binomial expectation and the span bound."""
    rows = []
    for data, side in (("cifar100", None), ("imagenet", 64)):
        for batch in (8, 16, 32, 64, 128):
            bound = mal.span_bound(batch, data=data, side=side, device=device)
            for bins in (32, 128, 512):
                cases = [mal.run_case(bins, batch, data=data, side=side, seed=s, device=device)
                         for s in range(seeds)]
                rows.append({"data": data, "batch": batch, "bins": bins,
                             "fraction": statistics.mean(c["fraction"] for c in cases),
                             "alone": statistics.mean(c["alone"] for c in cases),
                             "expected": imprint.expected_fraction(batch, bins), "span_bound_h32": bound})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=10)
    common.add_device_argument(parser)
    args = parser.parse_args()
    device = common.chosen_device(args.device)
    out = common.results_path("imprint", device)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python benchmarks/imprint.py" + (f" --threads {args.threads}" if args.threads else "") + \
        (f" --seeds {args.seeds}" if args.seeds != 10 else "") + \
        (f" --device {args.device}" if args.device != "cpu" else "")
    start = time.perf_counter()
    result: dict[str, Any] = {"goal": goal(args.seeds, device)}
    g = result["goal"]
    print(f"GOAL  B = 64 CIFAR-100, 128 bins: {g['mean']:.0%} of the batch at >= 40 dB (95% CI "
          f"{g['ci95'][0]:.0%}-{g['ci95'][1]:.0%}, min {g['min']:.0%}, {args.seeds} seeds; binomial "
          f"{g['expected']:.0%}); attack {g['warm_median_s'] * 1e3:.0f} ms warm median, "
          f"{g['end_to_end_s']:.2f} s end to end (plant, client message, attack)   [{command}]", flush=True)
    result["table"] = table(min(args.seeds, 3), device)
    print(f"{'data':9} {'B':>4} {'bins':>5} {'recovered':>9} {'alone':>6} {'binomial':>8} {'span h=32':>9}")
    for r in result["table"]:
        print(f"{r['data']:9} {r['batch']:4d} {r['bins']:5d} {r['fraction']:9.0%} {r['alone']:6.0%} "
              f"{r['expected']:8.0%} {r['span_bound_h32']:9.0%}")
    result["secure_aggregation"] = [
        {k: v for k, v in mal.run_case(bins, 4, clients=n, device=device).items()
         if isinstance(v, (int, float, str))}
        for n in (2, 4, 8, 16, 32, 64) for bins in (128, 1024)]
    for r in result["secure_aggregation"]:
        print(f"secure aggregation N = {r['clients']:2d} x B = 4, {r['bins']:4d} bins: {r['fraction']:.0%} "
              f"(binomial {r['expected']:.0%})")
    result["dp"] = [mal.dp_case(s, gain=gain, device=device) for s in (0.0, 1e-4, 1e-2, 1.0)
                    for gain in (imprint.GAIN, 10.0)]
    for r in result["dp"]:
        print(f"DP-SGD sigma = {r['sigma']:g}, gain {r['gain']:g}: verified {r['fraction']:.0%}, best raw "
              f"candidate {r['best_raw_psnr']:.1f} dB")
    result["trap"] = [mal.trap_case(b, seed=s, device=device) for b in (8, 16, 32, 64) for s in range(3)]
    for b in (8, 16, 32, 64):
        mean = statistics.mean(r["fraction"] for r in result["trap"] if r["batch"] == b)
        print(f"trap weights, ReLU MLP 3072->1024, rate 0.02, B = {b}: {mean:.0%} of the batch exact "
              "(3 seeds)")
    result.update(command=command, seconds=time.perf_counter() - start, torch=torch.__version__,
                  threads=torch.get_num_threads(), machine=platform.machine(), device=device.type,
                  where=common.machine(device))
    out.write_text(json.dumps(result, indent=1))
    print(f"{result['seconds']:.0f} s; written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
