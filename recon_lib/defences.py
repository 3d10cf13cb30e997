"""Defences against gradient inversion, and their price (chapter 07).

Each defence is a small function a *client* applies before anything leaves the device, so the
data flow of the course is unchanged: model + private data → client (now defended) → message →
attack → metrics. The defences of the chapter:

* :func:`dp_update` — DP-SGD (Abadi et al. 2016) through Opacus: every per-sample gradient
  clipped to norm C, then Gaussian noise of std σ·C added to their sum; :func:`epsilon` is
  the privacy accountant's ε for σ, the sampling rate and the number of rounds.
* :func:`add_noise` — plain Gaussian noise on a message (no clipping, no ε).
* :func:`prune` — top-k pruning: keep the largest-magnitude entries of each tensor (Zhu et al.
  2019 tried it against DLG).
* :func:`quantize` — uniform quantisation of each tensor to ``bits`` bits.
* larger local batches — :func:`recon_lib.fl.client_update` with a bigger B;
* :func:`secure_aggregate` — the server sees only the mean of N clients' messages;
* :func:`fedavg_update` — E local steps (FedAvg, McMahan et al. 2017): the message is the
  weight change in gradient units.

:data:`DEFENCES` names them as plain data (knob, strengths, recommended setting) for the
notebook, the explorer and ``benchmarks/defences.py``; :func:`server_view` plays one client
(or N clients under secure aggregation) and returns what the server receives. The theory of
the chapter (noise through the ratio, the DP ceiling, the pruning count) closes the module;
the measurements (attacks on defended messages, federated training under a defence) live in
:mod:`recon_lib.privacy_utility`.
"""
from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from . import _validate as check
from .defence_theory import dp_psnr_bound, noise_error, predicted_mse, pruning_threshold  # noqa: F401

Message = dict[str, Tensor]


# --- Defences on a message ------------------------------------------------------------------
def add_noise(message: Mapping[str, Tensor], std: float,
              generator: torch.Generator | None = None) -> Message:
    """Every entry plus independent N(0, std²) noise (no clipping, hence no DP guarantee).

    The closed form divides ∂W by ∂b, so noise ε_W, ε_b on them gives, to first order,
    x̂ − x ≈ (ε_W − x ε_b)/δ (:func:`noise_error`): small δ amplify it.
    """
    check.message(message)
    std = check.nonnegative("std", std)
    where = None if generator is None else generator.device  # draw where the generator lives
    return {name: g + std * torch.randn(g.shape, generator=generator, dtype=g.dtype,
                                        device=where).to(g.device)
            for name, g in message.items()}


def _rows(g: Tensor, per_client: bool) -> Tensor:
    """A tensor as rows that are treated independently: one per client, or one in all."""
    return g.flatten(1) if per_client else g.reshape(1, -1)


def keep_count(n: int, ratio: float) -> int:
    """How many of ``n`` entries top-k pruning at ``ratio`` keeps: k = max(1, ⌈(1 − ratio)·n⌉), exactly.

    The ratio is read as the simplest fraction within round-off of the float (0.99 → 99/100,
    1/3 → 1/3), so the count is what the ratio means, not what float arithmetic makes of it:
    in floats (1 − 0.99)·5000 is 50.00000000000004, whose ceiling would keep 51.
    """
    exact = Fraction(ratio).limit_denominator(10**9)
    return max(1, math.ceil((1 - exact) * n))


def prune(message: Mapping[str, Tensor], ratio: float, *, per_client: bool = False) -> Message:
    """Top-k pruning: zero the ``ratio`` fraction of smallest-magnitude entries in each tensor.

    ``ratio`` = 0 keeps everything; 0.99 keeps the largest 1 % (at least one entry per tensor);
    the count is :func:`keep_count`, computed exactly. Ties at the threshold are broken by
    position (``torch.topk``), so exactly k entries survive.
    With ``per_client=True`` dim 0 indexes clients and each client prunes its own message.
    """
    check.message(message)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
        raise ValueError(f"prune ratio must be in [0, 1) (the fraction of entries zeroed), got "
                         f"{ratio!r}")
    pruned = {}
    for name, g in message.items():
        rows = _rows(g, per_client)
        keep = keep_count(rows.shape[1], ratio)
        mask = torch.zeros_like(rows, dtype=torch.bool)
        mask.scatter_(1, torch.topk(rows.abs(), keep, dim=1).indices, True)
        pruned[name] = (rows * mask).reshape(g.shape)
    return pruned


