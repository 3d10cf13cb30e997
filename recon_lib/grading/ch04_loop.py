"""Check of exercise set 04's complete attack (``exercises/04_optimisation_attacks.ipynb``).

``04.match_loop``: the learner writes the whole gradient-matching loop — a dummy image, the
dummy's message with ``create_graph=True`` (double backprop), the distance to the target message,
an optimiser — and returns the dummy. The check judges what the attack is for: the message the
returned image sends must match the target (relative distance ≤ 1e-4), on fresh small sigmoid
and tanh MLPs with a real face of a non-square size and a known label.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from .. import fl, models, optimize
from . import ask, cases, expect_tensor, fail, guard, task

SHAPES = ((6, 8), (8, 6), (7, 7))  # small faces: an attack converges in well under a second


def _explain(error: BaseException) -> str | None:
    text = str(error)
    if "does not require grad" in text or "does not have a grad_fn" in text:
        return ("The distance has no graph back to the dummy: compute the dummy's gradients with "
                "torch.autograd.grad(..., create_graph=True) (double backprop), so that the distance "
                "can itself be differentiated with respect to the dummy.")
    if "Trying to backward through the graph a second time" in text:
        return ("Compute the dummy's message afresh inside every closure/step (a new forward pass), "
                "rather than reusing one graph.")
    return None


@task("04.match_loop", title="a complete gradient-matching attack", n_cases=3, time_limit=120,
      hint="inside the loop: dummy's loss → torch.autograd.grad(loss, params, create_graph=True) → "
           "Σ‖g − g*‖² → backward() on the dummy; L-BFGS converges in a few dozen steps here.")
def match_loop(answer: Callable, n_cases: int) -> None:
    """``answer(model, target, y, shape) -> x̂`` (shape) whose message matches ``target``."""
    for index in range(n_cases):
        size = SHAPES[index % len(SHAPES)]
        # in the session's dtype: a learner's torch.rand dummy must fit the model as in their notebook
        dtype = guard.learner_dtype()
        x = cases.faces(size)[cases.randint(0, 99)][None].to(dtype)
        model = models.mlp(x.shape[1:], [cases.randint(6, 10)], cases.randint(3, 6),
                           activation=("sigmoid", "tanh")[index % 2]).to(dtype)
        n_classes = cases.n_classes(model)
        y = torch.randint(n_classes, (1,))
        target = fl.client_update(model, x, y)
        case = (f"case {index + 1} (MLP {x[0].numel()}→{model[1].out_features}→{model[-1].out_features}, "
                f"{('sigmoid', 'tanh')[index % 2]}, a {size[0]}×{size[1]} face, label given)")
        got = ask(answer, model, {k: v.clone() for k, v in target.items()}, y.clone(), tuple(x.shape),
                  case=case, explain=_explain)
        got = expect_tensor(got, x.shape, case, "your attack")
        if any(p.grad is not None and p.grad.any() for p in model.parameters()):
            for p in model.parameters():  # harmless for grading, but say so: the model is the server's
                p.grad = None
        sent = fl.client_update(model, got.to(x.dtype), y)
        norm = sum(t.square().sum() for t in target.values())
        gap = float(optimize.euclidean_distance(sent, target) / norm)
        if gap > 1e-4:
            grey = fl.client_update(model, torch.full_like(x, 0.5), y)
            start = float(optimize.euclidean_distance(grey, target) / norm)
            fail(f"the message your image sends is still far from the target: relative distance "
                 f"{gap:.1e} (a grey image scores {start:.1e}; the attack must reach 1e-4). Does your "
                 "distance cover every parameter's gradient, does the optimiser step the dummy (not the "
                 "model), and does it run enough steps?", case)
        if F.mse_loss(got.to(x.dtype), x) > 1e-3:
            fail("your image's message matches the target, but the image does not: is it the dummy "
                 "you optimised (shape (1, C, H, W), the label y as given)?", case)
