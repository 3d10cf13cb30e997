"""Checks of exercise set 07's secure-aggregation and accounting tasks (``exercises/07_defences.ipynb``).

* ``07.secure_sum`` — pairwise masks that cancel in the sum (Bonawitz et al. 2017, the idea
  without the cryptography): each masked update hides its client, the sum is exact.
* ``07.sa_span`` — the server attacks the *sum* of N clients' messages: it is one message of all
  N·B images, so the span attack of chapter 02 returns them all once N·B ≤ h; reference
  :func:`recon_lib.analytic.batch_span` and the clients' private digits.
* ``07.epsilon`` — ε of DP-SGD from σ, q and the number of rounds with Opacus' RDP accountant;
  reference :func:`recon_lib.defences.epsilon` (and Opacus' default orders, also accepted).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .. import analytic, defences, fl, models
from . import ask, cases, expect_tensor, expected, fail, task
from .ch02 import _digits
from .ch07 import _number


# --- Task 07.secure_sum -------------------------------------------------------------------------
@task("07.secure_sum", title="secure aggregation: masks that cancel in the sum", n_cases=5,
      hint="for every pair i < j draw one mask r_ij (a torch.Generator seeded with `seed`); client i "
           "adds it, client j subtracts it, so Σ_i masked_i = Σ_i update_i.")
def secure_sum(answer: Callable, n_cases: int) -> None:
    """``answer(updates (N, ...), seed) -> masked (N, ...)`` with the same sum over clients."""
    for index in range(n_cases):
        n = cases.randint(2, 5)
        shape = (n, cases.randint(2, 6), cases.randint(3, 9))
        updates = torch.randn(shape, dtype=torch.float64) * 10.0 ** cases.randint(-4, -2)  # gradient-sized
        seed = cases.randint(0, 10_000)
        case = f"case {index + 1} (N = {n} clients, updates of shape {tuple(shape[1:])}, seed {seed})"
        got = expect_tensor(ask(answer, updates, seed, case=case), shape, case).double()
        scale = float(updates.abs().max())
        if not torch.allclose(got.sum(0), updates.sum(0), atol=1e-9 * max(scale, float(got.abs().max())),
                              rtol=1e-9):
            fail("your masked updates do not add up to the sum of the true updates: each mask r_ij must "
                 "be added by one client of the pair and subtracted by the other, so that it cancels.", case)
        hidden = (got - updates).flatten(1).norm(dim=1) > updates.flatten(1).norm(dim=1)
        if not hidden.all():
            fail(f"{int((~hidden).sum())} client(s) send an update that is (almost) their true one: "
                 "every client must be masked by a mask at least as large as its update.", case)
        again = expect_tensor(ask(answer, updates, seed, case=case), shape, case).double()
        if not torch.equal(again, got):
            fail("the same seed gave other masks: draw them from a torch.Generator seeded with `seed`.", case)
        other = expect_tensor(ask(answer, updates, seed + 1, case=case), shape, case).double()
        if torch.equal(other, got):
            fail("seeds `seed` and `seed + 1` gave the same masks: use the seed you are given.", case)


# --- Task 07.sa_span ---------------------------------------------------------------------------
def _clients(n: int, size: int, h: int) -> tuple[Tensor, Tensor, Tensor, str]:
    """N clients with B digits each (N·B distinct labels), one shared sigmoid MLP; their summed
    message, in float64 so that round-off does not blur the span at the boundary h = N·B."""
    side = (8, 12)[cases.randint(0, 1)]
    pool = _digits(side)
    x = pool[torch.randperm(len(pool))[:n * size]].reshape(n, size, 1, side, side).double()
    labels = torch.randperm(10)[:n * size].reshape(n, size)
    model = models.mlp((1, side, side), [h], 10).double()
    messages = [fl.client_update(model, x[c], labels[c]) for c in range(n)]
    total_w = torch.stack([m["1.weight"] for m in messages]).sum(0)
    total_b = torch.stack([m["1.bias"] for m in messages]).sum(0)
    case = f"N = {n} clients × B = {size} digits of {side}×{side}, h = {h}"
    return x.flatten(2), total_w, total_b, case


@task("07.sa_span", title="the span attack on a secure sum", n_cases=5,
      hint="the sum of N FedSGD messages is Σ_c (1/B) Δ_c X_cᵀ: one message of N·B images. Its row "
           "space (SVD, singular values above round-off, at most N·B of them) holds every client's images.")
def sa_span(answer: Callable, n_cases: int) -> None:
    """``answer(total_grad_W, N, B) -> V`` (d × N·B) orthonormal, spanning all clients' images."""
    for index in range(n_cases):
        n, size = cases.randint(2, 3), cases.randint(2, 3)
        h = n * size + (0 if index % 3 == 1 else cases.randint(1, 6))  # h = N·B, the boundary, too
        x, total_w, total_b, case = _clients(n, size, h)
        want = analytic.batch_span(total_w, total_b, n * size)
        got = ask(answer, total_w, n, size, case=case)
        one_client = isinstance(got, Tensor) and got.ndim == 2 and got.shape[1] == size
        if one_client and got.shape[0] == total_w.shape[1]:
            fail(f"your basis has B = {size} columns, the span of one client. The server sees the sum of "
                 f"N = {n} messages, which mixes all N·B images.", case)
        got = expect_tensor(got, want.shape, case)
        gram = got.double().T @ got.double()
        if not torch.allclose(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-4):
            fail("your columns are not orthonormal (VᵀV ≠ I); use the SVD.", case)
        flat = x.reshape(-1, x.shape[-1])
        residual = analytic.span_residual(flat, got.to(flat.dtype))
        if residual.max() > 1e-4:
            fail(f"{int((residual > 1e-4).sum())} of the clients' images are not in your span.", case)


