"""Metrics: MSE/PSNR by hand, SSIM against scikit-image, batch behaviour, bad shapes."""
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

import recon_lib as rl


def test_mse_and_psnr_by_hand():
    x = torch.zeros(2, 1, 4, 4)
    x_hat = x.clone()
    x_hat[0] += 0.1
    torch.testing.assert_close(rl.metrics.mse(x_hat, x), torch.tensor([0.01, 0.0], dtype=torch.float64))
    psnr = rl.metrics.psnr(x_hat, x)
    assert psnr[0].item() == pytest.approx(20.0) and math.isinf(psnr[1].item())


def test_single_image_gives_a_scalar():
    x = torch.rand(3, 8, 8)
    assert rl.metrics.psnr(x * 0.9, x).ndim == 0
    assert rl.metrics.ssim(x, x).item() == pytest.approx(1.0)


def test_ssim_agrees_with_scikit_image():
    x, x_hat = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    ours = rl.metrics.ssim(x_hat, x)
    for i in range(2):
        reference = structural_similarity(x_hat[i].permute(1, 2, 0).numpy().astype("float64"),
                                          x[i].permute(1, 2, 0).numpy().astype("float64"),
                                          data_range=1.0, channel_axis=-1)
        assert ours[i].item() == pytest.approx(reference, abs=1e-6)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        rl.metrics.mse(torch.rand(1, 16), torch.rand(1, 4, 4))


def test_ssim_on_tiny_images_is_rejected():
    with pytest.raises(ValueError, match="3×3"):
        rl.metrics.ssim(torch.rand(1, 2, 2), torch.rand(1, 2, 2))


# --- bad inputs: a clear error naming the argument, never a NaN or a silently wrong score ------
GOOD = torch.rand(2, 1, 8, 8)
BAD = {
    "x outside [0, 1]": (lambda: rl.metrics.psnr(GOOD, GOOD * 255), ValueError, "x must lie in \\[0, 1\\]"),
    "uint8 x without data_range": (lambda: rl.metrics.ssim(GOOD, (GOOD * 255).to(torch.uint8)),
                                   ValueError, "pass data_range="),
    "data_range below the spread": (lambda: rl.metrics.psnr(GOOD, GOOD * 255, data_range=100),
                                    ValueError, "data_range=100 is smaller than the spread"),
    "data_range zero": (lambda: rl.metrics.psnr(GOOD, GOOD, data_range=0), ValueError, "data_range"),
    "data_range nan": (lambda: rl.metrics.ssim(GOOD, GOOD, data_range=math.nan), ValueError, "data_range"),
    "data_range text": (lambda: rl.metrics.psnr(GOOD, GOOD, data_range="1"), ValueError, "data_range"),
    "NaN reconstruction": (lambda: rl.metrics.psnr(GOOD.clone().fill_(math.nan), GOOD), ValueError,
                           "x_hat contains NaN"),
    "inf original": (lambda: rl.metrics.mse(GOOD, GOOD.clone().fill_(math.inf)), ValueError,
                     "x contains NaN or inf"),
    "empty batch": (lambda: rl.metrics.psnr(GOOD[:0], GOOD[:0]), ValueError, "x_hat is empty"),
    "empty image": (lambda: rl.metrics.mse(torch.zeros(0), torch.zeros(0)), ValueError, "empty"),
    "complex": (lambda: rl.metrics.mse(GOOD.to(torch.complex64), GOOD.to(torch.complex64)), TypeError,
                "x_hat must hold real numbers"),
    "bool": (lambda: rl.metrics.ssim(GOOD > 0.5, GOOD > 0.5), TypeError, "x_hat must hold real numbers"),
    "list": (lambda: rl.metrics.mse([0.5], [0.5]), TypeError, "x_hat must be a torch tensor or NumPy array"),
    "object array": (lambda: rl.metrics.mse(np.array([None]), GOOD), TypeError,
                     "x_hat must hold real numbers"),
    "match with NaN": (lambda: rl.metrics.match(GOOD, GOOD.clone().fill_(math.nan)), ValueError,
                       "x contains"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_metric_inputs_raise_clear_errors(case):
    call, error, message = BAD[case]
    with pytest.raises(error, match=message):
        call()


def test_numpy_arrays_and_data_range_are_documented_behaviour():
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    x_hat = np.clip(x + 0.01, 0, 1)
    as_tensors = torch.from_numpy(x_hat), torch.from_numpy(x)
    torch.testing.assert_close(rl.metrics.psnr(x_hat, x), rl.metrics.psnr(*as_tensors))
    torch.testing.assert_close(rl.metrics.ssim(x_hat, x), rl.metrics.ssim(*as_tensors))
    # uint8 images with their range: the same PSNR and SSIM as the same images scaled to [0, 1]
    a, b = (torch.from_numpy(x_hat) * 255).round(), (torch.from_numpy(x) * 255).round()
    torch.testing.assert_close(rl.metrics.psnr(a.to(torch.uint8), b.to(torch.uint8), data_range=255),
                               rl.metrics.psnr(a / 255, b / 255))
    torch.testing.assert_close(rl.metrics.ssim(a, b, data_range=255), rl.metrics.ssim(a / 255, b / 255))
    # the reconstruction is scored as it is, even outside [0, 1]: 2 vs 0 is 20·log10(1/2) dB
    overshoot = rl.metrics.psnr(torch.full((4, 4), 2.0), torch.zeros(4, 4)).item()
    assert overshoot == pytest.approx(20 * math.log10(1 / 2), abs=1e-9)
