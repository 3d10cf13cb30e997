"""How fast is the closed form of chapter 01, and how does it compare with DLG?

    python benchmarks/closed_form.py            # full run (DLG: 300 L-BFGS steps, minutes on a CPU)
    python benchmarks/closed_form.py --smoke    # seconds: tiny sizes, to check the script runs
    python benchmarks/closed_form.py --skip-dlg # (a) and (b) only: seconds
    python benchmarks/closed_form.py --device cuda

Prints a table and writes ``benchmarks/results/closed_form.json``:

(a) one closed-form attack (``rl.analytic.reconstruct``) on one real 32×32×3 CIFAR-100 image
    behind a one-hidden-layer sigmoid MLP: time and error;
(b) throughput: N clients' one-image messages inverted at once (``rl.analytic.invert_linear``
    on an N×h×d tensor); creating the messages is excluded from the time. Beside it, timed
    side by side, a plain copy of the same N×h×d tensor (``torch.clone``; both allocate their
    result, as a caller's call would): the share of the copy's memory bandwidth the inversion
    reaches (target ≥ 50 % at every N) is (bytes it must move / its time) ÷ (bytes the copy
    moves / the copy's time), the median over repeats. The inversion must read N·h·(d + 1)
    numbers and write N·d, the copy reads and writes N·h·d: with h = 1 the share is the ratio
    of times (within 1/(2d)); with h = 8 a ratio of times would overstate it by 16/9;
(c) in the same run, the DLG baseline (``benchmarks/dlg_reference.py``: LeNet-DLG, L-BFGS,
    300 steps, Gaussian init, Euclidean gradient distance) on the same image, its time and
    error, and the time ratio DLG / closed form; plus DLG behind the same MLP as (a).

Times are medians over repeats after a warm-up, each repeat timing a loop of calls long
enough (≥ 2 ms) that the clock's resolution does not matter; on CUDA each loop ends with a
synchronisation. Whatever is compared (the three figures of (a), the inversion and the copy
of (b)) is timed side by side, loop after loop within each repeat, so that a busy spell of
a shared machine slows both sides of a ratio rather than one. Beside the wall time, the CPU
time of this process (``time.process_time``): on a machine shared with other processes it
leaves out the time spent waiting for a core.
The bare division ∂W₁ / ∂b₁ of the same message is timed as the floor any attack pays. The
targets (one image ≤ 10 µs through ``reconstruct``, ≥ 50 % of copy bandwidth) are printed with
the figures. On a shared 2-core machine use ``--threads 1``: two
torch threads competing with other processes made DLG ~30x slower there (thread
oversubscription), which is no fault of either attack.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import recon_lib as rl  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.dlg_reference import run_dlg  # noqa: E402

TARGET_SECONDS = 10e-6  # one 3×32×32 image through reconstruct
TARGET_COPY_SHARE = 0.5  # batched inversion vs a plain copy of the same tensor


def timed_side_by_side(fns: list[Callable[[], object]], repeats: int, warmup: int = 2,
                       device: torch.device | str = "cpu") -> list[dict]:
    """Median (and fastest) wall time of one call of each ``fn`` over ``repeats`` timed loops.

    Each loop runs its ``fn`` often enough to last ≥ 2 ms (so that microsecond calls are timed
    well); the median is the figure we report, the minimum shows what a quiet machine gives.
    The functions' loops alternate within each repeat: a slow spell of a shared machine then
    hits them alike, so the ratio of their times within a repeat (``samples``: per-call
    seconds of each repeat) is steadier than the ratio of two medians taken seconds apart.
    """
    numbers = [_loop_length(fn, warmup, device) for fn in fns]
    samples: list[list[tuple[float, float]]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, number, times in zip(fns, numbers, samples, strict=True):
            times.append(_time_loop(fn, number, device))
    return [dict(seconds=statistics.median(w for w, _ in times), best_seconds=min(w for w, _ in times),
                 repeats=repeats, loop=number, cpu_seconds=statistics.median(c for _, c in times),
                 samples=[w for w, _ in times], cpu_samples=[c for _, c in times])
            for number, times in zip(numbers, samples, strict=True)]


def _loop_length(fn: Callable[[], object], warmup: int, device: torch.device | str) -> int:
    """After ``warmup`` calls, how many calls of ``fn`` last about 2 ms."""
    for _ in range(warmup):
        fn()
    common.synchronize(device)
    start = time.perf_counter()
    fn()
    common.synchronize(device)
    return max(1, int(2e-3 / max(time.perf_counter() - start, 1e-9)))


def _time_loop(fn: Callable[[], object], number: int, device: torch.device | str) -> tuple[float, float]:
    """Wall and CPU seconds per call of ``number`` calls of ``fn`` (synchronised at the end)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(number):
        fn()
    common.synchronize(device)
    return (time.perf_counter() - start) / number, (time.process_time() - start_cpu) / number


