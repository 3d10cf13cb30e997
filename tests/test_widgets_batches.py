"""Chapter 02 explorer logic: client batch, server attack, transition grid, figures (no browser)."""
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import recon_lib as rl
from recon_lib.widgets import batches

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    images, labels = rl.datasets.load("mnist", n=40, size=8)
    return images, labels


def test_client_batch_is_reproducible_and_leaves_the_global_rng_alone(digits):
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    first = batches.client_batch(*digits, 4, 6, seed=3)
    assert torch.rand(1) == expected
    second = batches.client_batch(*digits, 4, 6, seed=3)
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    assert first.model[1].out_features == 6 and len(set(first.y.tolist())) == 4
    assert torch.equal(digits[0][first.index], first.x)
    torch.testing.assert_close(first.message["1.weight"], second.message["1.weight"])


def test_distinct_labels_get_a_head_with_at_least_b_classes(digits):
    batch = batches.client_batch(*digits, 12, 4)
    assert batch.model[-1].out_features == 12 and len(set(batch.y.tolist())) == 12


def test_data_labels_keep_the_images_own_labels(digits):
    images, labels = digits
    batch = batches.client_batch(images, labels, 16, 4, labeling="data")
    assert batch.model[-1].out_features == 10
    assert len(set(batch.y.tolist())) < 16  # 16 digits over 10 classes must repeat


@pytest.mark.parametrize("method", ["newton", "span", "unconstrained"])
def test_attacks_recover_a_batch_above_the_bound(digits, method):
    outcome = batches.attack(batches.client_batch(*digits, 3, 6), method)
    assert outcome.labels_ok and outcome.recovered == 1.0
    assert outcome.images.shape == outcome.originals.shape


def test_closed_form_returns_mixtures_not_images(digits):
    outcome = batches.attack(batches.client_batch(*digits, 3, 6), "closed form")
    assert math.isnan(outcome.loss) and outcome.recovered < 1.0


def test_below_the_bound_nothing_is_recovered(digits):
    outcome = batches.attack(batches.client_batch(*digits, 4, 1), "newton")
    assert outcome.recovered == 0.0


def test_server_labels_distinct_counts_and_oracle(digits):
    images, labels = digits
    batch = batches.client_batch(images, labels, 16, 20, labeling="data")
    truth = sorted(batch.y.tolist())
    assert batches.server_labels(batch, "counts").tolist() == truth
    assert batches.server_labels(batch, "oracle").tolist() == truth
    with pytest.raises(ValueError, match="classes"):
        batches.server_labels(batch, "distinct")  # 16 distinct labels out of 10 classes


def test_widths_keep_only_whole_numbers_of_units():
    assert batches.widths(4, [0.25, 0.5, 1, 2, 4]) == [1, 2, 4, 8, 16]
    assert batches.widths(1, [0.25, 0.5, 1, 2]) == [None, None, 1, 2]
    assert batches.widths(2, [0.25, 0.5]) == [None, 1]


def test_transition_grid_shape_counts_and_values(digits):
    result = batches.transition(*digits, [1, 2], [0.5, 1, 2], images_per_cell=2)
    assert result.share.shape == (2, 3) and np.isnan(result.share[0, 0])
    assert result.trials.tolist() == [[0, 2, 2], [1, 1, 1]]
    assert result.share[0, 1] == result.share[1, 1] == result.share[1, 2] == 1.0
    assert result.share[1, 0] == 0.0  # h = 1 < B = 2
    figure = batches.plot_transition(result)
    assert figure.axes[0].get_title() and figure.axes[0].get_xlabel()


def test_show_draws_originals_and_reconstructions(digits):
    outcome = batches.attack(batches.client_batch(*digits, 5, 10), "newton")
    figure = batches.show(outcome, ncols=3)
    titled = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert len(titled) == 10 and "recovered" in figure._suptitle.get_text()


def test_explorer_builds_its_controls(digits):
    explorer = batches.explorer(*digits)
    names = {child.description for child in explorer.children[:-1]}
    assert {"B", "h", "method", "labels", "seed"} <= names


@pytest.mark.parametrize("method, labeling", [("newton", "data"), ("closed form", "distinct")])
def test_one_explorer_update_draws_the_outcome(digits, method, labeling):
    figure = batches.run(*digits, 12, 16, method, labeling)
    assert method in figure._suptitle.get_text() and "B=12, h=16" in figure._suptitle.get_text()


def test_bad_choices_are_rejected(digits):
    with pytest.raises(ValueError, match="method"):
        batches.attack(batches.client_batch(*digits, 2, 4), "magic")
    with pytest.raises(ValueError, match="labeling"):
        batches.client_batch(*digits, 2, 4, labeling="random")
    with pytest.raises(ValueError, match="batch_size"):
        batches.client_batch(*digits, 0, 4)
    with pytest.raises(ValueError, match="batch_size"):
        batches.client_batch(*digits, 41, 4)
