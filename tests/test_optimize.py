"""Gradient matching (chapters 02 and 04): each piece against a hand or autograd reference."""
import dataclasses
import warnings

import pytest
import torch
from torch.nn import functional as F

import recon_lib as rl
from recon_lib import optimize as op


def message(batch_size=2, h=16, side=6, n_classes=5, seed=0):
    torch.manual_seed(seed)
    model = rl.models.mlp((1, side, side), [h], n_classes)
    x = torch.rand(batch_size, 1, side, side)
    y = torch.randperm(n_classes)[:batch_size]
    return model, x, y, rl.fl.client_update(model, x, y)


def random_grads(shape_a=(3, 4), shape_b=(5,), lead=()):
    return {"a": torch.randn(*lead, *shape_a), "b": torch.randn(*lead, *shape_b)}


# --- distances and priors against references ------------------------------------------------
def test_euclidean_distance_is_the_sum_of_squared_differences():
    g, t = random_grads(), random_grads()
    expected = ((g["a"] - t["a"]) ** 2).sum() + ((g["b"] - t["b"]) ** 2).sum()
    torch.testing.assert_close(op.euclidean_distance(g, t), expected)


def test_cosine_distance_matches_torch_cosine_similarity_of_the_flat_gradients():
    g, t = random_grads(), random_grads()
    flat = lambda d: torch.cat([d["a"].flatten(), d["b"].flatten()])  # noqa: E731
    expected = 1 - F.cosine_similarity(flat(g), flat(t), dim=0)
    torch.testing.assert_close(op.cosine_distance(g, t), expected)
    assert op.cosine_distance({k: 3 * v for k, v in t.items()}, t).abs() < 1e-6  # scale-blind


def test_normalised_distance_puts_every_parameter_in_its_own_units():
    g, t = random_grads(), random_grads()
    expected = sum(v.numel() ** 0.5 * ((g[k] - v) ** 2).sum() / (v ** 2).sum() for k, v in t.items())
    torch.testing.assert_close(op.normalised_distance(g, t), expected)
    scaled = {"a": 1e3 * t["a"], "b": t["b"]}  # one parameter a thousand times larger ...
    off = {"a": 1e3 * g["a"], "b": g["b"]}     # ... and its residual with it: same distance
    torch.testing.assert_close(op.normalised_distance(off, scaled), expected)


def test_a_zero_gradient_gets_a_finite_weight():
    t = {"a": torch.zeros(3, 4), "b": torch.randn(5)}
    weights = op.layer_weights(t)
    assert all(0 < w < float("inf") for w in weights.values())
    assert torch.isfinite(op.normalised_distance(random_grads(), t))


@pytest.mark.parametrize("name", ["euclidean", "cosine", "normalised"])
def test_the_objectives_distance_equals_the_public_function(name):
    g, t = random_grads(lead=(3,)), random_grads()
    fast = op.distance_for(op.options(None, distance=name), t)
    torch.testing.assert_close(fast(g, t), op.DISTANCES[name](g, t))


@pytest.mark.parametrize("name, scale", [
    ("euclidean", lambda t: sum(float(v.square().sum()) for v in t.values())),
    ("normalised", lambda t: sum(v.numel() ** 0.5 for v in t.values())),
    ("cosine", lambda t: 1.0)])
def test_rtol_is_relative_to_the_distance_of_a_zero_gradient(name, scale):
    t = random_grads()
    opts = op.options(None, distance=name, tol=0.0, rtol=1e-3)
    assert op.stop_threshold(opts, t) == pytest.approx(1e-3 * scale(t), rel=1e-5)
    assert op.stop_threshold(op.options(None, distance=name, tol=0.5, rtol=0.0), t) == 0.5


@pytest.mark.parametrize("distance", [op.euclidean_distance, op.cosine_distance, op.normalised_distance])
def test_distances_keep_leading_restart_dimensions(distance):
    g, t = random_grads(lead=(4,)), random_grads()
    batched = distance(g, t)
    one_by_one = torch.stack([distance({k: v[r] for k, v in g.items()}, t) for r in range(4)])
    torch.testing.assert_close(batched, one_by_one)


def test_total_variation_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]])  # vertical |3|,|4|; horizontal |1|,|2|
    torch.testing.assert_close(op.total_variation(x), torch.tensor(3.5 + 1.5))


def test_orthogonality_against_a_loop():
    x = torch.rand(3, 4, 1, 2, 3)  # 3 restarts, 4 images
    flat = x.flatten(2)
    expected = torch.stack([sum(((flat[r, i] * flat[r, j]) ** 2).mean()
                                for i in range(4) for j in range(4) if i != j) for r in range(3)])
    torch.testing.assert_close(op.orthogonality(x), expected)
    assert op.orthogonality(torch.eye(4).view(4, 1, 2, 2)) == 0  # disjoint supports cost nothing


