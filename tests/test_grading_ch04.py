"""Exercise set 04's checks are honest: the reference answers pass, typical mistakes get a
specific message, the untouched stub says "not implemented yet"."""
import pytest
import torch

import recon_lib as rl
import recon_lib.grading as grading


# --- reference answers (the solution notebook's, written independently of the library) -------
def gradient_distance(g, target):  # one flat vector, unlike the solution's loop over parameters
    return torch.cat([(g[name] - t).flatten() for name, t in target.items()]).square().sum()


def total_variation(x):
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def idlg_label(model, grads):
    name, head = rl.analytic.last_linear(model)
    scores = grads[f"{name}.bias"] if head.bias is not None else grads[f"{name}.weight"].sum(-1)
    return int(scores.argmin())


def uniform_init(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


REFERENCES = {"04.distance": gradient_distance, "04.tv": total_variation,
              "04.label": idlg_label, "04.init": uniform_init}


@pytest.mark.parametrize("task_id", sorted(REFERENCES))
@pytest.mark.parametrize("seed", [0, 2021, 7])
def test_reference_answers_pass(task_id, seed, capsys):
    grading.check(task_id, REFERENCES[task_id], seed=seed)
    assert "passed" in capsys.readouterr().out


def test_library_functions_pass_where_they_fit(capsys):
    grading.check("04.distance", rl.optimize.euclidean_distance)
    grading.check("04.tv", rl.optimize.total_variation)
    grading.check("04.label", rl.analytic.recover_label)
    assert capsys.readouterr().out.count("passed") == 3


def test_chapter_04_has_five_tasks():  # 04.match_loop: test_grading_new_tasks.py
    assert set(grading.tasks("04")) == set(REFERENCES) | {"04.match_loop"}





# --- typical wrong answers ------------------------------------------------------------------
def norm_not_squared(g, target):
    return gradient_distance(g, target).sqrt()


def weights_only(g, target):
    return sum(((g[n] - t) ** 2).sum() for n, t in target.items() if n.endswith("weight"))


def per_parameter_mean(g, target):
    return sum(((g[n] - t) ** 2).mean() for n, t in target.items())


def cosine(g, target):
    return rl.optimize.cosine_distance(g, target)


def cosine_similarity(g, target):
    return 1 - rl.optimize.cosine_distance(g, target)


def squared_tv(x):
    return (x[..., 1:, :] - x[..., :-1, :]).square().mean() + (x[..., :, 1:] - x[..., :, :-1]).square().mean()


def summed_tv(x):
    return (x[..., 1:, :] - x[..., :-1, :]).abs().sum() + (x[..., :, 1:] - x[..., :, :-1]).abs().sum()


def vertical_only(x):
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean()


def per_image_tv(x):
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3)) + (x[..., :, 1:] - x[..., :, :-1]).abs().mean((1, 2, 3))


def absolute_distance(g, target):
    return sum((g[n] - t).abs().sum() for n, t in target.items())


