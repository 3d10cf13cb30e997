"""Chapter 07 explorer logic, without a browser."""
import math

import matplotlib
import pytest

from recon_lib import defences, privacy_utility
from recon_lib.widgets import defences as explorer

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def lab():
    return privacy_utility.mnist_lab(rounds=3, steps=5)


def test_undefended_client_is_rebuilt_and_noise_stops_it(lab):
    open_row = explorer.run_case("dp", 0.0, lab)
    noisy_row = explorer.run_case("dp", 1.0, lab)
    assert open_row["psnr"] > 60 and noisy_row["psnr"] < 12
    assert math.isnan(open_row["accuracy"]) and math.isinf(open_row["epsilon"])
    assert math.isfinite(noisy_row["epsilon"])


def test_batch_defence_returns_one_rebuild_per_private_image(lab):
    row = explorer.run_case("batch", 4, lab, attack="span")
    assert row["x"].shape == row["x_hat"].shape == (4, 1, 28, 28)


def test_training_reports_an_accuracy_and_describe_mentions_it(lab):
    row = explorer.run_case("quantize", 8, lab, train=True)
    assert 0 <= row["accuracy"] <= 1
    line = explorer.describe(row)
    assert "quantisation" in line and "test accuracy" in line and "PSNR" in line


def test_figure_shows_private_over_rebuilt_with_a_title(lab):
    figure = explorer.figure(explorer.run_case("secure_aggregation", 2, lab))
    assert len([ax for ax in figure.axes if ax.images]) == 3
    assert "secure aggregation" in figure._suptitle.get_text()


def test_explorer_builds_and_follows_the_defence(lab):
    widget = explorer.explorer(lab)
    menu, slider = widget.children[0], widget.children[1]
    menu.value = "prune"
    assert list(slider.options) == list(defences.DEFENCES["prune"].full)


@pytest.mark.parametrize("name, strength, match", [("blur", 1, "unknown defence"),
                                                   ("batch", 1000, "private images")])
def test_bad_settings_raise(lab, name, strength, match):
    with pytest.raises(ValueError, match=match):
        explorer.run_case(name, strength, lab)
