"""Privacy–utility measurements of chapter 07: attack a defended message, train under a defence.

One point of a privacy–utility plot is (how much the server still rebuilds, what the defence
costs). :func:`evaluate` runs the attacks of the course — chapter 01's closed form, chapter 02's
span attack, chapter 04's gradient matching — on what the server sees under a defence of
:mod:`recon_lib.defences` and scores them; :func:`train_federated` trains the same model
federatedly (FedSGD, simulated clients) under that defence for its test accuracy; :func:`measure`
and :func:`sweep` put both together on a :class:`Lab` (:func:`mnist_lab` is the chapter's).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from . import _validate as check
from . import analytic, metrics, optimize
from .defences import NO_DEFENCE, epsilon, get, noise_generator, secure_aggregate, server_view
from .errors import scored_against_truth

Message = dict[str, Tensor]


# --- The attacks of the course against a defended message -----------------------------------
ATTACKS = ("closed_form", "span", "optimisation")


def attack(kind: str, model: nn.Module, message: Mapping[str, Tensor], batch_size: int,
           labels: Tensor, steps: int = 30, seed: int = 0) -> Tensor:
    """Run one attack of the course on a (defended) message; returns k × C × H × W images in [0, 1].

    * ``"closed_form"`` — chapter 01's ratio (:func:`recon_lib.analytic.reconstruct`): 1 image.
      A message with no usable unit (every ∂b zeroed) yields a black image: nothing leaked.
    * ``"span"`` — chapter 02's gradient matching inside the leaked span (``span=True``), with
      the first-order ``"stabilised"`` preset: a noisy message has no exact solution to converge to.
    * ``"optimisation"`` — chapter 04's gradient matching over whole images (preset ``"stabilised"``).

    The optimisation attacks are given the true ``labels``: a stronger attacker than the
    course's default, so a defence that stops it also stops the weaker one. Pixels of a run
    that diverged (NaN, e.g. on a message pruned to almost nothing) count as black.
    """
    if kind == "closed_form":
        try:
            return analytic.reconstruct(model, message).unsqueeze(0).clamp(0, 1)
        except ValueError:
            shape = cast(tuple[int, ...], model.in_shape)  # recorded by rl.models
            return torch.zeros(1, *shape, device=next(iter(message.values())).device)
    if kind not in ATTACKS:
        raise ValueError(f"unknown attack {kind!r}; choose one of {ATTACKS}")
    with scored_against_truth():  # the trade-off curve scores every image against the private data
        result = optimize.gradient_matching(model, message, batch_size, labels=labels, preset="stabilised",
                                            span=kind == "span", steps=steps, seed=seed, progress=False)
    return torch.nan_to_num(result.images, nan=0.0).clamp(0, 1)


def score(images: Tensor, x: Tensor) -> tuple[float, float]:
    """(PSNR, SSIM) of reconstructions against the private batch, order-free.

    As many reconstructions as images: pair them (:func:`recon_lib.metrics.match`) and average.
    One reconstruction of a batch (the closed form): score it against the image it is closest
    to — how much the *most exposed* image leaked.
    """
    if images.shape[0] == x.shape[0]:
        paired, _ = metrics.match(images, x)
        return float(metrics.psnr(paired, x).mean()), float(metrics.ssim(paired, x).mean())
    if images.shape[0] != 1:
        raise ValueError(f"{images.shape[0]} reconstructions for {x.shape[0]} images")
    copies = images.expand_as(x)
    best = int(metrics.mse(copies, x).argmin())
    return float(metrics.psnr(images[0], x[best])), float(metrics.ssim(images[0], x[best]))


def evaluate(name: str, strength: float, model: nn.Module, x: Tensor, y: Tensor, *,
             attacks: Sequence[str] = ATTACKS, steps: int = 30, seed: int = 0) -> dict[str, float]:
    """PSNR and SSIM of each attack on what the server sees under one defence setting.

    The private data are the first N·B images of ``x`` (N clients of B images; B = 1 unless
    the defence *is* the batch size). Returns ``{"psnr_<attack>": ..., "ssim_<attack>": ...}``.
    """
    defence = get(name)
    count = defence.clients(strength) * defence.batch(strength, 1)
    if count > x.shape[0]:
        raise ValueError(f"{name} at {strength} needs {count} private images, got {x.shape[0]}")
    private, labels = x[:count], y[:count]
    message = server_view(name, model, private, labels, strength, seed)
    row: dict[str, float] = {}
    for kind in attacks:
        row[f"psnr_{kind}"], row[f"ssim_{kind}"] = score(
            attack(kind, model, message, count, labels, steps, seed), private)
    return row


# --- The price: federated training under a defence -------------------------------------------
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Fraction of ``x`` the model classifies as ``y``."""
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def train_federated(model: nn.Module, x: Tensor, y: Tensor, *, name: str | None, strength: float,
                    n_clients: int = 10, rounds: int = 30, batch_size: int = 8, lr: float = 1.0,
                    seed: int = 0) -> nn.Module:
    """Train a copy of ``model`` federatedly, every client applying defence ``name`` (None: none).

    The data are split into ``n_clients`` equal shards (one per client). Each round every
    client draws a batch from its shard, sends its defended message, and the server takes
    one SGD step of size ``lr`` along the mean. (Secure aggregation changes what the server
    can *see*, not this mean, so it trains exactly like no defence.)

    Returns:
        the trained copy; ``model`` itself is left unchanged.
    """
    defence = NO_DEFENCE if name is None else get(name)
    check.integer("n_clients", n_clients, low=1)
    check.integer("rounds", rounds, low=1)
    check.count("batch_size", batch_size)
    lr = check.positive("lr", lr)
    shard, batch = len(x) // n_clients, defence.batch(strength, batch_size)
    if batch > shard:
        raise ValueError(f"{len(x)} samples give {n_clients} shards of {shard}, fewer than the "
                         f"batch of {batch}")
    shards_x = x[:shard * n_clients].unflatten(0, (n_clients, shard))
    shards_y = y[:shard * n_clients].unflatten(0, (n_clients, shard))
    trained = copy.deepcopy(model)
    sampler, generator = torch.Generator().manual_seed(seed), noise_generator(trained, seed)
    round_mean = defence.mean or (lambda *args: secure_aggregate(defence.send(*args)))
    for _ in range(rounds):
        picks = torch.rand(n_clients, shard, generator=sampler).argsort(1)[:, :batch]
        picks, rows = picks.to(x.device), torch.arange(n_clients, device=x.device).unsqueeze(1)
        xs, ys = shards_x[rows, picks], shards_y[rows, picks]
        update = round_mean(trained, xs, ys, strength, generator)
        with torch.no_grad():
            for parameter_name, parameter in trained.named_parameters():
                parameter.sub_(lr * update[parameter_name])
    return trained


