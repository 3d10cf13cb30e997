"""Exact inversion through convolutions at ImageNet size (chapter 03), and the at-the-bound finding.

    python benchmarks/conv.py              # 3×224×224, a few repeats (about a minute on a CPU)
    python benchmarks/conv.py --smoke      # seconds: 3×32×32, to check the script runs
    python benchmarks/conv.py --threads 2  # torch intra-op threads (default 1: see below)

Prints tables and writes ``benchmarks/results/conv.json``:

(a) **Headline.** One real ImageNet photo (``rl.datasets.load("imagenet", size=224)``: the
    sample pack's 128×128 foolbox photo, resized) behind a sigmoid CNN with two stride-1 "same"
    3×3 convs, 3→4→5 kernels (each one kernel above its bound h ≥ C), then Flatten and a linear
    head. ``rl.analytic.invert_cnn`` recovers the image from the client's message alone: time
    (median of repeats), PSNR/SSIM, CGLS iterations per layer, and the peak resident memory of
    the process (``resource.getrusage``), against the 121 GB a dense float32 A of the first
    layer alone would need.
(b) Same with 5×5 kernels.
(c) **Conditioning vs h** for one 3→h 5×5 "same" conv at 224×224: the condition number
    (periodic-border estimate, ``rl.conv.condition_number(dense=False)``) and what CGLS
    reaches within a fixed budget of iterations. At h = C (exactly on the bound) the system is
    square but badly conditioned and the solver stalls; one extra kernel fixes it.
(d) **The stretch: more equations instead of a preconditioner.** The same at-the-bound conv
    in a sigmoid CNN, inverted from the message with and without the conv's weight-gradient
    equations (``invert_cnn(weight_grads=True)``).
(e) The DLG LeNet inverted in closed form with the weight-gradient equations.

Threads: the default is one intra-op thread. On a shared 2-core machine two threads
oversubscribed and ran up to 10× slower; on a quiet machine try ``--threads 2``.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import recon_lib as rl  # noqa: E402
from benchmarks import common  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def headline(x: torch.Tensor, kernel_size: int, repeats: int) -> dict:
    """Invert a two-layer 3→4→5 sigmoid CNN on one image; median time over ``repeats``."""
    torch.manual_seed(0)
    shape = tuple(x.shape[1:])
    model = rl.models.cnn(shape, [4, 5], 10, kernel_size=kernel_size, padding=kernel_size // 2).to(x.device)
    grads = rl.fl.client_update(model, x, torch.tensor([3], device=x.device))
    before = peak_rss_mb()  # model, message and image are in memory; the attack adds the rest
    times: list[float] = []
    stages: list = []
    for _ in range(repeats):
        start = time.perf_counter()
        stages = rl.analytic.invert_cnn_stages(model, grads, shape)
        common.synchronize(x.device)
        times.append(time.perf_counter() - start)
    image = stages[-1][1]
    bounds = [rl.conditions.min_kernels(shape[1], c, kernel_size, 1, kernel_size // 2) for c in (3, 4)]
    return {"in_shape": list(shape), "kernels": [4, 5], "bounds": bounds, "kernel_size": kernel_size,
            "seconds": statistics.median(times), "best_seconds": min(times), "repeats": repeats,
            "iterations": [info.iterations for _, _, info in stages[1:]],
            "psnr_db": float(rl.metrics.psnr(image, x[0])), "ssim": float(rl.metrics.ssim(image, x[0])),
            "max_abs_error": float((image - x[0]).abs().max()), "peak_rss_mb": peak_rss_mb(),
            "peak_rss_before_attack_mb": before,
            "dense_matrix_gb": 4 * 4 * shape[1] * shape[2] * x[0].numel() / 1e9}


def conditioning(x: torch.Tensor, kernels: list[int], budgets: list[int]) -> list[dict]:
    """Condition number and CGLS progress of one 3→h 5×5 same conv, for each h."""
    rows = []
    for h in kernels:
        torch.manual_seed(0)
        layer = nn.Conv2d(3, h, 5, padding=2).to(x.device)
        y = rl.conv.ConvMap.of(layer, x.shape[1:]).apply(x)
        row = {"h": h, "bound": rl.conditions.min_kernels(x.shape[-1], 3, 5, 1, 2),
               "condition_number": rl.conv.condition_number(layer, x.shape[1:], dense=False)}
        for budget in budgets:
            start = time.perf_counter()
            recovered, info = rl.conv.solve(layer, y, x.shape[1:], tol=1e-9, max_iter=budget)
            row[f"psnr_db@{budget}"] = float(rl.metrics.psnr(recovered, x)[0])
            common.synchronize(x.device)
            row[f"seconds@{budget}"] = time.perf_counter() - start
        rows.append(row)
    return rows


def at_the_bound(x: torch.Tensor, budgets: list[int]) -> list[dict]:
    """A sigmoid CNN with one 3→3 5×5 same conv (exactly on the bound): forward equations only
    vs with the conv's weight-gradient equations (``invert_cnn(weight_grads=True)``)."""
    torch.manual_seed(0)
    model = rl.models.cnn(tuple(x.shape[1:]), [3], 10, kernel_size=5, padding=2).to(x.device)
    grads = rl.fl.client_update(model, x, torch.tensor([3], device=x.device))
    rows = []
    for weight_grads in (False, True):
        row: dict[str, float] = {"weight_grads": weight_grads}
        for budget in budgets:
            start = time.perf_counter()
            with warnings.catch_warnings():  # a budget too small to converge is what this measures
                warnings.simplefilter("ignore", rl.ReconstructionWarning)
                image = rl.analytic.invert_cnn(model, grads, strict=False, tol=1e-9, max_iter=budget,
                                               weight_grads=weight_grads)
            common.synchronize(x.device)
            row[f"seconds@{budget}"] = time.perf_counter() - start
            row[f"psnr_db@{budget}"] = float(rl.metrics.psnr(image, x[0]))
        rows.append(row)
    return rows


