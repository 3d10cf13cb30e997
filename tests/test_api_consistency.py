"""One API across attacks (issue 13, section 3): in_shape, default span solver, device, bias-free
head, signed Adam. Each checked against an independent reference."""
import dataclasses

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import recon_lib as rl
from recon_lib import optimize as op


def batch_message(batch_size=3, h=6, side=6, n_classes=5, seed=0, plain=False):
    torch.manual_seed(seed)
    model = rl.models.mlp((1, side, side), [h], n_classes)
    if plain:  # what a user builds by hand: no in_shape attribute
        model = nn.Sequential(*model)
        assert not hasattr(model, "in_shape")
    x = torch.rand(batch_size, 1, side, side)
    y = torch.randperm(n_classes)[:batch_size]
    return model, x, y, rl.fl.client_update(model, x, y)


# --- in_shape -----------------------------------------------------------------------------------
def test_gradient_matching_takes_in_shape_for_a_plain_sequential():
    model, x, y, message = batch_message(batch_size=1, plain=True)
    result = op.gradient_matching(model, message, 1, in_shape=(1, 6, 6), steps=20, progress=False)
    built, *_ = batch_message(batch_size=1)  # the same weights, with model.in_shape recorded
    same = op.gradient_matching(built, message, 1, steps=20, progress=False)
    assert result.images.shape == (1, 1, 6, 6)
    torch.testing.assert_close(result.images, same.images)
    span = op.gradient_matching(model, message, 1, in_shape=(1, 6, 6), span=True, progress=False)
    assert span.images.shape == (1, 1, 6, 6)


@pytest.mark.parametrize("in_shape, match", [(None, "pass in_shape"), ((1, 0, 6), "positive integer"),
                                             (36, "non-empty tuple")])
def test_a_missing_or_bad_in_shape_says_what_to_pass(in_shape, match):
    model, _, _, message = batch_message(batch_size=1, plain=True)
    with pytest.raises(ValueError, match=match):
        op.gradient_matching(model, message, 1, in_shape=in_shape, steps=1, progress=False)


# --- span=True without a preset: the exact solver -------------------------------------------------
def test_span_without_a_preset_runs_levenberg_marquardt_and_is_exact():
    model, x, y, message = batch_message(batch_size=4, h=8, side=6, n_classes=6)
    result = op.gradient_matching(model, message, 4, span=True, progress=False)
    assert result.options == op.options("gauss_newton")
    order = torch.argsort(y)  # recovered labels come sorted
    assert rl.metrics.psnr(result.images.float(), x[order]).min() > 60
    # an explicit preset is still honoured: None means the Options defaults (first-order L-BFGS)
    first_order = op.gradient_matching(model, message, 4, preset=None, span=True, steps=2, progress=False)
    assert first_order.options.optimizer == "lbfgs"
    assert op.gradient_matching(model, message, 4, steps=1, progress=False).options == \
        op.options("stabilised", steps=1)


# --- device= never moves the caller's model ----------------------------------------------------
class Guarded(nn.Sequential):
    """A model that fails the test if the caller's own instance is moved."""

    original: int = 0

    def to(self, *args, **kwargs):
        assert id(self) != Guarded.original, "gradient_matching moved the caller's model"
        return super().to(*args, **kwargs)


def test_device_argument_works_on_a_copy():
    model, x, _, message = batch_message(batch_size=1)
    guarded = Guarded(*model)
    Guarded.original = id(guarded)
    before = {k: v.clone() for k, v in guarded.state_dict().items()}
    other = torch.device("cpu", 0)  # a device the model is not on, by torch's equality
    assert other != next(guarded.parameters()).device
    result = op.gradient_matching(guarded, message, 1, in_shape=(1, 6, 6), preset="idlg", steps=5,
                                  device=other, progress=False)
    assert result.images.shape == (1, 1, 6, 6)
    for key, value in guarded.state_dict().items():
        assert torch.equal(value, before[key])