# --- Task 07.epsilon ---------------------------------------------------------------------------
def _default_orders_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    from opacus.accountants.analysis import rdp
    from opacus.accountants.rdp import RDPAccountant

    orders = RDPAccountant.DEFAULT_ALPHAS
    spent = rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
    return float(rdp.get_privacy_spent(orders=orders, rdp=spent, delta=delta)[0])


@task("07.epsilon", title="ε from σ, q and the number of rounds", n_cases=6,
      hint="opacus.accountants.RDPAccountant: accountant.history = [(sigma, q, rounds)] (or step() once "
           "per round), then accountant.get_epsilon(delta).")
def epsilon(answer: Callable, n_cases: int) -> None:
    """``answer(sigma, q, rounds, delta) -> ε`` of DP-SGD by Opacus' RDP accountant."""
    for index in range(n_cases):
        sigma = round(float(torch.empty(()).uniform_(0.6, 2.0)), 2)
        q = (0.01, 0.05, 0.2, 1.0)[index % 4]
        rounds = (1, 10, 100, 1000)[cases.randint(0, 3)] if index % 4 != 3 else cases.randint(1, 20)
        delta = (1e-5, 1e-6)[index % 2]
        case = f"case {index + 1} (σ = {sigma}, q = {q}, {rounds} rounds, δ = {delta:g})"
        got = _number(ask(answer, sigma, q, rounds, delta, case=case), case)
        tight = defences.epsilon(sigma, q, rounds, delta)
        loose = _default_orders_epsilon(sigma, q, rounds, delta)
        expected(tight, loose)
        if min(tight, loose) * (1 - 1e-6) <= got <= max(tight, loose) * (1 + 1e-6):
            continue
        mistakes = []
        if rounds > 1:
            mistakes.append(((sigma, q, 1, delta), "that is the ε of a single round: the accountant "
                                                   "composes all the rounds."))
        if q < 1:
            mistakes.append(((sigma, 1.0, rounds, delta), "that is the ε without subsampling (q = 1): "
                                                         "pass the sampling rate q."))
        if sigma <= 1 and q != sigma:
            mistakes.append(((q, sigma, rounds, delta), "σ and q are swapped: the noise multiplier is σ, "
                                                       "the sample rate q."))
        for arguments, message in mistakes:
            if math.isclose(got, _default_orders_epsilon(*arguments), rel_tol=1e-6):
                fail(message, case)
        fail(f"your ε is {'larger' if got > tight else 'smaller'} than the RDP accountant's for these σ, q, "
             "rounds and δ.", case)
