"""Chapter 03: the kernel-count bound h ≥ (d/d′)² C against the measured rank."""
import itertools

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import recon_lib as rl

c = rl.conditions


@pytest.mark.parametrize("d, k, s, p, expected", [(32, 5, 2, 2, 16), (28, 5, 1, 2, 28), (7, 3, 2, 0, 3),
                                                   (224, 3, 1, 1, 224), (6, 1, 1, 2, 10)])
def test_output_width_matches_pytorch(d, k, s, p, expected):
    assert c.conv_output_width(d, k, s, p) == expected
    assert nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, d, d)).shape[-1] == expected


@given(d=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3),
       dilation=st.integers(1, 3))
@settings(max_examples=60, deadline=None)
def test_output_width_matches_pytorch_property(d, k, s, p, dilation):
    if d + 2 * p < dilation * (k - 1) + 1:
        with pytest.raises(ValueError, match="smaller than the kernel"):
            c.conv_output_width(d, k, s, p, dilation)
        return
    layer = nn.Conv2d(1, 1, k, s, p, dilation=dilation)
    assert c.conv_output_width(d, k, s, p, dilation) == layer(torch.zeros(1, 1, d, d)).shape[-1]


def test_min_kernels_worked_values_of_the_paper():
    assert c.min_kernels(32, 3, 5, 2, 2) == 12  # DLG LeNet's first conv sits on the bound
    assert c.min_kernels(16, 12, 5, 2, 2) == 48  # its second conv does not
    assert c.min_kernels(28, 1, 5, 2, 2) == 4
    assert c.min_kernels(224, 3, 3, 1, 1) == 3  # "same" stride 1: h ≥ C


@given(d=st.integers(2, 30), C=st.integers(1, 5), k=st.integers(1, 5), s=st.integers(1, 3), p=st.integers(0, 2))
@settings(max_examples=60, deadline=None)
def test_min_kernels_is_the_smallest_integer_meeting_the_count(d, C, k, s, p):
    if d + 2 * p < k:
        return
    width, bound = c.conv_output_width(d, k, s, p), c.min_kernels(d, C, k, s, p)
    assert bound * width**2 >= C * d**2 > (bound - 1) * width**2


@pytest.mark.parametrize("bad", [dict(d=0), dict(k=-1), dict(s=0), dict(p=-1), dict(d=2.5), dict(d=True)])
def test_bad_geometry_raises(bad):
    geometry = dict(d=8, k=3, s=1, p=1) | bad
    with pytest.raises(ValueError):
        c.conv_output_width(**geometry)


def test_conv_rank_equals_numpy_rank_of_the_matrix():
    layer = nn.Conv2d(2, 3, 3, 2, 1, bias=False, dtype=torch.float64)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator, dtype=torch.float64))
    import numpy as np
    expected = np.linalg.matrix_rank(rl.conv.as_matrix(layer, (2, 6, 6)).numpy())
    assert c.conv_rank(2, 6, 3, 3, 2, 1, seed=4) == expected


def test_same_conv_reaches_full_rank_exactly_at_the_bound():
    assert c.conv_rank(3, 6, 3, 3, 1, 1) == 3 * 36
    assert c.conv_rank(3, 6, 2, 3, 1, 1) == 2 * 36


def test_coverage_flags_skipped_and_border_pixels():
    assert c.covered_width(9, 2, 3, 0) == 6 and c.bound_gap(9, 2, 3, 0) == "stride > kernel"
    assert c.covered_width(8, 3, 2, 0) == 7 and c.bound_gap(8, 3, 2, 0) == "border"
    assert c.effective_output_width(6, 1, 1, 2) == 6 and c.bound_gap(6, 1, 1, 2) == "padding rows"
    assert c.bound_gap(32, 5, 2, 2) == ""


def test_necessity_on_a_grid_full_rank_implies_the_bound():
    rows = [c.bound_row(C, d, h, k, s, p)
            for C, d, k, s, p in itertools.product([1, 2], [5, 6], [1, 2, 3], [1, 2, 3], [0, 1])
            for h in (c.min_kernels(d, C, k, s, p) - 1, c.min_kernels(d, C, k, s, p))
            if h >= 1]
    assert len(rows) > 50
    assert all(row["meets_bound"] for row in rows if row["full_rank"])
    assert not any(row["full_rank"] for row in rows if row["gap"] in ("stride > kernel", "border"))
    assert any(not row["bound_sufficient"] for row in rows)  # the bound is not sufficient
    assert any(row["gap"] == "edges" for row in rows)  # even with every pixel read


@given(C=st.integers(1, 3), d=st.integers(3, 7), h=st.integers(1, 6), k=st.integers(1, 3),
       s=st.integers(1, 3), p=st.integers(0, 2), seed=st.integers(0, 99))
@settings(max_examples=40, deadline=None)
def test_rank_never_exceeds_the_counts_property(C, d, h, k, s, p, seed):
    row = c.bound_row(C, d, h, k, s, p, seed)
    rows = h * c.effective_output_width(d, k, s, p) ** 2
    assert row["rank"] <= min(rows, C * c.covered_width(d, k, s, p) ** 2)
    assert row["full_rank"] <= row["meets_bound"]  # necessity, on random geometries


def test_symbolic_1d_conv_matrix_matches_pytorch():
    import sympy
    matrix, weights = c.conv1d_symbolic(5, 3, 2, 1, h=2)
    values = torch.randn(2, 1, 3, dtype=torch.float64)
    numeric = matrix.subs(dict(zip(weights, values.flatten().tolist())))
    layer = nn.Conv1d(1, 2, 3, 2, 1, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(values)
    expected = torch.func.jacrev(lambda x: layer(x[None, None])[0])(torch.zeros(5, dtype=torch.float64))
    torch.testing.assert_close(torch.tensor(numeric.tolist(), dtype=torch.float64),
                               expected.reshape(-1, 5).detach())
    assert isinstance(matrix, sympy.Matrix)


def test_conv_rank_leaves_the_global_random_state_alone():
    """A rank measurement must not move the caller's generator (grading draws cases from it)."""
    import torch

    from recon_lib import conditions
    torch.manual_seed(0)
    before = torch.get_rng_state()
    conditions.conv_rank(2, 6, 3, 3, 1, 1)
    assert torch.equal(before, torch.get_rng_state())
