"""Closed-form attacks of chapter 01, each checked against torch autograd."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.nn import functional as F

import recon_lib as rl


def first_layer_delta(model, x, y, loss=F.cross_entropy):
    """δ = ∂ℓ/∂z of the first linear layer, computed by autograd through a forward hook."""
    captured = {}
    handle = model[1].register_forward_hook(lambda m, i, out: captured.setdefault("z", out))
    value = loss(model(x), y)
    handle.remove()
    (delta,) = torch.autograd.grad(value, captured["z"])
    return delta


@pytest.mark.parametrize("depth", [1, 2, 5])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "gelu"])
def test_gradients_are_delta_times_x_and_delta(depth, activation):
    model = rl.models.mlp((1, 5, 5), [6] * depth, 3, activation=activation)
    x, y = torch.rand(1, 1, 5, 5), torch.tensor([1])
    message = rl.fl.client_update(model, x, y)
    delta = first_layer_delta(model, x, y)[0]
    torch.testing.assert_close(message["1.weight"], delta[:, None] * x.flatten()[None, :])
    torch.testing.assert_close(message["1.bias"], delta)
    torch.testing.assert_close(rl.analytic.reconstruct(model, message), x[0], atol=1e-6, rtol=0)


def test_invert_linear_is_the_least_squares_solution():
    grad_bias = torch.randn(7, dtype=torch.float64)
    grad_weight = grad_bias[:, None] * torch.rand(11, dtype=torch.float64) + 1e-3 * torch.randn(7, 11, dtype=torch.float64)
    reference = np.linalg.lstsq(grad_bias.numpy()[:, None], grad_weight.numpy(), rcond=None)[0][0]
    torch.testing.assert_close(rl.analytic.invert_linear(grad_weight, grad_bias),
                               torch.from_numpy(reference))


def test_unit_estimates_marks_dead_units_and_every_usable_row_is_x():
    x = torch.rand(9)
    grad_bias = torch.tensor([0.3, 0.0, -2.0, 1e-39])
    ratios, usable = rl.analytic.unit_estimates(grad_bias[:, None] * x, grad_bias)
    assert usable.tolist() == [True, False, True, False]
    torch.testing.assert_close(ratios[usable], x.expand(2, 9))
    assert torch.all(ratios[~usable] == 0)


def test_invert_linear_ignores_dead_units_and_handles_tiny_delta():
    x = torch.rand(16)
    grad_bias = torch.tensor([0.0, 1e-30, 0.0])
    grad_weight = grad_bias[:, None] * x
    torch.testing.assert_close(rl.analytic.invert_linear(grad_weight, grad_bias), x)


def test_many_clients_in_one_call():
    model = rl.models.mlp((3, 4, 4), [8], 5)
    x, y = torch.rand(64, 3, 4, 4), torch.randint(0, 5, (64,))
    messages = rl.fl.client_updates(model, x, y)
    recovered = rl.analytic.invert_linear(messages["1.weight"], messages["1.bias"])
    torch.testing.assert_close(recovered, x.flatten(1), atol=1e-6, rtol=0)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 12), d=st.integers(1, 40), depth=st.integers(1, 3),
       activation=st.sampled_from(["sigmoid", "tanh", "gelu", "leaky_relu"]), seed=st.integers(0, 999))
def test_reconstruct_recovers_any_input_property(h, d, depth, activation, seed):
    torch.manual_seed(seed)
    model = rl.models.mlp((d,), [h] + [4] * (depth - 1), 3, activation=activation)
    x, y = torch.rand(1, d), torch.tensor([seed % 3])
    recovered = rl.analytic.reconstruct(model, rl.fl.client_update(model, x, y))
    assert torch.allclose(recovered, x[0], atol=1e-5)


def test_reconstruct_uses_in_shape_then_model_shape_then_flat():
    model = rl.models.mlp((3, 17, 23), [4], 2)
    message = rl.fl.client_update(model, torch.rand(1, 3, 17, 23), torch.tensor([1]))
    assert rl.analytic.reconstruct(model, message).shape == (3, 17, 23)
    assert rl.analytic.reconstruct(model, message, in_shape=(51, 23)).shape == (51, 23)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.Sigmoid(), nn.Linear(3, 2))
    message = rl.fl.client_update(plain, torch.rand(1, 3, 4), torch.tensor([0]))
    assert rl.analytic.reconstruct(plain, message).shape == (12,)


def test_reconstruct_walks_through_nested_modules():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(6, 4), nn.Tanh())
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.body(x.view(x.shape[0], -1)))

    net, x = Net(), torch.rand(1, 2, 3)
    recovered = rl.analytic.reconstruct(net, rl.fl.client_update(net, x, torch.tensor([1])), (2, 3))
    torch.testing.assert_close(recovered, x[0])


def test_direction_without_bias_and_fix_scale():
    model = rl.models.mlp((10,), [5], 3, bias=False)
    x = torch.rand(1, 10) + 0.1
    message = rl.fl.client_update(model, x, torch.tensor([2]))
    direction = rl.analytic.direction_without_bias(message["1.weight"])
    torch.testing.assert_close(direction.norm(), torch.tensor(1.0))
    torch.testing.assert_close(rl.analytic.fix_scale(direction, pixel=3, value=float(x[0, 3])), x[0])
    torch.testing.assert_close(rl.analytic.fix_scale(direction, norm=float(x.norm())), x[0])
    with pytest.raises(ValueError, match="either"):
        rl.analytic.fix_scale(direction)


@pytest.mark.parametrize("label", [0, 3, 9])
@pytest.mark.parametrize("bias", [True, False])
def test_recover_label_matches_the_true_label(label, bias):
    model = rl.models.mlp((1, 6, 6), [8], 10, bias=bias)
    message = rl.fl.client_update(model, torch.rand(1, 1, 6, 6), torch.tensor([label]))
    assert rl.analytic.recover_label(model, message) == label


def test_recover_label_reads_p_minus_onehot_from_the_bias():
    model = rl.models.mlp((5,), [4], 6)
    x, y = torch.rand(1, 5), torch.tensor([4])
    message = rl.fl.client_update(model, x, y)
    expected = torch.softmax(model(x), -1)[0] - F.one_hot(y, 6)[0]
    torch.testing.assert_close(message["3.bias"], expected.detach())


# --- Bad input: a clear error, never a NaN or a wrong picture --------------------------------
def test_mismatched_shapes():
    with pytest.raises(ValueError, match="same layer"):
        rl.analytic.invert_linear(torch.rand(4, 9), torch.rand(5))


def test_no_usable_unit_explains_delta_zero():
    with pytest.raises(ValueError, match="δ = 0"):
        rl.analytic.invert_linear(torch.zeros(4, 9), torch.zeros(4))


def test_non_finite_gradients():
    grad_bias = torch.tensor([1.0, float("nan")])
    with pytest.raises(ValueError, match="NaN"):
        rl.analytic.invert_linear(torch.rand(2, 3), grad_bias)


def test_mismatched_dtypes():
    with pytest.raises(TypeError, match="dtype"):
        rl.analytic.invert_linear(torch.rand(2, 3), torch.rand(2, dtype=torch.float64))


def test_layer_without_bias_points_to_the_scale_fix():
    model = rl.models.mlp((4,), [3], 2, bias=False)
    message = rl.fl.client_update(model, torch.rand(1, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match="no bias"):
        rl.analytic.reconstruct(model, message)


def test_conv_model_points_to_chapter_03():
    model = rl.models.lenet_dlg((3, 8, 8), 4)
    message = rl.fl.client_update(model, torch.rand(1, 3, 8, 8), torch.tensor([0]))
    with pytest.raises(TypeError, match="chapter 03"):
        rl.analytic.reconstruct(model, message)


def test_unsupported_first_op():
    class Doubler(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x * 2)

    with pytest.raises(TypeError, match="not a layer"):
        rl.analytic.reconstruct(Doubler(), {"fc.weight": torch.rand(2, 4), "fc.bias": torch.rand(2)})


def test_missing_gradient_keys():
    model = rl.models.mlp((4,), [3], 2)
    with pytest.raises(ValueError, match="named_parameters"):
        rl.analytic.reconstruct(model, {"1.weight": torch.rand(3, 4)})


def test_wrong_in_shape():
    model = rl.models.mlp((4,), [3], 2)
    message = rl.fl.client_update(model, torch.rand(1, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match="in_shape"):
        rl.analytic.reconstruct(model, message, in_shape=(5,))


@pytest.mark.gpu
def test_reconstruct_on_cuda():
    model = rl.models.mlp((3, 8, 8), [6], 4).cuda()
    x = torch.rand(1, 3, 8, 8, device="cuda")
    recovered = rl.analytic.reconstruct(model, rl.fl.client_update(model, x, torch.tensor([1], device="cuda")))
    assert recovered.is_cuda
    torch.testing.assert_close(recovered, x[0], atol=1e-5, rtol=0)


def test_first_layer_of_nested_sequential_matches_tracing():
    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Identity(), nn.Linear(6, 3)), nn.Sigmoid())
    assert rl.analytic.first_layer(model)[0] == "1.1"
    traced = torch.fx.symbolic_trace(model)
    first = next(n for n in traced.graph.nodes if n.op == "call_module" and n.target not in ("0", "1.0"))
    assert first.target == "1.1"


def test_empty_sequential_is_rejected():
    with pytest.raises(TypeError, match="no layer"):
        rl.analytic.first_layer(nn.Sequential(nn.Flatten()))
