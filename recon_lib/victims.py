"""Chapter 08: realistic victims — what the course's attacks recover from what a Flower client sends.

A *row* of the chapter's table is a victim (:class:`recon_lib.flower.Setup`: data, model,
activation, BatchNorm mode, batch size B, local steps E), a point of training (the global model
after r rounds of a Flower run) and one attack of chapters 01–04. :func:`client_message` makes
exactly the message the curious server of :mod:`recon_lib.flower` captures (the same
:func:`~recon_lib.flower.local_update` and :func:`~recon_lib.flower.to_message`; a test checks
it equals a capture from a real Flower run bit for bit); :func:`run_attack` hands it to the
course's attacks through their public names; :func:`measure` scores one row over many seeds
(PSNR/SSIM per image, fraction ≥ 40 dB and ≥ 20 dB) with the diagnostics that say *which
condition* of chapters 01–03 failed: the share of first-layer units with δ = 0, the size of the
bias gradient, the rank of the first layer's weight gradient.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from . import _validate as check
from . import analytic, cnn, metrics, newton, optimize
from .errors import scored_against_truth
from .flower import Setup, State, build_model, local_update, shard, to_message

ATTACKS = ("closed_form", "span", "cnn_exact", "fast", "inverting_gradients")
RECOVERED_DB = (40.0, 20.0)  # "recovered" (exact to the eye) and "recognisable" thresholds


def global_model(setup: Setup, history: Mapping[int, State] | None = None,
                 server_round: int = 0) -> nn.Module:
    """The global model of round ``server_round`` of a run (its ``history``), or θ₀ when round 0."""
    model = build_model(setup)
    if server_round:
        if history is None or server_round not in history:
            raise ValueError(f"no global weights for round {server_round}; pass the run's history")
        model.load_state_dict(history[server_round])
    return model


def replay_fedavg(setup: Setup) -> dict[int, State]:
    """The global weights of every round of a FedAvg run, replayed without a transport.

    Each round every client runs the federation's own :func:`~recon_lib.flower.local_update` on
    its :func:`~recon_lib.flower.shard`, and the new global weights are the mean of the replies —
    what Flower's ``FedAvg`` computes when every client reports the same number of examples.
    ``tests/test_flower.py`` checks it against a real ``run_simulation``. For when Ray cannot
    start (it gives up after 30 s on an overloaded machine).
    """
    model = build_model(setup)
    history = {0: {name: value.detach().clone() for name, value in model.state_dict().items()}}
    for server_round in range(1, setup.rounds + 1):
        replies = [local_update(model, *shard(setup, k, server_round), local_steps=setup.local_steps,
                                lr=setup.lr) for k in range(setup.n_clients)]
        model.load_state_dict({name: sum(r[name] for r in replies) / len(replies) for name in replies[0]})
        history[server_round] = {name: value.detach().clone() for name, value in model.state_dict().items()}
    return history


def client_message(model: nn.Module, setup: Setup, partition: int, server_round: int
                   ) -> tuple[State, Tensor, Tensor]:
    """What the curious server gets from client ``partition`` in ``server_round`` (and its private batch).

    Returns:
        ``(message, x, y)``: the message (θ − θ′)/(lr·E) and the client's private images and labels.
    """
    x, y = shard(setup, partition, server_round)
    sent = {name: value.detach().clone() for name, value in model.state_dict().items()}
    received = local_update(model, x, y, local_steps=setup.local_steps, lr=setup.lr)
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    return to_message(sent, received, names, lr=setup.lr, local_steps=setup.local_steps), x, y


def run_attack(kind: str, model: nn.Module, message: Mapping[str, Tensor], batch_size: int, *,
               steps: int | None = None, seed: int = 0) -> Tensor:
    """One attack of the course on a captured message; returns k × C × H × W images.

    * ``"closed_form"`` — chapter 01 (:func:`recon_lib.analytic.reconstruct`): one image.
    * ``"span"`` — chapter 02's leaked span + exact batch solver (``gradient_matching`` with the
      ``gauss_newton`` preset and ``span=True``, i.e. :func:`recon_lib.newton.solve_batch`).
    * ``"cnn_exact"`` — chapter 03's exact CNN inversion (:func:`recon_lib.cnn.invert_cnn`).
    * ``"fast"``, ``"inverting_gradients"`` — chapter 04's gradient matching presets.

    Raises:
        ValueError, TypeError: what the attack raises where its condition fails (no usable
            unit, a ReLU to invert, a layer it cannot handle).
    """
    check.choice("kind", kind, ATTACKS)
    model = attacker_replica(model)
    if kind == "closed_form":
        return analytic.reconstruct(model, message).unsqueeze(0)
    if kind == "cnn_exact":
        return cnn.invert_cnn(model, message).unsqueeze(0)
    if kind == "span":  # labels read from the head as counts: repeated labels allowed
        return newton.solve_batch(model, dict(message), batch_size, seed=seed).images
    extra: dict[str, Any] = {} if steps is None else {"steps": steps}
    with scored_against_truth():  # the table scores every image against the private data
        return optimize.gradient_matching(model, message, batch_size, preset=kind, seed=seed,
                                          progress=False, **extra).images


def attacker_replica(model: nn.Module) -> nn.Module:
    """The server's copy of the victim for attacking: train-mode BatchNorm without running stats.

    In train mode BatchNorm normalises with the batch's own statistics; its running averages
    do not change the output, but their in-place update breaks the functional transforms the
    attacks use (``vmap``, ``jacfwd``). The replica computes the same function without them.
    """
    replica = copy.deepcopy(model)
    for module in replica.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
            module.track_running_stats, module.running_mean, module.running_var = False, None, None
    return replica


def score(images: Tensor, x: Tensor) -> tuple[list[float], list[float]]:
    """PSNR and SSIM of every private image against its reconstruction.

    As many reconstructions as images: paired by :func:`recon_lib.metrics.match`. One
    reconstruction of a batch (a closed form on B > 1): it is credited to the image it is
    closest to, and every other image of the batch counts as not recovered (PSNR of a black image
    would flatter nothing: they get the PSNR of that same reconstruction against them).
    """
    images = torch.nan_to_num(images.detach().float(), nan=0.0).clamp(0, 1).reshape(-1, *x.shape[1:])
    if images.shape[0] == x.shape[0]:
        images, _ = metrics.match(images, x)
    elif images.shape[0] == 1:
        images = images.expand_as(x)
    else:
        raise ValueError(f"{images.shape[0]} reconstructions for {x.shape[0]} images")
    return metrics.psnr(images, x).tolist(), metrics.ssim(images, x).tolist()


def diagnostics(model: nn.Module, message: Mapping[str, Tensor]) -> dict[str, float]:
    """Which condition holds: dead first-layer units (δ = 0), median |∂b|, rank of ∂W (Claims 1–2)."""
    name, layer = analytic.first_layer(model)
    out: dict[str, float] = {}
    if isinstance(layer, nn.Linear) and layer.bias is not None:
        bias, weight = message[f"{name}.bias"].double(), message[f"{name}.weight"].double()
        out["dead_units"] = float((~analytic.usable_units(bias.float())).double().mean())
        out["median_abs_db"] = float(bias.abs().median())
        singular = torch.linalg.svdvals(weight)
        out["rank_dw"] = float((singular > singular[0] * 1e-6).sum()) if singular[0] > 0 else 0.0
    return out


@dataclass(frozen=True)
class Row:
    """One line of the victims table: a victim, a point of training and an attack.

    Attributes:
        group: the question the row answers (``"training"``, ``"activation"``, ...).
        label: the victim in words.
        setup: the victim; seeds replace ``setup.seed`` (model init) unless ``trained`` is set.
        attack: one of :data:`ATTACKS`.
        server_round: the global model after this many rounds of the training run (0 = θ₀).
        condition: the condition of chapters 01–03 the row tests, in words.
    """

    group: str
    label: str
    setup: Setup
    attack: str
    server_round: int = 0
    condition: str = ""


def measure(row: Row, seeds: Sequence[int], *, history: Mapping[int, State] | None = None,
            steps: int | None = None, device: torch.device | str = "cpu") -> dict:
    """Run one row over ``seeds``; per-image PSNR/SSIM, recovered fractions and diagnostics.

    With ``row.server_round > 0`` the model is the run's global model of that round (``history``,
    trained with ``row.setup.seed``) and each seed is another client and round of private data;
    otherwise each seed draws a fresh model θ₀ and fresh private data.
    An attack that raises (its condition fails) recovers nothing: its images count as 0 dB and
    the reason is recorded. The client's local training runs on the CPU (as a Flower client
    does here); the captured message, the model and the attack then move to ``device``.
    """
    psnrs: list[float] = []
    ssims: list[float] = []
    extras: list[dict[str, float]] = []
    failures: list[str] = []
    for seed in seeds:
        setup = row.setup if row.server_round else row.setup.replace(seed=int(seed))
        model = global_model(setup, history, row.server_round)
        partition = int(seed) % setup.n_clients
        message, x, _ = client_message(model, setup, partition, row.server_round + 1 + 1000 * int(seed))
        model, x = model.to(device), x.to(device)
        message = {name: value.to(device) for name, value in message.items()}
        extras.append(diagnostics(model, message))
        try:
            images = run_attack(row.attack, model, message, setup.batch_size, steps=steps, seed=int(seed))
            p, s = score(images, x)
        except (ValueError, TypeError, RuntimeError) as error:
            failures.append(f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")
            p, s = [0.0] * len(x), [0.0] * len(x)
        psnrs += p
        ssims += s
    finite = [min(value, 200.0) for value in psnrs]
    summary = {key: float(torch.tensor([e.get(key, math.nan) for e in extras]).nanmedian())
               for key in ("dead_units", "median_abs_db", "rank_dw")}
    return {"group": row.group, "label": row.label, "attack": row.attack, "round": row.server_round,
            "condition": row.condition, "setup": row.setup.to_config(), "seeds": [int(s) for s in seeds],
            "psnr": finite, "ssim": ssims, "psnr_median": float(torch.tensor(finite).median()),
            "ssim_median": float(torch.tensor(ssims).median()),
            **{f"frac_{int(db)}db": sum(v >= db for v in finite) / len(finite) for db in RECOVERED_DB},
            **summary, "failures": sorted(set(failures)), "n_failed": len(failures)}


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Test accuracy of a global model (eval mode: BatchNorm uses its running statistics)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        value = float((model(x).argmax(-1) == y).double().mean())
    model.train(was)
    return value


# --- The chapter's table: every row tied to the condition it tests ------------------------------
MNIST = Setup(dataset="mnist", width=64, n_clients=10, lr=0.1)
CIFAR = Setup(dataset="cifar100", width=64, n_clients=2, n_test=0, lr=0.1)
TRAINING = MNIST.replace(batch_size=40, local_steps=5, lr=0.5, rounds=20)  # the Flower run that trains
CLAIM1 = "Claim 1: δ ≠ 0 at some first-layer unit (ch 01)"
CLAIM2 = "Claim 2: h ≥ B, and the solver can model the message (ch 02)"
CLAIM3 = "Claim 3: h ≥ (d/d′)²C and an invertible activation (ch 03)"


def table_rows(trained_round: int = TRAINING.rounds, early_round: int = 2) -> list[Row]:
    """The rows of chapter 08's victims table (rounds refer to the :data:`TRAINING` runs)."""
    cnn = CIFAR.replace(arch="cnn", width=6)
    rows = [Row("training", f"sigmoid MLP h=64, round {r}", MNIST, attack, r, CLAIM1)
            for r in (0, early_round, trained_round) for attack in ("closed_form", "fast")]
    rows += [Row("activation", f"{act} MLP h=64, round 0", MNIST.replace(activation=act), attack, 0, CLAIM1)
             for act in ("relu", "leaky_relu") for attack in ("closed_form", "fast")]
    rows.append(Row("activation", f"relu MLP h=64, round {trained_round}", MNIST.replace(activation="relu"),
                    "closed_form", trained_round, CLAIM1))
    bn_train, bn_eval = MNIST.replace(batchnorm="train", batch_size=4), MNIST.replace(batchnorm="eval")
    rows += [Row("batchnorm", "BatchNorm train mode, B=4", bn_train, attack, 0,
                 "Claims 1–2: BN's mean subtraction makes ∂b = Σδ = 0 (ch 01)") for attack in
             ("closed_form", "span", "fast")]
    rows += [Row("batchnorm", "BatchNorm eval mode, B=1", bn_eval, "closed_form", 0, CLAIM1),
             Row("batchnorm", "BatchNorm eval mode, B=4", bn_eval.replace(batch_size=4), "span", 0, CLAIM2)]
    for steps in (1, 5, 20):
        name = "FedSGD" if steps == 1 else f"FedAvg E={steps}"
        rows += [Row("fedavg", f"{name}, B=1", MNIST.replace(local_steps=steps), "closed_form", 0, CLAIM1),
                 Row("fedavg", f"{name}, B=4", MNIST.replace(local_steps=steps, batch_size=4), "span", 0,
                     "Claim 2 + one gradient at θ₀ (exact only for E = 1)")]
    rows.append(Row("fedavg", "FedAvg E=5, B=1", MNIST.replace(local_steps=5), "fast", 0,
                    "one gradient at θ₀ (exact only for E = 1)"))
    rows += [Row("width", f"h={h}, B={b}", MNIST.replace(width=h, batch_size=b), "span", 0, CLAIM2)
             for h, b in ((8, 4), (8, 8), (8, 16), (64, 16))]
    search = "none (a search)"
    rows += [Row("cifar100", "CIFAR-100 sigmoid MLP h=64", CIFAR, "closed_form", 0, CLAIM1),
             Row("cifar100", "CIFAR-100 sigmoid MLP h=64", CIFAR, "inverting_gradients", 0, search)]
    rows += [Row("cifar100", f"CIFAR-100 {act} CNN, 6 kernels 3×3", cnn.replace(activation=act), "cnn_exact",
                 0, CLAIM3) for act in ("sigmoid", "leaky_relu", "relu")]
    rows.append(Row("cifar100", "CIFAR-100 sigmoid CNN, 6 kernels 3×3", cnn, "fast", 0, search))
    return rows
