"""Chapter 02 conditions: h ≥ B, generic rank, Δ from autograd, and the null-space alias batch."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import recon_lib as rl
from recon_lib import conditions


def batch(h, batch_size, d=(1, 6, 6), n_classes=10, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    model = rl.models.mlp(d, [h], n_classes).to(dtype)
    x = torch.rand(batch_size, *d, dtype=dtype)
    y = torch.randint(0, n_classes, (batch_size,))
    return model, x, y


@pytest.mark.parametrize("h, b, expected", [(4, 4, True), (5, 4, True), (3, 4, False), (1, 1, True)])
def test_batch_recoverable_is_h_at_least_b(h, b, expected):
    assert conditions.batch_recoverable(h, b) is expected


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "4"])
def test_counts_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="positive integer"):
        conditions.batch_recoverable(bad, 4)
    with pytest.raises(ValueError, match="positive integer"):
        conditions.generic_rank(4, 4, bad)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 9), b=st.integers(1, 9), side=st.integers(2, 3))
def test_rank_of_the_weight_gradient_is_generic(h, b, side):
    model, x, y = batch(h, b, d=(1, side, side), seed=h * 100 + b)
    message = rl.fl.client_update(model, x, y)
    rank = int(torch.linalg.matrix_rank(message["1.weight"]))
    assert rank == conditions.generic_rank(h, b, side * side)


def test_deltas_reproduce_both_gradients_of_the_first_layer():
    model, x, y = batch(5, 7)
    delta = conditions.first_layer_deltas(model, x, y)
    message = rl.fl.client_update(model, x, y)
    assert delta.shape == (5, 7)
    torch.testing.assert_close(message["1.weight"], delta @ x.flatten(1) / 7)
    torch.testing.assert_close(message["1.bias"], delta.sum(1) / 7)


def test_deltas_are_per_sample_gradients_from_autograd():
    model, x, y = batch(4, 3)
    delta = conditions.first_layer_deltas(model, x, y)
    for b in range(3):  # one sample at a time: ∂ℓ_b/∂b is δ_b
        single = rl.fl.client_update(model, x[b:b + 1], y[b:b + 1])
        torch.testing.assert_close(delta[:, b], single["1.bias"])


def test_deltas_need_a_linear_first_layer():
    model = rl.models.lenet_dlg((3, 16, 16), 10)
    with pytest.raises(TypeError, match="Conv2d"):
        conditions.first_layer_deltas(model, torch.rand(2, 3, 16, 16), torch.tensor([0, 1]))


def test_mixture_weights_rows_sum_to_one_and_give_the_unit_ratios():
    model, x, y = batch(6, 4)
    delta = conditions.first_layer_deltas(model, x, y)
    message = rl.fl.client_update(model, x, y)
    ratios, usable = rl.analytic.unit_estimates(message["1.weight"], message["1.bias"])
    weights = conditions.mixture_weights(delta)
    torch.testing.assert_close(weights.sum(1), torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(ratios[usable], (weights @ x.flatten(1))[usable])


def test_mixture_weights_flag_units_with_zero_bias_gradient():
    weights = conditions.mixture_weights(torch.tensor([[1.0, -1.0], [1.0, 3.0]]))
    assert torch.isnan(weights[0]).all() and weights[1].tolist() == [0.25, 0.75]
    with pytest.raises(ValueError, match=r"\(h, B\)"):
        conditions.mixture_weights(torch.ones(3))


def test_same_gradient_batch_differs_but_gives_the_same_first_layer_gradient():
    model, x, y = batch(2, 5)
    delta = conditions.first_layer_deltas(model, x, y)
    target = torch.rand_like(x)
    alias = conditions.same_gradient_batch(delta, x, target)
    assert (alias - x).abs().max() > 0.1
    torch.testing.assert_close(delta @ alias.flatten(1), delta @ x.flatten(1))


def test_same_gradient_batch_is_x_itself_when_h_at_least_b():
    model, x, y = batch(6, 5)
    delta = conditions.first_layer_deltas(model, x, y)
    alias = conditions.same_gradient_batch(delta, x, torch.rand_like(x))
    torch.testing.assert_close(alias, x)


def test_same_gradient_batch_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="delta"):
        conditions.same_gradient_batch(torch.rand(2, 5), torch.rand(4, 9), torch.rand(4, 9))
    with pytest.raises(ValueError, match="delta"):
        conditions.same_gradient_batch(torch.rand(2, 4), torch.rand(4, 9), torch.rand(4, 8))


@settings(max_examples=20, deadline=None)
@given(h=st.integers(1, 6), extra=st.integers(1, 5), d=st.integers(8, 30), seed=st.integers(0, 1000))
def test_alias_batch_property_for_any_shape_below_the_bound(h, extra, d, seed):
    """For any Δ with h < B: Δ X′ᵀ = Δ Xᵀ, and X′ − X lies in the null space of Δ."""
    generator = torch.Generator().manual_seed(seed)
    b = h + extra
    delta = torch.randn(h, b, generator=generator, dtype=torch.float64)
    x, target = (torch.rand(b, d, generator=generator, dtype=torch.float64) for _ in range(2))
    alias = conditions.same_gradient_batch(delta, x, target)
    torch.testing.assert_close(delta @ alias, delta @ x)
    step = alias - x
    assert step.norm() <= (target - x).norm() + 1e-9   # a projection never lengthens
