"""Victim models: shapes, recorded input shape, DLG initialisation."""
import pytest
import torch
from torch import nn

import recon_lib as rl


def test_mlp_structure_and_in_shape():
    model = rl.models.mlp((3, 17, 23), [10, 7], 5, activation="tanh")
    assert model.in_shape == (3, 17, 23)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(3 * 17 * 23, 10), (10, 7), (7, 5)]
    assert sum(isinstance(m, nn.Tanh) for m in model) == 2
    assert model(torch.rand(2, 3, 17, 23)).shape == (2, 5)


def test_mlp_without_bias_has_no_bias_anywhere():
    model = rl.models.mlp((4,), [3], 2, bias=False)
    assert all(m.bias is None for m in model if isinstance(m, nn.Linear))


@pytest.mark.parametrize("bad", [dict(activation="swish"), dict(widths=[0]), dict(in_shape=())])
def test_mlp_rejects_bad_arguments(bad):
    arguments = dict(in_shape=(4,), widths=[3], n_classes=2) | bad
    with pytest.raises(ValueError):
        rl.models.mlp(**arguments)


def test_lenet_dlg_matches_the_published_architecture():
    model = rl.models.lenet_dlg((3, 32, 32), 100)
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (12, (5, 5), (2, 2), (2, 2)), (12, (5, 5), (2, 2), (2, 2)), (12, (5, 5), (1, 1), (2, 2))]
    assert model[-1].in_features == 768 and model[-1].out_features == 100
    assert sum(isinstance(m, nn.Sigmoid) for m in model) == 3
    for p in model.parameters():
        assert p.min() >= -0.5 and p.max() <= 0.5
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 100)


def test_lenet_dlg_needs_an_image_shape():
    with pytest.raises(ValueError, match="C×H×W"):
        rl.models.lenet_dlg((784,), 10)
