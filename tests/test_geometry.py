"""Conv geometry in one place (rl.geometry), and the names that moved keep working."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import recon_lib as rl

g = rl.geometry


@given(c=st.integers(1, 3), h=st.integers(4, 20), w=st.integers(4, 20), k=st.integers(1, 4),
       s=st.integers(1, 3), p=st.integers(0, 2))
@settings(max_examples=40, deadline=None)
def test_kernel_bound_counts_equations_against_unknowns(c, h, w, k, s, p):
    layer = nn.Conv2d(c, 1, k, s, p)
    out = layer(torch.zeros(1, c, h, w)).shape[-2:]
    bound = g.kernel_bound((c, h, w), k, s, p)
    assert bound * out[0] * out[1] >= c * h * w > (bound - 1) * out[0] * out[1]
    assert g.output_size((c, h, w), k, s, p) == tuple(out)
    assert g.equation_count((c, h, w), bound, k, s, p) >= c * h * w


def test_the_bound_is_computed_once_and_shared():
    assert rl.conditions.min_kernels is g.min_kernels
    assert rl.conditions.conv_output_width is g.conv_output_width
    assert rl.benchmark.kernel_bound((3, 32, 32)) == g.kernel_bound((3, 32, 32), 4, 2, 1) == 12
    assert g.min_kernels(32, 3, 5, 2, 2) == 12


def test_equation_count_with_weight_gradients_adds_one_equation_per_weight():
    # 8×8 input, 3×3 valid conv, 2 kernels: 2·36 output equations, plus 2·1·9 weight equations.
    assert g.equation_count((1, 8, 8), 2, 3) == 72
    assert g.equation_count((1, 8, 8), 2, 3, weight_grads=True) == 72 + 18
    assert g.equation_count((3, 8, 6), 4, (3, 1), (1, 2), (1, 0), weight_grads=True) == \
        4 * 8 * 3 + 4 * 3 * 3 * 1


def test_reads_every_pixel_spots_skipped_pixels_and_the_border():
    assert g.reads_every_pixel((1, 8, 8), 3, 1, 0)
    assert not g.reads_every_pixel((1, 8, 8), 2, 3, 0)     # stride past the kernel skips pixels
    assert not g.reads_every_pixel((1, 8, 8), 3, 2, 0)     # ⌊·⌋ drops the last column


@pytest.mark.parametrize("call, match", [
    (lambda: g.kernel_bound((1, 8), 3), r"in_shape must be \(C, H, W\)"),
    (lambda: g.kernel_bound((0, 8, 8), 3), "positive integer"),
    (lambda: g.equation_count((1, 8, 8), 0, 3), "h must be a positive integer"),
    (lambda: g.conv_output_width(4, 3, 1, -1), "padding p"),
    (lambda: g.conv_output_width(2, 5), "smaller than the kernel"),
])
def test_bad_geometry_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("old, new", [
    ("analytic.invert_cnn", "cnn.invert_cnn"), ("analytic.invert_cnn_stages", "cnn.invert_cnn_stages"),
    ("analytic.recover_label", "labels.recover_label"), ("analytic.recover_labels", "labels.recover_labels"),
    ("analytic.recover_label_counts", "labels.recover_label_counts"),
    ("analytic.batch_span", "span.batch_span"), ("analytic.span_residual", "span.span_residual"),
    ("analytic.first_layer", "models.first_layer"), ("analytic.last_linear", "models.last_linear"),
    ("conv.invert_activation", "activations.invert_activation"),
    ("benchmark.METHODS", "benchmark_methods.METHODS"), ("benchmark.summarise", "benchmark_tables.summarise"),
    ("benchmark.plot_psnr", "benchmark_figures.plot_psnr"),
    ("defences.noise_error", "defence_theory.noise_error"), ("optimize.options", "presets.options"),
    ("optimize.PRESETS", "presets.PRESETS"),
])
def test_moved_names_are_re_exported_from_their_old_module(old, new):
    def resolve(path):
        module, name = path.split(".")
        return getattr(getattr(rl, module), name)
    assert resolve(old) is resolve(new)


def test_from_import_of_a_moved_name_works_and_unknown_names_still_fail():
    from recon_lib.analytic import invert_cnn, recover_labels  # noqa: F401
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rl.analytic.nope  # noqa: B018
