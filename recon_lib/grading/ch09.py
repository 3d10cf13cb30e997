"""Checks of exercise set 09, the malicious server (``exercises/09_malicious_server.ipynb``).

Cases are real: face images from :mod:`recon_lib.grading.cases` (several sizes) sent through a
fresh random MLP behind an imprint planted by :func:`recon_lib.imprint.attach`, in float64, so the
learner's arithmetic and the reference agree to round-off. Answers are compared with
:mod:`recon_lib.imprint`.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import fl, imprint
from . import ask, cases, expect_close, expect_tensor, fail, first_match, task


# --- Task 09.thresholds -----------------------------------------------------------------------
@task("09.thresholds", title="place the imprint's thresholds", n_cases=5,
      hint="T_0 = lower; T_k = mean + std·Φ⁻¹(k/bins) for k = 1 … bins − 1 (Φ⁻¹(p) = √2·erfinv(2p − 1)).")
def thresholds(answer: Callable, n_cases: int) -> None:
    """``answer(mean, std, bins, lower) -> (bins,)`` increasing thresholds at normal quantiles."""
    for index in range(n_cases):
        faces = cases.face_batch(20)
        values = faces.flatten(1).mean(1).double()
        mean, std = float(values.mean()), float(values.std())
        bins = (2, 8, 128, cases.randint(3, 60), cases.randint(61, 300))[index % 5]
        lower = -float(torch.empty(()).uniform_(1e-4, 1e-2))
        label = f"case {index + 1} (mean {mean:.3f}, std {std:.3f}, {bins} bins, lower {lower:.4f})"
        got = ask(answer, mean, std, bins, lower, case=label)
        if isinstance(got, Tensor) and got.shape == (bins,) and got.is_floating_point() \
                and got[0] == -math.inf:
            fail("your first threshold is −∞ (the 0-quantile of a normal): put T_0 at `lower`, below "
                 "every possible statistic, so that every image fires unit 0.", label)
        got = expect_tensor(got, (bins,), label).double()
        want = imprint.thresholds(mean, std, bins, lower)
        z = lambda p: math.sqrt(2) * torch.erfinv(2 * p - 1)  # noqa: E731 - the normal quantile
        inner = torch.arange(1, bins, dtype=torch.float64)
        mistakes = [
            (torch.cat([want[:1], mean + std * z(inner / (bins + 1))]),
             "your quantiles are k/(bins + 1); with T_0 below every image there are `bins` bins, so "
             "T_k sits at the k/bins quantile."),
            (torch.cat([want[:1], mean + std ** 2 * z(inner / bins)]),
             "you scaled by the variance; the quantiles of N(mean, std²) are mean + std·Φ⁻¹(p)."),
            (want.flip(0), "your thresholds decrease; bin k is (T_k, T_{k+1}], so they must increase."),
            (torch.cat([want[:1], mean - std * z(inner / bins)]),
             "your quantiles have the wrong sign: Φ⁻¹(p) < 0 below the median, so T_1 is the lowest."),
        ]
        message = first_match(got, mistakes, right=want, atol=1e-9, rtol=1e-6)
        if message:
            fail(message, label)
        expect_close(got, want, "your thresholds are not the normal quantiles with T_0 = lower", label,
                     atol=1e-9, rtol=1e-6)


# --- Task 09.bins -----------------------------------------------------------------------------
def _bin_case(index: int) -> tuple[Tensor, Tensor, Tensor, str]:
    """(∂W, ∂b, reference per-bin ratios, label) of a real planted message (float64)."""
    batch = cases.randint(3, 9)
    images = cases.face_batch(batch).double()
    shape = tuple(images.shape[1:])
    activation = cases.ACTIVATIONS[index % len(cases.ACTIVATIONS)]
    model = cases.random_mlp(shape, activation).double()
    bins = cases.randint(4, 16)
    planted = imprint.attach(model, shape, bins, seed=index, public=cases.faces(tuple(shape[1:])).double())
    head = model[-1]
    assert isinstance(head, nn.Linear)
    labels = torch.randint(head.out_features, (batch,))
    grads = fl.client_update(planted, images, labels)
    gw, gb = grads["0.linear.weight"], grads["0.linear.bias"]
    dw = gw - torch.cat([gw[1:], torch.zeros_like(gw[:1])])
    db = gb - torch.cat([gb[1:], torch.zeros_like(gb[:1])])
    occupied = db != 0
    want = torch.where(occupied.unsqueeze(1), dw / torch.where(occupied, db, 1.0).unsqueeze(1), 0.0)
    label = (f"case {index + 1} ({batch} faces of {shape[-2]}×{shape[-1]} behind {bins} bins, "
             f"{cases.describe(model)})")
    return gw, gb, want, label


@task("09.bins", title="one image per bin from consecutive rows", n_cases=6,
      hint="bin k: (∂W_k − ∂W_{k+1}) / (∂b_k − ∂b_{k+1}); the last bin is the last row alone; "
           "zeros where the bias difference is 0 (an empty bin).")
def bins(answer: Callable, n_cases: int) -> None:
    """``answer(grad_W, grad_b) -> (bins, d)``: each bin's ratio of row differences."""
    for index in range(n_cases):
        gw, gb, want, label = _bin_case(index)
        got = ask(answer, gw, gb, case=label)
        if isinstance(got, Tensor) and got.shape == want.shape and got.is_floating_point() \
                and not torch.isfinite(got).all():
            fail("your answer has NaN or inf: some bins are empty (∂b_k − ∂b_{k+1} = 0 exactly); "
                 "return zeros there.", label)
        got = expect_tensor(got, tuple(want.shape), label).double()
        occupied = (want != 0).any(1)
        safe = torch.where(gb != 0, gb, 1.0).unsqueeze(1)
        shifted = torch.cat([torch.zeros_like(want[:1]), want[:-1]])
        no_last = torch.cat([want[:-1], torch.zeros_like(want[:1])])
        db = gb - torch.cat([gb[1:], torch.zeros_like(gb[:1])])
        scaled = torch.where(occupied.unsqueeze(1), want * db.unsqueeze(1) / safe, 0.0)
        mistakes = [
            (gw / safe, "you divided each row by its own bias gradient: unit k fires for every image "
                        "above T_k, so its ratio mixes them all. Take differences of consecutive rows "
                        "first."),
            (no_last, "the last bin (above the highest threshold) is the last row itself; yours is zero."),
            (shifted, "your bins are shifted by one: bin k is the difference of rows k and k + 1."),
            (scaled, "you divided the weight difference by ∂b_k instead of the bias *difference* "
                     "∂b_k − ∂b_{k+1}."),
        ]
        message = first_match(got, mistakes, right=want, atol=1e-9, rtol=1e-6)
        if message:
            fail(message, label)
        if (got[~occupied] != 0).any():
            fail("empty bins (bias difference exactly 0) must be rows of zeros.", label)
        expect_close(got, want, "your per-bin ratios differ from the difference quotients", label,
                     atol=1e-9, rtol=1e-6)


