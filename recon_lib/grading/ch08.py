"""Checks of exercise set 08, real federations (``exercises/08_real_federations.ipynb``).

* ``08.to_message`` — a FedAvg reply (the client's new weights) turned into the message the
  attacks read; the reference is :func:`recon_lib.flower.to_message`, on replies made by the
  course's client code (:func:`recon_lib.flower.local_update`) on real faces.
* ``08.closed_form_survives`` — predict whether chapter 01's closed form still rebuilds a
  client's images (≥ 40 dB) for a given victim; the truth is *measured* on the spot, by running
  :func:`recon_lib.analytic.reconstruct` on that victim's message.
* ``08.pick_width`` — the smallest first-layer width h for which the leaked span of a batch of
  B images is the whole batch (Claim 2); the reference is the rank of the weight gradient,
  computed on real messages.

Self-contained: it imports the library and :mod:`recon_lib.grading` helpers only.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .. import analytic, fl, flower, models, victims
from . import ask, cases, expect_close, expect_tensor, fail, task


# --- Task 08.to_message -----------------------------------------------------------------------
def _reply(index: int) -> tuple[dict, dict, float, int, str]:
    """(θ sent, θ′ received, lr, E, label): a random MLP trained E steps on real faces, float64."""
    images = cases.face_batch(cases.randint(1, 3)).double()
    model = cases.random_mlp(images.shape[1:], cases.ACTIVATIONS[index % 3]).double()
    labels = torch.randint(analytic.last_linear(model)[1].out_features, (len(images),))
    lr = float(torch.empty(()).uniform_(0.05, 0.8))
    steps = (1, 3, 5, 2, 20)[index % 5]
    sent = {k: v.detach().clone() for k, v in model.state_dict().items()}
    received = flower.local_update(model, images, labels, local_steps=steps, lr=lr)
    label = (f"case {index + 1} ({cases.describe(model)}, B = {len(images)}, E = {steps}, "
             f"lr = {lr:.3f})")
    return sent, received, lr, steps, label


@task("08.to_message", title="a FedAvg reply as an attackable message", n_cases=5,
      hint="θ′ = θ − lr·(g₀ + … + g_{E−1}), so (θ − θ′)/(lr·E) is the mean local gradient; for E = 1 "
           "it is the gradient itself. Keep the parameter names as keys.")
def to_message(answer: Callable, n_cases: int) -> None:
    """``answer(sent, received, lr, local_steps) -> {name: (θ − θ′)/(lr·E)}``."""
    for index in range(n_cases):
        sent, received, lr, steps, label = _reply(index)
        got = ask(answer, sent, received, lr, steps, case=label)
        if not isinstance(got, dict):
            fail(f"return a dict {{parameter name: tensor}}, got {type(got).__name__}.", label)
        if set(got) != set(sent):
            fail(f"your keys are {sorted(got)}; the message needs one entry per parameter: {sorted(sent)}.",
                 label)
        want = flower.to_message(sent, received, list(sent), lr=lr, local_steps=steps)
        for name, value in want.items():
            mine = expect_tensor(got[name], value.shape, label, f"your message[{name!r}]").double()
            reference = (sent[name] - received[name]) / (lr * steps)  # all zero for a dead layer
            for factor, message in ((-1.0, "the sign is flipped: the client moved *against* the "
                                           "gradient, so use θ − θ′ (sent minus received)."),
                                    (float(steps), f"you divided by lr only; E = {steps} local steps "
                                                   "each add lr·gₜ, so divide by lr·E."),
                                    (lr * steps, "you did not divide by lr·E: θ − θ′ is lr·E times the "
                                                 "mean gradient."),
                                    (lr * lr * steps, "you multiplied by lr·E; divide by it.")):
                coincides = torch.allclose(factor * reference, reference, rtol=1e-6, atol=1e-12)
                if not coincides and torch.allclose(mine, factor * reference, rtol=1e-6, atol=1e-12):
                    fail(message, label)  # (a zero gradient, e.g. a dead ReLU, is right either way)
            expect_close(mine, reference, f"message[{name!r}] is not (θ − θ′)/(lr·E)", label,
                         atol=1e-9, rtol=1e-6)


# --- Task 08.closed_form_survives ------------------------------------------------------------
VICTIMS = (
    flower.Setup(width=16, n_clients=10),
    flower.Setup(width=16, n_clients=10, activation="relu"),
    flower.Setup(width=16, n_clients=10, batchnorm="train", batch_size=4),
    flower.Setup(width=16, n_clients=10, local_steps=5),
    flower.Setup(width=16, n_clients=10, batch_size=4),
    flower.Setup(width=16, n_clients=10, batchnorm="eval"),
    flower.Setup(width=16, n_clients=10, activation="leaky_relu", local_steps=20),
    flower.Setup(width=16, n_clients=10, local_steps=5, batch_size=8),
)
MISTAKES = {
    "relu": "a ReLU network still leaks: one live first-layer unit (δ ≠ 0) is enough for Claim 1.",
    "local_steps": "local steps do not stop it: every step adds δ·x to ∂W and δ to ∂b, so the ratio is "
                   "still x for one image (chapter 07).",
    "eval": "BatchNorm in eval mode is a fixed affine map per unit: δ ≠ 0 and the ratio is x.",
    "train": "BatchNorm in train mode subtracts the batch mean, so ∂b = Σδ = 0: nothing to divide by.",
    "batch": "with B > 1 the ratio is a δ-weighted mixture of the batch, not one image (chapter 02).",
}


def _measured(setup: flower.Setup, seed: int) -> bool:
    """Does the closed form rebuild every image of this client's batch to ≥ 40 dB? (measured)"""
    row = victims.Row("grading", "victim", setup.replace(seed=seed), "closed_form")
    return victims.measure(row, [seed])["frac_40db"] == 1.0


