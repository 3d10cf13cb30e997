"""The methods of the benchmark table (chapter 06): each attack with the victim it is defined for.

A *method* is what a server would run on a message, together with the victim model it is
defined for (the attack only applies to some architectures):

* ``closed_form`` — chapter 01: x = ∂ℓ/∂W ÷ ∂ℓ/∂b on a sigmoid MLP with a biased first layer;
* ``cnn_exact`` — chapter 03: closed form on the head, then each conv undone exactly, on a
  sigmoid CNN with one kernel above the bound h ≥ (d/d′)² C of Claim 3 (4×4 kernels, stride 2);
* ``stabilised`` — chapter 04's ``"stabilised"`` gradient-matching preset (uniform init, box clamp,
  iDLG label, L-BFGS with line search) on the DLG LeNet, where the forward equations give no closed
  form (its second conv has 12 kernels, the bound asks 48);
* ``fast`` — chapter 04's ``"fast"`` preset (box as a penalty, 500-pair compact L-BFGS, early
  stop) on the same LeNet, with the same step budget.

Each attack is a function ``(model, messages, in_shape) -> images`` that sees only the model
and the messages of N one-image clients (leading dimension N). Add one with :func:`register`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from . import analytic, cnn, geometry, models, optimize
from .errors import scored_against_truth

Message = Mapping[str, Tensor]
Attack = Callable[..., Tensor]
Builder = Callable[[tuple[int, ...], int], nn.Module]


@dataclass(frozen=True)
class Method:
    """One row group of the table: an attack and the victim architecture it is defined for.

    Attributes:
        name: registry key, e.g. ``"closed_form"``.
        title: what the table prints.
        victim: the victim model in words.
        build: ``build(in_shape, n_classes) -> model`` (called after seeding).
        attack: ``attack(model, messages, in_shape, **options) -> N × C × H × W``.
        options: keyword settings passed to ``attack`` (e.g. the optimiser's ``steps``).
    """

    name: str
    title: str
    victim: str
    build: Builder
    attack: Attack
    options: Mapping[str, object] = field(default_factory=dict)

    def with_options(self, **options: object) -> "Method":
        """A copy with some attack settings changed: ``METHODS["stabilised"].with_options(steps=50)``."""
        return replace(self, options={**self.options, **options})

    def __call__(self, model: nn.Module, messages: Message, in_shape: Sequence[int]) -> Tensor:
        return self.attack(model, messages, tuple(in_shape), **self.options)


METHODS: dict[str, Method] = {}


def register(name: str, *, title: str, victim: str, build: Builder, **options: object) -> Callable:
    """Add an attack function to :data:`METHODS` under ``name`` (decorator)."""
    def add(attack: Attack) -> Attack:
        METHODS[name] = Method(name, title, victim, build, attack, dict(options))
        return attack
    return add


# --- Victims -------------------------------------------------------------------------------
def biased_mlp(in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Sigmoid MLP with 16 biased first-layer units (chapter 01's setting)."""
    return models.mlp(in_shape, [16], n_classes)


def kernel_bound(in_shape: Sequence[int], k: int = 4, s: int = 2, p: int = 1) -> int:
    """Claim 3's h ≥ (d/d′)² C for a C×H×W input, per side: ⌈C·H·W / (H′·W′)⌉."""
    return geometry.kernel_bound(in_shape, k, s, p)


def cnn_above_bound(in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Sigmoid CNN, one 4×4 stride-2 conv with one kernel more than Claim 3's bound.

    4C + 1 kernels for an even side; an odd side (25×25 faces) has a smaller d′ and needs more.
    """
    kernels = kernel_bound(in_shape) + 1
    return models.cnn(in_shape, [kernels], n_classes, kernel_size=4, stride=2, padding=1)


def dlg_lenet(in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The DLG/iDLG LeNet (12 kernels per conv): below the bound, so no closed form."""
    return models.lenet_dlg(in_shape, n_classes)


# --- Attacks (see only model and messages) ------------------------------------------------
@register("closed_form", title="closed form (ch. 01)", victim="sigmoid MLP, biased FC, h = 16",
          build=biased_mlp)
def closed_form(model: nn.Module, messages: Message, in_shape: tuple[int, ...]) -> Tensor:
    """x = ∂ℓ/∂W ÷ ∂ℓ/∂b for N clients at once (:func:`recon_lib.analytic.reconstruct`)."""
    return analytic.reconstruct(model, messages, in_shape)


@register("cnn_exact", title="exact CNN inversion (ch. 03)",
          victim="sigmoid CNN, bound + 1 kernels, 4×4, stride 2", build=cnn_above_bound)
def cnn_exact(model: nn.Module, messages: Message, in_shape: tuple[int, ...]) -> Tensor:
    """Closed form on the head, then CGLS through each conv (:func:`recon_lib.analytic.invert_cnn`)."""
    return cnn.invert_cnn(model, messages, in_shape)


@register("stabilised", title="optimisation, 'stabilised' preset (ch. 04)", victim="DLG LeNet (sigmoid)",
          build=dlg_lenet, preset="stabilised", steps=300, seed=0)
def gradient_search(model: nn.Module, messages: Message, in_shape: tuple[int, ...], *,
                    preset: str = "stabilised", steps: int = 300, seed: int = 0) -> Tensor:
    """Gradient matching (:func:`recon_lib.optimize.gradient_matching`), one client at a time."""
    n = next(iter(messages.values())).shape[0]
    with scored_against_truth():  # the benchmark scores every image against the private data
        images = [optimize.gradient_matching(model, {k: g[i] for k, g in messages.items()}, 1,
                                             preset=preset, steps=steps, seed=seed, progress=False).images
                  for i in range(n)]
    return torch.cat(images).reshape(n, *in_shape)


# The course's engineered preset of chapter 04 (box as a penalty, long compact L-BFGS memory).
register("fast", title="optimisation, 'fast' preset (ch. 04)", victim="DLG LeNet (sigmoid)",
         build=dlg_lenet, preset="fast", steps=300, seed=0)(gradient_search)
# Methods that search (costly: seconds to minutes per image); the others are closed forms.
SEARCHES = ("stabilised", "fast")


def methods(names: Iterable[str] | None = None, **options: Mapping[str, object]) -> list[Method]:
    """Registered methods by name (all if None), with per-method settings: ``stabilised={"steps": 50}``."""
    names = list(METHODS) if names is None else list(names)
    unknown = sorted(set(names) - set(METHODS)) + sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"unknown or unselected method(s) {unknown}; registered: {sorted(METHODS)}")
    return [METHODS[n].with_options(**options.get(n, {})) for n in names]