@pytest.mark.gpu
def test_device_cuda_leaves_the_callers_model_on_the_cpu():
    model, x, _, message = batch_message(batch_size=1)
    result = op.gradient_matching(model, message, 1, preset="idlg", steps=5, device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cpu"
    assert result.images.device.type == "cuda"


# --- invert_cnn with a bias-free head (as R-GAP) -------------------------------------------------
def bias_free_cnn(seed, n_classes=10, side=12):
    torch.manual_seed(seed)
    model = rl.models.cnn((3, side, side), [13], n_classes, kernel_size=4, stride=2, padding=1)
    model[-1] = nn.Linear(model[-1].in_features, n_classes, bias=False)
    x = torch.rand(1, 3, side, side)
    y = torch.randint(n_classes, (1,))
    return model, x, y, rl.fl.client_update(model, x, y)


@pytest.mark.parametrize("seed", range(4))
def test_invert_cnn_handles_a_bias_free_head(seed):
    model, x, y, message = bias_free_cnn(seed)
    features, delta = rl.head.features_without_bias(message["3.weight"][None], model[3].weight)
    truth = model[:3](x).detach()
    assert ((features - truth).norm() / truth.norm()) < 1e-5
    expected = F.softmax(model(x), -1).detach() - F.one_hot(y, 10)
    torch.testing.assert_close(delta, expected, atol=1e-5, rtol=1e-4)
    x_hat = rl.analytic.invert_cnn(model, message, tol=1e-9, max_iter=3000)
    assert rl.metrics.psnr(x_hat, x[0]).item() > 60


def test_a_bias_free_linear_that_is_not_the_head_is_refused():
    model, x, y, _ = bias_free_cnn(0)
    model = nn.Sequential(*model[:3], nn.Linear(model[3].in_features, 8, bias=False), nn.Sigmoid(),
                          nn.Linear(8, 10))
    message = rl.fl.client_update(model, x, y)
    with pytest.raises(ValueError, match="not the model's last layer"):
        rl.analytic.invert_cnn(model, message, in_shape=(3, 12, 12))


def test_a_bias_free_head_with_two_classes_is_refused():
    model, x, _, _ = bias_free_cnn(0, n_classes=2)
    message = rl.fl.client_update(model, x, torch.tensor([1]))
    with pytest.raises(ValueError, match="at least 3 classes"):
        rl.analytic.invert_cnn(model, message, in_shape=(3, 12, 12))


# --- signed Adam in the inverting_gradients preset -------------------------------------------------
def test_inverting_gradients_uses_signed_adam_and_signed_needs_adam():
    assert op.options("inverting_gradients").signed and not op.options("stabilised").signed
    with pytest.raises(ValueError, match="only Adam"):
        op.options("stabilised", signed=True)
    with pytest.raises(ValueError, match="signed must be True or False"):
        op.options("inverting_gradients", signed=1)


def test_signed_adam_steps_on_the_sign_of_the_gradient():
    """Three steps against a hand-written loop: torch's Adam fed sign(∂ loss/∂x)."""
    model, x, y, message = batch_message(batch_size=1)
    settings = dict(preset=None, optimizer="adam", distance="cosine", lr=0.05, steps=3, check_every=1,
                    tol=0.0, init="gaussian", line_search=None, progress=False)
    result = op.gradient_matching(model, message, 1, labels=y, signed=True, seed=3, **settings)
    generator = torch.Generator().manual_seed(3)
    dummy = torch.randn((1, 1, 1, 6, 6), generator=generator, dtype=torch.float64).float()[0]
    dummy.requires_grad_()
    adam = torch.optim.Adam([dummy], lr=0.05)
    names = [n for n, _ in model.named_parameters()]
    for _ in range(3):
        loss = F.cross_entropy(model(dummy), y)
        grads = torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
        distance = op.cosine_distance(dict(zip(names, grads, strict=True)), message)
        (step,) = torch.autograd.grad(distance, dummy)
        dummy.grad = step.sign()
        adam.step()
    torch.testing.assert_close(result.images, dummy.detach(), atol=1e-5, rtol=1e-5)
    unsigned = op.gradient_matching(model, message, 1, labels=y, signed=False, seed=3, **settings)
    assert not torch.allclose(unsigned.images, result.images)
    assert dataclasses.replace(result.options, signed=False) == unsigned.options
