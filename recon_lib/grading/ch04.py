"""Checks of exercise set 04, optimisation attacks (``exercises/04_optimisation_attacks.ipynb``).

Every case draws a fresh random MLP and real faces of a random size; the learner's answer is
compared with :mod:`recon_lib.optimize` (gradient distance, total variation) and
:func:`recon_lib.analytic.recover_label` (iDLG), the references notebook 04 uses.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

import torch
from torch import Tensor

from .. import analytic, fl, optimize
from . import (
    ask,
    cases,
    expect_close,
    expect_differentiable,
    expect_tensor,
    expected,
    fail,
    first_match,
    task,
)


def _message_pair() -> tuple[dict[str, Tensor], dict[str, Tensor], str]:
    """Two messages of one random MLP: the client's g* and a dummy's g (different images)."""
    x = cases.face_batch(2)
    model = cases.random_mlp(tuple(x.shape[1:]), cases.ACTIVATIONS[cases.randint(0, 2)])
    n_classes = cases.n_classes(model)
    y = torch.randint(0, n_classes, (2,))
    target = fl.client_update(model, x[:1], y[:1])
    dummy = fl.client_update(model, x[1:], y[1:])
    return dummy, target, cases.describe(model) + f", a {x.shape[-2]}×{x.shape[-1]} face"


def _sum(terms: Iterable[Tensor]) -> Tensor:
    """Python's ``sum`` of tensors, typed (every message here has a weight and a bias)."""
    return cast(Tensor, sum(terms))


# --- Task 04.distance ---------------------------------------------------------------------------
@task("04.distance", title="the gradient distance", n_cases=6,
      hint="loop over the names of the target message; add up the squared differences of every entry.")
def distance(answer: Callable, n_cases: int) -> None:
    """``answer(g, target) -> 0-d tensor``: Σ over parameters of ‖g − g*‖² (DLG's distance)."""
    for _ in range(n_cases):
        g, target, case = _message_pair()
        g = {name: value.requires_grad_(True) for name, value in g.items()}  # as in an attack
        got = ask(answer, g, target, case=case, explain=_needs_autograd)
        want = optimize.euclidean_distance(g, target)
        expect_differentiable(got, list(g.values()), None, case, "your distance")
        graph = got
        got = expect_tensor(got, (), case, "your function (one number for the whole message, a 0-d tensor)")
        want = want.detach()
        weights_only = _sum((g[k] - t).square().sum() for k, t in target.items() if k.endswith("weight"))
        mistakes = [(want.sqrt(), "you returned the norm ‖g − g*‖; DLG's distance is its square (no sqrt)."),
                    (weights_only, "you left out the bias gradients: every entry of the message counts."),
                    (_sum((g[k] - t).square().mean() for k, t in target.items()),
                     "you averaged within each parameter; DLG sums the squares over all entries."),
                    (optimize.cosine_distance(g, target),
                     "that is the cosine distance (chapter 04's other choice); here write the Euclidean "
                     "one."),
                    (_sum((g[k] - t).abs().sum() for k, t in target.items()),
                     "you summed absolute differences; square them instead.")]
        message = first_match(got, mistakes, right=want, atol=1e-6, rtol=1e-4)
        if message:
            fail(message, case)
        expect_close(got, want, "your distance is not Σ‖g − g*‖² over the message", case, atol=1e-7)
        expect_differentiable(graph, list(g.values()), [2 * (g[k] - target[k]).detach() for k in g], case,
                              "your distance")


# --- Task 04.tv ---------------------------------------------------------------------------------
def _needs_autograd(error: BaseException) -> str | None:
    """Explain NumPy on inputs that require grad: the attack must differentiate this value."""
    if "requires grad" in str(error):
        return ("The attack differentiates this value with respect to its inputs (they require grad), "
                "so compute it with torch operations, not NumPy or .item().")
    return None


def _differences(x: Tensor) -> tuple[Tensor, Tensor]:
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


