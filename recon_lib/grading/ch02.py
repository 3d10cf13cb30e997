"""Checks of exercise set 02, batches (``exercises/02_batches.ipynb``).

Every case is a fresh client: a random sigmoid MLP (random first width h, head with at least B
classes), a batch of B real MNIST digits at a random size, distinct labels, and its FedSGD
message. Answers are compared with :mod:`recon_lib.conditions`, :mod:`recon_lib.analytic` and
:mod:`recon_lib.metrics` (the references) and with the private batch itself.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor, nn

from .. import analytic, conditions, datasets, fl, metrics, models
from . import (
    ask,
    cases,
    constant_factor,
    expect_close,
    expect_tensor,
    expected,
    fail,
    first_match,
    task,
)

SIDES = (8, 12, 28)  # digit sizes the cases draw from: d = 64, 144 or 784


@lru_cache(maxsize=len(SIDES))
def _digits(side: int) -> Tensor:
    return datasets.load("mnist", size=side)[0]


@dataclass
class _Client:
    model: nn.Sequential
    x: Tensor  # B × 1 × side × side
    y: Tensor
    message: dict[str, Tensor]
    delta: Tensor  # h × B
    case: str


def _client(batch_size: int | None = None, h: int | None = None, repeat: bool = False) -> _Client:
    """A fresh victim and batch: random side, B, h (unless given) and distinct labels.

    ``repeat`` puts the first image in the batch twice (rank-deficient: span of B − 1 images).
    """
    side = SIDES[cases.randint(0, len(SIDES) - 1)]
    size = cases.randint(2, 6) if batch_size is None else batch_size
    width = cases.randint(size, size + 6) if h is None else h
    n_classes = max(10, size)
    pool = _digits(side)
    x = pool[torch.randperm(len(pool))[:size]]
    if repeat:
        x[1] = x[0]
    y = torch.randperm(n_classes)[:size]
    model = models.mlp((1, side, side), [width], n_classes)
    delta = conditions.first_layer_deltas(model, x, y)
    case = (f"B={size} digits of {side}×{side}{' (one of them twice)' if repeat else ''}, h={width}, "
            "distinct labels")
    return _Client(model, x, y, fl.client_update(model, x, y), delta, case)


# --- Task 02.gradient ---------------------------------------------------------------------------
@task("02.gradient", title="the batch gradient of the first layer", n_cases=5,
      hint="the client averages: ∇W = (1/B) Δ Xᵀ and ∇b = (1/B) Δ 1, with X one image per row.")
def gradient(answer: Callable, n_cases: int) -> None:
    """``answer(delta, X) -> (grad_W, grad_b)`` with delta h × B and X B × d (flattened images)."""
    for _ in range(n_cases):
        client = _client()
        size, flat = client.x.shape[0], client.x.flatten(1)
        got = ask(answer, client.delta, flat, case=client.case)
        if not (isinstance(got, tuple) and len(got) == 2):
            fail(f"return a pair (grad_W, grad_b), got {type(got).__name__}.", client.case)
        want_w, want_b = client.message["1.weight"], client.message["1.bias"]
        if isinstance(got[0], Tensor) and got[0].shape == want_w.T.shape and want_w.shape != want_w.T.shape:
            fail(f"your ∇W is {tuple(got[0].shape)}, the transpose: it has one row per unit (h × d), "
                 "Δ Xᵀ not X Δᵀ.", client.case)
        grad_w = expect_tensor(got[0], want_w.shape, client.case, "your grad_W")
        grad_b = expect_tensor(got[1], want_b.shape, client.case, "your grad_b")
        for mine, want, name in ((grad_w, want_w, "∇W"), (grad_b, want_b, "∇b")):
            factor = constant_factor(mine, want)
            if factor is not None and abs(factor - size) < 1e-3:
                fail(f"your {name} is B = {size} times too large: the client sends the gradient of the "
                     "*average* loss, so divide by B.", client.case)
            if factor is not None and abs(factor - 1 / size) < 1e-3:
                fail(f"your {name} is B = {size} times too small: divide by B once, not twice.", client.case)
            expect_close(mine, want, f"your {name} differs from the client's message", client.case,
                         atol=1e-6, rtol=1e-4)


# --- Task 02.mixture --------------------------------------------------------------------------
@task("02.mixture", title="the mixture weights of each unit", n_cases=5,
      hint="unit i's ratio ∇W_i / ∇b_i = Σ_n δ_in x_n / Σ_m δ_im: normalise each *row* of Δ by its sum.")
def mixture(answer: Callable, n_cases: int) -> None:
    """``answer(delta) -> omega`` (h × B), each row of Δ divided by its (signed) sum."""
    for _ in range(n_cases):
        client = _client()
        delta = client.delta
        got = expect_tensor(ask(answer, delta, case=client.case), delta.shape, client.case)
        want = conditions.mixture_weights(delta)
        message = first_match(got, [
            (delta, "you returned Δ itself: the ratio divides by ∇b_i = (1/B) Σ_m δ_im, so each row is "
                    "divided by its sum."),
            (delta / delta.sum(0, keepdim=True), "you normalised the columns (images); the ratio is per "
                                                 "unit, so normalise each row."),
            (delta / delta.abs().sum(1, keepdim=True), "divide by the signed sum Σ_m δ_im, not by "
                                                      "Σ_m |δ_im|: that is what ∇b_i is."),
            (delta / delta.shape[1], "dividing by B is not it: divide each row by its own sum.")],
            right=want)
        if message:
            fail(message, client.case)
        expect_close(got, want, "your weights do not turn the batch into each unit's ratio", client.case)


# --- Task 02.span -------------------------------------------------------------------------------
@task("02.span", title="the leaked span of the batch", n_cases=5,
      hint="the right singular vectors of ∇W with non-negligible singular values; at most B of them.")
def span(answer: Callable, n_cases: int) -> None:
    """``answer(grad_W, B) -> V`` (d × r) orthonormal, span = row space of ∇W (rank ≤ B)."""
    for index in range(n_cases):
        size = cases.randint(3, 5)
        h = size + cases.randint(2, 6) if index % 3 != 1 else size   # wide layer, or exactly h = B
        client = _client(size, h, repeat=index % 3 == 2)  # rank-deficient: an image twice
        scale = (1.0, 1e-8, 1e4, 1e-8, 1.0)[index % 5]  # a span does not depend on the gradient's scale
        grad_w = client.message["1.weight"] * scale
        want = analytic.batch_span(grad_w, client.message["1.bias"] * scale, size)
        label = client.case + ("" if scale == 1 else f", gradients scaled by {scale:g}")
        got = ask(answer, grad_w, size, case=label)
        matrix = isinstance(got, Tensor) and got.ndim == 2
        if matrix and got.shape[0] == h and got.shape[0] != grad_w.shape[1]:
            fail(f"your basis has {h} rows, one per unit: those are left singular vectors (U). The images "
                 "live in ℝ^d, so the span is spanned by right singular vectors (rows of Vh in "
                 "torch.linalg.svd).", label)
        if matrix and got.shape[0] == grad_w.shape[1] and got.shape[1] > size:
            fail(f"your basis has {got.shape[1]} columns, but the batch spans at most B = {size} "
                 "directions: keep only the singular vectors with non-negligible singular values.", label)
        basis_like = isinstance(got, Tensor) and got.ndim == 2 and got.shape[0] == grad_w.shape[1]
        if basis_like and got.shape[1] > want.shape[1]:
            fail(f"your basis has {got.shape[1]} columns, more than ∇W has singular values above round-off "
                 "here (this batch holds one image twice, so it spans fewer than B directions). A singular "
                 "value of about 1e-7·σ_max is round-off, not a direction: keep those above a tolerance "
                 "such as max(h, d)·eps·σ_max.", label)
        got = expect_tensor(got, want.shape, label)
        gram = got.T.double() @ got.double()
        if not torch.allclose(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-4):
            fail("your columns are not orthonormal (VᵀV ≠ I): rows of ∇W span the right space but are not "
                 "a basis you can project with. Use the SVD.", label)
        residual = analytic.span_residual(client.x.flatten(1), got.to(client.x.dtype))
        if residual.max() > 1e-4:
            fail(f"a true image of the batch is not in your span (relative residual {residual.max():.1e}).",
                 label)


# --- Task 02.membership -------------------------------------------------------------------------
@task("02.membership", title="test membership in the span", n_cases=5,
      hint="project onto the span with V Vᵀ; the residual ‖x − V Vᵀ x‖ relative to ‖x‖ is ≈ 0 for members.")
def membership(answer: Callable, n_cases: int) -> None:
    """``answer(candidates, V) -> residuals`` (N,) relative distance of each row from span(V)."""
    for _ in range(n_cases):
        client = _client()
        size = client.x.shape[0]
        basis = analytic.batch_span(client.message["1.weight"], client.message["1.bias"], size)
        pool = _digits(client.x.shape[-1])
        outsiders = pool[torch.randperm(len(pool))[:3]]
        scale = torch.rand(size + 3, 1) * 3 + 0.5   # members at any brightness are still members
        candidates = torch.cat([client.x, outsiders]).flatten(1) * scale
        got = expect_tensor(ask(answer, candidates, basis, case=client.case), (size + 3,), client.case)
        want = analytic.span_residual(candidates, basis)
        inside = (candidates @ basis).norm(dim=1) / candidates.norm(dim=1)
        absolute = (candidates - candidates @ basis @ basis.T).norm(dim=1)
        message = first_match(got, [
            (inside, "that is the size of the part *inside* the span; the membership residual is the part "
                     "left outside: x − V Vᵀ x."),
            (absolute, "divide by ‖x‖: a brighter image has a larger absolute residual for the same fit."),
            (want.square(), "take the norm, not its square."),
            (1 - want, "the residual of a member is ≈ 0 and of an outsider ≈ 1, not the other way round.")],
            right=want, atol=1e-4, rtol=1e-3)
        if message:
            fail(message, client.case)
        members, close = want < 1e-3, (got.double() - want.double()).abs() <= 1e-4 + 1e-3 * want.double()
        if close[~members].all() and not close[members].all() and got[members].abs().max() < 1e-2:
            fail("your residuals are right for the candidates outside the span but not for the members, "
                 "whose true residual is at round-off level (about 1e-7). That is the signature of "
                 "cancellation: a formula like √(‖x‖² − ‖Vᵀx‖²) subtracts two nearly equal numbers and "
                 "leaves about √eps ≈ 3e-4 of round-off. Compute the difference x − V Vᵀ x first, then "
                 "its norm.", client.case)
        expect_close(got, want, "your residuals are not ‖x − V Vᵀ x‖ / ‖x‖", client.case,
                     atol=1e-4, rtol=1e-3)


# --- Task 02.labels ---------------------------------------------------------------------------
def _unsure_client() -> _Client:
    """A client whose model is unsure enough (Σ_n p_nk < 1 for every present class) for the sign
    rule to hold; notebook 02 and rl.analytic.recover_labels handle the other case."""
    for _ in range(50):
        client = _client()
        present = client.message["3.bias"][client.y]
        if (present < 0).all():
            return client
    raise RuntimeError("could not draw a label case; please report this as a bug")


@task("02.labels", title="the labels of a batch with distinct labels", n_cases=6,
      hint="∇c_k = (1/B) Σ_n (p_nk − [y_n = k]): the classes in the batch are the B most negative entries.")
def labels(answer: Callable, n_cases: int) -> None:
    """``answer(grad_head_bias, B) -> labels`` (B class indices, any order)."""
    for index in range(n_cases):
        # case 2: every class in the batch (B = 10), so Σ of the head's bias gradient is 0 and some
        # present class has an entry ≥ 0: "the negative entries" is not the rule, "the B most" is
        client = _unsure_client() if index != 1 else _client(batch_size=10)
        size, scores = client.x.shape[0], client.message["3.bias"]
        got = ask(answer, scores, size, case=client.case)
        if isinstance(got, (list, tuple)):
            got = torch.as_tensor(got)
        got = expect_tensor(got, (size,), client.case)
        if got.is_floating_point() or got.dtype == torch.bool:
            fail(f"return class indices (integers), got a {got.dtype} tensor.", client.case)
        truth = sorted(client.y.tolist())
        expected(truth)
        mine = sorted(got.tolist())
        if mine == truth:
            continue
        if mine == sorted(torch.topk(scores, size).indices.tolist()):
            fail("you took the B *largest* entries; a class present in the batch gets p − 1 < 0: take the "
                 "most negative ones.", client.case)
        if len(set(mine)) == 1:
            fail("you returned one class B times; each image has its own label here: take B different "
                 "classes.", client.case)
        fail("some of your labels are not labels of this batch.", client.case)


# --- Task 02.match -----------------------------------------------------------------------------
def _greedy_trap(x: Tensor) -> Tensor:
    """Reconstructions where the nearest pair is not in the best pairing.

    Reconstruction 0 is x₀ plus a little noise, reconstruction 1 a bad one, x₀ − 2(x₁ − x₀):
    pairing 0 with x₀ (the closest pair) forces 1 onto x₁ at cost 9‖x₁ − x₀‖², while the best
    pairing (1 with x₀, 0 with x₁) costs about 5‖x₁ − x₀‖². Nearest neighbours per original pick
    reconstruction 0 twice.
    """
    noisy = x + 0.02 * torch.randn_like(x)
    return torch.stack([noisy[0], 3 * x[0] - 2 * x[1], noisy[2], noisy[3]])


def _unsquared_trap(x: Tensor) -> Tensor:
    """Reconstructions where summed distances and summed *squared* distances pair differently.

    r₀ = x₀ and r₁ at distance D from x₀ and 1.5 D from x₁ (D = ‖x₁ − x₀‖): pairing r₀–x₀, r₁–x₁
    costs 1.5 D in distances but 2.25 D² in squares; r₀–x₁, r₁–x₀ costs 2 D but only 2 D².
    """
    e = (x[1] - x[0]).flatten()
    distance = e.norm()
    e = e / distance
    f = torch.randn_like(e)
    f = f - (f @ e) * e
    f = f / f.norm()
    r1 = x[0].flatten() + distance * (-0.125 * e + (1 - 0.125 ** 2) ** 0.5 * f)
    noisy = x + 0.02 * torch.randn_like(x)
    return torch.stack([x[0], r1.reshape(x[0].shape), noisy[2], noisy[3]])


def _greedy(cost: Tensor) -> list[int]:
    """perm (reconstruction for each original) by taking the cheapest remaining pair first."""
    perm, cost = [-1] * len(cost), cost.clone()
    for _ in range(len(cost)):
        flat = int(cost.argmin())
        made, original = divmod(flat, cost.shape[1])
        perm[original] = made
        cost[made, :], cost[:, original] = float("inf"), float("inf")
    return perm


@task("02.match", title="pair reconstructions with originals", n_cases=6,
      hint="a permutation minimising the total MSE: scipy.optimize.linear_sum_assignment on the B × B cost.")
def match(answer: Callable, n_cases: int) -> None:
    """``answer(x_hat, x) -> perm`` with x_hat[perm][i] paired with x[i] (LongTensor of B)."""
    for index in range(n_cases):
        pool = _digits(SIDES[cases.randint(0, len(SIDES) - 1)])
        x = pool[torch.randperm(len(pool))[:4]]
        x_hat = (_greedy_trap if index % 2 == 0 else _unsquared_trap)(x)
        order = torch.randperm(4)
        x_hat = x_hat[order]
        case = f"B=4 digits of {x.shape[-1]}×{x.shape[-1]} (one reconstruction is bad)"
        _, want = metrics.match(x_hat, x)
        expected(want.tolist())
        got = ask(answer, x_hat, x, case=case)
        if isinstance(got, (list, tuple)):
            got = torch.as_tensor(got)
        got = expect_tensor(got, (4,), case)
        if got.is_floating_point() or got.dtype == torch.bool:
            fail(f"return integer indices (a LongTensor), not {got.dtype}.", case)
        if sorted(got.tolist()) != [0, 1, 2, 3]:
            fail(f"{got.tolist()} is not a permutation: each reconstruction must be used exactly once "
                 "(nearest neighbours per original can pick one twice).", case)
        expect_tensor(got, (4,), case, dtype=torch.long)
        flat_hat, flat = x_hat.flatten(1).double(), x.flatten(1).double()
        squared = (flat_hat[:, None] - flat[None]).square().mean(-1)  # MSE of (made, original)
        total = squared[got, torch.arange(4)].sum()
        best = squared[want, torch.arange(4)].sum()
        if total <= best * (1 + 1e-9) + 1e-12:
            continue
        distances = squared.sqrt()
        sums = {perm: float(distances[list(perm), torch.arange(4)].sum())
                for perm in itertools.permutations(range(4))}
        reasons = []
        if got.tolist() == _greedy(squared):
            reasons.append("greedy matching (closest pair first) gives")
        if sums[tuple(got.tolist())] <= min(sums.values()) * (1 + 1e-9):
            reasons.append("minimises the sum of unsquared distances ‖x̂ − x‖")
        joined = ", and the one that ".join(reasons)
        how = f" On this case it is the pairing that {joined}." if reasons else ""
        fail("your pairing is a permutation, but its total MSE is not the smallest possible." + how +
             " The task minimises the sum of squared errors: solve that assignment problem.", case)
from . import ch02_impostor  # noqa: E402,F401  (registers 02.impostor)
