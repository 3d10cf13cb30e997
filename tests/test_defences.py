"""Chapter 07 defences: each checked against autograd or Opacus, the theory against Monte Carlo."""
import math

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import recon_lib as rl
from recon_lib import defences as D
from recon_lib import privacy_utility as PU


@pytest.fixture(scope="module")
def digits():
    x, y = rl.datasets.load("mnist")
    return x, y


def small_model(width=8, seed=0, in_shape=(1, 28, 28)):
    torch.manual_seed(seed)
    return rl.models.mlp(in_shape, [width], 10)


def close(a, b, atol=1e-6, rtol=1e-5):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=rtol)


# --- DP-SGD through Opacus ------------------------------------------------------------------
def test_dp_without_noise_and_clipping_is_the_fedsgd_message(digits):
    x, y = digits
    model = small_model()
    close(D.dp_update(model, x[:4], y[:4], clip=1e6, noise_multiplier=0.0),
          rl.fl.client_update(model, x[:4], y[:4]))


def test_dp_clips_every_sample_and_the_closed_form_survives_clipping(digits):
    x, y = digits
    model = small_model()
    per_sample = rl.fl.client_updates(model, x[:3], y[:3])
    norms = torch.sqrt(sum(g.flatten(1).square().sum(1) for g in per_sample.values()))
    clip = float(norms.min()) / 2
    clipped = D.dp_update(model, x[:3], y[:3], clip=clip, noise_multiplier=0.0)
    expected = {k: (g * (clip / norms).reshape(-1, *[1] * (g.ndim - 1))).mean(0) for k, g in per_sample.items()}
    close(clipped, expected)
    one = D.dp_update(model, x[:1], y[:1], clip=1e-3, noise_multiplier=0.0)
    torch.testing.assert_close(rl.analytic.reconstruct(model, one), x[0], atol=1e-4, rtol=0)


def test_dp_noise_has_std_sigma_clip_over_batch_and_is_seeded(digits):
    x, y = digits
    model = small_model()
    clean = D.dp_update(model, x[:4], y[:4], clip=0.5, noise_multiplier=0.0)
    noisy = D.dp_update(model, x[:4], y[:4], clip=0.5, noise_multiplier=2.0,
                        generator=torch.Generator().manual_seed(1))
    again = D.dp_update(model, x[:4], y[:4], clip=0.5, noise_multiplier=2.0,
                        generator=torch.Generator().manual_seed(1))
    close(noisy, again)
    residual = torch.cat([(noisy[k] - clean[k]).flatten() for k in clean])
    assert residual.std().item() == pytest.approx(2.0 * 0.5 / 4, rel=0.05)


def test_epsilon_is_opacus_accounting_and_inverts_to_sigma():
    from opacus.accountants.utils import get_noise_multiplier
    eps = D.epsilon(1.0, 0.2, 30)
    sigma = get_noise_multiplier(target_epsilon=eps, target_delta=1e-5, sample_rate=0.2, steps=30)
    assert sigma == pytest.approx(1.0, rel=0.02)
    assert D.epsilon(2.0, 0.2, 30) < eps < D.epsilon(1.0, 0.2, 100)
    assert D.epsilon(0.0, 0.2, 30) == math.inf


def test_dp_round_is_one_opacus_step_with_sigma_root_n(digits):
    x, y = digits
    model = small_model()
    xs, ys = x[:8].unflatten(0, (4, 2)), y[:8].unflatten(0, (4, 2))
    clean_mean = D.secure_aggregate(D._dp_messages(model, xs, ys, 0.0, torch.Generator()))
    close(D._dp_round(model, xs, ys, 0.0, torch.Generator()), clean_mean)
    noisy = D._dp_round(model, xs, ys, 1.0, torch.Generator().manual_seed(0))
    residual = torch.cat([(noisy[k] - clean_mean[k]).flatten() for k in noisy])
    # mean of 4 clients, each noise std σC/B = 0.5: std 0.5/√4 = 0.25
    assert residual.std().item() == pytest.approx(D.CLIP * 1.0 / 2 / 2, rel=0.05)


