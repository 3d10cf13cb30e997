"""Checks of exercise set 05, medical images (``exercises/05_medical_images.ipynb``).

* ``05.preprocess`` — a NIfTI run (random values, random orientation, built with nibabel) to one
  slice the model takes; the reference is :func:`recon_lib.sources.nifti_slices`, the loader
  behind ``rl.datasets.load("fmri", source="full")``.
* ``05.attack_wbc`` — a real blood-cell crop (random crop, size and MLP) rebuilt from its message;
  the reference is :func:`recon_lib.analytic.reconstruct` and the private crop itself.
* ``05.in_batch`` — which slices of a scan were in a batch message, from the leaked span; the
  reference is :func:`recon_lib.analytic.batch_span` with :func:`recon_lib.analytic.span_residual`.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .. import analytic, datasets, fl, models, sources
from . import ask, cases, expect_close, expect_tensor, fail, first_match, task

# Orientations of the random runs: RAS (already canonical), LAS, RPS and x/y swapped.
AFFINES = (np.diag([2.0, 2.0, 3.0, 1.0]), np.diag([-2.0, 2.0, 3.0, 1.0]), np.diag([2.0, -2.0, 3.0, 1.0]),
           np.array([[0.0, 2, 0, 0], [2, 0, 0, 0], [0, 0, 3, 0], [0, 0, 0, 1]]))
ORIENTATION = ("RAS", "LAS", "RPS", "x/y swapped")


# --- Task 05.preprocess ----------------------------------------------------------------------
def _run(index: int):
    """A random 4-D NIfTI run (smooth int16 values, non-square slices) in one of four orientations."""
    import nibabel as nib

    shape = (cases.randint(6, 10), cases.randint(11, 14), cases.randint(3, 5), 2)
    grid = torch.stack(torch.meshgrid(*[torch.linspace(0, 1, n) for n in shape[:3]], indexing="ij"))
    base = (grid * torch.rand(3, 1, 1, 1) * 900).sum(0) + torch.rand(shape[:3]) * 100
    data = torch.stack([base, base * (1 + 0.2 * torch.rand(()))], -1).round().to(torch.int16)
    orientation = index % len(AFFINES)
    return nib.Nifti1Image(data.numpy(), AFFINES[orientation]), ORIENTATION[orientation]


def _reference(image, k: int, t: int) -> Tensor:
    """The slice as the course's own NIfTI loader makes it, scaled by the run's maximum."""
    import nibabel as nib

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.nii.gz"
        nib.save(image, str(path))
        slices, labels = sources.nifti_slices(path)
    depth = int(labels.max()) + 1
    return torch.from_numpy(slices[t * depth + k].astype(np.float32) / np.float32(slices.max()))


@task("05.preprocess", title="a NIfTI slice for the model", n_cases=8,
      hint="nib.as_closest_canonical first; then data[:, ::-1, k, t].T (anterior at the top), "
           "divided by the maximum of the whole run, as float32 of shape (1, H, W).")
def preprocess(answer: Callable, n_cases: int) -> None:
    """``answer(image, k, t) -> (1, H, W)`` in [0, 1] for slice k of volume t."""
    for index in range(n_cases):
        image, orientation = _run(index)
        k, t = cases.randint(0, image.shape[2] - 1), cases.randint(0, 1)
        want = _reference(image, k, t)
        label = f"case {index + 1} (run of shape {image.shape}, {orientation}, slice k={k}, volume t={t})"
        got = expect_tensor(ask(answer, image, k, t, case=label), want.shape, label)
        mistakes = _preprocess_mistakes(image, k, t, want)
        message = first_match(got, mistakes)
        if message:
            fail(message, label)
        expect_close(got, want, "your slice differs from the model's input", label, atol=1e-6)


def _preprocess_mistakes(image, k: int, t: int, want: Tensor) -> list[tuple[Tensor, str]]:
    import nibabel as nib

    raw = torch.from_numpy(np.asarray(image.dataobj, dtype=np.float32))
    canonical = torch.from_numpy(np.asarray(nib.as_closest_canonical(image).dataobj, dtype=np.float32))
    top = float(canonical.max())
    plain = canonical[:, :, k, t].T
    mistakes = [(plain.flip(0)[None] / float(plain.max()), "you scaled by the maximum of this slice; "
                 "scale by the maximum of the whole run so that all slices share one scale."),
                (plain[None] / top, "the slice is upside down: flip the y axis so that anterior is at the top."),
                (want * top, "the values are raw scanner intensities: divide by the run's maximum for [0, 1].")]
    if raw.shape[:2] == canonical.shape[:2]:
        mistakes.append((raw[:, :, k, t].T.flip(0)[None] / top,
                         "this run is not stored in RAS+ order: call nib.as_closest_canonical(image) first."))
    return [(value, text) for value, text in mistakes if value.shape == want.shape
            and not torch.allclose(value, want, atol=1e-6)]


# --- Task 05.attack_wbc ----------------------------------------------------------------------
@lru_cache(maxsize=4)
def _cells(side: int) -> Tensor:
    return datasets.load("wbc", size=side)[0]


@task("05.attack_wbc", title="rebuild a blood-cell crop", n_cases=6,
      hint="x = ∂ℓ/∂Wᵢ ÷ ∂ℓ/∂bᵢ for a usable unit (δᵢ ≠ 0), then reshape the d values to "
           "in_shape = (C, H, W) in PyTorch's channel-first order.")
def attack_wbc(answer: Callable, n_cases: int) -> None:
    """``answer(message, in_shape) -> (C, H, W)``: the private crop behind a biased MLP's message."""
    for index in range(n_cases):
        side = (16, 24, 32)[index % 3]
        pool = _cells(side)
        x = pool[cases.randint(0, len(pool) - 1)]
        activation = cases.ACTIVATIONS[index % len(cases.ACTIVATIONS)]
        model = cases.random_mlp(x.shape, activation, first_width=(4, 12))
        message = fl.client_update(model, x[None], torch.randint(model[-1].out_features, (1,)))
        if not message["1.bias"].any():
            continue  # every unit dead for this crop: nothing leaks, nothing to grade
        label = f"case {index + 1} ({cases.describe(model)}, one 3×{side}×{side} crop)"
        got = expect_tensor(ask(answer, message, tuple(x.shape), case=label), x.shape, label)
        flat = analytic.invert_linear(message["1.weight"], message["1.bias"])
        channel_last = flat.reshape(side, side, 3).permute(2, 0, 1)
        hint = first_match(got, [(channel_last, "right pixels, wrong order: reshape to (C, H, W) directly; "
                                                "PyTorch images are channel-first, not (H, W, C).")])
        if hint:
            fail(hint, label)
        expect_close(got, x, "your crop differs from the private one", label, atol=1e-4)