@task("04.tv", title="total variation", n_cases=6,
      hint="differences of neighbours along the height and along the width; mean of their absolute values.")
def tv(answer: Callable, n_cases: int) -> None:
    """``answer(x) -> 0-d tensor``: mean |vertical| + mean |horizontal| differences (rl.optimize)."""
    for index in range(n_cases):
        x = cases.face_batch(cases.randint(1, 4))
        # a noisy copy (TV is what grows when an image gets noisier), or a faint one; either way no
        # two neighbours are equal, so |·| has one gradient everywhere and every answer agrees on it
        x = x + (0.2 if index % 2 else 1e-3) * torch.randn_like(x)
        x.requires_grad_(True)  # the attack differentiates the penalty with respect to the dummy
        case = (f"a batch of {x.shape[0]} face(s), H×W = {x.shape[-2]}×{x.shape[-1]}"
                + (", noisy" if index % 2 else ""))
        got = ask(answer, x, case=case, explain=_needs_autograd)
        want = optimize.total_variation(x)
        (reference,) = torch.autograd.grad(want, x)
        expect_differentiable(got, [x], None, case, "your TV")
        graph, leaf = got, x
        got = expect_tensor(got, (), case, "your function (one number, a 0-d tensor)")
        want, x = want.detach(), x.detach()
        dv, dh = _differences(x)
        mistakes = [(dv.square().mean() + dh.square().mean(),
                     "you squared the differences; TV uses their absolute values (squares blur edges)."),
                    (dv.abs().sum() + dh.abs().sum(),
                     "you summed the absolute differences; take their means."),
                    (dv.abs().mean(), "you only used the vertical differences (along the height); add the "
                                      "horizontal ones."),
                    (dh.abs().mean(), "you only used the horizontal differences (along the width); add the "
                                      "vertical ones."),
                    ((dv[..., :, :-1].square() + dh[..., :-1, :].square()).sqrt().mean(),
                     "that is the isotropic TV; here write the anisotropic one (|∂v| and |∂h| separately)."),
                    (dv.mean() + dh.mean(), "take the absolute value of each difference before averaging.")]
        message = first_match(got, mistakes, right=want, atol=1e-6, rtol=1e-4)
        if message:
            fail(message, case)
        expect_close(got, want, "your value is not mean|∂v x| + mean|∂h x|", case, atol=1e-6)
        expect_differentiable(graph, [leaf], [reference], case, "your TV")


# --- Task 04.label ------------------------------------------------------------------------------
def _label_case(index: int) -> tuple[Tensor, torch.nn.Sequential, Tensor, dict[str, Tensor]]:
    """A one-face message; a biased tanh head gets Σ a < 0 (its weight-row sums flip sign)."""
    bias = index % 2 == 0
    activation = "sigmoid" if not bias else cases.ACTIVATIONS[index % 3]
    for _ in range(50):
        x = cases.face_batch(1)
        model = cases.random_mlp(tuple(x.shape[1:]), activation, bias=bias, n_classes=(3, 10))
        y = torch.randint(0, cases.n_classes(model), (1,))
        grads = fl.client_update(model, x, y)
        name, _ = analytic.last_linear(model)
        if activation != "tanh" or grads[f"{name}.weight"].sum(-1)[y] > 0:
            return x, model, y, grads
    raise RuntimeError("could not draw a label case; please report this as a bug")


@task("04.label", title="the label from the head's gradient (iDLG)", n_cases=6,
      hint="under cross-entropy the head's bias gradient is p − onehot(y); without a bias use the "
           "row sums of its weight gradient.")
