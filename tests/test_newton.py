"""Chapter 02 exact batch reconstruction: span in closed form, coefficients by Levenberg–Marquardt."""
import pytest
import torch

import recon_lib as rl
from recon_lib import newton


def message(h, batch_size, labels=None, n_classes=10, seed=0, side=6):
    torch.manual_seed(seed)
    model = rl.models.mlp((1, side, side), [h], n_classes)
    x = torch.rand(batch_size, 1, side, side)
    y = torch.randperm(n_classes)[:batch_size] if labels is None else torch.tensor(labels)
    return model, x, y, rl.fl.client_update(model, x, y)


def matched_error(images, x):
    matched, _ = rl.metrics.match(images, x)
    return (matched - x).abs().max().item()


@pytest.mark.parametrize("h", [4, 8])
def test_recovers_a_batch_of_distinct_labels_exactly(h):
    model, x, y, grads = message(h, 4)
    solution = newton.solve_batch(model, grads, 4)
    assert solution.rank == 4 and sorted(solution.labels.tolist()) == sorted(y.tolist())
    assert solution.images.shape == x.shape and solution.images.dtype == x.dtype
    assert matched_error(solution.images, x) < 1e-4
    assert solution.loss < 1e-12


def test_recovers_repeated_labels_exactly():
    model, x, y, grads = message(10, 5, labels=[2, 2, 7, 7, 7])
    solution = newton.solve_batch(model, grads, 5)
    assert solution.labels.tolist() == [2, 2, 7, 7, 7]
    assert matched_error(solution.images, x) < 1e-4


def test_its_answer_reproduces_the_message_through_autograd():
    model, x, y, grads = message(6, 3)
    solution = newton.solve_batch(model, grads, 3)
    again = rl.fl.client_update(model, solution.images, solution.labels)
    for name in grads:
        torch.testing.assert_close(again[name], grads[name], atol=1e-6, rtol=1e-4)


def test_below_the_bound_the_span_is_partial_and_the_batch_is_not_recovered():
    model, x, y, grads = message(2, 4)
    solution = newton.solve_batch(model, grads, 4)
    assert solution.rank == 2
    assert matched_error(solution.images, x) > 0.1


def test_given_labels_are_used_and_checked():
    model, x, y, grads = message(4, 3)
    assert newton.solve_batch(model, grads, 3, labels=y).labels.tolist() == y.tolist()
    with pytest.raises(ValueError, match="labels"):
        newton.solve_batch(model, grads, 3, labels=y[:2])


def test_bad_input_is_rejected():
    model, x, y, grads = message(4, 3)
    with pytest.raises(ValueError, match="positive int"):
        newton.solve_batch(model, grads, 0)
    with pytest.raises(ValueError, match="no"):
        newton.solve_batch(model, {k: v for k, v in grads.items() if k != "3.bias"}, 3)
    with pytest.raises(ValueError, match="NaN"):
        newton.solve_batch(model, {**grads, "1.bias": grads["1.bias"] * float("nan")}, 3)
    no_bias = rl.models.mlp((1, 6, 6), [4], 10, bias=False)
    with pytest.raises(TypeError, match="without bias"):
        newton.solve_batch(no_bias, rl.fl.client_update(no_bias, x, y), 3)
    cnn = rl.models.lenet_dlg((3, 8, 8), 10)
    with pytest.raises(TypeError, match="Conv2d"):
        newton.solve_batch(cnn, {}, 3)


@pytest.mark.gpu
def test_runs_on_cuda():
    model, x, y, grads = message(4, 3)
    model = model.cuda()
    grads = {k: v.cuda() for k, v in grads.items()}
    solution = newton.solve_batch(model, grads, 3)
    assert solution.images.is_cuda
    assert matched_error(solution.images.cpu(), x) < 1e-4


def test_projected_residual_measures_the_same_loss_as_the_full_one():
    model, x, y, grads = message(8, 4)
    model, grads = model.double(), {k: v.double() for k, v in grads.items()}
    basis = rl.analytic.batch_span(grads["1.weight"], grads["1.bias"], 4)
    c = torch.rand(4 * 4, dtype=torch.float64)
    full = newton._residual(model, grads, basis, y, (1, 6, 6), first=None)(c)
    short = newton._residual(model, grads, basis, y, (1, 6, 6), first="1")(c)
    assert short.numel() < full.numel() / 2
    torch.testing.assert_close(short.square().sum(), full.square().sum(), rtol=1e-6, atol=0)


def test_reduced_residual_equals_the_projected_one():
    model, x, y, grads = message(8, 4)
    model, grads = model.double(), {k: v.double() for k, v in grads.items()}
    basis = rl.analytic.batch_span(grads["1.weight"], grads["1.bias"], 4)
    c = torch.rand(16, dtype=torch.float64)
    projected = newton._residual(model, grads, basis, y, (1, 6, 6), first="1")(c)
    reduced = newton._residual(model, grads, basis, y, (1, 6, 6), first="1", reduced=True)(c)
    torch.testing.assert_close(reduced, projected)


class FixedView(torch.nn.Module):
    """Reshapes its input to a fixed image size: cannot take the reduced r-vector input."""

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(36, 6)
        self.head = torch.nn.Linear(6, 10)
        self.in_shape = (1, 6, 6)

    def forward(self, x):
        return self.head(torch.sigmoid(self.first(x.view(-1, 36))))


def test_models_with_a_fixed_reshape_fall_back_to_the_full_input():
    torch.manual_seed(0)
    model = FixedView()
    x, y = torch.rand(3, 1, 6, 6), torch.tensor([1, 4, 7])
    solution = newton.solve_batch(model, rl.fl.client_update(model, x, y), 3)
    assert matched_error(solution.images, x) < 1e-4


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "gelu"])
@pytest.mark.parametrize("widths", [[8], [8, 6], [10, 6, 6]])
def test_any_depth_and_smooth_activation_after_the_first_layer(activation, widths):
    torch.manual_seed(1)
    model = rl.models.mlp((1, 6, 6), widths, 10, activation=activation)
    x, y = torch.rand(5, 1, 6, 6), torch.randperm(10)[:5]
    solution = newton.solve_batch(model, rl.fl.client_update(model, x, y), 5)
    assert matched_error(solution.images, x) < 1e-4
