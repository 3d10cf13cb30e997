"""Chapter 03: the conv layer as a matrix and its matrix-free solver, checked against autograd."""
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.func import jacrev, vjp

import recon_lib as rl

GEOMETRIES = [dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=5, stride=2, padding=2),
              dict(kernel_size=2, stride=3, padding=0), dict(kernel_size=3, stride=1, padding=2, dilation=2),
              dict(kernel_size=(3, 1), stride=(1, 2), padding=(1, 0)), dict(kernel_size=3, padding="same")]


def layer_of(c_in=2, c_out=3, **geometry):
    return nn.Conv2d(c_in, c_out, **geometry).double()


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_as_matrix_times_x_is_the_conv_without_bias(geometry):
    layer = layer_of(**geometry)
    x = torch.randn(2, 7, 9, dtype=torch.float64)
    matrix = rl.conv.as_matrix(layer, x.shape)
    expected = layer(x[None])[0] - layer.bias[:, None, None]
    torch.testing.assert_close(matrix @ x.flatten(), expected.detach().flatten())
    assert matrix.shape == (expected.numel(), x.numel())


@pytest.mark.parametrize("geometry", GEOMETRIES[:3])
def test_as_matrix_equals_the_autograd_jacobian(geometry):
    layer = layer_of(**geometry)
    jacobian = jacrev(lambda x: layer(x[None])[0])(torch.zeros(2, 6, 6, dtype=torch.float64))
    torch.testing.assert_close(rl.conv.as_matrix(layer, (2, 6, 6)), jacobian.reshape(-1, 72).detach())


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_adjoint_equals_autograd_vjp(geometry):
    conv = rl.conv.ConvMap.of(layer_of(**geometry), (2, 7, 9))
    x = torch.randn(3, 2, 7, 9, dtype=torch.float64)
    y, pullback = vjp(conv.apply, x)
    cotangent = torch.randn_like(y)
    torch.testing.assert_close(conv.adjoint(cotangent), pullback(cotangent)[0])


def test_adjoint_is_the_transpose_of_as_matrix():
    layer = layer_of(**GEOMETRIES[1])
    conv = rl.conv.ConvMap.of(layer, (2, 8, 8))
    y = torch.randn(1, *conv.out_shape, dtype=torch.float64)
    torch.testing.assert_close(conv.adjoint(y).flatten(), rl.conv.as_matrix(layer, (2, 8, 8)).T @ y.flatten())


@settings(max_examples=20, deadline=None)
@given(c_in=st.integers(1, 3), extra=st.integers(1, 3), k=st.sampled_from([1, 3, 5]),
       size=st.integers(5, 12), seed=st.integers(0, 999))
