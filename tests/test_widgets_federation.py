"""Chapter 08 explorer logic, without a browser (and without Ray: histories are built directly)."""
import matplotlib
import pytest
import torch

from recon_lib import flower, victims
from recon_lib.widgets import federation as explorer

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def histories():
    """Two FedAvg rounds of the chapter's sigmoid run, aggregated as Flower's FedAvg does (a mean)."""
    setup = victims.TRAINING.replace(rounds=2)
    model = flower.build_model(setup)
    history = {0: {k: v.clone() for k, v in model.state_dict().items()}}
    for r in (1, 2):
        states = [flower.local_update(model, *flower.shard(setup, k, r), local_steps=setup.local_steps,
                                      lr=setup.lr) for k in range(setup.n_clients)]
        model.load_state_dict({k: sum(s[k] for s in states) / len(states) for k in states[0]})
        history[r] = {k: v.clone() for k, v in model.state_dict().items()}
    return {"sigmoid": history}


def test_one_image_is_rebuilt_at_round_zero_and_after_training(histories):
    for server_round in (0, 2):
        row = explorer.run_case(histories, server_round=server_round)
        assert row["failure"] is None and row["psnr"][0] > 100 and row["dead_units"] == 0
        assert "1/1 images ≥ 40 dB" in explorer.describe(row)


def test_batchnorm_train_mode_names_the_zero_bias_gradient(histories):
    row = explorer.run_case(histories, batchnorm="train", batch_size=4)
    assert max(row["psnr"]) < 40 and row["median_abs_db"] < 1e-6
    assert "∂b = Σδ = 0" in explorer.describe(row)


def test_a_batch_uses_the_span_solver_and_reports_h_against_b(histories):
    row = explorer.run_case(histories, batch_size=4, width=8)
    assert row["attack"] == "span" and min(row["psnr"]) > 40 and row["x_hat"].shape == row["x"].shape
    assert "h ≥ B holds (rank ∇W = 4, B = 4)" in explorer.describe(row)
    fedavg = explorer.run_case(histories, batch_size=4, local_steps=5)
    assert "E = 5 steps are not one gradient" in explorer.condition(fedavg)


def test_trained_rounds_need_a_run_of_that_victim(histories):
    with pytest.raises(ValueError, match="no training run"):
        explorer.run_case(histories, activation="relu", server_round=1)


def test_figure_has_a_title_and_one_panel_per_image(histories):
    row = explorer.run_case(histories, batch_size=2, width=8)
    fig = explorer.figure(row)
    assert fig._suptitle is not None and "round 0" in fig._suptitle.get_text()
    assert sum(ax.has_data() or bool(ax.images) for ax in fig.axes) >= 4
    assert torch.is_tensor(row["x_hat"])


def test_explorer_builds_its_controls(histories):
    widget = explorer.explorer(histories)
    names = {child.description for child in widget.children if hasattr(child, "description")}
    assert {"activation", "BatchNorm", "E", "round", "B"} <= names
