"""rl.distortions: an image distorted to a chosen PSNR, three ways (what chapter 06's metrics mean)."""
import matplotlib.pyplot as plt
import pytest
import torch

import recon_lib as rl


@pytest.mark.parametrize("how", rl.distortions.DISTORTIONS)
@pytest.mark.parametrize("target", [15.0, 20.0, 30.0])
def test_at_psnr_hits_the_target_and_stays_in_range(how, target):
    x = rl.benchmark.sample("imagenet", 1, size=32)[0][0]
    distorted = rl.distortions.at_psnr(x, how, target)
    assert float(rl.metrics.psnr(distorted, x)) == pytest.approx(target, abs=0.01)
    assert 0 <= float(distorted.min()) and float(distorted.max()) <= 1


def test_same_psnr_different_ssim_and_unreachable_targets():
    x = rl.benchmark.sample("imagenet", 1, size=64)[0][0]
    noisy, dimmer = rl.distortions.at_psnr(x, "noise", 20.0), rl.distortions.at_psnr(x, "contrast", 20.0)
    assert float(rl.metrics.ssim(dimmer, x)) > float(rl.metrics.ssim(noisy, x)) + 0.1
    grey = rl.distortions.at_psnr(x, "contrast", 1.0)  # not reachable: the flattest image is uniform grey
    assert torch.allclose(grey, torch.full_like(x, 0.5), atol=1e-6)
    assert torch.equal(rl.distortions.distort(x, "blur", 0.0), x) and torch.allclose(rl.distortions.distort(x, "contrast", 0.0), x)


def test_bad_distortions():
    x = torch.rand(1, 8, 8)
    with pytest.raises(ValueError, match="how must be one of"):
        rl.distortions.distort(x, "jpeg", 0.1)
    with pytest.raises(ValueError, match="C×H×W"):
        rl.distortions.distort(x[0], "noise", 0.1)
    with pytest.raises(ValueError, match="strength"):
        rl.distortions.distort(x, "noise", -1.0)
    with pytest.raises(ValueError, match="target_db"):
        rl.distortions.at_psnr(x, "noise", 0.0)


def test_levels_figure_is_titled_and_reaches_each_level():
    x = rl.benchmark.sample("faces", 1)[0][0]
    figure = rl.distortions.plot_psnr_levels(x, levels=(15, 25))
    assert figure._suptitle is not None and len(figure.axes) == 3 * 3
    assert "15.0 dB" in figure.axes[1].get_title() and "25.0 dB" in figure.axes[2].get_title()
    plt.close(figure)