def quantize(message: Mapping[str, Tensor], bits: int, *, per_client: bool = False) -> Message:
    """Uniform quantisation of each tensor to 2^bits levels spread over [−max|g|, max|g|].

    The grid step is 2·max|g| / (2^bits − 1); 1 bit keeps only the sign (±max|g|). Computed
    in float64 so that even 32 bits is a fine grid, then cast back to the message's dtype.
    With ``per_client=True`` dim 0 indexes clients, each with its own max|g|.
    """
    check.message(message)
    bits = check.integer("bits", bits, low=1, high=64)     # float64 holds 53 bits: more is no grid
    quantized = {}
    for name, g in message.items():
        rows = _rows(g, per_client).to(torch.float64)
        top = rows.abs().amax(1, keepdim=True)
        step = torch.where(top > 0, 2 * top / (2.0 ** bits - 1), torch.ones_like(top))
        grid = torch.where(top > 0, -top + step * torch.round((rows + top) / step), rows)
        quantized[name] = grid.reshape(g.shape).to(g.dtype)
    return quantized


def secure_aggregate(messages: Mapping[str, Tensor]) -> Message:
    """What the server sees under secure aggregation: only the mean of N clients' messages.

    Args:
        messages: N clients' messages stacked along dim 0 (as from :func:`recon_lib.fl.client_updates`).

    With equal batch sizes B the mean of N FedSGD messages *is* the message of one client
    holding all N·B images, so the batch condition becomes h ≥ N·B (chapter 02).
    """
    check.message(messages)
    sizes = {g.shape[0] if g.ndim else None for g in messages.values()}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"stack the clients' messages along dim 0 (same N for every tensor); "
                         f"got leading sizes {sorted(map(str, sizes))}")
    return {name: g.mean(0) for name, g in messages.items()}


# --- Defences on the client's procedure ------------------------------------------------------
def client_messages(model: nn.Module, xs: Tensor, ys: Tensor) -> Message:
    """FedSGD messages of N clients of B images each (xs: N × B × ...), in one vmapped call."""
    check.client_batch(model, xs.flatten(0, 1), ys.flatten())
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}

    def loss(p: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(model, dict(p), (x,)), y)

    return vmap(grad(loss), in_dims=(None, 0, 0))(params, xs, ys)


def dp_update(model: nn.Module, x: Tensor, y: Tensor, *, clip: float, noise_multiplier: float,
              generator: torch.Generator | None = None) -> Message:
    """A DP-SGD message computed by Opacus: per-sample clipping to ``clip``, then noise.

    Opacus computes every per-sample gradient gᵢ (``GradSampleModule``), scales it to norm at
    most C = ``clip``, sums, adds N(0, (σC)²) noise with σ = ``noise_multiplier`` and divides
    by B (``DPOptimizer.pre_step``). The caller's model is not changed (a copy is wrapped).

    Clipping alone (σ = 0) rescales a one-sample message by a constant, which the closed form's
    ratio cancels; only the noise protects (chapter 07 asserts both).
    """
    from opacus import GradSampleModule  # imported here: Opacus takes seconds to import
    from opacus.optimizers import DPOptimizer

    check.client_batch(model, x, y)
    clip = check.positive("clip", clip)
    sigma = check.nonnegative("noise_multiplier", noise_multiplier)
    wrapped = GradSampleModule(copy.deepcopy(model))
    params = [p for p in wrapped.parameters() if p.requires_grad]
    optimizer = DPOptimizer(torch.optim.SGD(params, lr=0.0), noise_multiplier=sigma,
                            max_grad_norm=clip, expected_batch_size=x.shape[0], generator=generator)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        outputs = wrapped(x)
        check.labels("y", y, n_classes=outputs.shape[-1])
        F.cross_entropy(outputs, y).backward()
    optimizer.pre_step()
    return {name.removeprefix("_module."): p.grad.detach().clone()
            for name, p in wrapped.named_parameters() if p.requires_grad}


