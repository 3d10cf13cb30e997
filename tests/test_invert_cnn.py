"""Chapter 03: exact inversion through a CNN from one FedSGD message."""
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import recon_lib as rl


def message(model, x, label=1):
    return rl.fl.client_update(model, x[None], torch.tensor([label]))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "leaky_relu", "identity"])
def test_invert_cnn_recovers_the_image_above_the_bound(activation):
    x, _ = rl.datasets.load("faces", n=1, size=16)
    model = rl.models.cnn((1, 16, 16), [2, 3], 5, activation=activation).double()
    recovered = rl.analytic.invert_cnn(model, message(model, x[0].double()), tol=1e-10, max_iter=2000)
    assert recovered.shape == (1, 16, 16)
    assert rl.metrics.psnr(recovered, x[0].double()) > 80


def test_invert_cnn_through_strided_layers_and_default_in_shape():
    torch.manual_seed(1)
    model = rl.models.cnn((2, 8, 8), [9], 4, kernel_size=3, stride=2, padding=1)  # bound 8
    x = torch.rand(2, 8, 8)
    recovered = rl.analytic.invert_cnn(model, message(model, x))
    assert rl.metrics.psnr(recovered, x) > 40


def test_stages_are_the_true_intermediate_features():
    model = rl.models.cnn((1, 10, 10), [2, 3], 4).double()
    x = torch.rand(1, 10, 10, dtype=torch.float64)
    stages = rl.analytic.invert_cnn_stages(model, message(model, x), tol=1e-12, max_iter=3000)
    truth = [model[:4](x[None])[0], model[:2](x[None])[0], x]
    assert [name for name, _, _ in stages] == ["5", "2", "0"]
    for (_, recovered, _), expected in zip(stages, truth):
        torch.testing.assert_close(recovered, expected.detach(), atol=1e-7, rtol=0)


def test_many_clients_in_one_call():
    model = rl.models.cnn((1, 6, 6), [2], 3)
    x = torch.rand(4, 1, 6, 6)
    messages = rl.fl.client_updates(model, x, torch.tensor([0, 1, 2, 0]))
    recovered = rl.analytic.invert_cnn(model, messages, (1, 6, 6))
    assert recovered.shape == x.shape
    assert (rl.metrics.psnr(recovered, x) > 40).all()


@settings(max_examples=10, deadline=None)
@given(c_in=st.integers(1, 3), extra=st.integers(1, 2), k=st.sampled_from([1, 3]), seed=st.integers(0, 99))
def test_invert_cnn_property_one_kernel_above_the_bound(c_in, extra, k, seed):
    torch.manual_seed(seed)
    model = rl.models.cnn((c_in, 7, 7), [c_in + extra], 3, kernel_size=k, padding=k // 2).double()
    x = torch.rand(c_in, 7, 7, dtype=torch.float64)
    recovered = rl.analytic.invert_cnn(model, message(model, x), tol=1e-10, max_iter=2000)
    assert rl.metrics.psnr(recovered, x) > 60


def test_too_few_kernels_names_the_bound_and_non_strict_still_answers():
    model = rl.models.lenet_dlg((3, 32, 32), 10)
    grads = message(model, torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="needs h ≥ .* = 48"):
        rl.analytic.invert_cnn(model, grads)
    guess = rl.analytic.invert_cnn(model, grads, strict=False, max_iter=50)
    assert guess.shape == (3, 32, 32) and torch.isfinite(guess).all()


def test_below_the_bound_the_guess_is_not_the_image():
    x, _ = rl.datasets.load("faces", n=1, size=12)
    model = rl.models.cnn((1, 12, 12), [1], 3, kernel_size=3, stride=2, padding=1)  # bound 4
    guess = rl.analytic.invert_cnn(model, message(model, x[0]), strict=False)
    assert rl.metrics.psnr(guess, x[0]) < 25


@pytest.mark.parametrize("model, error, words", [
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2)), ValueError, "ReLU"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 2)), TypeError, "MaxPool2d"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 2)), TypeError, "BatchNorm2d"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, groups=1), nn.Sigmoid(), nn.Flatten(), nn.Linear(32, 2, bias=False)), ValueError, "no bias"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Sigmoid(), nn.Flatten(), nn.Linear(30, 2)), ValueError, "wrong in_shape"),
    (nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), TypeError, "no Conv2d"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Sigmoid()), TypeError, "no Flatten"),
    (nn.Sequential(nn.Conv2d(1, 9, 1, stride=2), nn.Sigmoid(), nn.Flatten(), nn.Linear(36, 2)), ValueError, "never reads"),
])
def test_bad_models_raise_clear_errors(model, error, words):
    x = torch.rand(1, 4, 4)
    grads = {name: torch.rand_like(p) for name, p in model.named_parameters()}
    with pytest.raises(error, match=words):
        rl.analytic.invert_cnn(model, grads, (1, 4, 4))


