"""The tasks added for issue 14 (section 3): right answers pass for any seed, typical wrong
answers are rejected with a message that names the mistake.

* 02.impostor — the null-space impostor batch for h < B (chapter 02, section 3);
* 04.match_loop — a complete gradient-matching loop with double backprop (chapter 04);
* 07.secure_sum, 07.sa_span — secure aggregation as a masked sum, and the span attack on it;
* 07.epsilon — ε from σ, q and the rounds with Opacus' RDP accountant.
(05.invert_cnn, which replaced 05.preprocess, is tested with chapter 05 in test_grading_ch05_ch06.py.)
"""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opacus.accountants import RDPAccountant
from torch.nn import functional as F

import recon_lib.grading as grading
from recon_lib.grading import WrongAnswer, check


# --- right answers -----------------------------------------------------------------------------
def impostor(delta, X, T):
    _, singular, vh = torch.linalg.svd(delta)  # null space of Δ: the right singular vectors beyond rank
    rank = int((singular > singular[0] * 1e-10).sum())
    null = vh[rank:]
    return X + null.T @ (null @ (T - X))


def match_loop(model, target, y, shape):
    names, params = zip(*model.named_parameters(), strict=True)
    dummy = torch.full(shape, 0.5, requires_grad=True)
    optimiser = torch.optim.LBFGS([dummy], max_iter=300, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        optimiser.zero_grad()
        grads = torch.autograd.grad(F.cross_entropy(model(dummy), y), params, create_graph=True)
        loss = sum((g - target[n]).square().sum() for n, g in zip(names, grads, strict=True))
        loss.backward()
        return loss

    optimiser.step(closure)
    return dummy.detach()


def secure_sum(updates, seed):  # all pairwise masks at once, antisymmetric
    n = updates.shape[0]
    masks = torch.randn((n, n, *updates.shape[1:]), generator=torch.Generator().manual_seed(seed),
                        dtype=updates.dtype)
    upper = torch.triu(torch.ones(n, n, dtype=updates.dtype), 1).reshape(n, n, *[1] * (updates.ndim - 1))
    masks = masks * upper
    return updates + masks.sum(1) - masks.sum(0)


def sa_span(total, N, B):
    q, r = torch.linalg.qr(total.T)
    u, singular, _ = torch.linalg.svd(r)
    rank = min(N * B, int((singular > singular[0] * 1e-10).sum()))
    return q @ u[:, :rank]


def epsilon(sigma, q, rounds, delta):
    accountant = RDPAccountant()
    for _ in range(rounds):
        accountant.step(noise_multiplier=sigma, sample_rate=q)
    return accountant.get_epsilon(delta)


NEW_RIGHT = {"02.impostor": impostor, "04.match_loop": match_loop, "07.secure_sum": secure_sum,
             "07.sa_span": sa_span, "07.epsilon": epsilon}


@pytest.mark.parametrize("task_id", sorted(NEW_RIGHT))
def test_right_answer_passes(task_id, capsys):
    check(task_id, NEW_RIGHT[task_id])
    assert "passed" in capsys.readouterr().out


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), task_id=st.sampled_from(sorted(set(NEW_RIGHT) - {"04.match_loop"})))
def test_right_answers_pass_for_any_seed(seed, task_id):
    check(task_id, NEW_RIGHT[task_id], seed=seed)


# --- typical wrong answers -------------------------------------------------------------------
def loop_without_create_graph(model, target, y, shape):
    dummy = torch.rand(shape, requires_grad=True)
    grads = torch.autograd.grad(F.cross_entropy(model(dummy), y), list(model.parameters()))
    sum((g - t).square().sum() for g, t in zip(grads, target.values(), strict=True)).backward()
    return dummy.detach()


def loop_stepping_the_model(model, target, y, shape):
    dummy = torch.rand(shape)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(5):
        optimiser.zero_grad()
        loss = F.cross_entropy(model(dummy), y)
        grads = torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
        sum((g - t).square().sum() for g, t in zip(grads, target.values(), strict=True)).backward()
        optimiser.step()
    return dummy


def wrong_label_loop(model, target, y, shape):  # a right loop, but for another class than y
    return match_loop(model, target, (y + 1) % model[-1].out_features, shape)


def independent_noise(updates, seed):
    noise = torch.randn(updates.shape, generator=torch.Generator().manual_seed(seed), dtype=updates.dtype)
    return updates + noise


def unseeded_masks(updates, seed):
    return secure_sum(updates, int(torch.randint(10**6, ())))


MUTANTS = [
    ("02.impostor", lambda d, X, T: T, "target batch itself"),
    ("02.impostor", lambda d, X, T: X, "unchanged"),
    ("02.impostor", lambda d, X, T: X + torch.linalg.pinv(d) @ d @ (T - X), "row space of Δ"),
    ("02.impostor", lambda d, X, T: X - (torch.eye(d.shape[1], dtype=d.dtype) - torch.linalg.pinv(d) @ d)
     @ (T - X), "not the closest such batch"),
    ("04.match_loop", loop_without_create_graph, "create_graph=True"),
    ("04.match_loop", loop_stepping_the_model, "still far from the target"),
    ("04.match_loop", wrong_label_loop, "still far from the target"),
    ("04.match_loop", lambda m, t, y, s: torch.rand(s)[0], "shape"),
    ("07.secure_sum", lambda u, s: u.clone(), "almost\\) their true one"),
    ("07.secure_sum", independent_noise, "do not add up"),
    ("07.secure_sum", unseeded_masks, "same seed gave other masks"),
    ("07.sa_span", lambda t, N, B: sa_span(t, 1, B), "span of one client"),
    ("07.sa_span", lambda t, N, B: t[:N * B].T, "not orthonormal"),
    ("07.epsilon", lambda s, q, r, d: epsilon(s, q, 1, d), "single round"),
    ("07.epsilon", lambda s, q, r, d: epsilon(s, 1.0, r, d), "without subsampling"),
    ("07.epsilon", lambda s, q, r, d: 2 * epsilon(s, q, r, d), "larger than the RDP accountant's"),
    ("07.epsilon", lambda s, q, r, d: None, "return"),
]


@pytest.mark.parametrize("task_id, wrong, match", MUTANTS,
                         ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(MUTANTS)])
def test_typical_mistakes_are_named(task_id, wrong, match):
    with pytest.raises(WrongAnswer, match=match) as caught:
        check(task_id, wrong)
    assert "Hint:" in str(caught.value)


def test_every_new_task_has_at_least_two_mutants():
    assert all(sum(t == task_id for t, _, _ in MUTANTS) >= 2 for task_id in NEW_RIGHT)


def test_every_new_task_is_registered():
    assert set(NEW_RIGHT) <= set(grading.tasks("02")) | set(grading.tasks("04")) | set(grading.tasks("07"))
