"""Chapter 00 explorer logic (recon_lib.widgets.threat_model): gradient rows against batch size."""
import matplotlib.pyplot as plt
import pytest
import torch

import recon_lib as rl
from recon_lib.widgets import threat_model


@pytest.fixture(scope="module")
def faces():
    x, y = rl.datasets.load("faces", n=6)
    return x, torch.arange(len(x)) % 10


def test_one_image_rows_are_the_image_a_batch_rows_are_blends(faces):
    one = threat_model.first_layer_rows(*faces, batch_size=1)
    assert one.rows.shape == (8, 1, 25, 25) and one.cosines.shape == (8, 1)
    assert torch.all(one.cosines > 0.9999)
    four = threat_model.first_layer_rows(*faces, batch_size=4)
    assert four.cosines.shape == (8, 4) and four.cosines.max() < 0.999


def test_rows_are_the_message_computed_by_autograd(faces):
    x, y = faces
    view = threat_model.first_layer_rows(x, y, 3, seed=2)
    torch.manual_seed(2)
    model = rl.models.mlp(x.shape[1:], [8], 10)
    loss = torch.nn.functional.cross_entropy(model(x[:3]), y[:3])
    grad = torch.autograd.grad(loss, model[1].weight)[0]
    torch.testing.assert_close(view.rows.flatten(1), grad)


def test_global_random_state_is_untouched(faces):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    threat_model.first_layer_rows(*faces, batch_size=2)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("batch_size", [0, 7])
def test_batch_size_out_of_range(faces, batch_size):
    with pytest.raises(ValueError, match="batch_size must be between 1 and 6"):
        threat_model.first_layer_rows(*faces, batch_size=batch_size)


def test_shapes_are_checked(faces):
    x, y = faces
    with pytest.raises(ValueError, match="N×C×H×W"):
        threat_model.first_layer_rows(x[0], y, 1)
    with pytest.raises(ValueError, match="N labels"):
        threat_model.first_layer_rows(x, y[:2], 1)


def test_figure_and_explorer(faces):
    figure = threat_model.plot_rows(threat_model.first_layer_rows(*faces, batch_size=1))
    assert "scaled" in figure._suptitle.get_text()
    assert "max |cos| = 1.000" in figure.axes[4].get_title()
    widget = threat_model.explorer(*faces)
    assert widget.children[0].max == 6 and widget.children[0].value == 1
    plt.close("all")
