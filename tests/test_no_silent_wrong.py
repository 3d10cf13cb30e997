"""No silent wrong answer (issue 13, section 4): every CNN inversion is verified against the
message, solver flags are never dropped, and the closed form neither overflows nor guesses."""
import warnings

import pytest
import torch
from torch import nn

import recon_lib as rl
from recon_lib import conv


def sigmoid_cnn(channels, side, kernels, k, s=1, p=0, classes=10, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(channels, kernels, k, s, p), nn.Sigmoid(), nn.Flatten())
    features = model(torch.zeros(1, channels, side, side)).shape[1]
    model.append(nn.Linear(features, classes))
    x = torch.rand(1, channels, side, side)
    y = torch.randint(classes, (1,))
    return model, x, rl.fl.client_update(model, x, y)


def no_warnings():
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("error", rl.ReconstructionWarning)
    return context


# --- invert_cnn verifies its answer ---------------------------------------------------------------
def test_a_rank_deficient_layer_that_meets_the_count_is_not_returned_as_exact():
    # 8×8 input, 3×3 valid conv, 2 kernels: 72 equations for 64 unknowns, every pixel read, rank 56.
    assert rl.geometry.equation_count((1, 8, 8), 2, 3) == 72 >= 64
    assert rl.geometry.reads_every_pixel((1, 8, 8), 3)
    assert rl.conditions.conv_rank(1, 8, 2, 3) == 56
    model, x, message = sigmoid_cnn(1, 8, 2, 3)
    with pytest.raises(rl.ReconstructionError, match="does not reproduce the message"):
        rl.analytic.invert_cnn(model, message, in_shape=(1, 8, 8))
    with pytest.warns(rl.ReconstructionWarning, match="does not reproduce the message"):
        guess = rl.analytic.invert_cnn(model, message, in_shape=(1, 8, 8), strict=False)
    assert rl.metrics.psnr(guess, x[0]).item() < 40  # the guess is indeed wrong


@pytest.mark.parametrize("seed", range(5))
def test_stride_two_exactly_at_the_bound_is_exact_or_refused(seed):
    # C = 1, 8×8, k = 4, s = 2, p = 1: d′ = 4, bound 4 kernels, badly conditioned.
    assert rl.geometry.kernel_bound((1, 8, 8), 4, 2, 1) == 4
    model, x, message = sigmoid_cnn(1, 8, 4, 4, 2, 1, seed=seed)
    try:
        x_hat = rl.analytic.invert_cnn(model, message, in_shape=(1, 8, 8))
    except rl.ReconstructionError:
        return
    assert rl.metrics.psnr(x_hat, x[0]).item() > 40


def test_the_former_default_tolerance_is_caught_where_it_was_silently_wrong():
    # tol=1e-6, max_iter=500 (the old defaults) "converge" here to an image of about 26 dB.
    model, x, message = sigmoid_cnn(1, 8, 4, 4, 2, 1, seed=0)
    with pytest.raises(rl.ReconstructionError, match="does not reproduce the message"):
        rl.analytic.invert_cnn(model, message, in_shape=(1, 8, 8), tol=1e-6, max_iter=500)


def test_a_solve_stopped_early_is_never_reported_as_exact():
    model, x, message = sigmoid_cnn(3, 10, 4, 3, 1, 1)  # one kernel above the bound: exact when converged
    with pytest.raises(rl.ReconstructionError, match="stopped before its tolerance"):
        rl.analytic.invert_cnn(model, message, in_shape=(3, 10, 10), max_iter=3)
    with pytest.warns(rl.ReconstructionWarning, match="stopped before its tolerance"):
        stages = rl.analytic.invert_cnn_stages(model, message, (3, 10, 10), strict=False, max_iter=3)
    assert not stages[-1][2].converged and stages[-1][2].iterations == 3


def test_the_defaults_converge_verify_and_recover_without_a_warning():
    model, x, message = sigmoid_cnn(3, 10, 4, 3, 1, 1)
    context = no_warnings()
    try:
        stages = rl.analytic.invert_cnn_stages(model, message, (3, 10, 10))
    finally:
        context.__exit__(None, None, None)
    assert all(info.converged for _, _, info in stages[1:])
    assert rl.metrics.psnr(stages[-1][1], x[0]).item() > 60


def test_running_past_convergence_does_not_diverge_to_nan():
    model, x, message = sigmoid_cnn(3, 10, 4, 3, 1, 1)
    x_hat = rl.analytic.invert_cnn(model, message, in_shape=(3, 10, 10), tol=0.0, max_iter=2000)
    assert torch.isfinite(x_hat).all() and rl.metrics.psnr(x_hat, x[0]).item() > 60
    layer = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    y = layer(torch.rand(4, 2, 6, 6)).detach()
    solved, info = conv.solve(layer, y, (2, 6, 6), tol=0.0, max_iter=2000)
    assert torch.isfinite(solved).all() and info.converged and info.iterations < 2000


