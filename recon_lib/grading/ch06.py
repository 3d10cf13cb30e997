"""Checks of exercise set 06, benchmarks (``exercises/06_benchmarks.ipynb``).

* ``06.psnr`` — PSNR per image of a batch; reference :func:`recon_lib.metrics.psnr`, on real
  images of random kinds distorted by :func:`recon_lib.distortions.distort`.
* ``06.summary`` — mean ± sample standard deviation per (method, kind) of benchmark rows;
  reference :func:`recon_lib.benchmark.summarise`.
* ``06.baseline`` — the PSNR a flat guess at each image's mean scores; reference
  :func:`recon_lib.benchmark.flat_baseline`.
* ``06.recovered`` — which reconstructions beat that flat guess (interpreting the table).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from .. import benchmark, datasets, distortions, metrics
from . import ask, cases, expect_close, expect_tensor, fail, first_match, task

KINDS = ("mnist", "cifar100", "imagenet", "wbc", "fmri", "faces")


def _batch(index: int) -> tuple[Tensor, Tensor, str]:
    """A few real images of one kind and noisy or blurred copies at random strengths."""
    kind = KINDS[index % len(KINDS)]
    shape = ((12, 16), (20, 14), (16, 16))[index % 3]  # mostly H ≠ W
    x = benchmark.sample(kind, cases.randint(2, 4), shape)[0]
    how = ("noise", "blur", "contrast")[index % 3]
    low, high = {"noise": (0.02, 0.2), "blur": (0.5, 2.0), "contrast": (0.1, 0.6)}[how]
    x_hat = torch.stack([distortions.distort(image, how, float(torch.empty(()).uniform_(low, high)),
                                           seed=index) for image in x])
    return x, x_hat, f"case {index + 1} ({len(x)} {kind} images of H×W = {shape[0]}×{shape[1]}, {how})"


def _distinct(mistakes: list[tuple[Tensor, str]], want: Tensor, atol: float) -> list[tuple[Tensor, str]]:
    """Only the typical mistakes that give a clearly *different* answer on this case."""
    return [(value, text) for value, text in mistakes
            if not torch.allclose(value.double(), want.double(), atol=10 * atol, rtol=0)]


# --- Task 06.psnr -----------------------------------------------------------------------------
@task("06.psnr", title="PSNR per image", n_cases=6,
      hint="MSE per image = mean over C, H, W of (x̂ − x)²; PSNR = 10·log10(1 / MSE) for pixels in [0, 1].")
def psnr(answer: Callable, n_cases: int) -> None:
    """``answer(x_hat, x) -> (N,)`` PSNR in dB of each image of an N×C×H×W batch."""
    for index in range(n_cases):
        x, x_hat, label = _batch(index)
        got = ask(answer, x_hat, x, case=label)
        if isinstance(got, Tensor) and got.numel() == 1 and len(x) > 1:
            fail("you returned one number for the whole batch; the table needs one PSNR per image "
                 "(average the squared error over C, H, W only).", label)
        got = expect_tensor(got, (len(x),), label)
        want = metrics.psnr(x_hat, x)
        mse = metrics.mse(x_hat, x)
        message = first_match(got, _distinct([(2 * want, "that is 20·log10(1/MSE): the factor 20 is for "
                                                "amplitudes (RMSE); with the MSE it is 10."),
                                    (-want, "the sign is flipped: PSNR = 10·log10(1/MSE), large when MSE is "
                                            "small."),
                                    (want / 2, "you used the RMSE inside 10·log10: use the MSE (or "
                                               "20·log10(1/RMSE))."),
                                    (1 / mse, "that is 1/MSE; PSNR is in decibels: 10·log10(1/MSE).")],
                                             want, 1e-3), atol=1e-3)
        if message:
            fail(message, label)
        expect_close(got, want, "your PSNR differs from the reference", label, atol=1e-3)


# --- Task 06.summary ----------------------------------------------------------------------------
def _rows(index: int) -> list[dict]:
    methods = ["closed_form", "cnn_exact", "stabilised"][:cases.randint(1, 3)]
    kinds = list(datasets.NAMES[:cases.randint(2, 4)])
    return [{"method": m, "kind": k, "seed": s, "image": i, "psnr": float(torch.empty(()).uniform_(10, 60))}
            for m in methods for k in kinds for s in range(cases.randint(1, 2))
            for i in range(cases.randint(1, 3))]


@task("06.summary", title="mean ± spread per method and kind", n_cases=6,
      hint="group the rows by (method, kind); the spread is the *sample* standard deviation "
           "(divide by n − 1; 0 for a single row).")
def summary(answer: Callable, n_cases: int) -> None:
    """``answer(rows) -> {(method, kind): (mean, std)}`` of the rows' PSNR."""
    for index in range(n_cases):
        rows = _rows(index)
        label = f"case {index + 1} ({len(rows)} rows)"
        got = ask(answer, [dict(r) for r in rows], case=label)
        want = {(s["method"], s["kind"]): (s["psnr_mean"], s["psnr_std"]) for s in benchmark.summarise(rows)}
        if not isinstance(got, Mapping):
            fail(f"return a dict {{(method, kind): (mean, std)}}, not a {type(got).__name__}.", label)
        if set(got) != set(want):
            fail(f"the keys should be the (method, kind) pairs {sorted(want)[:3]}...; yours are "
                 f"{sorted(got, key=str)[:3]}...", label)
        for key, (mean, std) in want.items():
            _check_pair(got[key], key, mean, std, rows, label)


