"""Chapter 02 closed forms: the leaked span of a batch and its distinct labels."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import recon_lib as rl


def batch_message(h, batch_size=6, d=(1, 8, 8), n_classes=10, seed=0):
    torch.manual_seed(seed)
    model = rl.models.mlp(d, [h], n_classes)
    x, y = torch.rand(batch_size, *d), torch.randperm(n_classes)[:batch_size]
    return model, x, y, rl.fl.client_update(model, x, y)


def relative_residual(x, basis):
    flat = x.flatten(1)
    return ((flat - flat @ basis @ basis.T).norm(dim=1) / flat.norm(dim=1)).max().item()


@pytest.mark.parametrize("h", [6, 7, 12])
def test_every_image_lies_in_the_leaked_span_when_h_at_least_b(h):
    model, x, y, message = batch_message(h)
    basis = rl.analytic.batch_span(message["1.weight"], message["1.bias"], 6)
    assert basis.shape == (64, 6)
    torch.testing.assert_close(basis.T @ basis, torch.eye(6), atol=1e-5, rtol=0)
    assert relative_residual(x, basis) <= 1e-5


def test_span_is_only_partial_when_h_below_b():
    model, x, y, message = batch_message(3)
    basis = rl.analytic.batch_span(message["1.weight"], message["1.bias"], 6)
    assert basis.shape[1] == 3 and relative_residual(x, basis) > 1e-2


def test_span_is_the_row_space_of_delta_x_from_autograd():
    model, x, y, message = batch_message(8)
    x = x.requires_grad_()
    z = model[1](model[0](x))
    z.retain_grad()
    torch.nn.functional.cross_entropy(model[3](model[2](z)), y).backward()
    expected = z.grad.T @ x.flatten(1).detach()  # (1/B) Δ Xᵀ, computed by autograd
    torch.testing.assert_close(message["1.weight"], expected)


def test_recover_labels_of_distinct_labels():
    model, x, y, message = batch_message(8, batch_size=5, n_classes=20)
    assert rl.analytic.recover_labels(model, message, 5).tolist() == sorted(y.tolist())


def test_batch_span_rejects_zero_gradient_and_bad_batch_size():
    with pytest.raises(ValueError, match="δ = 0"):
        rl.analytic.batch_span(torch.zeros(4, 9), torch.zeros(4), 2)
    with pytest.raises(ValueError, match="positive"):
        rl.analytic.batch_span(torch.rand(4, 9), torch.rand(4), 0)


def test_recover_labels_needs_enough_classes():
    model, x, y, message = batch_message(8, batch_size=5, n_classes=10)
    with pytest.raises(ValueError, match="classes"):
        rl.analytic.recover_labels(model, message, 11)


def test_span_residual_is_zero_for_members_and_positive_for_strangers():
    model, x, y, message = batch_message(8)
    basis = rl.analytic.batch_span(message["1.weight"], message["1.bias"], 6)
    residual = rl.analytic.span_residual(x, basis)
    assert residual.shape == (6,) and residual.max() <= 1e-5
    assert rl.analytic.span_residual(torch.rand(3, 1, 8, 8), basis).min() > 1e-2
    mixture = (torch.rand(6) @ x.flatten(1)).reshape(1, 1, 8, 8)  # any combination is a member
    assert rl.analytic.span_residual(mixture, basis).item() <= 1e-5


def test_span_residual_agrees_with_least_squares():
    basis, _ = torch.linalg.qr(torch.rand(20, 4, dtype=torch.float64))
    images = torch.rand(5, 20, dtype=torch.float64)
    coefficients = torch.linalg.lstsq(basis, images.T).solution
    expected = (images.T - basis @ coefficients).norm(dim=0) / images.norm(dim=1)
    torch.testing.assert_close(rl.analytic.span_residual(images, basis), expected)


def test_span_residual_rejects_bad_input():
    basis = torch.linalg.qr(torch.rand(16, 3))[0]
    with pytest.raises(ValueError, match="basis"):
        rl.analytic.span_residual(torch.rand(2, 15), basis)
    with pytest.raises(TypeError, match="dtype"):
        rl.analytic.span_residual(torch.rand(2, 16, dtype=torch.float64), basis)
    with pytest.raises(ValueError, match="all-zero"):
        rl.analytic.span_residual(torch.zeros(1, 16), basis)


def test_recover_labels_fails_honestly_with_repeated_labels():
    """Two images of one class give one negative entry, not two: B distinct labels come back."""
    torch.manual_seed(0)
    model = rl.models.mlp((1, 8, 8), [16], 10)
    y = torch.tensor([3, 3, 7, 1])
    message = rl.fl.client_update(model, torch.rand(4, 1, 8, 8), y)
    labels = rl.analytic.recover_labels(model, message, 4)
    assert len(set(labels.tolist())) == 4 and set(labels.tolist()) != set(y.tolist())
    assert {1, 3, 7} <= set(labels.tolist())


def repeated_batch(seed, h=32, batch_size=16, n_classes=10, scale=1.0):
    torch.manual_seed(seed)
    model = rl.models.mlp((1, 8, 8), [h], n_classes)
    with torch.no_grad():
        model[3].weight.mul_(scale)
    y = torch.randint(0, n_classes, (batch_size,))
    x = torch.rand(batch_size, 1, 8, 8)
    return model, x, y, rl.fl.client_update(model, x, y)


@pytest.mark.parametrize("seed", range(5))
def test_label_counts_of_repeated_labels(seed):
    model, x, y, message = repeated_batch(seed)
    assert rl.analytic.recover_label_counts(model, message, 16).tolist() == sorted(y.tolist())


def test_label_counts_are_exact_with_the_batch_itself_as_probe_even_for_a_confident_model():
    model, x, y, message = repeated_batch(0, scale=50.0)  # large head: predictions vary a lot
    counts = rl.analytic.recover_label_counts(model, message, 16, probe=x)
    assert counts.tolist() == sorted(y.tolist())


def test_label_counts_agree_with_distinct_recovery():
    model, x, y, message = batch_message(8, batch_size=5, n_classes=20)
    torch.testing.assert_close(rl.analytic.recover_label_counts(model, message, 5),
                               rl.analytic.recover_labels(model, message, 5))


def test_label_counts_reject_bad_input():
    model, x, y, message = repeated_batch(0)
    with pytest.raises(ValueError, match="positive int"):
        rl.analytic.recover_label_counts(model, message, 0)
    with pytest.raises(ValueError, match="NaN"):
        rl.analytic.recover_label_counts(model, {**message, "3.bias": message["3.bias"] * float("nan")}, 4)
    no_bias = rl.models.mlp((1, 8, 8), [4], 10, bias=False)
    with pytest.raises(ValueError, match="no bias"):
        rl.analytic.recover_label_counts(no_bias, {}, 4)


@settings(max_examples=15, deadline=None)
@given(b=st.integers(1, 6), extra=st.integers(0, 6), side=st.integers(3, 6), seed=st.integers(0, 1000))
def test_span_property_any_shape_at_or_above_the_bound(b, extra, side, seed):
    """Whenever h ≥ B the leaked basis is orthonormal, has B columns and holds every image."""
    model, x, y, message = batch_message(b + extra, batch_size=b, d=(1, side, side), seed=seed)
    basis = rl.analytic.batch_span(message["1.weight"], message["1.bias"], b)
    assert basis.shape == (side * side, b)
    torch.testing.assert_close(basis.T @ basis, torch.eye(b), atol=1e-5, rtol=0)
    assert rl.analytic.span_residual(x, basis).max() <= 1e-4


def test_distinct_labels_survive_a_model_that_favours_a_present_class():
    """Σᵢ pᵢ,c > 1 makes a present class's entry positive: the sign rule misses it, the count
    estimate does not."""
    model, x, y, _ = batch_message(16, batch_size=8, n_classes=10, seed=1)
    favoured = int(y[0])
    with torch.no_grad():
        model[3].bias[favoured] += 3.0
    message = rl.fl.client_update(model, x, y)
    sign_rule = sorted(torch.topk(-message["3.bias"], 8).indices.tolist())
    assert message["3.bias"][favoured] > 0 and sign_rule != sorted(y.tolist())
    assert rl.analytic.recover_labels(model, message, 8).tolist() == sorted(y.tolist())


def test_without_a_closed_form_probe_recover_labels_falls_back_to_the_sign_rule():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8, bias=False),
                                torch.nn.Sigmoid(), torch.nn.Linear(8, 10))
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([2, 5, 7, 9])
    message = rl.fl.client_update(model, x, y)
    expected = sorted(torch.topk(-message["3.bias"], 4).indices.tolist())
    assert rl.analytic.recover_labels(model, message, 4).tolist() == expected == sorted(y.tolist())


def test_labels_from_a_message_in_another_dtype_than_the_model():
    """An attacker may compute in float64 on a float32 model's message (rl.optimize does)."""
    model, x, y, message = batch_message(8, batch_size=5, n_classes=20)
    doubled = {k: v.double() for k, v in message.items()}
    assert rl.analytic.recover_labels(model, doubled, 5).tolist() == sorted(y.tolist())
    assert rl.analytic.recover_label_counts(model, doubled, 5).tolist() == sorted(y.tolist())
