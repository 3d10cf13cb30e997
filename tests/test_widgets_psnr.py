"""Chapter 06 explorer logic (recon_lib.widgets.psnr): one image at a chosen PSNR."""
import matplotlib.pyplot as plt
import pytest

import recon_lib as rl
from recon_lib.widgets import psnr


@pytest.fixture(scope="module")
def photo():
    return rl.benchmark.sample("imagenet", 1, size=32)[0][0]


@pytest.mark.parametrize("how", rl.distortions.DISTORTIONS)
def test_title_reports_the_psnr_reached(photo, how):
    figure = psnr.compare(photo, how, 20.0)
    shown = figure.axes[1].get_images()[0].get_array()
    assert figure.axes[1].get_title().startswith(f"{how}: 20.0 dB")
    assert shown.shape[:2] == photo.shape[1:] and figure._suptitle.get_text()
    plt.close(figure)


def test_unreachable_target_is_reported_as_reached_not_as_asked(photo):
    figure = psnr.compare(photo, "contrast", 1.0)  # uniform grey is the flattest contrast can go
    reached = float(rl.metrics.psnr(rl.distortions.at_psnr(photo, "contrast", 1.0), photo))
    assert reached > 1.5 and f"{reached:.1f} dB" in figure.axes[1].get_title()
    plt.close(figure)


def test_explorer_controls(photo):
    widget = psnr.explorer(photo)
    menu, slider = widget.children[:2]
    assert list(menu.options) == list(rl.distortions.DISTORTIONS)
    assert (slider.min, slider.max, slider.value) == (5.0, 40.0, 20.0)
    plt.close("all")