def test_box_penalty_counts_only_pixels_outside_the_range():
    x = torch.tensor([-0.5, 0.2, 1.0, 1.5]).view(1, 1, 2, 2)
    torch.testing.assert_close(op.box_penalty(x), torch.tensor(0.25 + 0.25))


def test_matching_loss_equals_a_plain_autograd_reference():
    model, x, y, target = message()
    dummy = torch.rand(1, 2, 1, 6, 6)
    unknowns = op._parametrisation(model, target, 2, False, torch.float32)
    _, matching = op._objective(model, target, y, op.options(None), unknowns.decode,
                                torch.float32)({"x": dummy})
    reference = rl.fl.client_update(model, dummy[0], y)
    torch.testing.assert_close(matching[0], op.euclidean_distance(reference, target))


def test_restarts_in_one_program_equal_separate_evaluations():
    model, x, y, target = message()
    unknowns = op._parametrisation(model, target, 2, False, torch.float32)
    objective = op._objective(model, target, y, op.options("stabilised", tv=0.1), unknowns.decode,
                              torch.float32)
    dummies = torch.rand(3, 2, 1, 6, 6)
    total, matching = objective({"x": dummies})
    for r in range(3):
        one_total, one_matching = objective({"x": dummies[r:r + 1]})
        torch.testing.assert_close(total[r:r + 1], one_total)
        torch.testing.assert_close(matching[r:r + 1], one_matching)


# --- the attack -------------------------------------------------------------------------------
def test_span_mode_recovers_a_small_batch_exactly():
    model, x, y, target = message(batch_size=4, h=12, side=8, n_classes=6)
    result = op.gradient_matching(model, target, 4, preset="gauss_newton", span=True, progress=False)
    order = torch.argsort(y)  # recovered labels come sorted
    assert result.labels.tolist() == sorted(y.tolist())
    assert result.images.shape == (4, 1, 8, 8)
    assert rl.metrics.psnr(result.images.float(), x[order]).min() > 60


def test_lbfgs_recovers_one_image_and_its_label():
    model, x, y, target = message(batch_size=1, side=5)
    result = op.gradient_matching(model, target, 1, preset="stabilised", progress=False)
    assert result.labels.tolist() == y.tolist()
    assert rl.metrics.psnr(result.images, x) > 40
    assert result.loss < 1e-6 and result.steps >= 1 and result.seconds > 0
    assert result.losses.ndim == 1 and result.losses[-1] <= result.losses[0]


def test_joint_soft_label_dlg_returns_a_label_per_image():
    model, x, y, target = message(batch_size=1, side=4)
    result = op.gradient_matching(model, target, 1, preset="dlg", steps=40, progress=False)
    assert result.labels.shape == (1,) and 0 <= int(result.labels) < 5


def test_adam_restarts_are_exactly_independent_runs():
    model, x, y, target = message(batch_size=1, side=4)
    settings = dict(preset="inverting_gradients", steps=15, tol=0.0, progress=False)
    two = op.gradient_matching(model, target, 1, restarts=2, **settings)
    one = op.gradient_matching(model, target, 1, restarts=1, **settings)
    torch.testing.assert_close(two.restart_losses[:1], one.restart_losses)


