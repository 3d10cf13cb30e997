"""Chapter 09 explorer and measurement functions (recon_lib.widgets.malicious), without a browser."""
import matplotlib
import pytest
import torch

from recon_lib import imprint
from recon_lib.widgets import malicious

matplotlib.use("Agg")


def test_run_case_scores_what_comes_back_against_the_private_batch():
    row = malicious.run_case(64, 16, seed=7)
    assert row["fraction"] == row["alone"] > 0.5 and (row["psnr"] > 60).all()
    assert row["expected"] == imprint.expected_fraction(16, 64)
    assert "64 bins" in malicious.describe(row) and "B = 16" in malicious.describe(row)


def test_secure_aggregate_case_counts_every_clients_images():
    row = malicious.run_case(512, 3, clients=4, seed=2)
    assert len(row["x"]) == 12 and row["fraction"] == row["alone"] > 0.5
    assert "4 clients" in malicious.describe(row)


def test_honest_span_bound_falls_once_the_batch_exceeds_the_width():
    assert malicious.span_bound(4, width=8) == 1.0
    assert malicious.span_bound(24, width=8) < 0.2


def test_figure_and_explorer_build():
    figure = malicious.figure(malicious.run_case(32, 8, statistic="random"))
    assert figure._suptitle.get_text().startswith("32 bins")
    widget = malicious.explorer()
    assert [child.description for child in widget.children[:3]] == ["bins", "batch B", "statistic"]


def test_trap_case_finds_exact_images():
    assert malicious.trap_case(8, width=256)["fraction"] >= 0.5


@pytest.mark.parametrize("seed", [0, 1])
def test_trap_returns_only_exact_images_even_with_same_label_crops(seed):
    """Seed 0 holds crops of one photo whose δ's are nearly parallel: two units agree on their
    mixture, and only the δ recomputation rejects it."""
    row = malicious.trap_case(64, seed=seed)
    assert row["returned"] == round(row["fraction"] * 64) and row["fraction"] >= 0.4


@pytest.mark.parametrize("kwargs", [{"bins": 0, "batch": 4}, {"bins": 8, "batch": 4, "statistic": "hue"}])
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        malicious.run_case(**kwargs)


def test_running_mean_of_messages_is_the_secure_aggregate():
    import torch

    import recon_lib as rl
    x, y = imprint.sample_batch("cifar100", 6, seed=4)
    planted = imprint.attach(malicious.victim((3, 32, 32), 4), (3, 32, 32), 16, seed=4)
    messages = rl.defences.client_messages(planted, x.view(3, 2, 3, 32, 32), y.view(3, 2))
    stacked = rl.defences.secure_aggregate(messages)
    row = malicious.run_case(16, 2, clients=3, seed=4)
    found = imprint.recover(planted, stacked)
    assert len(found.images) > 0 and torch.allclose(row["x_hat"], found.images.float(), atol=1e-5)


def test_device_cpu_gives_what_the_default_gives():
    """benchmarks/imprint.py passes --device through; on the CPU nothing changes."""
    on_cpu = malicious.run_case(32, 8, seed=3, device="cpu")
    assert on_cpu["fraction"] == malicious.run_case(32, 8, seed=3)["fraction"]
    assert on_cpu["x"].device.type == "cpu"
    assert malicious.span_bound(4, width=8, device="cpu") == 1.0
    assert malicious.trap_case(8, width=256, device=torch.device("cpu")) == malicious.trap_case(8, width=256)
    dp = malicious.dp_case(0.0, batch=4, device="cpu")
    assert dp["fraction"] == malicious.dp_case(0.0, batch=4)["fraction"]
