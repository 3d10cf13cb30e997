"""Optimisation attacks: gradient matching (chapters 02 and 04).

When no closed form applies, the server searches for dummy inputs x̂ (and labels ŷ) whose
gradient matches the message g*:

    min_x̂  D(∇θ ℓ(f_θ(x̂), ŷ), g*)  +  λ_TV TV(x̂)  +  λ_⊥ Σ_{i≠j} mean_k (x̂_{i,k} x̂_{j,k})²  (+ box prior)

References: DLG (Zhu et al. 2019: Euclidean D, L-BFGS, Gaussian init, soft label optimised
jointly), iDLG (Zhao et al. 2020: label read from the head's gradient), Inverting Gradients
(Geiping et al. 2020: cosine D, total variation, Adam, box constraint, restarts), and the
stabilisers credited by Qian, Nassar & Hansen (2021): uniform initialisation in the pixel
range, prior information (here a box prior) and an orthogonality regulariser between the dummy
images of a batch (its exact form is unknown; we use the published reading above).

Settings are plain data (:mod:`recon_lib.presets`, re-exported here): :class:`Options` and
the named :data:`PRESETS` a learner can read and override
(``gradient_matching(..., preset="dlg", steps=50)``). The attacker sees only the
model and the message, never the private data.

Speed: restarts are one batched tensor program. The model's forward is ``vmap``-ed
(``torch.func``) over R stacked copies of its weights, so one autograd call gives every restart
its own parameter gradient and its own matching loss. With Adam, which is element-wise, the
restarts are exactly independent runs. With L-BFGS the optimiser sees the *sum* of the
restarts' losses: the sum is separable, so its minimiser is every restart's minimiser, but the
restarts share one curvature history and one line search (use ``restarts=1`` for the textbook
algorithm). The ``"fast"`` preset's L-BFGS keeps 500 curvature pairs in the vectorised compact
form of :mod:`recon_lib.lbfgs` (torch's two-loop recursion walks them in Python, which costs
more than the objective). With ``span=True`` the ``"gauss_newton"`` preset hands the about B² unknowns to
chapter 02's Levenberg-Marquardt solver (:func:`recon_lib.newton.solve_batch`): a handful of
iterations to round-off.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from . import _validate as check
from . import newton, verify
from .errors import ReconstructionWarning
from .labels import recover_label, recover_labels
from .lbfgs import CompactLBFGS
from .matching import (  # noqa: F401  (the objective's pieces, re-exported: rl.optimize.<name>)
    DISTANCES,
    box_penalty,
    cosine_distance,
    distance_for,
    euclidean_distance,
    flat,
    layer_weights,
    normalised_distance,
    orthogonality,
    stop_threshold,
    total_variation,
)
from .models import first_layer, last_linear
from .presets import CHOICES, PRESETS, Options, options  # noqa: F401  (the settings, re-exported)
from .runtime import progress_bar, small_problem
from .span import batch_span

Message = Mapping[str, Tensor]
AUTO = "auto"  # gradient_matching's default preset: gauss_newton with span=True, else stabilised
# An answer whose recomputed message is off by more than this (worst parameter, relative) is
# reported as possibly wrong even when the matching loss met its threshold: under PyTorch's
# initialisation the Euclidean loss can fall to 1e-8 · ‖g*‖² while the first layer's gradient,
# 10⁻³ of the others, is still off by a few per cent (chapter 04).
RESIDUAL_TOL = 1e-2


# --- The result -------------------------------------------------------------------------------
@dataclass
class Result:
    """What a gradient-matching attack returns.

    Attributes:
        images: B × C × H × W reconstruction of the winning restart.
        labels: B labels (given, recovered, or the argmax of the optimised soft label).
        losses: matching loss of the winning restart at every evaluation of the objective
            (L-BFGS line searches evaluate several times per iteration).
        steps: optimiser iterations run.
        seconds: wall time of the attack.
        restart_losses: final matching loss of every restart.
        options: the settings used.
        residual: how well the answer reproduces the message, as the server can check it:
            the worst parameter's ‖g(x̂) − g*‖ / ‖g*‖ for the message recomputed from the images
            and labels (:func:`recon_lib.verify.batch_residual`; up to one scale factor with
            the cosine distance); NaN with a jointly fitted soft label, which has no hard label
            to recompute with.
    """

    images: Tensor
    labels: Tensor
    losses: Tensor
    steps: int
    seconds: float
    restart_losses: Tensor
    options: Options = field(repr=False)
    residual: float = math.nan

    @property
    def loss(self) -> float:
        """The final matching loss of the winning restart."""
        return float(self.restart_losses.min())


# --- Checking what the attacker is given --------------------------------------------------
def _trainable(model: nn.Module) -> dict[str, Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _check_message(model: nn.Module, grads: Message, batch_size: int) -> None:
    """Clear errors for a message that does not belong to the model."""
    check.count("batch_size", batch_size)
    params = _trainable(model)
    missing = sorted(set(params) - set(grads))
    if missing:
        raise ValueError(f"the gradient dict has no {missing}; it must hold one gradient per "
                         "trainable parameter, keyed like model.named_parameters()")
    for name, p in params.items():
        g = grads[name]
        if not isinstance(g, Tensor) or g.shape != p.shape:
            raise ValueError(f"grads[{name!r}] should be a tensor of shape {tuple(p.shape)}, got "
                             f"{tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__}")
        if g.device != p.device:
            raise ValueError(f"grads[{name!r}] is on {g.device} but the model on {p.device}; "
                             "move the message with .to(device)")
        if not torch.isfinite(g).all():
            raise ValueError(f"grads[{name!r}] contains NaN or inf; nothing can be matched")
    if all(not grads[name].any() for name in params):
        raise ValueError("every gradient is zero: the client's loss is flat, nothing leaks")


def _input_shape(model: nn.Module, in_shape: Sequence[int] | None) -> tuple[int, ...]:
    """The shape of one input: ``in_shape`` if given, else ``model.in_shape``; checked."""
    shape = getattr(model, "in_shape", None) if in_shape is None else in_shape
    if shape is None:
        raise ValueError("pass in_shape=(C, H, W) (the shape of one input), or build the model with "
                         "rl.models, which records it as model.in_shape")
    if isinstance(shape, (int, str)) or not len(shape):
        raise ValueError(f"in_shape must be a non-empty tuple of sizes, got {shape!r}")
    shape = tuple(check.count("in_shape entries", size) for size in shape)
    try:
        name, layer = first_layer(model)
    except TypeError:                            # not traceable: the first forward will tell
        return shape
    if isinstance(layer, nn.Linear) and prod(shape) != layer.in_features:
        raise ValueError(f"in_shape {shape} has {prod(shape)} values but the first layer {name} takes "
                         f"{layer.in_features}")
    if isinstance(layer, nn.Conv2d) and (len(shape) != 3 or shape[0] != layer.in_channels):
        raise ValueError(f"in_shape {shape} does not fit the first layer {name}, a Conv2d on "
                         f"{layer.in_channels} channels: pass (C, H, W) with C = {layer.in_channels}")
    return shape


def _labels(model: nn.Module, grads: Message, batch_size: int, labels: Tensor | None,
            opts: Options, device: torch.device) -> Tensor | None:
    """Hard labels (given or read from the head's gradient), or None for a jointly fitted label."""
    if labels is not None:
        classes = last_linear(model)[1].out_features
        return check.labels("labels", torch.as_tensor(labels).reshape(-1), classes, batch_size).to(device)
    if opts.label == "joint":
        return None
    if batch_size == 1:
        return torch.tensor([recover_label(model, grads)], device=device)
    return recover_labels(model, grads, batch_size).to(device)


# --- Parametrisations: full images, or coefficients in the leaked span ------------------------
@dataclass(frozen=True)
class Unknowns:
    """How the unknowns map to images: ``decode(z)`` gives B × C × H × W, ``encode`` the inverse."""

    encode: Callable[[Tensor], Tensor]
    decode: Callable[[Tensor], Tensor]
    shape: tuple[int, ...]


def _parametrisation(model: nn.Module, grads: Message, batch_size: int, span: bool,
                     dtype: torch.dtype, shape: Sequence[int] | None = None) -> Unknowns:
    """Full images as unknowns, or (``span=True``) coefficients in the span leaked by the first layer.

    With ``span=True`` the images are written as ``coefficients @ basisᵀ``, where the basis is
    the span of the batch leaked by the first Linear layer (:func:`recon_lib.span.batch_span`):
    B × r unknowns instead of B × d (chapter 02).
    """
    shape = _input_shape(model, shape)
    if not span:
        return Unknowns(lambda x: x, lambda z: z, (batch_size, *shape))
    name, layer = first_layer(model)
    if not isinstance(layer, nn.Linear) or layer.bias is None:
        raise TypeError(f"span=True needs a biased nn.Linear first layer, but {name} is "
                        f"{type(layer).__name__}{'' if layer.bias is not None else ' without bias'}; "
                        "use span=False")
    basis = batch_span(grads[f"{name}.weight"].to(dtype), grads[f"{name}.bias"].to(dtype), batch_size)
    return Unknowns(lambda x: x.flatten(-len(shape)) @ basis,
                    lambda z: (z @ basis.T).unflatten(-1, shape),
                    (batch_size, basis.shape[1]))


def _initial(kind: str, shape: tuple, generator: torch.Generator) -> Tensor:
    """Dummy images: U(0, 1), the pixel range, N(0, 1) as in DLG (drawn on the CPU, seeded), or
    grey (0.5 everywhere)."""
    if kind == "grey":
        return torch.full(shape, 0.5, dtype=torch.float64)
    if kind == "uniform":
        return torch.rand(shape, generator=generator, dtype=torch.float64)
    return torch.randn(shape, generator=generator, dtype=torch.float64)


# --- The objective, for all restarts at once ------------------------------------------------
def _objective(model: nn.Module, target: Message, labels: Tensor | None, opts: Options,
               decode: Callable[[Tensor], Tensor], dtype: torch.dtype) -> Callable:
    """``objective(variables) -> (total, matching)``, one value per restart (R).

    The model's forward is ``vmap``-ed over R stacked copies of its weights (torch.func model
    ensembling), so one autograd call gives every restart its *own* parameter gradient: the
    restarts are one tensor program, yet exactly independent problems. One restart runs a
    private copy of the model directly (no ``functional_call`` swapping its weights in and out,
    a third of the Python time of an evaluation on LeNet-DLG).
    """
    names = list(_trainable(model))
    distance = distance_for(opts, target)
    replica = copy.deepcopy(model).to(dtype)  # never the caller's model (its buffers stay untouched)
    replica_parameters: dict[str, Tensor] = dict(replica.named_parameters())
    for name, parameter in replica_parameters.items():
        parameter.requires_grad_(name in names)
    weights = {k: p.detach() for k, p in replica_parameters.items()}  # stacked per restart below
    buffers = dict(replica.named_buffers())

    def forward(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(replica, (p, buffers), (x,))

    def objective(variables: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        x = decode(variables["x"])  # R × B × C × H × W
        restarts, batch = x.shape[:2]
        if restarts == 1:  # no stacking needed: skip vmap's overhead
            stacked = replica_parameters
            logits = replica(x[0])
        else:
            stacked = {k: w.detach().expand(restarts, *w.shape).requires_grad_(k in names)
                       for k, w in weights.items()}
            logits = vmap(forward)(stacked, x).flatten(0, 1)
        y = (labels.repeat(restarts) if labels is not None
             else variables["label"].softmax(-1).flatten(0, 1))
        losses = F.cross_entropy(logits, y, reduction="none").view(restarts, batch).mean(1)
        gradients = torch.autograd.grad(losses.sum(), [stacked[k] for k in names], create_graph=True)
        # one restart: gradients without the leading restart dimension, added back to the distance
        matching = distance(dict(zip(names, gradients, strict=True)), target).reshape(restarts)
        total = matching
        if opts.tv:
            total = total + opts.tv * total_variation(x)
        if opts.orthogonality and batch > 1:
            total = total + opts.orthogonality * orthogonality(x)
        if opts.box == "penalty":
            total = total + opts.box_weight * box_penalty(x)
        return total, matching

    return objective


# --- The optimiser loop -------------------------------------------------------------------------
def _optimizer(variables: list[Tensor], opts: Options) -> torch.optim.Optimizer:
    if opts.optimizer == "adam":
        return torch.optim.Adam(variables, lr=opts.lr)
    if opts.optimizer == "compact_lbfgs":
        return CompactLBFGS(variables, lr=opts.lr, max_iter=opts.check_every, history_size=opts.history)
    return torch.optim.LBFGS(variables, lr=opts.lr, max_iter=opts.check_every,
                             history_size=opts.history, line_search_fn=opts.line_search,
                             tolerance_grad=1e-12, tolerance_change=1e-14)


def _decay(optimizer: torch.optim.Optimizer, opts: Options):
    """Geiping's schedule: lr ÷ 10 at 3/8, 5/8 and 7/8 of the steps (Adam with ``lr_decay``)."""
    if not (opts.lr_decay and opts.optimizer == "adam"):
        return None
    milestones = [opts.steps * k // 8 for k in (3, 5, 7)]
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)


def _iterations(optimizer: torch.optim.Optimizer, done: int, opts: Options) -> int:
    if opts.optimizer == "adam":
        return done + 1
    first = optimizer.param_groups[0]["params"][0]
    return int(optimizer.state[first].get("n_iter", done))


def _run(variables: dict[str, Tensor], objective: Callable, opts: Options, project: Callable,
         progress: bool, stop: float) -> tuple[list[Tensor], int]:
    """Minimise the summed restart losses; returns the per-evaluation matching losses and steps."""
    history: list[Tensor] = []
    leaves = list(variables.values())
    optimizer = _optimizer(leaves, opts)
    scheduler = _decay(optimizer, opts)

    def closure() -> Tensor:
        with torch.enable_grad():
            totals, matching = objective(variables)
            gradients = torch.autograd.grad(totals.sum(), leaves)
        for leaf, gradient in zip(leaves, gradients, strict=True):
            leaf.grad = gradient.sign() if opts.signed else gradient  # signed Adam (Geiping et al.)
        history.append(matching.detach())
        return totals.sum().detach()

    steps = 0
    with progress_bar(total=opts.steps, enabled=progress, desc="gradient matching") as bar, \
            small_problem(leaves[0].numel(), leaves[0].device):  # one thread, native convolutions
        while steps < opts.steps:
            before, evaluations = steps, len(history)
            optimizer.step(closure)  # type: ignore[arg-type]  # torch's stubs: closure -> float
            if scheduler is not None:
                scheduler.step()
            steps = min(_iterations(optimizer, steps, opts), opts.steps)
            if opts.box == "clamp":
                project()
            bar.update(steps - before)
            best = float(history[-1].min())
            bar.set_postfix(loss=f"{best:.2e}")
            if best < stop or (steps == before and len(history) == evaluations + 1):
                break  # early stop, or L-BFGS has converged and makes no more progress
    return history, steps


# --- Levenberg-Marquardt in the leaked span: chapter 02's second-order solver -----------------
def _run_newton(model: nn.Module, grads: Message, batch_size: int, labels: Tensor, opts: Options,
                seed: int, progress: bool, shape: tuple[int, ...]) -> tuple[Tensor, Tensor, int]:
    """Restarts of :func:`recon_lib.newton.solve_batch` (one after another; each is a handful of
    Levenberg-Marquardt iterations). Returns (images R × B × …, final losses R, evaluations)."""
    dtype = getattr(torch, opts.dtype)
    runs = [newton.solve_batch(model, grads, batch_size, labels, max_evaluations=opts.steps,
                               seed=seed + r, dtype=dtype, in_shape=shape)
            for r in progress_bar(range(opts.restarts), enabled=progress, desc="least squares")]
    return (torch.stack([run.images for run in runs]),
            torch.tensor([run.loss for run in runs]), max(run.evaluations for run in runs))


def gradient_matching(model: nn.Module, grads: Message, batch_size: int,
                      labels: Tensor | None = None, *, preset: str | None = AUTO,
                      span: bool = False, in_shape: Sequence[int] | None = None, seed: int = 0,
                      device: torch.device | str | None = None, progress: bool = True,
                      **overrides: object) -> Result:
    """Reconstruct a client's batch by matching its gradient (chapters 02 and 04).

    Args:
        model: the global model (architecture and weights the server sent).
        grads: the client's message, ``{name: gradient}`` as from :func:`rl.fl.client_update`.
        batch_size: B, known to the server in FedSGD.
        labels: the B labels if known; else recovered or fitted jointly (``label`` option).
        preset: a name in :data:`PRESETS` (``"dlg"``, ``"idlg"``, ``"inverting_gradients"``,
            ``"stabilised"``, ``"fast"``, ``"gauss_newton"``) or None for the :class:`Options`
            defaults. Not given (``"auto"``): ``"gauss_newton"`` with ``span=True`` (the exact
            Levenberg–Marquardt solver in the leaked span), else ``"stabilised"``.
        span: fit only coefficients in the batch span leaked by a biased first Linear layer.
        in_shape: shape of one input, e.g. ``(1, 28, 28)``; defaults to ``model.in_shape``
            (set by :mod:`recon_lib.models`), so a plain ``nn.Sequential`` works when given.
        seed: seeds the dummy initialisation (same seed, same result).
        device: where to compute; defaults to the model's device. The caller's model is never
            moved: on another device the attack runs on a copy.
        progress: show a tqdm progress bar.
        **overrides: any :class:`Options` field, e.g. ``steps=50, init="gaussian"``.

    Returns:
        a :class:`Result` with ``.images`` (B × C × H × W), ``.labels``, ``.losses``,
        ``.steps`` and ``.seconds``.

    Raises:
        ValueError: bad batch size, preset, option, labels or message; TypeError: ``span=True``
            without a biased Linear first layer.
    """
    start = time.perf_counter()
    if preset == AUTO:
        preset = "gauss_newton" if span else "stabilised"
    opts = options(preset, **overrides)
    _check_message(model, grads, batch_size)
    seed = check.seed(seed)
    shape = _input_shape(model, in_shape)
    model_device = next(iter(_trainable(model).values())).device
    device = model_device if device is None else check.device(device)
    dtype = getattr(torch, opts.dtype)
    model = copy.deepcopy(model).to(device) if device != model_device else model  # never the caller's
    target = {k: g.detach().to(device=device, dtype=dtype) for k, g in grads.items()
              if k in _trainable(model)}
    hard = _labels(model, target, batch_size, labels, opts, device)
    if opts.optimizer == "levenberg_marquardt":
        if not span:
            raise ValueError("levenberg_marquardt forms a dense Jacobian: use it with span=True "
                             "(about B² unknowns), or optimizer='lbfgs' for whole images")
        assert hard is not None  # Options refuse label='joint' with levenberg_marquardt
        images, final, steps = _run_newton(model, target, batch_size, hard, opts, seed, progress, shape)
        best = int(final.argmin())
        return Result(images=images[best], labels=hard, losses=final[best:best + 1], steps=steps,
                      seconds=time.perf_counter() - start, restart_losses=final, options=opts,
                      residual=_residual(model, images[best], hard, target))
    unknowns = _parametrisation(model, target, batch_size, span, dtype, shape)
    encode, decode = unknowns.encode, unknowns.decode
    generator = torch.Generator().manual_seed(seed)
    x0 = _initial(opts.init, (opts.restarts, batch_size, *shape), generator)
    variables = {"x": encode(x0.to(device=device, dtype=dtype)).requires_grad_()}
    if hard is None:
        n_classes = last_linear(model)[1].out_features
        logits = torch.randn((opts.restarts, batch_size, n_classes), generator=generator, dtype=torch.float64)
        variables["label"] = logits.to(device=device, dtype=dtype).requires_grad_()
    objective = _objective(model, target, hard, opts, decode, dtype)

    def project() -> None:
        with torch.no_grad():
            variables["x"].copy_(encode(decode(variables["x"]).clamp(0, 1)))

    stop = stop_threshold(opts, target)
    history, steps = _run(variables, objective, opts, project, progress, stop)
    final = objective(variables)[1].detach()
    best = int(final.argmin())
    images = decode(variables["x"][best]).detach()
    found = hard if hard is not None else variables["label"][best].argmax(-1).detach()
    losses = torch.stack(history)[:, best] if history else final[best:best + 1]
    result = Result(images=images, labels=found, losses=losses.detach().cpu(), steps=steps,
                    seconds=time.perf_counter() - start, restart_losses=final.detach().cpu(),
                    options=opts, residual=_residual(model, images, hard, target, opts.distance == "cosine"))
    if stop > 0:  # an attack meant to converge says when it did not
        _warn_unless_converged(result, stop)
    return result


def _residual(model: nn.Module, images: Tensor, labels: Tensor | None, target: Message,
              up_to_scale: bool = False) -> float:
    """:func:`recon_lib.verify.batch_residual` of the answer (inf for non-finite images, NaN
    without hard labels); ``up_to_scale`` for the cosine distance, which matches directions."""
    if labels is None:
        return math.nan
    if not torch.isfinite(images).all():
        return math.inf
    return verify.batch_residual(model, images, labels, target, up_to_scale)


def _warn_unless_converged(result: Result, stop: float) -> None:
    """A :class:`ReconstructionWarning` when the loss stayed above its threshold, or met it while
    the message recomputed from the answer is still off (:data:`RESIDUAL_TOL`)."""
    advice = ("Allow more steps, or try another seed or preset (\"normalised\" when the first layer's "
              "gradient is small).")
    if not result.loss < stop:
        warnings.warn(f"gradient matching stopped after {result.steps} steps with its matching loss at "
                      f"{result.loss:.2e}, above the threshold {stop:.2e} it stops at when it has "
                      f"converged: the images may be wrong. {advice}", ReconstructionWarning, stacklevel=3)
    elif not result.residual <= RESIDUAL_TOL:
        warnings.warn(f"the matching loss met its threshold but the message recomputed from the answer is "
                      f"off by {result.residual:.1e} (worst parameter, relative; > {RESIDUAL_TOL:g}): the "
                      f"images may be wrong. {advice}", ReconstructionWarning, stacklevel=3)
