"""Chapter 01 explorer logic, called without a browser and checked against autograd."""
import math

import matplotlib
import pytest
import torch
from hypothesis import given, settings, strategies as st

from recon_lib.widgets import one_node

matplotlib.use("Agg")


def image(shape=(1, 6, 6), seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def autograd_delta(model, x, label, loss):
    """δ = ∂ℓ/∂z of the first linear layer, read by autograd through a forward hook."""
    captured = {}
    handle = model[1].register_forward_hook(lambda m, i, out: captured.setdefault("z", out))
    value = loss(model(x.unsqueeze(0)), torch.tensor([label]))
    handle.remove()
    return torch.autograd.grad(value, captured["z"])[0][0]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "gelu"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("depth,width,n_classes", [(1, 3, 2), (4, 8, 10), (9, 5, 7)])
def test_run_case_matches_autograd_and_recovers_the_image(activation, loss, depth, width, n_classes):
    x = image((2, 4, 5))
    row = one_node.run_case(x, 1, depth=depth, activation=activation, width=width,
                            n_classes=n_classes, loss=loss, seed=3)
    model = one_node.victim(x.shape, depth, activation, width, n_classes, seed=3)
    delta = autograd_delta(model, x, 1, one_node.LOSSES[loss])
    assert row["delta_max"] == pytest.approx(float(delta.abs().max()), rel=1e-6)
    assert row["n_usable"] == int((delta != 0).sum())
    if row["n_usable"]:
        assert row["error"] is None and row["x_hat"].shape == x.shape
        assert row["max_error"] <= 1e-6
        torch.testing.assert_close(row["x_hat"], x, atol=1e-6, rtol=0)


def test_run_case_in_float64_is_exact_to_double_rounding():
    x = image()
    row = one_node.run_case(x, 0, depth=3, activation="tanh", width=4, dtype=torch.float64)
    assert row["dtype"] == "float64" and row["max_error"] < 1e-14


def test_all_dead_relu_units_give_an_explained_failure_not_a_picture():
    x = torch.zeros(1, 3, 3)  # z = b: the single ReLU unit is dead when its bias is negative
    seed = next(s for s in range(100)
                if one_node.victim(x.shape, 1, "relu", 1, seed=s)[1].bias.item() < 0)
    row = one_node.run_case(x, 0, depth=1, activation="relu", width=1, seed=seed)
    assert row["n_usable"] == 0 and row["x_hat"] is None and math.isnan(row["max_error"])
    assert "δ = 0" in row["error"]
    assert "attack impossible" in one_node.describe(row)
    with pytest.raises(ValueError, match="nothing to show"):
        one_node.figure(x, row)


def test_victim_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = one_node.victim((1, 3, 3), 2, "gelu", 4, seed=5)
    b = one_node.victim((1, 3, 3), 2, "gelu", 4, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_format_table_aligns_columns_and_formats_floats():
    rows = [dict(a=1, b=0.000123, c="relu"), dict(a=10, b=math.nan, c="gelu")]
    lines = one_node.format_table(rows, ["a", "b", "c"]).splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1
    assert "1.2e-04" in lines[2] and "nan" in lines[3]


def test_describe_and_figure_of_a_successful_case():
    x = image()
    row = one_node.run_case(x, 2, depth=2, activation="sigmoid", width=4)
    assert "4/4 usable units" in one_node.describe(row)
    fig = one_node.figure(x, row)
    assert "depth 2" in fig.texts[0].get_text() or "depth 2" in fig._suptitle.get_text()


def test_fitted_sweep_delta_shrinks_and_the_ratio_stays_exact_while_normal():
    x = image((1, 5, 5))
    scales = torch.logspace(0, 5, 26).tolist()
    single = one_node.fitted_sweep(x, scales, dtype=torch.float32)
    double = one_node.fitted_sweep(x, scales, dtype=torch.float64)
    assert single["margin"][-1] > 50 * single["margin"][0] > 0
    normal = single["delta_max"] > torch.finfo(torch.float32).tiny
    assert normal[0] and not normal[-1]
    assert torch.all(single["max_error"][normal] <= 4 * torch.finfo(torch.float32).eps)
    assert torch.equal(single["usable"], normal)
    assert single["delta_max"][-1] == 0 and math.isnan(single["max_error"][-1])
    # float64 has the same story, ~700 nats of margin later (e^-708 ≈ its smallest normal)
    assert torch.equal(double["usable"], double["delta_max"] > torch.finfo(torch.float64).tiny)
    assert double["usable"][double["margin"] < 500].all() and not double["usable"][-1]
    assert torch.all(double["max_error"][double["usable"]] <= 4 * torch.finfo(torch.float64).eps)


def test_explorer_builds_and_reruns_when_a_slider_moves():
    x = image()
    widget = one_node.explorer(x, 1, n_classes=3, max_depth=4, max_width=8)
    controls = {child.description: child for child in widget.children[:-1]}
    assert set(controls) == {"depth", "activation", "width h", "seed"}
    controls["depth"].value = 4
    controls["activation"].value = "relu"
    assert widget.kwargs == dict(depth=4, activation="relu", width=8, seed=0)


@pytest.mark.parametrize("call,error", [
    (lambda: one_node.run_case(torch.rand(4, 4), 0, depth=1, activation="tanh", width=2), TypeError),
    (lambda: one_node.run_case(image(), 10, depth=1, activation="tanh", width=2), ValueError),
    (lambda: one_node.run_case(image(), 0, depth=1, activation="tanh", width=2, loss="l1"), ValueError),
    (lambda: one_node.run_case(image(), 0, depth=0, activation="tanh", width=2), ValueError),
    (lambda: one_node.run_case(image(), 0, depth=1, activation="swish", width=2), ValueError),
])
def test_bad_input_gets_a_clear_error(call, error):
    with pytest.raises(error):
        call()


def test_training_drives_delta_down_and_the_closed_form_stays_exact():
    x = image()
    trace = one_node.training_sweep(x, 2, steps=40, every=10, lr=1.0)
    assert trace["step"].tolist() == [0, 10, 20, 30, 40]
    assert trace["loss"][-1] < trace["loss"][0] / 10
    assert trace["delta_max"][-1] < trace["delta_max"][0] / 10
    assert torch.all(trace["max_error"] <= 1e-6)


@pytest.mark.gpu
def test_run_case_and_sweeps_run_unchanged_on_cuda():
    x = image().cuda()
    row = one_node.run_case(x, 1, depth=3, activation="gelu", width=6)
    assert row["x_hat"].device.type == "cuda" and row["max_error"] <= 1e-6
    sweep = one_node.fitted_sweep(x, [1.0, 10.0])
    assert torch.all(sweep["max_error"] <= 1e-6)
    trace = one_node.training_sweep(x, 1, steps=4, every=2)
    assert torch.all(trace["max_error"] <= 1e-6)


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
       depth=st.integers(1, 6), width=st.integers(1, 9), n_classes=st.integers(2, 12),
       activation=st.sampled_from(["sigmoid", "tanh", "relu", "gelu", "leaky_relu"]),
       loss=st.sampled_from(sorted(one_node.LOSSES)), seed=st.integers(0, 1000))
def test_property_any_shape_and_network_is_exact_or_explicitly_impossible(
        shape, depth, width, n_classes, activation, loss, seed):
    x = image(shape, seed)
    row = one_node.run_case(x, seed % n_classes, depth=depth, activation=activation, width=width,
                            n_classes=n_classes, loss=loss, seed=seed)
    if row["n_usable"]:
        assert row["x_hat"].shape == x.shape and row["max_error"] <= 1e-6
    else:
        assert row["x_hat"] is None and "δ = 0" in row["error"]
