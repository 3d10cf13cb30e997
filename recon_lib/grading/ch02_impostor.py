"""Check of exercise set 02's null-space task (``exercises/02_batches.ipynb``, task 7).

``02.impostor``: for h < B the h × B matrix Δ has a null space, and X′ᵀ = Xᵀ + P (Tᵀ − Xᵀ),
P = I − Δ⁺Δ, is the batch closest to a target T that sends the same first-layer gradient
(1/B) Δ X′ᵀ; reference :func:`recon_lib.conditions.same_gradient_batch`. Cases: real MNIST
batches of fresh random clients, mostly h < B, one with a dead unit (rank Δ < h, so the null space
is larger than B − h), and one with h ≥ B, where the only such batch is X.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .. import conditions
from . import ask, cases, expect_close, expect_tensor, fail, first_match, task
from .ch02 import _client, _digits


@task("02.impostor", title="an impostor batch with the same gradient (h < B)", n_cases=5,
      hint="P = I − Δ⁺Δ (B × B, torch.linalg.pinv) projects onto the null space of Δ; move X towards "
           "T only within it: X′ = X + P (T − X), acting along the batch dimension.")
def impostor(answer: Callable, n_cases: int) -> None:
    """``answer(delta, X, T) -> X′`` (B × d): Δ X′ᵀ = Δ Xᵀ and X′ as close to T as that allows."""
    for index in range(n_cases):
        size = cases.randint(3, 6)
        h = cases.randint(1, size - 1) if index % 4 != 3 else size + cases.randint(0, 2)
        client = _client(size, h)
        delta, x = client.delta.double(), client.x.flatten(1).double()
        dead = index % 4 == 1 and h >= 2
        if dead:  # a dead unit (δ = 0, e.g. a ReLU that never fired): rank Δ = h − 1 < h
            delta[0] = 0
        pool = _digits(client.x.shape[-1])
        target = pool[torch.randperm(len(pool))[:size]].flatten(1).double()
        case = client.case + (" (h < B)" if h < size else " (h ≥ B)") + (", unit 0 dead" if dead else "")
        got = expect_tensor(ask(answer, delta, x, target, case=case), x.shape, case).double()
        want = conditions.same_gradient_batch(delta, x, target)
        sent, same = delta @ got, delta @ x
        if (sent - same).norm() > 1e-6 * same.norm():
            row_space = x + torch.linalg.pinv(delta) @ delta @ (target - x)
            message = first_match(got, [
                (target, "you returned the target batch itself; it sends another gradient Δ Tᵀ."),
                (row_space, "you projected onto the row space of Δ (Δ⁺Δ) instead of its null space "
                            "(I − Δ⁺Δ): that move changes Δ X′ᵀ.")], right=want, atol=1e-6, rtol=1e-6)
            fail(message or "your X′ does not send the same first-layer gradient as X: Δ X′ᵀ ≠ Δ Xᵀ. "
                 "Move X only along directions n of ℝᴮ with Δ n = 0.", case)
        if h < size and torch.allclose(got, x, atol=1e-9) and not torch.allclose(want, x, atol=1e-6):
            fail("you returned X unchanged. With h < B, Δ has a null space of dimension at least B − h: "
                 "move X towards T within it.", case)
        expect_close(got, want, "your X′ sends the same gradient, but it is not the closest such batch "
                     "to T", case, atol=1e-6, rtol=1e-6)