# --- Task 05.in_batch --------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _scan(size: tuple[int, int]) -> Tensor:
    return datasets.load("fmri", n=24, size=size)[0]


@task("05.in_batch", title="which slices were in the batch", n_cases=6,
      hint="an orthonormal basis of the row space of ∂ℓ/∂W (SVD, rank B) spans the batch; a slice "
           "is in it when ‖x − VVᵀx‖/‖x‖ is at round-off level (say < 1e-3).")
def in_batch(answer: Callable, n_cases: int) -> None:
    """``answer(grad_W, grad_b, B, candidates) -> sorted indices`` of candidates in the batch."""
    for index in range(n_cases):
        scan = _scan(((12, 16), (24, 32))[index % 2])
        B = cases.randint(2, 4)
        members = torch.sort(torch.randperm(len(scan))[:B]).values
        model = models.mlp(scan.shape[1:], [B + cases.randint(0, 3)], 24)
        message = fl.client_update(model, scan[members], members)
        label = f"case {index + 1} (B = {B} of {len(scan)} slices {tuple(scan.shape[2:])}, h = {model[1].out_features})"
        got = ask(answer, message["1.weight"], message["1.bias"], B, scan, case=label)
        basis = analytic.batch_span(message["1.weight"], message["1.bias"], B)
        want = (analytic.span_residual(scan, basis) < 1e-3).nonzero().flatten()
        _compare_indices(got, want, len(scan), label)


def _compare_indices(got: object, want: Tensor, n: int, label: str) -> None:
    if got is None:
        fail("your function returned None. Did you forget the `return` statement?", label)
    if not isinstance(got, Tensor) or got.is_floating_point():
        fail(f"return a tensor of integer indices, got {type(got).__name__}"
             f"{'' if not isinstance(got, Tensor) else ' of ' + str(got.dtype)}.", label)
    if got.dtype == torch.bool:
        fail(f"you returned a mask of {got.numel()} booleans; return the indices (mask.nonzero()).", label)
    got = torch.sort(got.flatten().cpu().long()).values
    extra = sorted(set(got.tolist()) - set(want.tolist()))
    missing = sorted(set(want.tolist()) - set(got.tolist()))
    if extra:
        fail(f"slices {extra} were not in the batch: is your threshold too loose, or your basis "
             f"wider than rank B (of {n} candidates, {len(want)} are members)?", label)
    if missing:
        fail(f"you missed slices {missing} that were in the batch: is your basis orthonormal, "
             "and your residual relative to ‖x‖?", label)
