"""The closed form's fast paths (issue 18, section 3) give the careful path's answer and its errors.

``invert_linear`` with the default tolerance takes a one-pass formula (with one unit: a single
division) and falls back to the careful path (``tol=0.0`` forces it) when it cannot trust the
result; ``reconstruct`` checks only the first layer's pair of the message.
"""
import math

import pytest
import torch

import recon_lib as rl


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
