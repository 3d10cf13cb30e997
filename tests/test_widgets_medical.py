"""Chapter 05 explorer logic (recon_lib.widgets.medical): CNN inversion against the kernel count."""
import pytest
import torch

import recon_lib as rl
from recon_lib.widgets import medical


@pytest.fixture(scope="module")
def slice_():
    return rl.datasets.load("fmri", n=24, size=(24, 32))[0][12]


def test_exact_above_the_bound_and_not_below(slice_):
    sweep = medical.kernel_sweep(slice_, [2, 5])
    assert [o.bound for o in sweep] == [4, 4]
    assert sweep[0].psnr < 25 and sweep[1].psnr > 60 and sweep[1].ssim > 0.999
    assert sweep[1].reconstruction.shape == slice_.shape


def test_the_attack_sees_only_the_message(slice_, monkeypatch):
    """invert_cnn gets (model, message): the reconstruction is what the library computes from it."""
    seen = {}
    original = rl.analytic.invert_cnn

    def spy(model, message, *args, **kwargs):
        seen["keys"] = sorted(message)
        return original(model, message, *args, **kwargs)

    monkeypatch.setattr(rl.analytic, "invert_cnn", spy)
    medical.conv_attack(slice_, 5)
    assert seen["keys"] == ["0.bias", "0.weight", "3.bias", "3.weight"]


def test_same_seed_same_answer(slice_):
    a, b = medical.conv_attack(slice_, 3, seed=1), medical.conv_attack(slice_, 3, seed=1)
    assert torch.equal(a.reconstruction, b.reconstruction)


@pytest.mark.parametrize("kwargs, match", [
    ({"kernels": 0}, "positive int"), ({"kernels": 2.5}, "positive int"),
    ({"kernels": 2, "label": 30}, "classes")])
def test_bad_input(slice_, kwargs, match):
    with pytest.raises(ValueError, match=match):
        medical.conv_attack(slice_, **kwargs)


def test_needs_one_image(slice_):
    with pytest.raises(ValueError, match="C×H×W"):
        medical.conv_attack(slice_[None], 5)


def test_figure_and_explorer(slice_):
    figure = medical.plot_sweep(medical.kernel_sweep(slice_, [3, 5]))
    assert any("bound" in text.get_text() for text in figure.axes[0].get_legend().get_texts())
    assert list(figure.axes[0].get_xticks()) == [3, 4, 5]          # whole kernel counts only
    widget = medical.explorer(slice_[None].expand(3, -1, -1, -1), max_kernels=6)
    assert widget.children[0].max == 2 and widget.children[1].max == 6