def _check_pair(pair: Any, key: tuple, mean: float, std: float, rows: list[dict], label: str) -> None:
    try:
        got_mean, got_std = (float(v) for v in pair)
    except (TypeError, ValueError):
        fail(f"the value for {key} should be a pair (mean, std), got {pair!r}.", label)
    if not math.isclose(got_mean, mean, rel_tol=1e-6, abs_tol=1e-9):
        fail(f"the mean for {key} is {got_mean:.4g}, not the mean PSNR of its rows.", label)
    values = [r["psnr"] for r in rows if (r["method"], r["kind"]) == key]
    population = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if len(values) > 1 and math.isclose(got_std, population, rel_tol=1e-6):
        fail(f"for {key} you divided by n = {len(values)}; the sample standard deviation divides by "
             "n − 1.", label)
    if not math.isclose(got_std, std, rel_tol=1e-6, abs_tol=1e-9):
        fail(f"the spread for {key} is {got_std:.4g}, not the sample standard deviation of its rows.", label)


# --- Task 06.baseline ---------------------------------------------------------------------------
@task("06.baseline", title="what a flat guess scores", n_cases=6,
      hint="the flat guess is each image's own mean pixel value; its MSE is the image's pixel "
           "variance (divide by the number of pixels), so PSNR = 10·log10(1 / Var x).")
def baseline(answer: Callable, n_cases: int) -> None:
    """``answer(x) -> (N,)`` PSNR of a flat image at each image's mean."""
    for index in range(n_cases):
        x, _, label = _batch(index)
        got = expect_tensor(ask(answer, x, case=label), (len(x),), label)
        want = benchmark.flat_baseline(x)
        flat = x.double().flatten(1)
        batch_mean = metrics.psnr(torch.full_like(x, float(x.mean())), x)
        message = first_match(got, _distinct([(10 * torch.log10(1 / flat.var(1)), "you used the sample "
                                     "variance (n − 1); the MSE of the flat guess divides by the number of "
                                     "pixels."),
                                    (10 * torch.log10(1 / flat.std(1, correction=0)), "that is "
                                     "10·log10(1/std); the MSE of the flat guess is the variance, std²."),
                                    (batch_mean, "you used one mean for the whole batch; each image's flat "
                                     "guess is its *own* mean.")], want, 1e-4), atol=1e-4)
        if message:
            fail(message, label)
        expect_close(got, want, "your baseline differs from the reference", label, atol=1e-3)


# --- Task 06.recovered ------------------------------------------------------------------------
@task("06.recovered", title="which reconstructions beat a flat guess", n_cases=6,
      hint="compare each image's PSNR with its own flat-guess PSNR; you may call your two "
           "functions above.")
def recovered(answer: Callable, n_cases: int) -> None:
    """``answer(x_hat, x) -> (N,) bool``: True where PSNR(x̂, x) exceeds the flat-guess PSNR."""
    for index in range(n_cases):
        x, x_hat, label = _batch(index)
        x_hat = torch.cat([x_hat, torch.rand_like(x[:1])])  # plus one pure-noise "reconstruction"
        x = torch.cat([x, x[-1:]])
        got = ask(answer, x_hat, x, case=label)
        want = metrics.psnr(x_hat, x) > benchmark.flat_baseline(x)
        if not isinstance(got, Tensor) or got.dtype != torch.bool or got.shape != want.shape:
            detail = f" {got.dtype} {tuple(got.shape)}" if isinstance(got, Tensor) else ""
            fail(f"return a bool tensor of shape {tuple(want.shape)} (one answer per image), got "
                 f"{type(got).__name__}{detail}.", label)
        if not torch.equal(got.cpu(), want):
            wrong = (got.cpu() != want).nonzero().flatten().tolist()
            fail(f"images {wrong} are judged wrongly; the last one is pure noise and never beats a "
                 "flat guess.", label)
