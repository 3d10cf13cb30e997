"""The sympy derivation of Claim 1 (chapter 01), checked symbolically and against autograd."""
import pytest
import sympy as sp
import torch

from recon_lib import symbolic


def test_one_node_ratio_is_the_input_for_any_network_and_loss():
    derivation = symbolic.one_node(d=4)
    assert derivation.ratios == derivation.x
    assert derivation.recovers_input
    for grad_w, xj in zip(derivation.grad_w, derivation.x):
        assert sp.simplify(grad_w - xj * derivation.grad_b) == 0


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_chain_delta_is_a_product_of_two_factors_per_layer_plus_the_loss(depth):
    derivation, factors = symbolic.chain(depth)
    assert derivation.recovers_input
    assert len(factors) == 2 * depth + 1
    weights = [f for f in factors if isinstance(f, sp.Symbol)]
    assert sorted(map(str, weights)) == sorted(f"v{k}" for k in range(1, depth + 1))
    derivative_factors = [f for f in factors if f.has(sp.Derivative)]
    assert len(derivative_factors) == depth + 1  # σ′(z₁) … σ′(z_depth) and L′(o)


def test_recovers_input_detects_a_wrong_ratio():
    derivation = symbolic.one_node(d=2)
    wrong = symbolic.Derivation(derivation.x, derivation.loss, derivation.grad_w,
                                derivation.grad_b, (derivation.x[1], derivation.x[0]))
    assert not wrong.recovers_input


def test_chain_gradients_match_torch_autograd():
    """Make σ the sigmoid and L a squared error; sympy's numbers must equal autograd's."""
    depth, d = 3, 2
    derivation, _ = symbolic.chain(depth, d=d)
    target = sp.Rational(1, 3)
    concrete = {sp.Function("sigma"): sp.Lambda(sp.Symbol("u"), 1 / (1 + sp.exp(-sp.Symbol("u")))),
                sp.Function("L"): sp.Lambda(sp.Symbol("u"), (sp.Symbol("u") - target) ** 2 / 2)}
    values = {name: 0.1 * (k + 1) * (-1) ** k for k, name in enumerate(
        ["x1", "x2", "w1", "w2", "b", "v1", "v2", "v3", "c1", "c2", "c3"])}
    subs = {sp.Symbol(n, real=True): v for n, v in values.items()}
    numeric = [float(g.subs(concrete).doit().subs(subs)) for g in (*derivation.grad_w, derivation.grad_b)]

    t = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in values.items()}
    z = t["w1"] * t["x1"] + t["w2"] * t["x2"] + t["b"]
    for k in range(1, depth + 1):
        z = t[f"v{k}"] * torch.sigmoid(z) + t[f"c{k}"]
    loss = (z - 1 / 3) ** 2 / 2
    reference = torch.autograd.grad(loss, [t["w1"], t["w2"], t["b"]])
    assert numeric == pytest.approx([r.item() for r in reference], rel=1e-12)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_sizes_raise(bad):
    with pytest.raises(ValueError, match="depth"):
        symbolic.chain(bad)
    with pytest.raises(ValueError, match="pixel"):
        symbolic.one_node(d=bad)
