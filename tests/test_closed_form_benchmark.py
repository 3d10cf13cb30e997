"""The closed-form benchmark and the DLG reference: correctness only (timings live in benchmarks/)."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.nn import functional as F

import recon_lib as rl
from benchmarks import closed_form
from benchmarks.dlg_reference import gradient_distance, run_dlg


# --- the fast finiteness check and the batched inversion used by the throughput figure -----
@pytest.mark.parametrize("values,expected", [
    ([1.0, -2.0, 3.0], True),
    ([3e38, 3e38, 3e38], True),             # the sum overflows, every entry is finite
    ([1.0, math.nan], False),
    ([math.inf, 1.0], False),
    ([math.inf, -math.inf], False),         # inf − inf = NaN in the sum: still caught
])
def test_all_finite(values, expected):
    assert rl.analytic.all_finite(torch.tensor(values, dtype=torch.float32)) is expected


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 4), h=st.integers(1, 6), d=st.integers(1, 9),
       log_scale=st.floats(-30, 3), seed=st.integers(0, 2**16))
def test_invert_linear_is_the_weighted_least_squares_answer(n, h, d, log_scale, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    delta = (torch.rand(n, h, generator=g) + 0.05) * torch.sign(torch.randn(n, h, generator=g)) * 10**log_scale
    grad_weight = (delta[..., None] * x[:, None, :]).float()
    grad_weight += 1e-3 * 10**log_scale * torch.randn(n, h, d, generator=g)   # not exactly rank one
    grad_bias = delta.float()
    got = rl.analytic.invert_linear(grad_weight, grad_bias).double()
    b, w = grad_bias.double().numpy(), grad_weight.double().numpy()
    reference = np.stack([np.linalg.lstsq(b[i][:, None], w[i], rcond=None)[0][0] for i in range(n)])
    np.testing.assert_allclose(got.numpy(), reference, rtol=1e-5, atol=1e-6)


# --- benchmark parts at tiny sizes -------------------------------------------------------
def test_one_attack_rows_are_exact():
    images, labels = rl.datasets.load("cifar100", n=1)
    rows = closed_form.one_attack(images[0], int(labels[0]), width=2, repeats=1)
    assert [r["attack"] for r in rows] == ["closed form (reconstruct)", "closed form (invert_linear only)",
                                           "bare division dW_1 / db_1 (no checks)"]
    assert all(r["max_abs_error"] <= 1e-6 and r["psnr_db"] > 100 and r["seconds"] > 0 for r in rows)


def test_side_by_side_timing_alternates_the_loops_within_each_repeat():
    calls = []
    rows = closed_form.timed_side_by_side([lambda: calls.append("a"), lambda: calls.append("b")],
                                          repeats=4, warmup=1)
    assert [len(r["samples"]) for r in rows] == [4, 4] and all(r["seconds"] > 0 for r in rows)
    timed = "".join(calls[2 * 2:])                       # after warm-up and loop calibration
    blocks = timed.replace("ab", "a|b").replace("ba", "b|a").split("|")
    assert [block[0] for block in blocks] == list("abababab")
    assert {len(block) for block in blocks[0::2]} == {rows[0]["loop"]}


@pytest.mark.parametrize("width", [1, 3])
def test_copy_share_counts_the_bytes_each_side_moves(width):
    images, _ = rl.datasets.load("cifar100", n=2)
    row = closed_form.throughput(images, n=4, width=width, repeats=3)
    d = images[0].numel()
    assert row["bytes_vs_copy"] == pytest.approx((width * (d + 1) + d) / (2 * width * d))
    assert 0 < row["copy_share"] and "samples" not in row


def test_throughput_inverts_every_message_exactly():
    images, _ = rl.datasets.load("cifar100", n=5)
    row = closed_form.throughput(images, n=12, width=3, repeats=1)
    assert row["n_images"] == 12 and row["max_abs_error"] <= 1e-6
    assert row["images_per_second"] == pytest.approx(12 / row["seconds"])
    table = closed_form.table([row])
    assert "invert_linear, batched" in table and len(table.splitlines()) == 3


# --- the DLG reference loop ---------------------------------------------------------------
@pytest.fixture
def lenet_case():
    torch.manual_seed(0)
    model = rl.models.lenet_dlg((3, 8, 8), n_classes=4)
    x, y = torch.rand(1, 3, 8, 8), torch.tensor([2])
    return model, x, y, rl.fl.client_update(model, x, y)


def test_gradient_distance_is_zero_at_the_truth_and_matches_autograd(lenet_case):
    model, x, y, message = lenet_case
    targets = [message[name] for name, _ in model.named_parameters()]
    sharp_label = 60.0 * F.one_hot(y, 4).float()     # softmax ≈ one-hot
    assert gradient_distance(model, x, sharp_label, targets).item() < 1e-10
    dummy = torch.rand(1, 3, 8, 8)
    label = torch.randn(1, 4)
    loss = F.cross_entropy(model(dummy), F.softmax(label, -1))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = sum(((g - t) ** 2).sum() for g, t in zip(grads, targets))
    torch.testing.assert_close(gradient_distance(model, dummy, label, targets), expected)


def test_run_dlg_lowers_the_distance_and_leaves_the_model_alone(lenet_case):
    model, x, _, message = lenet_case
    before = [p.detach().clone() for p in model.parameters()]
    result = run_dlg(model, message, (3, 8, 8), n_classes=4, steps=3, max_iter=5)
    assert result["image"].shape == (3, 8, 8) and 0 <= result["label"] < 4
    assert len(result["losses"]) == 4 and result["losses"][-1] < result["losses"][0]
    assert result["seconds"] > 0
    assert all(torch.equal(p, q) and p.grad is None for p, q in zip(model.parameters(), before))
    again = run_dlg(model, message, (3, 8, 8), n_classes=4, steps=3, max_iter=5)
    assert torch.equal(again["image"], result["image"])       # seeded: reproducible


def test_run_dlg_rejects_bad_messages(lenet_case):
    model, _, _, message = lenet_case
    with pytest.raises(ValueError, match="has no"):
        run_dlg(model, {k: v for k, v in message.items() if k != "7.bias"}, (3, 8, 8), 4, steps=1)
    broken = dict(message, **{"7.bias": torch.full_like(message["7.bias"], math.nan)})
    with pytest.raises(ValueError, match="NaN"):
        run_dlg(model, broken, (3, 8, 8), 4, steps=1)
    with pytest.raises(ValueError, match="positive"):
        run_dlg(model, message, (3, 8, 8), 4, steps=0)


@pytest.mark.parametrize("h", [1, 8, 16, 17, 256, 1024])
def test_invert_linear_stays_within_float32_round_off_for_any_width(h):
    """The combination over h units must not accumulate error as h grows (float32, x in [0, 1])."""
    g = torch.Generator().manual_seed(h)
    x = torch.rand(3, 3072, generator=g)
    delta = torch.randn(3, h, generator=g) * 10 ** torch.empty(3, h).uniform_(-3, 0, generator=g)
    x_hat = rl.analytic.invert_linear(delta[..., None] * x[:, None, :], delta)
    assert (x_hat - x).abs().max() <= 6e-7


# --- the one-pass path of invert_linear and its fallback ----------------------------------------
@pytest.mark.parametrize("delta", [1e-20, 1e-12, 1.0, 1e15, 1e19, 1e25])
def test_invert_linear_direct_and_careful_paths_agree(delta):
    """Tiny δ (δ² subnormal), huge δ (Σ δ² overflows: the weights would be 0, x silently 0) and
    everything between give x, whichever path computes it."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, generator=g)
    bias = torch.tensor([delta, -0.5 * delta, 0.25 * delta])
    weight = bias[:, None] * x
    direct = rl.analytic.invert_linear(weight, bias)
    careful = rl.analytic.invert_linear(weight, bias, tol=torch.finfo(torch.float32).tiny)
    torch.testing.assert_close(direct, x, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(careful, x, rtol=1e-6, atol=1e-7)


def test_invert_linear_refuses_nan_inf_and_dead_clients_in_a_batch():
    weight, bias = torch.rand(3, 2, 4), torch.rand(3, 2) + 0.1
    for bad in (math.nan, math.inf):
        broken = weight.clone()
        broken[1, 0, 2] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            rl.analytic.invert_linear(broken, bias)
    dead = bias.clone()
    dead[2] = 0
    with pytest.raises(ValueError, match=r"no usable unit for \[\[2\]\]"):
        rl.analytic.invert_linear(weight, dead)


def test_invert_linear_mixed_scales_in_one_batch():
    """One client's Σ δ² overflows, another's underflows: each still gets its own x."""
    x = torch.rand(3, 6)
    delta = torch.tensor([[1e25, 2e25], [1e-21, 3e-21], [0.3, -0.2]])
    got = rl.analytic.invert_linear(delta[..., None] * x[:, None, :], delta)
    torch.testing.assert_close(got, x, rtol=1e-5, atol=1e-6)
