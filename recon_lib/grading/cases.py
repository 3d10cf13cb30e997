"""Fresh cases for the checks: real faces at several sizes and random MLPs (every chapter).

All draws use torch's global generator, which :func:`recon_lib.grading.check` seeds inside
``torch.random.fork_rng``; so a case set is fixed by its seed and the learner's RNG is untouched.
Sizes vary per case, so an answer that hard-codes d = 625 (a 25×25 face) fails; most images are
not square (H ≠ W), so an answer that swaps height and width fails too.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor, nn

from .. import datasets, models

SHAPES = ((12, 16), (16, 12), (25, 25), (14, 20))  # (H, W) the cases draw from (25×25: native LFW)
ACTIVATIONS = ("sigmoid", "relu", "tanh")


def randint(low: int, high: int) -> int:
    """A random integer in [low, high], both included, from torch's generator."""
    return int(torch.randint(low, high + 1, ()).item())


@lru_cache(maxsize=8)
def faces(size: int | tuple[int, int]) -> Tensor:
    """All sample faces resized to ``size`` (a side or (H, W)), N×1×H×W in [0, 1] (cached)."""
    return datasets.load("faces", size=size)[0]


def face_batch(size: int) -> Tensor:
    """``size`` distinct real faces of one random (H, W) from :data:`SHAPES`."""
    pool = faces(SHAPES[randint(0, len(SHAPES) - 1)])
    return pool[torch.randperm(len(pool))[:size]]


def random_mlp(in_shape: Sequence[int], activation: str, *, bias: bool = True,
               first_width: tuple[int, int] = (2, 8), extra_layers: tuple[int, int] = (0, 2),
               n_classes: tuple[int, int] = (2, 10)) -> nn.Sequential:
    """A :func:`recon_lib.models.mlp` with random hidden widths, depth and number of classes."""
    widths = [randint(*first_width)] + [randint(2, 8) for _ in range(randint(*extra_layers))]
    return models.mlp(in_shape, widths, randint(*n_classes), activation=activation, bias=bias)


def n_classes(model: nn.Sequential) -> int:
    """The number of classes of an :func:`recon_lib.models.mlp`: its last layer is the Linear head."""
    head = model[-1]
    if not isinstance(head, nn.Linear):
        raise TypeError(f"the model ends in {type(head).__name__}, not the Linear head of rl.models.mlp")
    return head.out_features


def describe(model: nn.Sequential) -> str:
    """``"MLP 256→5→3→10, relu"``: the sizes a learner needs to reproduce a failing case."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    sizes = "→".join(str(n) for n in [linears[0].in_features, *(m.out_features for m in linears)])
    activation = next(type(m).__name__.lower() for m in model if not isinstance(m, (nn.Linear, nn.Flatten)))
    return f"MLP {sizes}, {activation}{'' if linears[0].bias is not None else ', no bias'}"
