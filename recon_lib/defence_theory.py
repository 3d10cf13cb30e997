"""The theory of chapter 07's defences, in sympy and closed form (the course's own derivations).

* :func:`noise_error` — the closed form x = ∂W/∂b under noise, exactly and to first order;
* :func:`predicted_mse` — the first-order MSE of the least-squares closed form under noise;
* :func:`dp_psnr_bound` — the best PSNR the closed form can reach on a DP-SGD message;
* :func:`pruning_threshold` — the largest pruning ratio that leaves enough equations.

The measurements that test them are in :mod:`recon_lib.privacy_utility`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import Tensor

from . import _validate as check

if TYPE_CHECKING:
    import sympy


def noise_error() -> tuple[sympy.Expr, sympy.Expr]:
    """The closed form under noise, exactly and to first order (sympy).

    With ∂W = δx + ε_W and ∂b = δ + ε_b the server computes (δx + ε_W)/(δ + ε_b); its error
    to first order in the noise is (ε_W − x ε_b)/δ. Returns ``(exact error, first-order error)``.
    """
    import sympy as sp  # local: sympy takes a second to import

    x, delta, e_w, e_b, t = sp.symbols("x delta epsilon_W epsilon_b t", real=True)
    exact = (delta * x + e_w) / (delta + e_b) - x
    first = sp.series(exact.subs({e_w: t * e_w, e_b: t * e_b}), t, 0, 2).removeO().subs(t, 1)
    return sp.simplify(exact), sp.simplify(first)


def predicted_mse(delta: Tensor, x: Tensor, std: float) -> float:
    """First-order MSE of :func:`recon_lib.analytic.invert_linear` under N(0, std²) noise.

    The least-squares combination of h units has per-pixel error Σᵢ δᵢ(ε_Wᵢⱼ − xⱼ ε_bᵢ)/Σᵢ δᵢ²,
    whose variance is std²(1 + xⱼ²)/Σᵢ δᵢ²; averaged over pixels, std²(1 + mean x²)/Σᵢ δᵢ².
    """
    std = check.nonnegative("std", std)
    total = float(delta.double().square().sum())
    if total == 0:
        raise ValueError("every δ is zero: the closed form has no usable unit to predict")
    return std ** 2 * (1 + float(x.double().square().mean())) / total


def dp_psnr_bound(noise_multiplier: float, x: Tensor) -> float:
    """Best expected PSNR of the (unclamped) closed form on a one-sample DP-SGD message.

    After clipping, ‖g‖ ≤ C, and the first layer alone has ‖g‖² ≥ Σδᵢ²(1 + ‖x‖²); noise of std
    σC then gives MSE ≥ σ²(1 + mean x²)(1 + ‖x‖²) (:func:`predicted_mse`): a bound set by σ
    and the image alone — not by C, the model or the loss. First order: it holds while the
    noise is small against δ (bound well above the PSNR of a blank guess); for larger σ the
    noisy ∂b also shrinks the estimate and the closed form simply returns noise.
    """
    sigma = check.positive("noise_multiplier", noise_multiplier)
    flat = x.double().flatten()
    floor = sigma ** 2 * (1 + float(flat.square().mean())) * (1 + float(flat.square().sum()))
    return -10 * math.log10(floor)


def pruning_threshold() -> sympy.Expr:
    """Largest pruning ratio p that leaves B·d equations for B·d unknown pixels (sympy).

    ∇W = (1/B) Δ Xᵀ: each of the d pixel columns needs B surviving entries among its h, so in
    all (1 − p)·h·d ≥ B·d, i.e. p ≤ 1 − B/h. A necessary count, as for Claims 2 and 3.
    """
    import sympy as sp

    p, h, d, b = sp.symbols("p h d B", positive=True)
    return sp.solve(sp.Eq((1 - p) * h * d, b * d), p)[0]
