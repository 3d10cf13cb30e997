"""Claim 1 derived symbolically with sympy (chapter 01).

The course's own derivation (Qian, Nassar & Hansen 2021 state the claim; the algebra is ours):
a first layer z = wᵀx + b with one hidden node a = σ(z), followed by *anything* — written as
an undefined function ℓ = F(a) that stands for the rest of the network and the loss. The chain
rule gives ∂ℓ/∂wⱼ = F′(σ(z)) σ′(z) xⱼ and ∂ℓ/∂b = F′(σ(z)) σ′(z), so their ratio is xⱼ.

:func:`one_node` does this with an arbitrary σ and F; :func:`chain` writes the network out as
an explicit chain of ``depth`` scalar layers so that δ = ∂ℓ/∂z is visibly a product of
``2·depth + 1`` factors (one weight and one σ′ per layer, and the loss′) that cancels.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import _validate as check


@dataclass(frozen=True)
class Derivation:
    """Result of a symbolic derivation: inputs, gradients and their simplified ratios."""

    x: tuple[sp.Symbol, ...]     # the private input x₁ … x_d
    loss: sp.Expr                # ℓ as a function of x, w, b and the rest of the network
    grad_w: tuple[sp.Expr, ...]  # ∂ℓ/∂wⱼ for j = 1 … d
    grad_b: sp.Expr              # ∂ℓ/∂b = δ
    ratios: tuple[sp.Expr, ...]  # simplify(∂ℓ/∂wⱼ ÷ ∂ℓ/∂b), which should be xⱼ

    @property
    def recovers_input(self) -> bool:
        """True when every simplified ratio is exactly the matching input symbol."""
        return all(sp.simplify(r - xj) == 0 for r, xj in zip(self.ratios, self.x, strict=True))


def _first_layer(d: int) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Symbol, ...], sp.Symbol, sp.Expr]:
    check.count("d (pixels of the input)", d)
    x = sp.symbols(f"x1:{d + 1}", real=True)
    w = sp.symbols(f"w1:{d + 1}", real=True)
    b = sp.Symbol("b", real=True)
    return x, w, b, sum(wj * xj for wj, xj in zip(w, x, strict=True)) + b


def _derive(x, w, b, loss: sp.Expr) -> Derivation:
    grad_w = tuple(sp.diff(loss, wj) for wj in w)
    grad_b = sp.diff(loss, b)
    ratios = tuple(sp.simplify(g / grad_b) for g in grad_w)
    return Derivation(x=tuple(x), loss=loss, grad_w=grad_w, grad_b=grad_b, ratios=ratios)


def one_node(d: int = 3) -> Derivation:
    """One hidden node followed by an arbitrary network and loss: ℓ = F(σ(wᵀx + b)).

    σ and F are undefined sympy Functions, so the result holds for every activation, every
    network after the node (any depth, width, output size) and every loss and label.
    """
    x, w, b, z = _first_layer(check.count("d (pixels)", d))
    sigma, rest = sp.Function("sigma"), sp.Function("F")
    return _derive(x, w, b, rest(sigma(z)))


def chain(depth: int, d: int = 2) -> tuple[Derivation, tuple[sp.Expr, ...]]:
    """An explicit chain of ``depth`` one-node layers, then an arbitrary loss L.

    z₁ = wᵀx + b, aₖ = σ(zₖ), zₖ₊₁ = vₖ aₖ + cₖ, and ℓ = L(v_depth a_depth + c_depth).

    Returns:
        ``(derivation, factors)`` where ``factors`` are the multiplicative factors of
        δ = ∂ℓ/∂b: L′, and vₖ and σ′(zₖ) for every layer, 2·depth + 1 in all, with the
        pre-activations written as symbols z₁ … z_depth and the output as o for readability.
        They are the same in ∂ℓ/∂wⱼ, which is why they cancel.
    """
    depth, d = check.count("depth", depth), check.count("d (pixels)", d)
    x, w, b, z = _first_layer(d)
    sigma, loss_fn = sp.Function("sigma"), sp.Function("L")
    v = sp.symbols(f"v1:{depth + 1}", real=True)
    c = sp.symbols(f"c1:{depth + 1}", real=True)
    pre_activations = [z]
    for k in range(depth):
        pre_activations.append(v[k] * sigma(pre_activations[-1]) + c[k])
    derivation = _derive(x, w, b, loss_fn(pre_activations[-1]))
    names = [*sp.symbols(f"z1:{depth + 1}", real=True), sp.Symbol("o", real=True)]
    readable = derivation.grad_b
    for expr, name in reversed(list(zip(pre_activations, names, strict=True))):  # outermost first
        readable = readable.subs(expr, name)
    return derivation, sp.Mul.make_args(readable.doit())