# --- Pruning, quantisation, noise -----------------------------------------------------------
def test_prune_keeps_exactly_the_largest_entries():
    message = {"w": torch.tensor([[0.1, -3.0], [2.0, 0.5]]), "b": torch.tensor([1.0, -0.2, 0.3])}
    pruned = D.prune(message, 0.5)
    assert torch.equal(pruned["w"], torch.tensor([[0.0, -3.0], [2.0, 0.0]]))
    assert torch.equal(pruned["b"], torch.tensor([1.0, 0.0, 0.3]))
    close(D.prune(message, 0.0), message)
    assert int((D.prune(message, 0.99)["w"] != 0).sum()) == 1


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 30), st.floats(0, 0.999), st.integers(1, 12))
def test_prune_and_quantize_per_client_equal_one_client_at_a_time(n, size, ratio, bits):
    stacked = {"g": torch.randn(n, size, dtype=torch.float64)}
    for defence in (lambda m, **k: D.prune(m, ratio, **k), lambda m, **k: D.quantize(m, bits, **k)):
        together = defence(stacked, per_client=True)["g"]
        apart = torch.stack([defence({"g": row})["g"] for row in stacked["g"]])
        torch.testing.assert_close(together, apart)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 200), st.integers(1, 10))
def test_quantize_uses_at_most_2_to_the_bits_levels_within_half_a_step(size, bits):
    g = torch.randn(size, dtype=torch.float64)
    q = D.quantize({"g": g}, bits)["g"]
    top = g.abs().max()
    assert q.unique().numel() <= 2 ** bits
    assert (q - g).abs().max() <= top / (2 ** bits - 1) * (1 + 1e-9)


def test_quantize_32_bits_is_identity_and_zero_stays_zero():
    g = {"a": torch.randn(50), "z": torch.zeros(3)}
    close(D.quantize(g, 32), g)
    assert torch.equal(D.quantize(g, 1)["z"], g["z"])
    assert set(D.quantize(g, 1)["a"].abs().unique().tolist()) == {g["a"].abs().max().item()}


def test_add_noise_std_and_seed():
    g = {"w": torch.zeros(100, 100)}
    noisy = D.add_noise(g, 0.3, torch.Generator().manual_seed(0))
    assert noisy["w"].std().item() == pytest.approx(0.3, rel=0.03)
    close(noisy, D.add_noise(g, 0.3, torch.Generator().manual_seed(0)))


# --- Secure aggregation, batches, local steps --------------------------------------------------
def test_secure_aggregate_of_n_clients_is_one_client_with_all_images(digits):
    x, y = digits
    model = small_model()
    stacked = D.client_messages(model, x[:12].unflatten(0, (3, 4)), y[:12].unflatten(0, (3, 4)))
    close(D.secure_aggregate(stacked), rl.fl.client_update(model, x[:12], y[:12]))
    for n in range(3):
        close({k: g[n] for k, g in stacked.items()}, rl.fl.client_update(model, x[4 * n:4 * n + 4], y[4 * n:4 * n + 4]))


def test_server_view_under_secure_aggregation_equals_a_batch(digits):
    x, y = digits
    model = small_model()
    close(D.server_view("secure_aggregation", model, x[:8], y[:8], 8),
          D.server_view("batch", model, x[:8], y[:8], 8))


def test_fedavg_one_step_is_fedsgd_and_two_steps_match_autograd(digits):
    x, y = digits
    model = small_model()
    close(D.fedavg_update(model, x[:3], y[:3], local_steps=1, lr=0.7), rl.fl.client_update(model, x[:3], y[:3]))
    manual = small_model()
    start = {k: p.detach().clone() for k, p in manual.named_parameters()}
    opt = torch.optim.SGD(manual.parameters(), lr=0.7)
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(manual(x[:3]), y[:3]).backward()
        opt.step()
    expected = {k: (start[k] - p.detach()) / (0.7 * 2) for k, p in manual.named_parameters()}
    close(D.fedavg_update(model, x[:3], y[:3], local_steps=2, lr=0.7), expected, atol=1e-5)


