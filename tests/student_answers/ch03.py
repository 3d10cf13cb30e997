"""Chapter 03: d′ and the kernel bound, invertibility, the conv matrix, inverting one conv layer."""
import math

import numpy as np
import torch
from torch.nn import functional as F


# --- 03.bound: width_and_bound(d, C, k, s, p) -> (d′, smallest h) -------------------------------
def bound_integer_ceil(d, C, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return d_out, -(-C * d * d // (d_out * d_out))


def bound_math_ceil(d, C, k, s, p):
    d_out = math.floor((d + 2 * p - k) / s) + 1
    return d_out, math.ceil(C * d ** 2 / d_out ** 2)


def bound_loop(d, C, k, s, p):
    d_out = int((d + 2 * p - k) // s + 1)
    h = 1
    while h * d_out * d_out < C * d * d:
        h += 1
    return d_out, h


def bound_round(d, C, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return d_out, round(C * d * d / d_out ** 2)


def bound_floor(d, C, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return d_out, C * d * d // d_out ** 2


def bound_no_floor(d, C, k, s, p):
    d_out = (d + 2 * p - k) / s + 1
    return d_out, math.ceil(C * d * d / d_out ** 2)


def bound_one_padding(d, C, k, s, p):
    d_out = (d + p - k) // s + 1
    return d_out, -(-C * d * d // (d_out * d_out))


def bound_no_plus_one(d, C, k, s, p):
    d_out = (d + 2 * p - k) // s
    return d_out, -(-C * d * d // (d_out * d_out))


def bound_ratio_ceil_squared(d, C, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return d_out, C * math.ceil(d / d_out) ** 2


def bound_float(d, C, k, s, p):
    d_out = (d + 2 * p - k) // s + 1
    return d_out, C * (d / d_out) ** 2


# --- 03.invertible: predict_invertible(C, d, h, k, s, p) -> bool --------------------------------
def _d_out(d, k, s, p):
    return (d + 2 * p - k) // s + 1


def _covered(d, k, s, p, outputs):
    read = {j * s - p + a for j in range(outputs) for a in range(k)}
    return all(i in read for i in range(d))


def invertible_rules(C, d, h, k, s, p):
    d_out = _d_out(d, k, s, p)
    return h * d_out ** 2 >= C * d ** 2 and _covered(d, k, s, p, d_out)


def invertible_numpy_coverage(C, d, h, k, s, p):
    d_out = _d_out(d, k, s, p)
    read = (np.arange(d_out)[:, None] * s - p + np.arange(k)[None, :]).ravel()
    return bool(np.isin(np.arange(d), read).all() and h * d_out * d_out >= C * d * d)


def invertible_measured_rank(C, d, h, k, s, p):
    weight = torch.randn(h, C, k, k, dtype=torch.float64)
    basis = torch.eye(C * d * d, dtype=torch.float64).reshape(-1, C, d, d)
    A = F.conv2d(basis, weight, stride=s, padding=p).reshape(C * d * d, -1).T
    return bool(torch.linalg.matrix_rank(A) == C * d * d)


def invertible_bound_only(C, d, h, k, s, p):
    d_out = _d_out(d, k, s, p)
    return h * d_out ** 2 >= C * d ** 2


def invertible_coverage_only(C, d, h, k, s, p):
    return _covered(d, k, s, p, _d_out(d, k, s, p))


def invertible_stride_le_kernel(C, d, h, k, s, p):
    d_out = _d_out(d, k, s, p)
    return h * d_out ** 2 >= C * d ** 2 and s <= k


def invertible_one_window_short(C, d, h, k, s, p):
    d_out = _d_out(d, k, s, p)
    return h * d_out ** 2 >= C * d ** 2 and _covered(d, k, s, p, d_out - 1)


def invertible_strict_bound(C, d, h, k, s, p):
    d_out = _d_out(d, k, s, p)
    return h * d_out ** 2 > C * d ** 2 and _covered(d, k, s, p, d_out)


def invertible_h_ge_c(C, d, h, k, s, p):
    return h >= C and _covered(d, k, s, p, _d_out(d, k, s, p))


# --- 03.matrix: conv_matrix(weight, in_shape, stride, padding) -> A (h·d′² × C·d²) --------------
def matrix_basis_batch(weight, in_shape, stride, padding):
    n = math.prod(in_shape)
    basis = torch.eye(n, dtype=weight.dtype).reshape(n, *in_shape)
    return F.conv2d(basis, weight, stride=stride, padding=padding).reshape(n, -1).T


def matrix_jacobian(weight, in_shape, stride, padding):
    def f(v):
        return F.conv2d(v.reshape(1, *in_shape), weight, stride=stride, padding=padding).flatten()
    return torch.autograd.functional.jacobian(f, torch.zeros(math.prod(in_shape), dtype=weight.dtype))


def matrix_columns(weight, in_shape, stride, padding):
    columns = []
    for j in range(math.prod(in_shape)):
        e = torch.zeros(math.prod(in_shape), dtype=weight.dtype)
        e[j] = 1
        columns.append(F.conv2d(e.reshape(1, *in_shape), weight, stride=stride, padding=padding).flatten())
    return torch.stack(columns, dim=1)


def matrix_not_transposed(weight, in_shape, stride, padding):
    n = math.prod(in_shape)
    basis = torch.eye(n, dtype=weight.dtype).reshape(n, *in_shape)
    return F.conv2d(basis, weight, stride=stride, padding=padding).reshape(n, -1)


def matrix_wrong_reshape(weight, in_shape, stride, padding):
    n = math.prod(in_shape)
    basis = torch.eye(n, dtype=weight.dtype).reshape(n, *in_shape)
    out = F.conv2d(basis, weight, stride=stride, padding=padding)
    return out.reshape(-1, n)  # the right shape, the wrong order


def matrix_no_padding(weight, in_shape, stride, padding):
    n = math.prod(in_shape)
    basis = torch.eye(n, dtype=weight.dtype).reshape(n, *in_shape)
    return F.conv2d(basis, weight, stride=stride).reshape(n, -1).T


def matrix_no_stride(weight, in_shape, stride, padding):
    n = math.prod(in_shape)
    basis = torch.eye(n, dtype=weight.dtype).reshape(n, *in_shape)
    return F.conv2d(basis, weight, padding=padding).reshape(n, -1).T


def matrix_flipped_kernels(weight, in_shape, stride, padding):
    return matrix_basis_batch(weight.flip(-1, -2), in_shape, stride, padding)


def matrix_swapped_hw(weight, in_shape, stride, padding):
    return matrix_basis_batch(weight.transpose(-1, -2), in_shape, stride, padding)


# --- 03.invert_layer: invert_conv_layer(weight, bias, y, stride, padding, in_shape) -> x -------
def _target(bias, y):
    return (y - bias[:, None, None]).flatten()


def invert_lstsq(weight, bias, y, stride, padding, in_shape):
    A = matrix_basis_batch(weight, in_shape, stride, padding)
    return torch.linalg.lstsq(A, _target(bias, y)[:, None]).solution.reshape(in_shape)


def invert_pinv(weight, bias, y, stride, padding, in_shape):
    A = matrix_columns(weight, in_shape, stride, padding)
    return (torch.linalg.pinv(A) @ _target(bias, y)).reshape(in_shape)


def invert_float64(weight, bias, y, stride, padding, in_shape):
    A = matrix_basis_batch(weight.double(), in_shape, stride, padding)
    x = torch.linalg.lstsq(A, _target(bias.double(), y.double())[:, None]).solution
    return x.reshape(in_shape).to(y.dtype)


def invert_keeps_bias(weight, bias, y, stride, padding, in_shape):
    A = matrix_basis_batch(weight, in_shape, stride, padding)
    return torch.linalg.lstsq(A, y.flatten()[:, None]).solution.reshape(in_shape)


def invert_adds_bias(weight, bias, y, stride, padding, in_shape):
    A = matrix_basis_batch(weight, in_shape, stride, padding)
    target = (y + bias[:, None, None]).flatten()
    return torch.linalg.lstsq(A, target[:, None]).solution.reshape(in_shape)


def invert_flat(weight, bias, y, stride, padding, in_shape):
    A = matrix_basis_batch(weight, in_shape, stride, padding)
    return torch.linalg.lstsq(A, _target(bias, y)[:, None]).solution.flatten()


def invert_transpose(weight, bias, y, stride, padding, in_shape):
    A = matrix_basis_batch(weight, in_shape, stride, padding)
    return (A.T @ _target(bias, y)).reshape(in_shape)


def invert_conv_transpose(weight, bias, y, stride, padding, in_shape):
    x = F.conv_transpose2d((y - bias[:, None, None])[None], weight, stride=stride, padding=padding)
    return x[0, :, : in_shape[1], : in_shape[2]]


def invert_bias_last_axis(weight, bias, y, stride, padding, in_shape):
    A = matrix_basis_batch(weight, in_shape, stride, padding)
    target = (y - bias.mean()).flatten()  # one average bias for every channel
    return torch.linalg.lstsq(A, target[:, None]).solution.reshape(in_shape)


ANSWERS = {
    "03.bound": [
        ("integer ceiling", bound_integer_ceil, True),
        ("math.floor and math.ceil", bound_math_ceil, True),
        ("smallest h by counting", bound_loop, True),
        ("round", bound_round, False),
        ("floor", bound_floor, False),
        ("d′ without the floor", bound_no_floor, False),
        ("padding counted once", bound_one_padding, False),
        ("d′ without + 1", bound_no_plus_one, False),
        ("C · ceil(d / d′)²", bound_ratio_ceil_squared, False),
        ("h as a float", bound_float, False),
    ],
    "03.invertible": [
        ("bound and coverage", invertible_rules, True),
        ("numpy coverage", invertible_numpy_coverage, True),
        ("measured rank of the matrix", invertible_measured_rank, True),
        ("bound only", invertible_bound_only, False),
        ("coverage only", invertible_coverage_only, False),
        ("bound and s ≤ k", invertible_stride_le_kernel, False),
        ("coverage missing the last window", invertible_one_window_short, False),
        ("strict bound", invertible_strict_bound, False),
        ("h ≥ C instead of the bound", invertible_h_ge_c, False),
    ],
    "03.matrix": [
        ("batch of basis images", matrix_basis_batch, True),
        ("autograd jacobian", matrix_jacobian, True),
        ("column by column", matrix_columns, True),
        ("not transposed", matrix_not_transposed, False),
        ("right shape, wrong order", matrix_wrong_reshape, False),
        ("padding ignored", matrix_no_padding, False),
        ("stride ignored", matrix_no_stride, False),
        ("flipped kernels (true convolution)", matrix_flipped_kernels, False),
        ("kernels transposed (H/W swapped)", matrix_swapped_hw, False),
    ],
    "03.invert_layer": [
        ("lstsq on the conv matrix", invert_lstsq, True),
        ("pseudo-inverse", invert_pinv, True),
        ("lstsq in float64", invert_float64, True),
        ("bias not removed", invert_keeps_bias, False),
        ("bias added", invert_adds_bias, False),
        ("flat result", invert_flat, False),
        ("transpose as inverse", invert_transpose, False),
        ("transposed convolution as inverse", invert_conv_transpose, False),
        ("one average bias", invert_bias_last_axis, False),
    ],
}
