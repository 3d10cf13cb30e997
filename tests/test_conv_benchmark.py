"""benchmarks/conv.py: correctness of what it measures, on small sizes (timings live in benchmarks/)."""
import torch

import recon_lib as rl
from benchmarks import conv as bench


def test_headline_recovers_the_image_and_reports_its_settings():
    x, _ = rl.datasets.load("imagenet", n=1, size=16)
    result = bench.headline(x, kernel_size=3, repeats=1)
    assert result["bounds"] == [3, 4] and result["kernels"] == [4, 5]
    assert result["psnr_db"] >= 40 and result["peak_rss_mb"] > 0
    assert result["dense_matrix_gb"] == 4 * 4 * 16 * 16 * 3 * 16 * 16 / 1e9


def test_conditioning_rows_are_worst_at_the_bound():
    x, _ = rl.datasets.load("imagenet", n=1, size=16)
    rows = bench.conditioning(x, [3, 4], budgets=[50])
    assert [row["h"] for row in rows] == [3, 4] and rows[0]["bound"] == 3
    assert rows[0]["condition_number"] > rows[1]["condition_number"]
    assert rows[1]["psnr_db@50"] > rows[0]["psnr_db@50"]


def test_at_the_bound_rows_compare_the_two_equation_sets():
    x, _ = rl.datasets.load("imagenet", n=1, size=12)
    rows = bench.at_the_bound(x, budgets=[400])
    assert [row["weight_grads"] for row in rows] == [False, True]
    assert rows[1]["psnr_db@400"] > rows[0]["psnr_db@400"]