@pytest.mark.parametrize("kwargs, match", [(dict(tol=-1e-6), "tol"), (dict(max_iter=0), "max_iter"),
                                           (dict(rtol=-1.0), "rtol"), (dict(tol=float("nan")), "tol")])
def test_bad_solver_settings_are_refused(kwargs, match):
    model, _, message = sigmoid_cnn(3, 10, 4, 3, 1, 1)
    with pytest.raises(ValueError, match=match):
        rl.analytic.invert_cnn(model, message, in_shape=(3, 10, 10), **kwargs)
    if "rtol" not in kwargs:
        layer = nn.Conv2d(1, 1, 3, bias=False)
        with pytest.raises(ValueError, match=match):
            conv.solve(layer, torch.zeros(1, 1, 2, 2), (1, 4, 4), **kwargs)


def test_message_residual_separates_the_image_from_a_near_miss():
    model, x, message = sigmoid_cnn(3, 10, 4, 3, 1, 1)
    label = rl.verify.head_labels(model, message)
    exact = rl.verify.message_residual(model, x, label, message)
    assert exact.shape == (1,) and exact.item() < 1e-5
    near = rl.verify.message_residual(model, x + 0.01 * torch.randn_like(x), label, message)
    assert near.item() > 1e-3


def test_batch_residual_checks_one_message_of_a_whole_batch():
    torch.manual_seed(0)
    model = rl.models.mlp((1, 5, 5), [8], 4)
    x, y = torch.rand(3, 1, 5, 5), torch.tensor([0, 2, 3])
    message = rl.fl.client_update(model, x, y)
    assert rl.verify.batch_residual(model, x, y, message) < 1e-5
    assert rl.verify.batch_residual(model, x[[1, 0, 2]], y[[1, 0, 2]], message) < 1e-5  # order-free
    assert rl.verify.batch_residual(model, x.flip(0), y, message) > 1e-2   # images and labels mismatched
    one = rl.fl.client_update(model, x[:1], y[:1])
    assert rl.verify.batch_residual(model, x[:1], y[:1], one) == pytest.approx(
        float(rl.verify.message_residual(model, x[:1], y[:1], one)[0]))


# --- the closed form --------------------------------------------------------------------------------
def test_invert_linear_does_not_overflow_in_its_sums():
    x = rl.analytic.invert_linear(torch.full((4, 64), 1e38), torch.ones(4))
    assert torch.isfinite(x).all()
    torch.testing.assert_close(x, torch.full((64,), 1e38))
    generator = torch.Generator().manual_seed(0)
    delta = torch.rand(3, 16, generator=generator, dtype=torch.float64) + 0.5
    image = torch.rand(3, 50, generator=generator, dtype=torch.float64) * 3e36
    grad_weight = (delta[..., None] * image[:, None, :]).float()  # entries up to ~4.5e36, sums overflow
    recovered = rl.analytic.invert_linear(grad_weight, delta.float())
    torch.testing.assert_close(recovered.double(), image, rtol=1e-5, atol=0)


@pytest.mark.parametrize("call", [
    lambda: rl.analytic.invert_linear(torch.ones(4, 9), torch.ones(4), tol=-1e-3),
    lambda: rl.analytic.unit_estimates(torch.ones(4, 9), torch.ones(4), tol=-1e-3),
    lambda: rl.analytic.usable_units(torch.ones(4), tol=-1.0),
])
def test_negative_tolerances_are_refused(call):
    with pytest.raises(ValueError, match="tol"):
        call()


def test_recover_label_on_an_all_zero_message_raises():
    model = rl.models.mlp((1, 4, 4), [6], 5)
    zero = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    with pytest.raises(ValueError, match="gradient is zero"):
        rl.analytic.recover_label(model, zero)


@pytest.mark.parametrize("shape_w, shape_b", [((0, 4, 9), (0, 4)), ((0, 9), (0,)), ((4, 0), (4,))])
def test_an_empty_batch_is_refused(shape_w, shape_b):
    with pytest.raises(ValueError, match="empty"):
        rl.analytic.invert_linear(torch.zeros(shape_w), torch.zeros(shape_b))


def test_batch_residual_up_to_scale_accepts_a_rescaled_message():
    torch.manual_seed(0)
    model = rl.models.mlp((1, 5, 5), [8], 4)
    x, y = torch.rand(2, 1, 5, 5), torch.tensor([0, 2])
    clipped = {k: 0.1 * g for k, g in rl.fl.client_update(model, x, y).items()}   # a clipped message
    assert rl.verify.batch_residual(model, x, y, clipped) > 0.5
    assert rl.verify.batch_residual(model, x, y, clipped, up_to_scale=True) < 1e-5
    assert rl.verify.batch_residual(model, x.flip(0), y, clipped, up_to_scale=True) > 1e-2