def horizontal_only(x):
    return (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def isotropic_tv(x):
    dv, dh = x[..., 1:, :-1] - x[..., :-1, :-1], x[..., :-1, 1:] - x[..., :-1, :-1]
    return (dv.square() + dh.square()).sqrt().mean()


def signed_tv(x):
    return (x[..., 1:, :] - x[..., :-1, :]).mean() + (x[..., :, 1:] - x[..., :, :-1]).mean()


def float_distance(g, target):
    return float(gradient_distance(g, target))


def argmax_label(model, grads):
    name, head = rl.analytic.last_linear(model)
    scores = grads[f"{name}.bias"] if head.bias is not None else grads[f"{name}.weight"].sum(-1)
    return int(scores.argmax())


def row_sum_label(model, grads):  # right for sigmoid/relu heads, wrong when Σ a < 0 (tanh)
    name, _ = rl.analytic.last_linear(model)
    return int(grads[f"{name}.weight"].sum(-1).argmin())


def tensor_label(model, grads):
    name, head = rl.analytic.last_linear(model)
    scores = grads[f"{name}.bias"] if head.bias is not None else grads[f"{name}.weight"].sum(-1)
    return scores.argmin()


def bias_only_label(model, grads):
    name, _ = rl.analytic.last_linear(model)
    return int(grads[f"{name}.bias"].argmin())


def gaussian_init(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def symmetric_init(shape, seed):
    return 2 * uniform_init(shape, seed) - 1


def unseeded_init(shape, seed):
    return torch.rand(shape)


def half_range_init(shape, seed):
    return uniform_init(shape, seed) / 2


def constant_init(shape, seed):
    return torch.full(shape, 0.5)


def returns_none(*args):
    return None


@pytest.mark.parametrize("task_id, answer, words", [
    ("04.distance", norm_not_squared, "no sqrt"),
    ("04.distance", weights_only, "bias gradients"),
    ("04.distance", per_parameter_mean, "averaged within each parameter"),
    ("04.distance", cosine, "cosine distance"),
    ("04.distance", cosine_similarity, "not Σ‖g − g\\*‖²"),
    ("04.distance", returns_none, "return"),
    ("04.distance", absolute_distance, "square them"),
    ("04.distance", float_distance, "Python number, so an attack cannot minimise it"),
    ("04.distance", lambda g, t: gradient_distance(g, t).detach(), "no autograd graph"),
    ("04.distance", lambda g, t: torch.tensor(gradient_distance(g, t).item()), "no autograd graph"),
    ("04.distance", lambda g, t: sum(((g[n] - t[n]) ** 2).sum() if n.endswith("weight")
                                     else ((g[n].detach() - t[n]) ** 2).sum() for n in t),
     "does not pass a finite gradient"),
    ("04.tv", horizontal_only, "add the vertical"),
    ("04.tv", isotropic_tv, "isotropic"),
    ("04.tv", signed_tv, "absolute value of each difference"),
    ("04.tv", squared_tv, "absolute values"),
    ("04.tv", summed_tv, "take their means"),
    ("04.tv", vertical_only, "add the horizontal"),
    ("04.tv", per_image_tv, "shape"),
    ("04.tv", lambda x: total_variation(x.detach()), "no autograd graph"),
    ("04.tv", lambda x: total_variation(x).item(), "Python number"),
    ("04.tv", lambda x: torch.tensor(abs(__import__("numpy").diff(x.numpy(), axis=-2)).mean()), "not NumPy"),
    ("04.tv", lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
     + (x[..., :, 1:] - x[..., :, :-1]).detach().abs().mean(), "wrong gradient"),
    ("04.tv", lambda x: total_variation(x.transpose(-1, -2).reshape(x.shape)), "not mean"),
    ("04.label", argmax_label, "largest; the true class is the one entry that is \\*negative\\*"),
    ("04.label", row_sum_label, "Σ a is negative"),
    ("04.label", tensor_label, "Python int"),
    ("04.label", bias_only_label, "raised KeyError"),
    ("04.init", gaussian_init, "Gaussian"),
    ("04.init", symmetric_init, "−1, 1"),
    ("04.init", unseeded_init, "same seed"),
    ("04.init", constant_init, "same value"),
    ("04.init", half_range_init, "uniformly"),
    ("04.init", returns_none, "return"),
])
def test_typical_mistakes_get_specific_feedback(task_id, answer, words):
    with pytest.raises(grading.WrongAnswer, match=words) as caught:
        grading.check(task_id, answer)
    assert "Hint:" in str(caught.value)


def test_feedback_never_prints_the_expected_label():
    with pytest.raises(grading.WrongAnswer) as caught:
        grading.check("04.label", lambda model, grads: (idlg_label(model, grads) + 1)
                      % model[-1].out_features)
    assert "is not the label" in str(caught.value)
    with pytest.raises(grading.WrongAnswer, match="-1 is not a class index"):
        grading.check("04.label", lambda model, grads: -1)


def test_cases_are_reproducible_and_leave_the_learners_rng_alone():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    grading.check("04.init", uniform_init)
    grading.check("04.distance", gradient_distance)
    assert torch.equal(torch.rand(2), expected)


@pytest.mark.parametrize("task_id", sorted(REFERENCES))
def test_right_answers_pass_on_many_seeds(task_id):
    for seed in range(100, 120):
        grading.check(task_id, REFERENCES[task_id], seed=seed, n_cases=12)