def errors(x_hat: torch.Tensor, x: torch.Tensor) -> dict:
    """Max absolute pixel error, MSE and PSNR of one image."""
    return dict(max_abs_error=float((x_hat - x).abs().max()), mse=float(rl.metrics.mse(x_hat, x)),
                psnr_db=float(rl.metrics.psnr(x_hat, x)))


def one_attack(image: torch.Tensor, label: int, width: int, repeats: int, device: str = "cpu") -> list[dict]:
    """(a) The closed form on one message, twice: the whole ``reconstruct`` (finding the first
    layer by tracing the model, inverting, reshaping) and the arithmetic alone (``invert_linear``)."""
    rl.seed_everything(0)
    image = image.to(device)
    model = rl.models.mlp(image.shape, [width], n_classes=100).to(device)
    message = rl.fl.client_update(model, image[None], torch.tensor([label], device=device))
    model_name = f"MLP 3072-{width}-100 sigmoid"
    pair = message["1.weight"], message["1.bias"]
    whole, arithmetic, bare = map(_no_samples, timed_side_by_side(
        [lambda: rl.analytic.reconstruct(model, message), lambda: rl.analytic.invert_linear(*pair),
         lambda: pair[0][0] / pair[1][0]], repeats, device=device))
    x_hat = rl.analytic.reconstruct(model, message)
    return [dict(part="a", attack="closed form (reconstruct)", model=model_name, n_images=1,
                 **whole, images_per_second=1 / whole["seconds"], **errors(x_hat, image)),
            dict(part="a", attack="closed form (invert_linear only)", model=model_name, n_images=1,
                 **arithmetic, images_per_second=1 / arithmetic["seconds"],
                 **errors(rl.analytic.invert_linear(*pair).reshape(image.shape), image)),
            dict(part="a", attack="bare division dW_1 / db_1 (no checks)", model=model_name, n_images=1,
                 **bare, images_per_second=1 / bare["seconds"],
                 **errors((pair[0][0] / pair[1][0]).reshape(image.shape), image))]


def throughput(images: torch.Tensor, n: int, width: int, repeats: int, device: str = "cpu") -> dict:
    """(b) N one-image messages inverted in one vectorised call (message creation not timed),
    and a plain copy of the same N×h×d tensor, timed side by side in the same run.

    The share of the copy's bandwidth counts the bytes each must move: the copy reads and
    writes N·h·d numbers, the inversion reads N·h·(d + 1) and writes N·d, so with h = 1 it is
    the ratio of times and with h > 1 the inversion has less to move than the copy.
    """
    rl.seed_everything(0)
    x = images[torch.arange(n) % len(images)].to(device)        # the 20 real images, repeated
    model = rl.models.mlp(x.shape[1:], [width], n_classes=100).to(device)
    messages = rl.fl.client_updates(model, x, torch.randint(0, 100, (n,)).to(device))
    grad_weight, grad_bias = messages["1.weight"], messages["1.bias"]
    timing, copy = timed_side_by_side([lambda: rl.analytic.invert_linear(grad_weight, grad_bias),
                                       lambda: grad_weight.clone()], repeats, device=device)
    moved = (grad_weight.numel() + grad_bias.numel() + x[0].numel() * n) / (2 * grad_weight.numel())
    x_hat = rl.analytic.invert_linear(grad_weight, grad_bias).reshape(x.shape)
    worst = float((x_hat - x).abs().max())
    return dict(part="b", attack="closed form (invert_linear, batched)",
                model=f"MLP 3072-{width}-100 sigmoid", n_images=n, **_no_samples(timing),
                images_per_second=n / timing["seconds"], max_abs_error=worst,
                copy_seconds=copy["seconds"], bytes_vs_copy=moved,
                copy_share=moved * _median_ratio(copy["samples"], timing["samples"]),
                copy_share_cpu=moved * _median_ratio(copy["cpu_samples"], timing["cpu_samples"]),
                mse=float(rl.metrics.mse(x_hat, x).max()), psnr_db=float(rl.metrics.psnr(x_hat, x).min()))


def _median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median over repeats of numerator / denominator (each pair timed side by side)."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def _no_samples(timing: dict) -> dict:
    """``timing`` without its per-repeat lists (kept out of the table and the JSON rows)."""
    return {key: value for key, value in timing.items() if not key.endswith("samples")}