RDP_ORDERS = (*[1 + k / 100 for k in range(1, 10)], *[1 + k / 10 for k in range(1, 100)],
              *range(12, 256))


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float = 1e-5) -> float:
    """The (ε, δ) privacy of DP-SGD by Opacus's Rényi accountant (Mironov 2017).

    Args:
        noise_multiplier: σ (noise std ÷ clipping norm); 0 means no privacy (ε = ∞).
        sample_rate: q, the fraction of the client's data in each batch.
        steps: how many noisy messages the client sends.
        delta: the δ of (ε, δ)-DP, conventionally below 1/(client's dataset size).

    The accountant assumes Poisson sampling; the course's clients draw fixed-size batches, a
    common approximation (stated in the chapter). The Rényi orders searched, :data:`RDP_ORDERS`,
    extend Opacus's default grid on both sides; any order gives a *valid* (ε, δ), only a less
    tight one, so for a tiny σ (a huge, meaningless ε) Opacus's "optimal order is at the edge
    of the grid" warning is silenced.
    """
    from opacus.accountants import RDPAccountant

    sigma = check.nonnegative("noise_multiplier", noise_multiplier)
    sample_rate = check.real("sample_rate", sample_rate, low=0.0, high=1.0, open_low=True)
    delta = check.real("delta", delta, low=0.0, high=1.0, open_low=True)
    if delta >= 1:
        raise ValueError(f"delta must be below 1, got {delta}")
    steps = check.integer("steps", steps, low=1)
    if sigma == 0:
        return math.inf
    accountant = RDPAccountant()
    for _ in range(steps):
        accountant.step(noise_multiplier=sigma, sample_rate=sample_rate)
    with warnings.catch_warnings():  # "optimal order at the edge of the grid": still a valid bound
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return float(accountant.get_epsilon(delta, alphas=list(RDP_ORDERS)))