def privacy_budget(name: str, strength: float, *, shard: int, rounds: int, batch_size: int = 8,
                   delta: float = 1e-5) -> float:
    """ε of one client after ``rounds`` messages: finite only for DP-SGD (∞ for the others)."""
    shard, rounds = check.count("shard", shard), check.count("rounds", rounds)
    batch_size = check.integer("batch_size", batch_size, low=1, high=shard)
    if name != "dp":
        return math.inf
    return epsilon(strength, batch_size / shard, rounds, delta)


# --- One experiment of the chapter: a defence setting → privacy and utility -----------------
@dataclass(frozen=True)
class Lab:
    """Everything one measurement needs, as plain data (see :func:`mnist_lab`).

    Attributes:
        model: the global model the server sends (and attacks, and trains).
        x_private, y_private: the target clients' images (the first N·B are used).
        x_train, y_train, x_test, y_test: the federated training data and the held-out test set.
        n_clients, rounds, batch_size, lr: federated training (FedSGD) settings.
        steps: iterations of the span and optimisation attacks.
        delta: the δ of the reported (ε, δ).
    """

    model: nn.Module
    x_private: Tensor
    y_private: Tensor
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    n_clients: int = 10
    rounds: int = 30
    batch_size: int = 8
    lr: float = 2.0
    steps: int = 30
    delta: float = 1e-5


def mnist_lab(width: int = 8, rounds: int = 30, steps: int = 30, seed: int = 0,
              n_test: int = 100, device: torch.device | str = "cpu") -> Lab:
    """The chapter's lab: real MNIST digits of the sample pack, a sigmoid MLP 784→width→10.

    The last ``n_test`` digits are the test set; the others are split over 10 clients for
    training, and the attacked clients hold test digits (the server never trained on them).
    Everything sits on ``device`` (pass ``rl.device()`` to use a GPU when there is one).
    """
    from . import datasets, models  # local: datasets is only needed to build the lab

    x, y = datasets.load("mnist")
    x, y = x.to(device), y.to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = models.mlp(x.shape[1:], [width], 10, activation="sigmoid").to(device)
    x_train, y_train, x_test, y_test = x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:]
    return Lab(model, x_test, y_test, x_train, y_train, x_test, y_test, rounds=rounds, steps=steps)


def measure(name: str | None, strength: float, lab: Lab, *, attacks: Sequence[str] = ATTACKS,
            train: bool = True, seed: int = 0) -> dict[str, float]:
    """One point of a privacy–utility plot: each attack's PSNR/SSIM, the test accuracy and ε.

    ``name=None`` trains without any defence (the baseline accuracy) and runs no attack.
    """
    row: dict[str, float] = {"strength": float(strength)}
    if name is not None and attacks:
        row.update(evaluate(name, strength, lab.model, lab.x_private, lab.y_private,
                            attacks=attacks, steps=lab.steps, seed=seed))
    if train:
        trained = train_federated(lab.model, lab.x_train, lab.y_train, name=name, strength=strength,
                                  n_clients=lab.n_clients, rounds=lab.rounds,
                                  batch_size=lab.batch_size, lr=lab.lr, seed=seed)
        row["accuracy"] = accuracy(trained, lab.x_test, lab.y_test)
    shard = len(lab.x_train) // lab.n_clients
    row["epsilon"] = math.inf if name is None else privacy_budget(
        name, strength, shard=shard, rounds=lab.rounds, batch_size=lab.batch_size, delta=lab.delta)
    return row


def sweep(name: str, lab: Lab, strengths: Sequence[float], *, attack_at: Sequence[float] | None = None,
          train_at: Sequence[float] | None = None, seed: int = 0) -> list[dict[str, float]]:
    """The rows of one defence's privacy–utility plot.

    The closed form runs at every strength (it costs milliseconds); the span and optimisation
    attacks only at ``attack_at`` and training only at ``train_at`` (default: everywhere), so
    the quick profile can afford the expensive points at the settings that matter.
    """
    rows = []
    for strength in strengths:
        heavy = attack_at is None or strength in attack_at
        row = measure(name, strength, lab, attacks=ATTACKS if heavy else ("closed_form",),
                      train=train_at is None or strength in train_at, seed=seed)
        rows.append(row)
    return rows