def test_solve_recovers_the_input_above_the_bound_property(c_in, extra, k, size, seed):
    torch.manual_seed(seed)
    layer = nn.Conv2d(c_in, c_in + extra, k, padding=k // 2).double()
    x = torch.rand(2, c_in, size, size + 1, dtype=torch.float64)
    y = rl.conv.ConvMap.of(layer, x.shape[1:]).apply(x)
    recovered, info = rl.conv.solve(layer, y, x.shape[1:], tol=1e-12, max_iter=2000)
    assert info.converged
    torch.testing.assert_close(recovered, x, atol=1e-7, rtol=0)


def test_cgls_below_the_bound_gives_the_minimum_norm_solution():
    layer = nn.Conv2d(2, 1, 3, padding=1).double()
    x = torch.rand(1, 2, 5, 5, dtype=torch.float64)
    matrix = rl.conv.as_matrix(layer, (2, 5, 5))
    y = (matrix @ x.flatten()).reshape(1, 1, 5, 5)
    recovered, _ = rl.conv.solve(layer, y, (2, 5, 5), tol=1e-12, max_iter=2000)
    torch.testing.assert_close(recovered.flatten(), torch.linalg.pinv(matrix) @ y.flatten())


def test_solve_checks_its_inputs():
    layer = nn.Conv2d(2, 3, 3, padding=1)
    with pytest.raises(ValueError, match="y must be"):
        rl.conv.solve(layer, torch.zeros(1, 3, 4, 4), (2, 5, 5))
    with pytest.raises(ValueError, match="NaN"):
        rl.conv.solve(layer, torch.full((1, 3, 5, 5), float("nan")), (2, 5, 5))
    with pytest.raises(ValueError, match="C = 2"):
        rl.conv.ConvMap.of(layer, (3, 5, 5))
    with pytest.raises(ValueError, match="smaller than"):
        rl.conv.ConvMap.of(nn.Conv2d(1, 1, 5), (1, 3, 3))


@pytest.mark.parametrize("layer, error, words", [
    (nn.MaxPool2d(2), TypeError, "not an nn.Conv2d"),
    (nn.ConvTranspose2d(2, 3, 3), TypeError, "not an nn.Conv2d"),
    (nn.Conv2d(2, 4, 3, groups=2), ValueError, "groups=2"),
    (nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"), ValueError, "zero padding"),
    (nn.Conv2d(2, 4, 4, padding="same"), TypeError, "even kernel"),
])
def test_unsupported_layers_raise_clear_errors(layer, error, words):
    with pytest.raises(error, match=words):
        rl.conv.as_matrix(layer, (2, 6, 6))


def test_as_matrix_refuses_large_layers():
    with pytest.raises(ValueError, match="small demos"):
        rl.conv.as_matrix(nn.Conv2d(3, 4, 3, padding=1), (3, 64, 64))


@pytest.mark.parametrize("activation", [nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(0.1), nn.Identity()])
def test_invert_activation_undoes_it(activation):
    z = torch.randn(50, dtype=torch.float64) * 2
    torch.testing.assert_close(rl.conv.invert_activation(activation, activation(z)), z)


@pytest.mark.parametrize("activation, words", [(nn.ReLU(), "lost"), (nn.GELU(), "one-to-one")])
def test_non_invertible_activations_explain_why(activation, words):
    with pytest.raises(ValueError, match=words):
        rl.conv.invert_activation(activation, torch.rand(4))


def test_out_of_range_activation_raises_unless_not_strict():
    a = torch.tensor([0.2, 1.3, -0.1])
    with pytest.raises(ValueError, match="open range"):
        rl.conv.invert_activation(nn.Sigmoid(), a)
    assert torch.isfinite(rl.conv.invert_activation(nn.Sigmoid(), a, strict=False)).all()


@pytest.mark.gpu
def test_solve_on_gpu_matches_cpu():
    layer = nn.Conv2d(3, 4, 3, padding=1).double()
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    y = rl.conv.ConvMap.of(layer, (3, 16, 16)).apply(x)
    on_gpu, _ = rl.conv.solve(layer.cuda(), y.cuda(), (3, 16, 16), tol=1e-12)
    torch.testing.assert_close(on_gpu.cpu(), x)


@pytest.mark.parametrize("geometry", GEOMETRIES[:5])
def test_weight_grad_map_is_the_weight_gradient_and_its_adjoint(geometry):
    layer = layer_of(**geometry)
    x = torch.randn(2, 2, 7, 9, dtype=torch.float64)
    delta = torch.randn(2, *rl.conv.ConvMap.of(layer, (2, 7, 9)).out_shape, dtype=torch.float64)
    weight_grad = rl.conv.WeightGradMap(layer, (2, 7, 9), delta)
    for i in range(2):  # per image: autograd's ∂/∂W of Σ δ·conv(x)
        expected = torch.func.grad(lambda w: (delta[i] * torch.func.functional_call(
            layer, {"weight": w, "bias": layer.bias}, (x[i:i + 1],))[0]).sum())(layer.weight.detach())
        torch.testing.assert_close(weight_grad.apply(x)[i], expected.reshape(layer.out_channels, -1))
    g, pullback = vjp(weight_grad.apply, x)
    cotangent = torch.randn_like(g)
    torch.testing.assert_close(weight_grad.adjoint(cotangent), pullback(cotangent)[0])


def test_solve_with_weight_gradient_equations_below_the_count():
    torch.manual_seed(2)
    layer = nn.Conv2d(1, 3, 3, stride=2, padding=1).double()  # 3·16 = 48 < 64 rows; + 3·9 = 75
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    delta = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    y = rl.conv.ConvMap.of(layer, (1, 8, 8)).apply(x)
    grad_weight = rl.conv.WeightGradMap(layer, (1, 8, 8), delta).apply(x).reshape(layer.weight.shape)
    plain, _ = rl.conv.solve(layer, y, (1, 8, 8), tol=1e-12, max_iter=3000)
    both, info = rl.conv.solve(layer, y, (1, 8, 8), tol=1e-12, max_iter=3000, delta=delta, grad_weight=grad_weight)
    assert info.converged and rl.metrics.psnr(both, x) > 100 > rl.metrics.psnr(plain, x)
    with pytest.raises(ValueError, match="delta shaped like y"):
        rl.conv.solve(layer, y, (1, 8, 8), delta=delta[:, :2], grad_weight=grad_weight)
