"""Metrics: MSE/PSNR by hand, SSIM against scikit-image, batch behaviour, bad shapes."""
import math

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
