"""The closed form's fast paths (issue 18, section 3) give the careful path's answer and its errors.

``invert_linear`` with the default tolerance takes a one-pass formula (with one unit: a single
division) and falls back to the careful path (``tol=0.0`` forces it) when it cannot trust the
result; ``reconstruct`` checks only the first layer's pair of the message.
"""
import math

import pytest
import torch
from torch.nn import functional as F

import recon_lib as rl
from recon_lib import analytic


def one_unit_message(n: int | None, seed: int = 0, dtype=torch.float32):
    """∂W = δ xᵀ and ∂b = δ of a layer with one unit, for one client (n=None) or n clients."""
    g = torch.Generator().manual_seed(seed)
    lead = () if n is None else (n,)
    x = torch.rand(*lead, 50, generator=g, dtype=dtype)
    sign = torch.sign(torch.randn(*lead, 1, generator=g, dtype=dtype))
    delta = (torch.rand(*lead, 1, generator=g, dtype=dtype) + 0.01) * sign
    return delta[..., None] * x[..., None, :], delta, x


@pytest.mark.parametrize("n", [None, 1, 7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_unit_is_the_careful_answer_bit_for_bit(n, dtype):
    grad_weight, grad_bias, x = one_unit_message(n, dtype=dtype)
    fast = rl.analytic.invert_linear(grad_weight, grad_bias)
    assert fast.shape == x.shape
    assert torch.equal(fast, rl.analytic.invert_linear(grad_weight, grad_bias, tol=0.0))
    assert torch.equal(fast, grad_weight[..., 0, :] / grad_bias)
    torch.testing.assert_close(fast, x)


def test_one_unit_reconstruct_matches_autograd():
    model = rl.models.mlp((3, 4, 4), [1], 5)
    x, y = torch.rand(1, 3, 4, 4), torch.tensor([2])
    message = rl.fl.client_update(model, x, y)
    z = model[1](x.flatten(1)).detach().requires_grad_()
    (delta,) = torch.autograd.grad(F.cross_entropy(model[2:](z), y), z)
    torch.testing.assert_close(message["1.bias"], delta[0])
    torch.testing.assert_close(rl.analytic.reconstruct(model, message), x[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("h", [1, 3, 20])
def test_batched_fast_path_matches_the_careful_path(h):
    g = torch.Generator().manual_seed(h)
    x = torch.rand(9, 40, generator=g)
    delta = torch.randn(9, h, generator=g)
    grad_weight = delta[..., None] * x[:, None, :] + 1e-4 * torch.randn(9, h, 40, generator=g)
    fast = rl.analytic.invert_linear(grad_weight, delta)
    torch.testing.assert_close(fast, rl.analytic.invert_linear(grad_weight, delta, tol=0.0),
                               atol=3e-7, rtol=0)


@pytest.mark.parametrize("n", [None, 4])
@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_one_unit_tiny_or_huge_delta_takes_the_careful_path_and_is_exact(monkeypatch, n, scale):
    grad_weight, grad_bias, x = one_unit_message(n)
    grad_weight, grad_bias = grad_weight * scale, grad_bias * scale  # δ² under- or overflows
    calls, careful = [], analytic.usable_units
    monkeypatch.setattr(analytic, "usable_units", lambda *a, **k: calls.append(1) or careful(*a, **k))
    recovered = analytic.invert_linear(grad_weight, grad_bias)
    assert calls, "the careful path was not taken"
    torch.testing.assert_close(recovered, x)


@pytest.mark.parametrize("n", [None, 4])
def test_one_unit_subnormal_delta_is_refused_not_divided(n):
    grad_weight, grad_bias, _ = one_unit_message(n)
    grad_bias = torch.full_like(grad_bias, 1e-42)          # subnormal: below the default tolerance
    grad_weight = grad_bias[..., None] * torch.ones(50)    # ∂W / ∂b would be finite
    with pytest.raises(ValueError, match="no usable unit"):
        rl.analytic.invert_linear(grad_weight, grad_bias)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", ["weight", "bias"])
@pytest.mark.parametrize("n", [None, 3])
def test_one_unit_non_finite_input_raises(bad, where, n):
    grad_weight, grad_bias, _ = one_unit_message(n)
    target = grad_weight if where == "weight" else grad_bias
    target.view(-1)[0] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        rl.analytic.invert_linear(grad_weight, grad_bias)


def mlp_message(width=1):
    torch.manual_seed(0)
    model = rl.models.mlp((1, 4, 4), [width, 6], 3)
    x = torch.rand(1, 1, 4, 4)
    return model, rl.fl.client_update(model, x, torch.tensor([1])), x


@pytest.mark.parametrize("width", [1, 5])
@pytest.mark.parametrize("key", ["1.weight", "1.bias"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_reconstruct_names_the_non_finite_entry_of_the_first_layer(width, key, bad):
    model, message, _ = mlp_message(width)
    message[key] = message[key].clone()
    message[key].view(-1)[-1] = bad
    with pytest.raises(ValueError, match=rf"grads\['{key}'\] contains NaN or inf"):
        rl.analytic.reconstruct(model, message)


def test_reconstruct_reads_only_the_first_layer():
    """A NaN in a layer the closed form does not read cannot change its answer: not checked."""
    model, message, x = mlp_message()
    message["3.weight"] = message["3.weight"] * math.nan
    torch.testing.assert_close(rl.analytic.reconstruct(model, message), x[0], atol=1e-6, rtol=0)


def test_reconstruct_checks_the_type_of_the_entries_it_reads():
    model, message, _ = mlp_message()
    message["1.bias"] = message["1.bias"].to(torch.int64)
    with pytest.raises(TypeError, match=r"grads\['1.bias'\] must be a floating-point tensor"):
        rl.analytic.reconstruct(model, message)
    message["1.bias"] = message["1.bias"].tolist()
    with pytest.raises(TypeError, match=r"grads\['1.bias'\] must be a floating-point tensor, got list"):
        rl.analytic.reconstruct(model, message)


def test_reconstruct_with_no_usable_unit_still_explains_delta_zero():
    model, message, _ = mlp_message()
    message = {key: torch.zeros_like(value) for key, value in message.items()}
    with pytest.raises(ValueError, match="δ = 0"):
        rl.analytic.reconstruct(model, message)


def test_reconstruct_of_a_swapped_first_layer_uses_the_new_layer():
    """Nothing is cached: a model whose first layer is replaced is traced again."""
    model, message, _ = mlp_message()
    assert rl.analytic.reconstruct(model, message).shape == (1, 4, 4)
    model[1] = torch.nn.Linear(16, 2)
    with pytest.raises(ValueError, match="another model"):
        rl.analytic.reconstruct(model, message)


def test_large_batches_are_divided_in_cache_sized_chunks_bit_for_bit():
    n = 3 * rl.analytic.CHUNK_BYTES // (4 * 300) + 7           # several chunks and a remainder
    generator = torch.Generator().manual_seed(0)
    grad_weight = torch.rand(n, 1, 300, generator=generator)
    grad_bias = torch.rand(n, 1, generator=generator) + 0.5
    assert torch.equal(rl.analytic.invert_linear(grad_weight, grad_bias), grad_weight[:, 0] / grad_bias)


def test_a_nan_in_a_later_chunk_is_still_refused():
    n = 3 * rl.analytic.CHUNK_BYTES // (4 * 300)
    grad_weight, grad_bias = torch.rand(n, 1, 300), torch.rand(n, 1) + 0.5
    grad_weight[n - 2, 0, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        rl.analytic.invert_linear(grad_weight, grad_bias)