def test_same_seed_same_result_other_seed_other_start():
    model, x, y, target = message(batch_size=1, side=4)
    run = lambda seed: op.gradient_matching(model, target, 1, steps=3, seed=seed,  # noqa: E731
                                            tol=0.0, progress=False).images
    torch.testing.assert_close(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_given_labels_are_used_and_box_clamp_keeps_pixels_in_range():
    model, x, y, target = message(batch_size=2)
    result = op.gradient_matching(model, target, 2, labels=y, box="clamp", steps=20, progress=False)
    assert torch.equal(result.labels, y)
    assert result.images.min() >= 0 and result.images.max() <= 1


# --- presets: plain data, readable and overridable -----------------------------------------
def test_presets_are_plain_data_and_overridable():
    assert {"dlg", "idlg", "inverting_gradients", "stabilised"} <= set(op.PRESETS)
    dlg = op.options("dlg")
    assert (dlg.distance, dlg.init, dlg.label, dlg.optimizer) == ("euclidean", "gaussian", "joint", "lbfgs")
    assert op.options("inverting_gradients").distance == "cosine"
    assert op.options("stabilised").init == "uniform"
    assert op.options("dlg", steps=7).steps == 7 and op.PRESETS["dlg"].steps != 7
    assert all(isinstance(preset, op.Options) for preset in op.PRESETS.values())
    assert dataclasses.asdict(op.options("idlg"))["label"] == "recover"


@pytest.mark.parametrize("bad, match", [
    (dict(preset="nope"), "unknown preset"),
    (dict(stepz=3), "unknown option"),
    (dict(distance="l1"), "distance"),
    (dict(steps=0), "steps"),
    (dict(optimizer="levenberg_marquardt", distance="cosine"), "least-squares"),
    (dict(preset="gauss_newton", box="clamp"), "least-squares"),
])
def test_bad_options_raise_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        op.options(**{"preset": "stabilised", **bad})


# --- bad input ----------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    model, x, y, target = message()
    run = lambda *a, **k: op.gradient_matching(*a, progress=False, **k)  # noqa: E731
    with pytest.raises(ValueError, match="batch_size"):
        run(model, target, 0)
    with pytest.raises(ValueError, match="no \\['1.bias'\\]"):
        run(model, {k: v for k, v in target.items() if k != "1.bias"}, 2)
    with pytest.raises(ValueError, match="labels must have shape \\(2,\\)"):
        run(model, target, 2, labels=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="shape"):
        run(model, {**target, "1.bias": torch.zeros(3)}, 2)
    with pytest.raises(ValueError, match="NaN"):
        run(model, {**target, "1.bias": torch.full_like(target["1.bias"], float("nan"))}, 2)
    with pytest.raises(ValueError, match="zero"):
        run(model, {k: torch.zeros_like(v) for k, v in target.items()}, 2)
    with pytest.raises(ValueError, match="unknown option"):
        run(model, target, 2, learning_rate=1)


def test_span_mode_needs_a_biased_linear_first_layer():
    torch.manual_seed(0)
    model = rl.models.mlp((1, 4, 4), [8], 3, bias=False)
    target = rl.fl.client_update(model, torch.rand(2, 1, 4, 4), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="without bias"):
        op.gradient_matching(model, target, 2, labels=torch.tensor([0, 1]), span=True, progress=False)


def test_message_on_another_device_is_refused():
    model, x, y, target = message()
    moved = {k: v.to("meta") for k, v in target.items()}
    with pytest.raises(ValueError, match="device"):
        op.gradient_matching(model, moved, 2, progress=False)


@pytest.mark.gpu
def test_runs_on_cuda_and_matches_cpu():
    model, x, y, target = message(batch_size=1, side=5)
    cpu = op.gradient_matching(model, target, 1, steps=5, tol=0.0, progress=False)
    cuda_model = model.to("cuda")
    cuda = op.gradient_matching(cuda_model, {k: v.cuda() for k, v in target.items()}, 1, steps=5,
                                tol=0.0, progress=False)
    assert cuda.images.device.type == "cuda"
    torch.testing.assert_close(cuda.images.cpu(), cpu.images, atol=1e-3, rtol=0)


def test_an_attack_that_stops_above_its_threshold_warns():
    model, x, y, target = message(batch_size=2)
    with pytest.warns(rl.ReconstructionWarning, match="images may be wrong"):
        op.gradient_matching(model, target, 2, preset="stabilised", steps=1, check_every=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", rl.ReconstructionWarning)
        op.gradient_matching(model, target, 2, preset="stabilised", steps=1, check_every=1, tol=0.0,
                             progress=False)
        with rl.errors.scored_against_truth():  # a study scores the images itself
            op.gradient_matching(model, target, 2, preset="stabilised", steps=1, check_every=1,
                                 progress=False)


def test_grey_start_is_one_deterministic_image():
    model, x, y, target = message(batch_size=1, side=5)
    runs = [op.gradient_matching(model, target, 1, init="grey", steps=3, tol=0.0, seed=s, progress=False)
            for s in (0, 1)]
    torch.testing.assert_close(runs[0].images, runs[1].images)
    with pytest.raises(ValueError, match="restarts"):
        op.options("normalised", restarts=2)


def test_rtol_stops_relative_to_the_size_of_the_message():
    model, x, y, target = message(batch_size=1, side=5)
    scale = float(sum(g.square().sum() for g in target.values()))
    result = op.gradient_matching(model, target, 1, tol=0.0, rtol=0.5, steps=500, progress=False)
    assert result.steps <= op.options().check_every and result.loss < 0.5 * scale
    assert op.options("fast").rtol > 0 and op.options("fast").box == "penalty"


def test_the_normalised_distance_finds_what_the_euclidean_one_drowns():
    """Chapter 04's claim: under PyTorch's initialisation the first layer's gradient is ~10⁻³ of
    the last one's; DLG's Euclidean distance stops with the image still wrong (and says so), the
    normalised distance recovers it."""
    victim = rl.widgets.optimisation.client(index=1, seed=1, weights="pytorch")
    norms = {k: float(g.norm()) for k, g in victim.message.items()}
    assert norms["0.weight"] < 1e-2 * norms["7.weight"]
    euclidean = rl.widgets.optimisation.attack(victim, "fast", steps=1500)  # (scored: no warning)
    normalised = rl.widgets.optimisation.attack(victim, "normalised")
    assert not euclidean.success and euclidean.mse > 10 * normalised.mse
    assert normalised.success and normalised.result.loss < op.stop_threshold(
        normalised.result.options, victim.message)