def test_bad_in_shape_and_missing_gradients():
    model = rl.models.cnn((1, 4, 4), [2], 2)
    grads = message(model, torch.rand(1, 4, 4))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        rl.analytic.invert_cnn(model, grads, (16,))
    with pytest.raises(ValueError, match="C = 1"):
        rl.analytic.invert_cnn(model, grads, (2, 4, 4))
    with pytest.raises(ValueError, match="no \\['3.bias'\\]"):
        rl.analytic.invert_cnn(model, {"3.weight": grads["3.weight"]})
    with pytest.raises(ValueError, match="computed on this model"):
        rl.analytic.invert_cnn(rl.models.cnn((1, 4, 4), [3], 2), grads)
    with pytest.raises(ValueError, match="NaN"):
        rl.analytic.invert_cnn(model, {k: v * float("nan") for k, v in grads.items()})


def test_conv_without_bias_is_fine():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3))
    x = torch.rand(1, 4, 4)
    recovered = rl.analytic.invert_cnn(model, message(model, x), (1, 4, 4))
    assert rl.metrics.psnr(recovered, x) > 40


def test_reconstruct_still_points_convs_to_chapter_03():
    with pytest.raises(TypeError, match="invert_cnn"):
        rl.analytic.reconstruct(rl.models.lenet_dlg(), {})


def test_weight_gradients_recover_a_layer_below_the_forward_bound():
    torch.manual_seed(3)
    x, _ = rl.datasets.load("faces", n=1, size=8)
    model = rl.models.cnn((1, 8, 8), [3], 4, kernel_size=3, stride=2, padding=1).double()  # bound 4
    grads = message(model, x[0].double())
    with pytest.raises(ValueError, match="= 4"):
        rl.analytic.invert_cnn(model, grads)
    recovered = rl.analytic.invert_cnn(model, grads, weight_grads=True, tol=1e-12, max_iter=3000)
    assert rl.metrics.psnr(recovered, x[0].double()) > 80
    too_few = rl.models.cnn((1, 8, 8), [2], 4, kernel_size=3, stride=2, padding=1)  # 32 + 18 < 64
    with pytest.raises(ValueError, match="even with its weight gradient"):
        rl.analytic.invert_cnn(too_few, message(too_few, x[0]), weight_grads=True)


def test_weight_gradients_take_the_closed_route_through_two_layers():
    torch.manual_seed(4)
    model = rl.models.cnn((2, 8, 8), [2, 2], 3, kernel_size=3).double()  # both exactly on the bound
    x = torch.rand(2, 8, 8, dtype=torch.float64)
    stages = rl.analytic.invert_cnn_stages(model, message(model, x), weight_grads=True, tol=1e-12,
                                           max_iter=3000)
    torch.testing.assert_close(stages[1][1], model[:2](x[None])[0].detach(), atol=1e-8, rtol=0)
    assert rl.metrics.psnr(stages[-1][1], x) > 80


def test_non_square_input_and_dilated_conv():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=2, dilation=2), nn.Tanh(),
                          nn.Conv2d(3, 4, (3, 1), stride=1, padding=(1, 0)), nn.Sigmoid(),
                          nn.Flatten(), nn.Linear(4 * 7 * 10, 3)).double()
    x = torch.rand(2, 7, 10, dtype=torch.float64)
    recovered = rl.analytic.invert_cnn(model, message(model, x), (2, 7, 10), tol=1e-12, max_iter=3000)
    assert rl.metrics.psnr(recovered, x) > 80


def test_message_on_another_device_is_refused():
    model = rl.models.cnn((1, 4, 4), [2], 2)
    grads = {name: value.to("meta") for name, value in message(model, torch.rand(1, 4, 4)).items()}
    with pytest.raises(ValueError, match="device|meta"):
        rl.analytic.invert_cnn(model, grads)


def test_float64_message_through_a_float32_model_is_solved_in_float64():
    model = rl.models.cnn((1, 6, 6), [2], 3)
    x = torch.rand(1, 6, 6)
    grads = {name: value.double() for name, value in message(model, x).items()}
    recovered = rl.analytic.invert_cnn(model, grads)
    assert recovered.dtype == torch.float64 and rl.metrics.psnr(recovered, x.double()) > 40
