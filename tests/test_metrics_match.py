"""rl.metrics.match: Hungarian pairing of reconstructions with originals (chapter 02)."""
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import recon_lib as rl


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_match_undoes_any_permutation(n, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 5, 5, generator=generator)
    perm = torch.randperm(n, generator=generator)
    noisy = x[perm] + 1e-3 * torch.randn(x.shape, generator=generator)
    matched, found = rl.metrics.match(noisy, x)
    torch.testing.assert_close(matched, noisy[found])
    assert torch.equal(perm[found], torch.arange(n))


def test_match_minimises_total_mse_by_brute_force():
    x_hat, x = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    best = min(itertools.permutations(range(5)),
               key=lambda p: rl.metrics.mse(x_hat[list(p)], x).sum().item())
    matched, perm = rl.metrics.match(x_hat, x)
    assert perm.tolist() == list(best)
    torch.testing.assert_close(matched, x_hat[list(best)])


def test_match_is_better_than_greedy_nearest_neighbour():
    # Greedy picks x_hat 0 for x 0 (distance 0.1) and must then pay 10 for x 1.
    x = torch.tensor([[0.0], [1.0]])
    x_hat = torch.tensor([[0.1], [-2.0]])
    matched, perm = rl.metrics.match(x_hat, x)
    assert perm.tolist() == [1, 0]


def test_match_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        rl.metrics.match(torch.rand(3, 4), torch.rand(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        rl.metrics.match(torch.full((2, 4), float("nan")), torch.rand(2, 4))
    with pytest.raises(ValueError, match="batch"):
        rl.metrics.match(torch.rand(4), torch.rand(4))