def dlg_baseline(image: torch.Tensor, label: int, steps: int, width: int | None = None,
                 device: str = "cpu") -> dict:
    """(c) DLG on the same image (one run: it is deterministic and slow).

    By default behind the DLG LeNet, DLG's own victim; with ``width`` behind the same one-hidden-
    layer MLP the closed form attacks, for a same-model comparison.
    """
    rl.seed_everything(0)
    if width is None:
        model, model_name = rl.models.lenet_dlg(image.shape, n_classes=100), "LeNet-DLG 3x32x32-100"
    else:
        model = rl.models.mlp(image.shape, [width], n_classes=100)
        model_name = f"MLP 3072-{width}-100 sigmoid"
    model, image = model.to(device), image.to(device)
    message = rl.fl.client_update(model, image[None], torch.tensor([label], device=device))
    result = run_dlg(model, message, image.shape, n_classes=100, steps=steps, seed=0)
    return dict(part="c", attack=f"DLG (L-BFGS, {steps} steps)", model=model_name,
                n_images=1, seconds=result["seconds"], best_seconds=result["seconds"], repeats=1,
                images_per_second=1 / result["seconds"],
                final_gradient_distance=result["losses"][-1], label_correct=result["label"] == label,
                **errors(result["image"], image))


def table(rows: list[dict]) -> str:
    """The rows as an aligned plain-text table."""
    head = ("part", "attack", "model", "N", "median s", "best s", "CPU s", "images/s", "copy share",
            "max|err|", "PSNR dB")
    body = [(r["part"], r["attack"], r["model"], str(r["n_images"]), f"{r['seconds']:.3g}",
             f"{r['best_seconds']:.3g}", f"{r['cpu_seconds']:.3g}" if "cpu_seconds" in r else "",
             f"{r['images_per_second']:.3g}",
             f"{r['copy_share']:.0%}" if "copy_share" in r else "",
             f"{r['max_abs_error']:.1e}", f"{r['psnr_db']:.1f}")
            for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
                     for line in [head, tuple("-" * w for w in widths), *body])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that it runs")
    parser.add_argument("--dlg-steps", type=int, default=None, help="L-BFGS steps (default 300)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip-dlg", action="store_true", help="parts (a) and (b) only")
    parser.add_argument("--out", type=Path, default=None,
                        help="default benchmarks/results/closed_form[_cuda].json")
    common.add_device_argument(parser)
    args = parser.parse_args(argv)
    device = common.chosen_device(args.device).type
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = {1: [256, 1024], 8: [256]} if args.smoke else {1: [512, 1024, 4096, 16384], 8: [512, 1024, 4096]}
    steps = args.dlg_steps or (3 if args.smoke else 300)
    repeats = 3 if args.smoke else 15

    images, labels = rl.datasets.load("cifar100")          # 20 real 3×32×32 test images
    image, label = images[0], int(labels[0])
    rows = [row for width in sizes for row in one_attack(image, label, width, repeats, device)]
    rows += [throughput(images, n, width, repeats, device) for width, ns in sizes.items() for n in ns]
    closed = rows[0]["seconds"]
    ratio = None
    if not args.skip_dlg:
        dlg = dlg_baseline(image, label, steps, device=device)
        rows += [dlg, dlg_baseline(image, label, steps, width=8, device=device)]
        ratio = dlg["seconds"] / closed
    print(table(rows))
    worst_share = min(r["copy_share"] for r in rows if r["part"] == "b")
    worst_cpu_share = min(r["copy_share_cpu"] for r in rows if r["part"] == "b")
    cpu, bare = rows[0]["cpu_seconds"], rows[2]["cpu_seconds"]
    print(f"\none image through reconstruct: {closed * 1e6:.1f} µs wall, {cpu * 1e6:.1f} µs CPU, "
          f"{cpu / bare:.1f}x the bare division (target <= {TARGET_SECONDS * 1e6:.0f} µs: "
          f"{'met' if closed <= TARGET_SECONDS else 'NOT met'} on the wall clock)")
    print(f"batched inversion vs a plain copy of the same tensor, worst N: {worst_share:.0%} of the copy's "
          f"bandwidth on the wall clock, {worst_cpu_share:.0%} in CPU time "
          f"(target >= {TARGET_COPY_SHARE:.0%}: "
          f"{'met' if worst_share >= TARGET_COPY_SHARE else 'NOT met'} on the wall clock)")
    if ratio is not None:
        print(f"DLG / closed form time ratio: {ratio:.3g}x (DLG on LeNet {rows[-2]['seconds']:.1f} s)")
    best = max(r["images_per_second"] for r in rows if r["part"] == "b")
    print(f"best batched throughput: {best:.3g} images/s (target >= 1e5)")
    command = " ".join(["python benchmarks/closed_form.py", *(argv if argv is not None else sys.argv[1:])])
    report = dict(benchmark="closed_form", command=command,
                  machine=common.machine(device),
                  settings=dict(image="cifar100 sample 0 (3x32x32)", repeats=repeats, dlg_steps=steps),
                  rows=rows, dlg_over_closed_form=ratio, best_images_per_second=best,
                  one_image_seconds=closed, one_image_cpu_seconds=cpu, bare_division_cpu_seconds=bare,
                  worst_copy_share=worst_share, worst_copy_share_cpu=worst_cpu_share,
                  targets=dict(one_image_seconds=TARGET_SECONDS, copy_share=TARGET_COPY_SHARE))
    out = args.out or common.results_path("closed_form", device)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
