"""Exercise set 02's checks are honest: the reference answers pass, typical mistakes get a
specific message, the untouched stub says "not implemented yet"."""
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import recon_lib as rl
import recon_lib.grading as grading


# --- reference answers (the solution notebook's, written independently of the library) -------
def first_layer_gradient(delta, X):
    return delta @ X / X.shape[0], delta.sum(1) / X.shape[0]


def mixture_weights(delta):  # one row at a time, unlike the solution's broadcast
    return torch.stack([row / row.sum() for row in delta])


def leaked_span(grad_W, batch_size):
    _, singular, vh = torch.linalg.svd(grad_W, full_matrices=False)
    keep = singular > singular[0] * max(grad_W.shape) * torch.finfo(grad_W.dtype).eps
    return vh[:min(batch_size, int(keep.sum()))].T


def span_residuals(candidates, V):
    return (candidates - candidates @ V @ V.T).norm(dim=1) / candidates.norm(dim=1)


def batch_labels(grad_head_bias, batch_size):
    return torch.topk(-grad_head_bias, batch_size).indices


def pair(x_hat, x):
    cost = torch.cdist(x.flatten(1), x_hat.flatten(1)).square()
    return torch.as_tensor(linear_sum_assignment(cost.numpy())[1])


REFERENCES = {"02.gradient": first_layer_gradient, "02.mixture": mixture_weights, "02.span": leaked_span,
              "02.membership": span_residuals, "02.labels": batch_labels, "02.match": pair}


@pytest.mark.parametrize("task_id", sorted(REFERENCES))
@pytest.mark.parametrize("seed", [0, 2021, 7])
def test_reference_answers_pass(task_id, seed, capsys):
    grading.check(task_id, REFERENCES[task_id], seed=seed)
    assert "passed" in capsys.readouterr().out


def test_chapter_02_has_at_least_four_tasks_each_with_a_reference_here():
    new = {"02.impostor"}  # its answers: test_grading_new_tasks.py
    assert set(grading.tasks("02")) == set(REFERENCES) | new and len(REFERENCES) >= 4





# --- typical mistakes ---------------------------------------------------------------------------
def unsquared(x_hat, x):
    """The optimal assignment, but of summed distances rather than summed squared errors."""
    rows, cols = linear_sum_assignment(torch.cdist(x_hat.flatten(1), x.flatten(1)).numpy())
    perm = torch.empty(len(x), dtype=torch.long)
    perm[torch.as_tensor(cols)] = torch.as_tensor(rows)
    return perm


def greedy(x_hat, x):
    """Best pair first, then the best of what is left: not optimal in general."""
    cost = torch.cdist(x.flatten(1), x_hat.flatten(1)).square()
    perm = [-1] * len(x)
    for _ in range(len(x)):
        row, col = divmod(int(cost.argmin()), len(x))
        perm[row] = col
        cost[row, :], cost[:, col] = float("inf"), float("inf")
    return torch.tensor(perm)


def returns_none(*args):
    return None


@pytest.mark.parametrize("task_id, answer, words", [
    ("02.gradient", lambda d, X: (d @ X, d.sum(1)), "times too large"),
    ("02.gradient", lambda d, X: (X.T @ d.T / X.shape[0], d.sum(1) / X.shape[0]), "transpose"),
    ("02.gradient", lambda d, X: (d @ X / X.shape[0] ** 2, d.sum(1) / X.shape[0]), "times too small"),
    ("02.gradient", returns_none, "return a pair"),
    ("02.mixture", lambda d: d, "Δ itself"),
    ("02.mixture", lambda d: d / d.sum(0, keepdim=True), "columns"),
    ("02.mixture", lambda d: d / d.abs().sum(1, keepdim=True), "signed sum"),
    ("02.span", lambda W, B: torch.linalg.svd(W, full_matrices=False)[0][:, :B], "left singular"),
    ("02.span", lambda W, B: torch.linalg.svd(W, full_matrices=False)[2].T, "at most B"),
    ("02.span", lambda W, B: W[:B].T, "not orthonormal"),
    ("02.membership", lambda c, V: (c @ V).norm(dim=1) / c.norm(dim=1), "inside"),
    ("02.membership", lambda c, V: (c - c @ V @ V.T).norm(dim=1), "divide by ‖x‖"),
    ("02.membership", lambda c, V: span_residuals(c, V).square(), "not its square"),
    ("02.labels", lambda g, B: torch.topk(g, B).indices, "largest"),
    ("02.labels", lambda g, B: g.argmin().repeat(B), "one class B times"),
    ("02.labels", lambda g, B: (-g).topk(B).values, "integers"),
    ("02.match", greedy, "greedy matching \\(closest pair first\\)"),
    ("02.match", unsquared, "unsquared distances"),
    ("02.match", lambda x_hat, x: torch.cdist(x.flatten(1), x_hat.flatten(1)).argmin(1), "not a permutation"),
    ("02.match", returns_none, "return"),
])
def test_typical_mistakes_get_specific_feedback(task_id, answer, words):
    with pytest.raises(grading.WrongAnswer, match=words) as caught:
        grading.check(task_id, answer)
    assert "Hint:" in str(caught.value)


def test_hard_coded_answer_fails_on_fresh_cases():
    frozen = {}

    def remembered(grad_head_bias, batch_size):
        return frozen.setdefault("labels", batch_labels(grad_head_bias, batch_size))

    with pytest.raises(grading.WrongAnswer):
        grading.check("02.labels", remembered)


@pytest.mark.parametrize("seed", range(5))
def test_the_match_cases_really_defeat_greedy_and_unsquared_pairing(seed):
    """The traps are honest: greedy pairing (greedy trap) and the best pairing under unsquared
    distances (unsquared trap) both cost more total MSE than the optimum."""
    from recon_lib.grading import ch02

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = ch02._digits(12)[torch.randperm(50)[:4]]
        for trap, rival in ((ch02._greedy_trap, greedy), (ch02._unsquared_trap, unsquared)):
            x_hat = trap(x)
            _, best = rl.metrics.match(x_hat, x)
            best_total = rl.metrics.mse(x_hat[best], x).sum()
            assert rl.metrics.mse(x_hat[rival(x_hat, x)], x).sum() > 1.05 * best_total


def test_cases_are_reproducible_and_leave_the_learners_rng_alone():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    grading.check("02.span", leaked_span)
    assert torch.equal(torch.rand(2), expected)