def _kind(setup: flower.Setup) -> str:
    if setup.batchnorm == "train":
        return "train"
    if setup.batch_size > 1:
        return "batch"
    if setup.batchnorm == "eval":
        return "eval"
    if setup.activation == "relu":
        return "relu"
    return "local_steps" if setup.local_steps > 1 else ""


@task("08.closed_form_survives", title="which victims the closed form still breaks", n_cases=8,
      hint="Claim 1 needs one image (B = 1) and one first-layer unit with δ = ∂ℓ/∂b ≠ 0. Which settings "
           "change B or force ∂b to 0?")
def closed_form_survives(answer: Callable, n_cases: int) -> None:
    """``answer(setup) -> bool``: True when the closed form recovers the client's images (≥ 40 dB)."""
    order = torch.randperm(len(VICTIMS)).tolist()
    for index in range(n_cases):
        setup = VICTIMS[order[index % len(VICTIMS)]]
        seed = cases.randint(0, 99)
        label = (f"case {index + 1} ({setup.activation} MLP h={setup.width}, B={setup.batch_size}, "
                 f"E={setup.local_steps}, BatchNorm {setup.batchnorm})")
        got = ask(answer, setup, case=label)
        if not isinstance(got, bool):
            fail(f"return True or False, got {got!r}.", label)
        truth = _measured(setup, seed)
        if got != truth:
            reason = MISTAKES.get(_kind(setup), "")
            fail(f"you predicted {got}, but the measured answer differs. {reason}".strip(), label)


# --- Task 08.pick_width -----------------------------------------------------------------------
def _rank(width: int, batch_size: int) -> int:
    """Rank of the first layer's weight gradient for a real batch of distinct faces."""
    images = cases.face_batch(batch_size)
    model = models.mlp(images.shape[1:], [width], 10)
    grads = fl.client_update(model, images, torch.randint(10, (batch_size,)))
    return int(torch.linalg.matrix_rank(grads["1.weight"].double()))


@task("08.pick_width", title="the width a batch needs", n_cases=5,
      hint="∇W = (1/B) Δ Xᵀ has rank min(h, B, d): the whole batch's span leaks once rank = B.")
def pick_width(answer: Callable, n_cases: int) -> None:
    """``answer(batch_size) -> smallest h`` whose weight gradient spans the whole batch."""
    for index in range(n_cases):
        batch = cases.randint(2, 12)
        label = f"case {index + 1} (B = {batch})"
        got = ask(answer, batch, case=label)
        if isinstance(got, bool) or not isinstance(got, int):
            fail(f"return an int (a number of units), got {got!r}.", label)
        if got < 1:
            fail("a layer needs at least one unit.", label)
        if _rank(got, batch) < batch:
            message = ("h = B − 1 leaves one direction of the batch out: rank ∇W = min(h, B)."
                       if got == batch - 1 else f"with h = {got} the rank of ∇W is below B = {batch}.")
            fail(message, label)
        if got > batch:
            fail(f"h = {got} works but is not the smallest: rank ∇W = min(h, B) reaches B earlier.", label)
