"""Chapter 03 explorer logic, called without a browser."""
import matplotlib
import pytest
import torch
from torch import nn

import recon_lib as rl
from recon_lib.widgets import convolutions as cw

matplotlib.use("Agg")


def image(channels=1, d=8, seed=0):
    return torch.rand(channels, d, d, generator=torch.Generator().manual_seed(seed))


def test_run_case_above_the_bound_recovers_and_reports_full_rank():
    x = image(2, 8)
    row = cw.run_case(x, k=3, s=1, p=1, h=3)
    assert (row["d_out"], row["bound"], row["gap"]) == (8, 2, "")
    assert row["rank"] == 128 and row["full_rank"]
    assert row["psnr"] > 40
    assert "meets" in cw.describe(row) and "(full)" in cw.describe(row)


def test_run_case_reconstruction_is_the_library_attack_on_the_message():
    x = image(1, 6)
    row = cw.run_case(x, k=3, s=1, p=1, h=2, seed=5)
    model = cw.victim(x.shape, 2, 3, 1, 1, seed=5)
    message = rl.fl.client_update(model, x[None], torch.tensor([0]))
    torch.testing.assert_close(row["x_hat"], rl.analytic.invert_cnn(model, message, strict=False))


def test_run_case_below_the_bound_fails_and_says_so():
    row = cw.run_case(image(1, 8), k=3, s=2, p=1, h=2)
    assert row["bound"] == 4 and not row["full_rank"] and row["psnr"] < 30
    assert "is below" in cw.describe(row)


def test_weight_gradients_switch_rescues_a_layer_below_the_bound():
    x = image(1, 8)
    plain = cw.run_case(x, k=3, s=2, p=1, h=3)  # bound 4; 3·16 + 3·9 = 75 ≥ 64 with weight grads
    rescued = cw.run_case(x, k=3, s=2, p=1, h=3, weight_grads=True)
    assert plain["psnr"] < 30 < 40 < rescued["psnr"]
    assert "weight-gradient" in cw.describe(rescued) and "weight-gradient" not in cw.describe(plain)


def test_victim_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    cw.victim((1, 6, 6), 2, 3, 1, 1)
    assert torch.equal(torch.rand(3), expected)


def test_transition_matches_one_case_at_a_time():
    images = torch.stack([image(1, 6, seed) for seed in range(3)])
    sweep = cw.transition(images, 3, 1, 1, [1, 2])
    assert sweep["psnr"].shape == (2, 3)
    torch.testing.assert_close(sweep["ratio"], torch.tensor([1.0, 2.0]))
    single = cw.run_case(images[1], 3, 1, 1, 2)
    assert sweep["psnr"][1, 1].item() == pytest.approx(single["psnr"], rel=0.05)  # both at round-off
    assert (sweep["psnr"][1] > 40).all()


def test_condition_sweep_is_worst_at_the_bound():
    values = cw.condition_sweep((2, 8, 8), [2, 3, 4], k=3)
    assert values[0] > values[1] > 0
    assert torch.isinf(cw.condition_sweep((2, 8, 8), [1], k=3)).all()


def test_figure_and_explorer_build():
    x = image(1, 6)
    figure = cw.figure(x, cw.run_case(x, 3, 1, 1, 2))
    assert "bound 1" in figure.texts[0].get_text() or figure._suptitle is not None
    widget = cw.explorer(x)
    assert {child.description for child in widget.children[:-1]} >= {"kernel k", "kernels h",
                                                                     "use weight gradients"}


@pytest.mark.parametrize("bad", [torch.rand(6, 6), torch.rand(1, 6, 5), "not an image"])
def test_bad_images_raise(bad):
    with pytest.raises(ValueError, match="square"):
        cw.run_case(bad, 3, 1, 1, 2)


def test_invalid_geometry_raises():
    with pytest.raises(ValueError):
        cw.run_case(image(1, 4), k=7, s=1, p=0, h=2)