def test_local_steps_do_not_stop_the_closed_form(digits):
    x, y = digits
    model = small_model()
    message = D.fedavg_update(model, x[:1], y[:1], local_steps=10, lr=1.0)
    torch.testing.assert_close(rl.analytic.reconstruct(model, message), x[0], atol=1e-4, rtol=0)


# --- Theory ----------------------------------------------------------------------------------
def test_noise_error_first_order_is_the_course_formula():
    exact, first = D.noise_error()
    x, delta, e_w, e_b = sp.symbols("x delta epsilon_W epsilon_b", real=True)
    assert sp.simplify(first - (e_w - x * e_b) / delta) == 0
    assert sp.simplify(exact.subs({e_w: 0, e_b: 0})) == 0


def test_predicted_mse_matches_monte_carlo(digits):
    x, y = digits
    model = small_model(width=16).double()
    image = x[:1].double()
    clean = rl.fl.client_update(model, image, y[:1])
    std = 1e-4 * float(clean["1.bias"].abs().max())
    errors = []
    for seed in range(30):
        noisy = D.add_noise(clean, std, torch.Generator().manual_seed(seed))
        errors.append(float(rl.metrics.mse(rl.analytic.reconstruct(model, noisy), image[0])))
    predicted = D.predicted_mse(clean["1.bias"], image, std)
    assert sum(errors) / len(errors) == pytest.approx(predicted, rel=0.15)


def test_dp_psnr_bound_holds_for_the_unclamped_closed_form(digits):
    x, y = digits
    model = small_model()
    for sigma in (1e-4, 1e-3, 1e-2):  # first-order regime: noise below the smallest useful δ
        message = D.dp_update(model, x[:1], y[:1], clip=1.0, noise_multiplier=sigma,
                              generator=torch.Generator().manual_seed(0))
        measured = float(rl.metrics.psnr(rl.analytic.reconstruct(model, message), x[0]))
        assert measured <= D.dp_psnr_bound(sigma, x[0]) + 1.0


def test_pruning_threshold_is_one_minus_b_over_h():
    h, b = sp.symbols("h B", positive=True)
    assert sp.simplify(D.pruning_threshold() - (1 - b / h)) == 0


# --- Harness ---------------------------------------------------------------------------------
def test_score_pairs_a_batch_and_picks_the_closest_for_one_image(digits):
    x, _ = digits
    psnr, ssim = PU.score(x[:3].flip(0), x[:3])
    assert psnr > 100 and ssim == pytest.approx(1.0)
    psnr_one, _ = PU.score(x[1:2], x[:3])
    assert psnr_one > 100


def test_secure_aggregation_trains_exactly_like_no_defence(digits):
    x, y = digits
    model = small_model()
    before = [p.clone() for p in model.parameters()]
    a = PU.train_federated(model, x[:80], y[:80], name=None, strength=0, n_clients=4, rounds=3)
    b = PU.train_federated(model, x[:80], y[:80], name="secure_aggregation", strength=16,
                          n_clients=4, rounds=3)
    for p, q, r in zip(a.parameters(), b.parameters(), before):
        torch.testing.assert_close(p, q)
        assert not torch.equal(p, r)
    assert all(torch.equal(p, r) for p, r in zip(model.parameters(), before))


def test_evaluate_recovers_an_undefended_client_and_not_a_noisy_one(digits):
    x, y = digits
    model = small_model()
    open_row = PU.evaluate("dp", 0.0, model, x, y, attacks=("closed_form",))
    noisy_row = PU.evaluate("dp", 1.0, model, x, y, attacks=("closed_form",))
    assert open_row["psnr_closed_form"] > 60 and noisy_row["psnr_closed_form"] < 12