def lenet(repeats: int, device: torch.device) -> dict:
    """The DLG LeNet (3×32×32, 12 kernels per conv, second conv far below the forward bound)
    inverted in closed form with the weight-gradient equations, on one real CIFAR-100 image."""
    x, y = rl.datasets.load("cifar100", n=1)
    x, y = x.to(device), y.to(device)
    torch.manual_seed(0)
    model = rl.models.lenet_dlg((3, 32, 32), 100).to(device)
    grads = rl.fl.client_update(model, x, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        stages = rl.analytic.invert_cnn_stages(model, grads, tol=1e-7, max_iter=2000, weight_grads=True)
        common.synchronize(device)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "repeats": repeats,
            "iterations": [info.iterations for _, _, info in stages[1:]],
            "psnr_db": float(rl.metrics.psnr(stages[-1][1], x[0]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    common.add_device_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = common.chosen_device(args.device)
    size, repeats, budgets = (32, 1, [20, 60]) if args.smoke else (224, 5, [100, 300, 1000])
    x, _ = rl.datasets.load("imagenet", n=1, size=size)
    x = x.to(device)
    results = {"device": device.type, "command": " ".join(["python benchmarks/conv.py", *sys.argv[1:]]),
               "threads": args.threads, "torch": torch.__version__,
               "machine": platform.processor() or platform.machine(), "smoke": args.smoke,
               "image": f"rl.datasets.load('imagenet', n=1, size={size})",
               "headline_3x3": headline(x, 3, repeats), "headline_5x5": headline(x, 5, repeats),
               "conditioning_5x5": conditioning(x, [3, 4, 5, 6], budgets),
               "at_the_bound_weight_grads": at_the_bound(x, budgets),
               "lenet_weight_grads": lenet(1 if args.smoke else 3, device)}
    print(f"(a,b) invert_cnn, 3×{size}×{size} ImageNet photo, sigmoid CNN 3→4→5 same convs, "
          f"{args.threads} thread(s)")
    print(f"{'kernel':>7} {'bounds':>7} {'seconds':>8} {'iters':>10} {'PSNR dB':>8} {'SSIM':>6} "
          f"{'peak RSS MB':>12}")
    for key in ("headline_3x3", "headline_5x5"):
        r = results[key]
        print(f"{r['kernel_size']:>5}x{r['kernel_size']} {str(r['bounds']):>7} {r['seconds']:8.2f} "
              f"{str(r['iterations']):>10} {r['psnr_db']:8.1f} {r['ssim']:6.3f} {r['peak_rss_mb']:12.0f}")
    print(f"(peak RSS before the first attack {results['headline_3x3']['peak_rss_before_attack_mb']:.0f} MB, "
          "mostly PyTorch itself; dense A of the first layer alone: "
          f"{results['headline_3x3']['dense_matrix_gb']:.0f} GB in float32)")
    print(f"\n(c) one 3→h 5×5 same conv at {size}×{size}: condition number and CGLS within a budget")
    print(f"{'h':>3} {'cond':>9} " + " ".join(f"{'dB@' + str(b):>8} {'s@' + str(b):>7}" for b in budgets))
    for row in results["conditioning_5x5"]:
        print(f"{row['h']:>3} {row['condition_number']:9.1f} " + " ".join(
            f"{row[f'psnr_db@{b}']:8.1f} {row[f'seconds@{b}']:7.2f}" for b in budgets))
    print("\n(d) sigmoid CNN, one 3→3 5×5 same conv (on the bound): invert_cnn within a budget")
    print(f"{'equations':>22} " + " ".join(f"{'dB@' + str(b):>8} {'s@' + str(b):>7}" for b in budgets))
    for row in results["at_the_bound_weight_grads"]:
        name = "forward + weight grad" if row["weight_grads"] else "forward only"
        print(f"{name:>22} " + " ".join(f"{row[f'psnr_db@{b}']:8.1f} {row[f'seconds@{b}']:7.2f}"
                                        for b in budgets))
    r = results["lenet_weight_grads"]
    print(f"\n(e) DLG LeNet 3×32×32, closed form with weight-gradient equations: {r['seconds']:.2f} s, "
          f"{r['psnr_db']:.1f} dB, CGLS iterations per conv {r['iterations']}")
    if not args.smoke:
        out = common.results_path("conv", device)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
