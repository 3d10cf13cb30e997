"""Chapter 04 explorer logic, without a browser."""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import recon_lib as rl  # noqa: E402
from recon_lib.widgets import optimisation as wo  # noqa: E402


@pytest.fixture(scope="module")
def small():
    return wo.client(index=0, size=8, victim="lenet")


def test_client_sends_the_message_of_its_own_image(small):
    assert small.x.shape == (1, 3, 8, 8)
    expected = rl.fl.client_update(small.model, small.x, small.y)
    for name, g in expected.items():
        torch.testing.assert_close(small.message[name], g)


def test_attack_scores_against_the_private_image(small):
    outcome = wo.attack(small, "stabilised", steps=200)
    torch.testing.assert_close(torch.tensor(outcome.mse),
                               rl.metrics.mse(outcome.result.images.float(), small.x).float()[0])
    assert outcome.success == (outcome.mse < wo.SUCCESS_MSE)
    assert outcome.success  # uniform init + iDLG label recover an 8×8 image


def test_batch_client_has_distinct_labels_and_attack_matches_the_order():
    batch = wo.client(index=0, size=6, victim="mlp", batch_size=3)
    assert len(set(batch.y.tolist())) == 3
    outcome = wo.attack(batch, "stabilised", orthogonality=0.0)
    assert outcome.success


def test_study_counts_successes_and_times_only_successful_runs(small):
    rows = wo.study({"uniform": dict(init="uniform", label="recover"), "tiny budget": dict(steps=1)}, [0],
                    progress=False, size=8)
    assert [row["config"] for row in rows] == ["uniform", "tiny budget"]
    assert rows[0]["success_rate"] == 1.0 and rows[0]["median_steps"] >= 1
    assert rows[1]["success_rate"] == 0.0 and rows[1]["median_seconds"] != rows[1]["median_seconds"]


def test_stabiliser_grid_is_init_times_label_times_box():
    assert len(wo.STABILISERS) == 8
    assert {tuple(sorted(c.items())) for c in wo.STABILISERS.values()} == {
        (("box", b), ("init", i), ("label", lab))
        for b in (None, "penalty") for i in wo.INITS for lab in ("joint", "recover")}


def test_show_draws_a_labelled_loss_curve(small):
    figure = wo.show(wo.attack(small, "idlg", steps=20))
    curve = figure.axes[0]
    assert curve.get_yscale() == "log" and curve.get_xlabel() and curve.get_title()
    plt.close(figure)


def test_explorer_builds_widgets(small):
    pytest.importorskip("ipywidgets")
    assert wo.explorer(small) is not None


def test_unknown_victim_is_refused():
    with pytest.raises(ValueError, match="victim"):
        wo.client(victim="resnet")


def test_stored_study_reads_counts_and_plot_study_draws_intervals(tmp_path):
    from pathlib import Path

    import matplotlib.pyplot as plt

    from recon_lib.widgets import optimisation as wo
    printout = tmp_path / "study.txt"
    printout.write_text("# python benchmarks/optimisation.py --seeds 20 --size 16\n\n"
                        "stabilisers: lenet\nconfiguration  success  median steps  median s\n"
                        "uniform init, DLG label   80%   410   2.45\n"
                        "gaussian init, iDLG label   100%   340   2.67\n\nfc: mlp\n")
    rows = wo.stored_study(printout)
    assert [(r["config"], r["successes"], r["seeds"], r["median_steps"]) for r in rows] == [
        ("uniform init, DLG label", 16, 20, 410.0), ("gaussian init, iDLG label", 20, 20, 340.0)]
    figure = wo.plot_study(rows, "t")
    assert len(figure.axes) == 2
    plt.close(figure)
    printout.write_text(printout.read_text().replace("80%", "83%"))   # not a whole number of 20 seeds
    with pytest.raises(ValueError, match="whole number"):
        wo.stored_study(printout)
    stored = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "optimisation_20seeds.txt"
    assert len(wo.stored_study(stored)) == 8


def test_the_title_says_where_the_run_stopped(small):
    early = wo.attack(small, "fast", steps=3000)
    assert early.result.steps < 3000
    note = f"stopped early at step {early.result.steps} of 3000 (loss below its threshold)"
    assert wo.stopping_note(early.result) == note
    cut = wo.attack(small, "fast", steps=10)
    assert cut.result.steps == 10 and wo.stopping_note(cut.result) == "all 10 steps"


def test_without_early_stop_every_budget_is_a_different_run(small):
    """The step slider must change what it shows: two budgets past the early stop, two runs."""
    stop = wo.explorer_attack(small, "fast", "uniform", 3000, 0).result.steps
    longer = [wo.explorer_attack(small, "fast", "uniform", stop + extra, 0, stop_early=False)
              for extra in (10, 20)]
    assert [o.result.steps for o in longer] == [stop + 10, stop + 20]
    assert not torch.equal(longer[0].result.images, longer[1].result.images)
    same = [wo.explorer_attack(small, "fast", "uniform", stop + extra, 0) for extra in (10, 20)]
    assert torch.equal(same[0].result.images, same[1].result.images)   # with the stop: the same run