def label(answer: Callable, n_cases: int) -> None:
    """``answer(model, grads) -> int``: the label of a one-sample message (rl.analytic.recover_label)."""
    for index in range(n_cases):
        x, model, y, grads = _label_case(index)
        case = cases.describe(model) + f", one {x.shape[-2]}×{x.shape[-1]} face"
        got = ask(answer, model, grads, case=case)
        if isinstance(got, Tensor) and got.numel() == 1:
            fail("return a Python int (use int(...) or .item()), not a tensor.", case)
        if not isinstance(got, int) or isinstance(got, bool):
            fail(f"return the label as a Python int, got {type(got).__name__}.", case)
        want = analytic.recover_label(model, grads)
        expected(want)
        if want != int(y):
            raise RuntimeError("iDLG missed the label of a check case; please report this as a bug")
        if got == want:
            continue
        name, head = analytic.last_linear(model)
        bias = head.bias is not None
        scores = grads[f"{name}.bias"] if bias else grads[f"{name}.weight"].sum(-1)
        row_sums = grads[f"{name}.weight"].sum(-1)
        if bias and got == int(row_sums.argmin()):
            fail("you took the argmin of the head's weight-gradient row sums, (p − onehot(y))·Σ a: with "
                 "this activation Σ a is negative, which flips the sign. This head has a bias: its "
                 "gradient p − onehot(y) has no such factor.", case)
        if got == int(scores.argmax()):
            fail("that is the class whose " + ("bias gradient" if bias else "weight-gradient row sum")
                 + " is the largest; the true class is the one entry that is *negative* (p − 1 < 0).", case)
        if not 0 <= got < cases.n_classes(model):
            fail(f"{got} is not a class index: this head has {cases.n_classes(model)} classes, "
                 f"0 … {cases.n_classes(model) - 1}. One score per class is a sum over the features "
                 "(dim -1), not over the classes.", case)
        fail("that is not the label of this message." + ("" if bias else " This head has no bias."), case)


# --- Task 04.init -------------------------------------------------------------------------------
@task("04.init", title="the uniform dummy initialisation", n_cases=4,
      hint="torch.rand with a torch.Generator seeded by `seed` draws U(0, 1), the pixel range.")
def init(answer: Callable, n_cases: int) -> None:
    """``answer(shape, seed) -> tensor``: seeded U(0, 1) dummies (the paper's init, notebook 04)."""
    for _ in range(n_cases):
        shape = (cases.randint(1, 4), cases.randint(1, 3), cases.randint(12, 32), cases.randint(12, 32))
        seed = cases.randint(0, 10_000)
        case = f"shape {shape}, seed {seed}"
        got = expect_tensor(ask(answer, shape, seed, case=case), shape, case)
        if not got.is_floating_point():
            fail(f"return floating-point pixels, got dtype {got.dtype}.", case)
        if got.min() < 0:
            fail("some pixels are negative: " + ("that looks like N(0, 1), DLG's Gaussian init; "
                 if got.min() < -1 or got.max() > 1 else "you drew in [−1, 1]; ")
                 + "the paper draws uniformly in the pixel range [0, 1].", case)
        if got.max() > 1:
            fail("some pixels are above 1: draw in the pixel range [0, 1].", case)
        if got.std() < 1e-6:
            fail("every pixel has the same value: draw them at random.", case)
        mean, std, root_n = float(got.mean()), float(got.std()), got.numel() ** 0.5
        # five standard errors of U(0, 1)'s sample mean (0.289/√n) and sample std (0.129/√n)
        if abs(mean - 0.5) > 1.44 / root_n or abs(std - 12 ** -0.5) > 0.65 / root_n:
            fail(f"the pixels have mean {mean:.2f} and std {std:.2f}; U(0, 1) has 0.50 and 0.29. "
                 "Draw every pixel uniformly.", case)
        torch.rand(3)  # move the global generator: a seeded answer must not depend on it
        again = expect_tensor(ask(answer, shape, seed, case=case), shape, case)
        if not torch.equal(again, got):
            fail("two calls with the same seed gave different images: seed a torch.Generator with "
                 "`seed` and pass it to torch.rand(..., generator=...).", case)
        other = expect_tensor(ask(answer, shape, seed + 1, case=case), shape, case)
        if torch.equal(other, got):
            fail("seeds `seed` and `seed + 1` gave the same images: use the seed you are given.", case)

from . import ch04_loop  # noqa: E402,F401  (registers 04.match_loop)