def fedavg_updates(model: nn.Module, xs: Tensor, ys: Tensor, *, local_steps: int,
                   lr: float) -> Message:
    """FedAvg messages of N clients (xs: N × B × ...): E local steps each, vmapped over clients.

    Every client takes E full-batch SGD steps of size ``lr`` from the global θ₀ and sends
    (θ₀ − θ_E)/(lr·E) = (1/E) Σₜ gₜ, the mean of its local gradients: the FedSGD message when
    E = 1, and on the same scale for any E, so the server's step size need not change (FedAvg
    with a server learning rate, Reddi et al. 2021).
    For the first Linear layer of a one-sample client every step adds δᵢ⁽ᵗ⁾·x to ∂Wᵢ and δᵢ⁽ᵗ⁾
    to ∂bᵢ, so the ratio is still x: local steps do *not* stop the closed form (chapter 07
    asserts it); they confuse attacks that simulate a single step.
    """
    check.client_batch(model, xs.flatten(0, 1), ys.flatten())
    steps = check.integer("local_steps", local_steps, low=1)
    lr = check.positive("lr", lr)
    start = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}

    def loss(p: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(model, dict(p), (x,)), y)

    def local(params: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Message:
        current = dict(params)
        for _ in range(steps):
            gradient = grad(loss)(current, x, y)
            current = {name: current[name] - lr * gradient[name] for name in current}
        return {name: (params[name] - current[name]) / (lr * steps) for name in params}

    return vmap(local, in_dims=(None, 0, 0))(start, xs, ys)


def fedavg_update(model: nn.Module, x: Tensor, y: Tensor, *, local_steps: int, lr: float) -> Message:
    """One client's FedAvg message (see :func:`fedavg_updates`): x is B × ..."""
    stacked = fedavg_updates(model, x.unsqueeze(0), y.unsqueeze(0), local_steps=local_steps, lr=lr)
    return {name: g[0] for name, g in stacked.items()}


# --- The registry: each defence as plain data ------------------------------------------------
Send = Callable[[nn.Module, Tensor, Tensor, float, torch.Generator], Message]
CLIP = 1.0          # DP-SGD clipping norm C used by the registry (σ sets the noise relative to it)
LOCAL_LR = 1.0      # the client's learning rate in FedAvg


def _dp_messages(model: nn.Module, xs: Tensor, ys: Tensor, sigma: float,
                 generator: torch.Generator) -> Message:
    """N clients' DP-SGD messages, one Opacus call per client (each draws its own noise)."""
    messages = [dp_update(model, x, y, clip=CLIP, noise_multiplier=sigma, generator=generator)
                for x, y in zip(xs, ys, strict=True)]
    return {name: torch.stack([m[name] for m in messages]) for name in messages[0]}


def _dp_round(model: nn.Module, xs: Tensor, ys: Tensor, sigma: float,
              generator: torch.Generator) -> Message:
    """The *mean* of N clients' DP-SGD messages in one Opacus call, exact in distribution.

    Each client adds N(0, (σC)²) to its clipped sum and divides by B; the mean over N clients
    is (Σ all clipped + N(0, N(σC)²)) / (N·B): one DP-SGD step on all N·B samples with noise
    multiplier σ√N. Used for training, where the server only needs the mean.
    """
    n = xs.shape[0]
    return dp_update(model, xs.flatten(0, 1), ys.flatten(), clip=CLIP,
                     noise_multiplier=sigma * math.sqrt(n), generator=generator)


@dataclass(frozen=True)
class Defence:
    """One defence as the chapter sweeps it.

    Attributes:
        title: its name in tables and plots.
        knob: what ``strength`` means (σ, ratio, bits, B, N, E).
        off: the strength at which the defence does nothing (the undefended baseline).
        recommended: the setting the chapter asserts about: the one it recommends, or for a
            defence that fails (quantisation) the coarsest useful one, where it is shown not to protect.
        quick, full: strengths swept in each profile (``rl.pick``).
        send: ``send(model, xs, ys, strength, generator)`` — the defended messages of N clients
            holding xs (N × B × ...), stacked along dim 0.
        batch: ``batch(strength, base) -> B`` images per client.
        clients: ``clients(strength) -> N`` clients summed before the server sees anything.
        mean: optional faster ``mean(model, xs, ys, strength, generator)`` of the N messages
            (same distribution as averaging ``send``), used by :func:`train_federated`.
    """

    title: str
    knob: str
    off: float
    recommended: float
    quick: tuple[float, ...]
    full: tuple[float, ...]
    send: Send
    batch: Callable[[float, int], int] = lambda strength, base: base
    clients: Callable[[float], int] = lambda strength: 1
    mean: Send | None = None


def _plain(model: nn.Module, xs: Tensor, ys: Tensor, strength: float, gen: torch.Generator) -> Message:
    return client_messages(model, xs, ys)


DEFENCES: dict[str, Defence] = {
    "dp": Defence(title="DP-SGD (clip C=1 + noise)", knob="noise multiplier σ", off=0.0, recommended=1.0,
                  quick=(0.0, 0.001, 0.01, 1.0), full=(0.0, 1e-4, 1e-3, 0.01, 0.1, 0.5, 1.0, 2.0),
                  send=_dp_messages, mean=_dp_round),
    "prune": Defence(title="top-k pruning", knob="pruning ratio", off=0.0, recommended=0.99,
                     quick=(0.0, 0.9, 0.99), full=(0.0, 0.5, 0.9, 0.95, 0.99, 0.999),
                     send=lambda m, xs, ys, s, g: prune(client_messages(m, xs, ys), s, per_client=True)),
    "quantize": Defence(title="quantisation", knob="bits", off=32, recommended=2,
                        quick=(32, 8, 2), full=(32, 16, 8, 6, 4, 3, 2, 1),
                        send=lambda m, xs, ys, s, g: quantize(client_messages(m, xs, ys), int(s),
                                                              per_client=True)),
    "batch": Defence(title="larger local batch", knob="batch size B", off=1, recommended=16,
                     quick=(1, 4, 16), full=(1, 2, 4, 8, 16, 32), send=_plain,
                     batch=lambda s, base: int(s)),
    "secure_aggregation": Defence(title="secure aggregation", knob="clients N", off=1, recommended=16,
                                  quick=(1, 4, 16), full=(1, 2, 4, 8, 16, 32), send=_plain,
                                  clients=lambda s: int(s)),
    "local_steps": Defence(title="FedAvg local steps", knob="local steps E", off=1, recommended=10,
                           quick=(1, 10), full=(1, 2, 5, 10, 20),
                           send=lambda m, xs, ys, s, g: fedavg_updates(m, xs, ys, local_steps=int(s),
                                                                       lr=LOCAL_LR)),
}


NO_DEFENCE = Defence(title="no defence", knob="-", off=0, recommended=0, quick=(0,), full=(0,), send=_plain)


def noise_generator(model: nn.Module, seed: int) -> torch.Generator:
    """A seeded generator on the model's device: Opacus draws DP noise where the gradients live."""
    return torch.Generator(device=next(model.parameters()).device).manual_seed(check.seed(seed))


def get(name: str) -> Defence:
    """The registry entry ``name`` of :data:`DEFENCES`, or a ValueError listing them."""
    if name not in DEFENCES:
        raise ValueError(f"unknown defence {name!r}; choose one of {sorted(DEFENCES)}")
    return DEFENCES[name]


def server_view(name: str, model: nn.Module, x: Tensor, y: Tensor, strength: float,
                seed: int = 0) -> Message:
    """What the server receives when the clients holding ``x`` apply defence ``name``.

    ``x`` holds N·B images for N = ``clients(strength)`` clients of B images each; every client
    sends its defended message and, when N > 1, the server sees only their mean (secure
    aggregation). For every other defence N = 1 and this is one client's message.
    """
    defence = get(name)
    strength = check.nonnegative("strength", strength)
    n = defence.clients(strength)
    if x.shape[0] % n:
        raise ValueError(f"{x.shape[0]} images cannot be split evenly over {n} clients")
    generator = noise_generator(model, seed)
    stacked = defence.send(model, x.unflatten(0, (n, -1)), y.unflatten(0, (n, -1)), strength, generator)
    return secure_aggregate(stacked)
