"""The settings of gradient matching (chapters 02 and 04): :class:`Options` and named presets.

Plain data a learner can read and override: ``options("dlg", steps=50)``. Every field with a
fixed set of values is typed as a ``Literal``, and an :class:`Options` checks itself when it
is made, so a preset or an override can never hold a value the attack does not understand.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args, get_origin, get_type_hints

from . import _validate as check

Distance = Literal["euclidean", "cosine", "normalised"]
Init = Literal["uniform", "gaussian", "grey"]
Label = Literal["recover", "joint"]
Optimizer = Literal["lbfgs", "compact_lbfgs", "adam", "levenberg_marquardt"]
Box = Literal["clamp", "penalty"]
LineSearch = Literal["strong_wolfe"]
Dtype = Literal["float32", "float64"]


@dataclass(frozen=True)
class Options:
    """Every knob of :func:`gradient_matching`; presets are partial overrides of these defaults.

    Attributes:
        distance: ``"euclidean"`` Σ‖g − g*‖² (DLG), ``"cosine"`` 1 − cos(g, g*) (Geiping) or
            ``"normalised"`` Σ_k √n_k ‖g_k − g*_k‖² / ‖g*_k‖², every parameter tensor k in its
            own units (ours: :func:`recon_lib.optimize.normalised_distance`).
        init: dummy start, ``"uniform"`` U(0, 1), the pixel range, ``"gaussian"`` N(0, 1), or
            ``"grey"``: every pixel 0.5, the middle of the range (one deterministic start, so
            one restart; it starts with none of the high-frequency noise a random start must
            first remove).
        label: ``"recover"`` (read from the head's gradient: iDLG for one image, the B most
            negative bias entries for a batch of distinct labels) or ``"joint"`` (a soft label
            optimised with the image, DLG). Ignored when ``labels`` are given.
        optimizer: ``"lbfgs"`` (torch's), ``"compact_lbfgs"`` (:mod:`recon_lib.lbfgs`: the same
            method, vectorised for long memories, backtracking line search), ``"adam"`` or
            ``"levenberg_marquardt"`` (``span=True`` only:
            chapter 02's :func:`recon_lib.newton.solve_batch`; restarts run one after another).
        lr: learning rate (L-BFGS step scale or Adam's lr).
        steps: optimiser iterations at most.
        tol: stop as soon as a restart's matching loss falls below this (iDLG uses 1e-6).
        rtol: also stop below ``rtol · D(0, g*)``, the distance of a zero gradient (Σ‖g*‖² for
            the Euclidean distance): a scale-free threshold, since the loss scales with the size
            of the message.
        tv: weight of the total variation prior (0 = off).
        orthogonality: weight λ of the orthogonality regulariser between dummy images (0 = off).
        box: ``None``; ``"clamp"`` projects the images into [0, 1] every ``check_every``
            iterations; ``"penalty"`` adds ``box_weight`` · Σ (distance outside [0, 1])².
        box_weight: weight of the box penalty.
        restarts: independent starts run side by side; the lowest matching loss wins.
        line_search: torch L-BFGS line search, ``"strong_wolfe"`` or ``None`` (fixed step, as DLG);
            ``compact_lbfgs`` always backtracks from the full step (Armijo).
        history: L-BFGS history size.
        check_every: iterations between progress updates, early-stop checks and box projection.
        lr_decay: Adam only: divide the lr by 10 at 3/8, 5/8 and 7/8 of the steps (Geiping).
        signed: Adam only: step on the sign of the gradient ("signed Adam", as in the published
            code of Geiping et al. 2020), which keeps the step size independent of the scale
            of the cosine objective.
        dtype: ``"float32"`` or ``"float64"`` (the attacker may compute in double precision).
    """

    distance: Distance = "euclidean"
    init: Init = "uniform"
    label: Label = "recover"
    optimizer: Optimizer = "lbfgs"
    lr: float = 1.0
    steps: int = 300
    tol: float = 1e-6
    rtol: float = 0.0
    tv: float = 0.0
    orthogonality: float = 0.0
    box: Box | None = None
    box_weight: float = 1.0
    restarts: int = 1
    line_search: LineSearch | None = "strong_wolfe"
    history: int = 100
    check_every: int = 10
    lr_decay: bool = False
    dtype: Dtype = "float32"
    signed: bool = False

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {allowed}")
        for name in ("steps", "restarts", "check_every", "history"):
            check.count(name, getattr(self, name))
        check.positive("lr", self.lr)
        for name in ("tol", "rtol", "tv", "orthogonality", "box_weight"):
            check.nonnegative(name, getattr(self, name))
        for name in ("lr_decay", "signed"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.init == "grey" and self.restarts > 1:
            raise ValueError(f"init='grey' starts every restart at the same image, so "
                             f"restarts={self.restarts} would repeat one run: use restarts=1, or a random "
                             "init ('uniform')")
        if self.signed and self.optimizer != "adam":
            raise ValueError("signed=True steps on the sign of the gradient, which only Adam (an "
                             "element-wise method) can use; L-BFGS needs the gradient itself")
        if self.optimizer == "levenberg_marquardt" and (
                self.distance != "euclidean" or self.tv or self.orthogonality or self.box
                or self.label == "joint"):
            raise ValueError("levenberg_marquardt solves a least-squares problem: it needs "
                             "distance='euclidean', tv=0, orthogonality=0, box=None and a hard label "
                             "(label='recover')")


def _choices() -> dict[str, tuple[object, ...]]:
    """The allowed values of every ``Literal`` field, read from the annotations (one source)."""
    choices = {}
    for name, hint in get_type_hints(Options).items():
        parts = [hint] if get_origin(hint) is Literal else list(get_args(hint))
        if any(get_origin(part) is Literal for part in parts):
            choices[name] = tuple(value for part in parts
                                  for value in (get_args(part) if part is not type(None) else (None,)))
    return choices


CHOICES: dict[str, tuple[object, ...]] = _choices()


PRESETS: dict[str, Options] = {
    # Zhu et al. 2019 as published: 300 calls of torch's L-BFGS (lr 1, 20 iterations each, no line search).
    "dlg": Options(distance="euclidean", init="gaussian", label="joint", optimizer="lbfgs", lr=1.0,
                   steps=6000, check_every=20, line_search=None, tol=0.0),
    # Zhao et al. 2020: DLG with the label read from the gradient, stop at a matching loss of 1e-6.
    "idlg": Options(distance="euclidean", init="gaussian", label="recover", optimizer="lbfgs", lr=1.0,
                    steps=6000, check_every=20, line_search=None, tol=1e-6),
    # Geiping et al. 2020: cosine distance + TV, signed Adam (lr 0.1) with step decay, box
    # constraint, Gaussian init, best restart by matching loss, as in their published code. Ours
    # (differences, kept for a CPU budget): 2000 steps, not 24 000; 4 restarts; TV weight 1e-4 on
    # our TV (mean |neighbour difference|; theirs is tuned per data set); label read from the
    # gradient (their experiments give it); the box is [0, 1] pixels, not their normalised range.
    "inverting_gradients": Options(distance="cosine", tv=1e-4, init="gaussian", label="recover",
                                   optimizer="adam", lr=0.1, lr_decay=True, signed=True, box="clamp",
                                   steps=2000, check_every=1, restarts=4, tol=0.0),
    # Ours, with span=True: the matching loss is a sum of squares in about B² unknowns, so
    # Levenberg-Marquardt (rl.newton.solve_batch) converges to round-off in a few iterations.
    "gauss_newton": Options(distance="euclidean", init="uniform", label="recover",
                            optimizer="levenberg_marquardt", steps=100, dtype="float64", tol=0.0),
    # The course's reading of the stabilisers of Qian, Nassar & Hansen 2021 (uniform init in the
    # pixel range; a box clamp into [0, 1] as their "prior information"; the orthogonality
    # regulariser for batches) bundled with the course's own choices: the iDLG label, L-BFGS with a
    # strong-Wolfe line search, early stop. Named for what it is, not "paper" (the paper's settings
    # are unknown).
    "stabilised": Options(distance="euclidean", init="uniform", label="recover", optimizer="lbfgs",
                          line_search="strong_wolfe", box="clamp", orthogonality=1e-4, steps=1000,
                          tol=1e-6),
    # Ours, engineered on top of "stabilised" for speed (chapter 04's target): the box as a smooth
    # penalty (clamping between L-BFGS steps spoils its curvature pairs and keeps the Euclidean
    # loss from reaching the early stop), a 500-pair memory (half the evaluations of 100 on
    # LeNet-DLG) in the vectorised compact form (rl.lbfgs), early stop at 1e-6 or 1e-8 · ‖g*‖².
    "fast": Options(distance="euclidean", init="uniform", label="recover", optimizer="compact_lbfgs",
                    line_search=None, history=500, box="penalty", orthogonality=1e-4,
                    steps=3000, tol=1e-6, rtol=1e-8),
    # Ours, "fast" with the normalised distance (every layer's gradient in its own units), so that
    # the layer that sees the image is not drowned when its gradient is tiny (PyTorch's default
    # initialisation); a grey start (on CIFAR-100 a sixth fewer seconds to success than U(0, 1));
    # a 100-pair memory (as few steps as 200 or 500 there, cheaper per step); stop at 8e-9 of the
    # distance of a zero gradient, where every CIFAR-100 run had its image MSE below 3e-4, a third
    # of the success line. Chosen on CIFAR-100; benchmarks/optimisation.py measures it on victims
    # it was not tuned on.
    "normalised": Options(distance="normalised", init="grey", label="recover",
                          optimizer="compact_lbfgs", line_search=None, history=100, box="penalty",
                          orthogonality=1e-4, steps=3000, tol=0.0, rtol=8e-9),
}


def options(preset: str | None = "stabilised", **overrides: Any) -> Options:
    """The settings of a named preset with some knobs overridden: ``options("dlg", steps=50)``.

    Raises:
        ValueError: unknown preset, unknown option name, or a value outside its choices.
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)} or None")
    names = {f.name for f in fields(Options)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; the options are {sorted(names)}")
    return replace(Options() if preset is None else PRESETS[preset], **overrides)
