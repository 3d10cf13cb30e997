"""The FedSGD message: gradients of the batch-averaged loss, checked against plain autograd."""
import pytest
import torch
from torch.nn import functional as F

import recon_lib as rl


def _autograd_reference(model, x, y, loss):
    model.zero_grad()
    loss(model(x), y).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("loss", [None, lambda out, y: F.mse_loss(out, F.one_hot(y, 4).float())])
def test_client_update_matches_backward(loss):
    model = rl.models.mlp((1, 6, 6), [5, 3], 4)
    x, y = torch.rand(3, 1, 6, 6), torch.tensor([0, 3, 1])
    message = rl.fl.client_update(model, x, y, loss)
    reference = _autograd_reference(model, x, y, loss or F.cross_entropy)
    assert message.keys() == reference.keys()
    for name in message:
        torch.testing.assert_close(message[name], reference[name])
        assert not message[name].requires_grad


def test_client_update_is_the_mean_of_per_sample_messages():
    model = rl.models.mlp((8,), [4], 3)
    x, y = torch.rand(5, 8), torch.tensor([0, 1, 2, 0, 1])
    batch = rl.fl.client_update(model, x, y)
    singles = [rl.fl.client_update(model, x[i:i + 1], y[i:i + 1]) for i in range(5)]
    for name in batch:
        torch.testing.assert_close(batch[name], torch.stack([s[name] for s in singles]).mean(0))


def test_client_update_leaves_model_grads_untouched():
    model = rl.models.mlp((4,), [3], 2)
    rl.fl.client_update(model, torch.rand(2, 4), torch.tensor([0, 1]))
    assert all(p.grad is None for p in model.parameters())


def test_client_updates_equals_a_loop_of_single_clients():
    model = rl.models.lenet_dlg((3, 16, 16), 5)
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 4, 2, 2])
    many = rl.fl.client_updates(model, x, y)
    for i in range(4):
        one = rl.fl.client_update(model, x[i:i + 1], y[i:i + 1])
        for name in one:
            torch.testing.assert_close(many[name][i], one[name], rtol=1e-4, atol=1e-6)


def test_mismatched_batch_sizes_are_rejected():
    model = rl.models.mlp((4,), [3], 2)
    with pytest.raises(ValueError, match="same batch size"):
        rl.fl.client_update(model, torch.rand(3, 4), torch.tensor([0, 1]))


def test_mismatched_dtype_is_rejected():
    model = rl.models.mlp((4,), [3], 2)
    with pytest.raises(TypeError, match="float64"):
        rl.fl.client_update(model, torch.rand(1, 4, dtype=torch.float64), torch.tensor([0]))


def test_non_scalar_loss_is_rejected():
    model = rl.models.mlp((4,), [3], 2)
    with pytest.raises(ValueError, match="scalar"):
        rl.fl.client_update(model, torch.rand(2, 4), torch.tensor([0, 1]),
                            loss=lambda out, y: F.cross_entropy(out, y, reduction="none"))


@pytest.mark.gpu
def test_client_update_on_cuda_stays_on_cuda():
    model = rl.models.mlp((4,), [3], 2).cuda()
    message = rl.fl.client_update(model, torch.rand(2, 4).cuda(), torch.tensor([0, 1]).cuda())
    assert all(g.is_cuda for g in message.values())


def test_mismatched_device_is_rejected():
    model = rl.models.mlp((4,), [3], 2).to("meta")
    with pytest.raises(ValueError, match="device"):
        rl.fl.client_update(model, torch.rand(1, 4), torch.tensor([0]))