# --- Task 09.fraction -------------------------------------------------------------------------
@task("09.fraction", title="predict the fraction of a batch recovered", n_cases=6,
      hint="an image is recovered when the other B − 1 images all miss its bin, each with probability "
           "1 − 1/bins.")
def fraction(answer: Callable, n_cases: int) -> None:
    """``answer(batch, bins) -> float``: (1 − 1/bins)^(batch − 1)."""
    settings = [(64, 128), (1, 8), (10, 10), (256, 1024), (cases.randint(2, 40), cases.randint(2, 40)),
                (cases.randint(41, 500), cases.randint(41, 2000))]
    for index in range(n_cases):
        batch, count = settings[index % len(settings)]
        label = f"case {index + 1} (B = {batch}, {count} bins)"
        got = ask(answer, batch, count, case=label)
        if isinstance(got, Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isfinite(got):
            fail(f"return one finite number (a float), got {got!r}.", label)
        want = imprint.expected_fraction(batch, count)
        p = 1 - 1 / count
        mistakes = [
            (p ** batch, "you raised (1 − 1/bins) to the power B; an image only needs the *other* B − 1 "
                         "images to miss its bin."),
            (batch * p ** (batch - 1), "that is the expected *number* of images alone; the task asks for "
                                       "the fraction of the batch."),
            (1 - batch / count, "1 − B/bins is only a first-order approximation (and can go negative)."),
            (1 - (batch - 1) / count, "1 − (B − 1)/bins is the first-order approximation; use the exact "
                                      "binomial probability."),
        ]
        for value, message in mistakes:
            if not math.isclose(value, want, rel_tol=1e-9) and math.isclose(got, value, rel_tol=1e-6):
                fail(message, label)
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
            fail(f"your fraction is {got:.4g}, not the probability that an image is alone in its bin.", label)