# --- Bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: D.dp_update(m, x, y, clip=1.0, noise_multiplier=-0.1), "noise_multiplier"),
    (lambda m, x, y: D.dp_update(m, x, y, clip=0.0, noise_multiplier=1.0), "clip"),
    (lambda m, x, y: D.dp_update(m, x, y, clip=float("nan"), noise_multiplier=1.0), "clip"),
    (lambda m, x, y: D.fedavg_update(m, x, y, local_steps=0, lr=1.0), "local_steps"),
    (lambda m, x, y: D.fedavg_update(m, x, y, local_steps=2, lr=-1.0), "lr"),
    (lambda m, x, y: D.prune(rl.fl.client_update(m, x, y), 1.0), r"\[0, 1\)"),
    (lambda m, x, y: D.prune(rl.fl.client_update(m, x, y), -0.1), r"\[0, 1\)"),
    (lambda m, x, y: D.quantize(rl.fl.client_update(m, x, y), 0), "bits"),
    (lambda m, x, y: D.quantize(rl.fl.client_update(m, x, y), 2.5), "bits"),
    (lambda m, x, y: D.add_noise(rl.fl.client_update(m, x, y), -1.0), "std"),
    (lambda m, x, y: D.add_noise({"w": torch.tensor([float("nan")])}, 1.0), "NaN"),
    (lambda m, x, y: D.server_view("secure_aggregation", m, x[:3], y[:3], 2), "split evenly"),
    (lambda m, x, y: D.server_view("blur", m, x, y, 1), "unknown defence"),
    (lambda m, x, y: D.secure_aggregate({"a": torch.zeros(2, 3), "b": torch.zeros(3)}), "leading"),
    (lambda m, x, y: D.epsilon(1.0, 0.0, 10), "sample_rate"),
    (lambda m, x, y: D.epsilon(1.0, 0.1, 0), "steps"),
    (lambda m, x, y: PU.train_federated(m, x[:20], y[:20], name="batch", strength=16, n_clients=4), "shards"),
    (lambda m, x, y: PU.attack("magic", m, rl.fl.client_update(m, x[:1], y[:1]), 1, y[:1]), "unknown attack"),
    (lambda m, x, y: D.predicted_mse(torch.zeros(3), x[0], 1.0), "zero"),
])
def test_bad_input_raises_a_clear_value_error(digits, call, match):
    x, y = digits
    with pytest.raises(ValueError, match=match):
        call(small_model(), x[:4], y[:4])


@pytest.mark.parametrize("message", [{}, [torch.zeros(2)], {"w": torch.zeros(2, dtype=torch.int64)}])
def test_bad_messages_raise_type_error(message):
    with pytest.raises(TypeError):
        D.prune(message, 0.5)


def test_dp_update_rejects_data_on_another_dtype(digits):
    x, y = digits
    with pytest.raises(TypeError, match="cast one of them"):
        D.dp_update(small_model(), x[:2].double(), y[:2], clip=1.0, noise_multiplier=1.0)


@pytest.mark.gpu
def test_defences_attacks_and_training_run_on_cuda():
    lab = PU.mnist_lab(rounds=2, steps=3, device="cuda")
    for name in D.DEFENCES:
        row = PU.measure(name, D.DEFENCES[name].recommended, lab)
        assert 0 <= row["accuracy"] <= 1 and all(math.isfinite(v) for k, v in row.items() if k.startswith("psnr"))
    message = D.server_view("dp", lab.model, lab.x_private[:1], lab.y_private[:1], 1.0)
    assert all(g.is_cuda for g in message.values())


def test_measure_and_sweep_rows_have_what_the_plots_need():
    lab = PU.mnist_lab(rounds=2, steps=3)
    base = PU.measure(None, 0, lab)
    assert set(base) == {"strength", "accuracy", "epsilon"} and math.isinf(base["epsilon"])
    rows = PU.sweep("dp", lab, (0.0, 1.0), attack_at=(1.0,), train_at=(1.0,))
    assert "psnr_span" not in rows[0] and "accuracy" not in rows[0] and math.isinf(rows[0]["epsilon"])
    assert {f"{m}_{k}" for m in ("psnr", "ssim") for k in PU.ATTACKS} <= set(rows[1])
    assert 0 <= rows[1]["accuracy"] <= 1 and rows[1]["epsilon"] == pytest.approx(D.epsilon(1.0, 8 / 40, 2))


def test_registry_strengths_include_off_and_recommended_in_both_profiles():
    for defence in D.DEFENCES.values():
        for sweep in (defence.quick, defence.full):
            assert defence.off in sweep and defence.recommended in sweep
