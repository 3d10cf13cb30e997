"""Chapter 01: the closed form of one unit, usable units, a layer, direction and scale without bias."""
import numpy as np
import torch


# --- 01.closed_form: unit_closed_form(grad_w_i, grad_b_i) -> x (d,) ------------------------------
def closed_divide(grad_w_i, grad_b_i):
    return grad_w_i / grad_b_i


def closed_reciprocal(grad_w_i, grad_b_i):
    return torch.reciprocal(grad_b_i) * grad_w_i


def closed_item(grad_w_i, grad_b_i):
    return torch.div(grad_w_i, grad_b_i.item())


def closed_inverted(grad_w_i, grad_b_i):
    return grad_b_i / grad_w_i


def closed_times(grad_w_i, grad_b_i):
    return grad_w_i * grad_b_i


def closed_abs(grad_w_i, grad_b_i):
    return grad_w_i / grad_b_i.abs()


def closed_no_division(grad_w_i, grad_b_i):
    return grad_w_i.clone()


def closed_row_shape(grad_w_i, grad_b_i):
    return (grad_w_i / grad_b_i).reshape(1, -1)


def closed_normalised(grad_w_i, grad_b_i):
    return grad_w_i / grad_w_i.norm()


# --- 01.usable: usable_mask(grad_b) -> bool (h,) ------------------------------------------------
def usable_ne(grad_b):
    return grad_b != 0


def usable_abs(grad_b):
    return grad_b.abs() > 0


def usable_list(grad_b):
    return torch.tensor([value != 0.0 for value in grad_b.tolist()], dtype=torch.bool)


def usable_positive(grad_b):
    return grad_b > 0


def usable_abs_threshold(grad_b):
    return grad_b.abs() > 1e-6


def usable_relative_threshold(grad_b):
    return grad_b.abs() > 1e-3 * grad_b.abs().max()


def usable_float(grad_b):
    return (grad_b != 0).float()


def usable_indices(grad_b):
    return torch.nonzero(grad_b).flatten()


def usable_isclose(grad_b):
    return ~torch.isclose(grad_b, torch.zeros_like(grad_b))


# --- 01.layer: invert_layer(grad_W, grad_b) -> x (d,) -------------------------------------------
def layer_mean(grad_W, grad_b):
    m = grad_b != 0
    return (grad_W[m] / grad_b[m][:, None]).mean(dim=0)


def layer_largest_delta(grad_W, grad_b):
    i = grad_b.abs().argmax()
    return grad_W[i] / grad_b[i]


def layer_least_squares(grad_W, grad_b):
    m = grad_b != 0
    return grad_b[m] @ grad_W[m] / (grad_b[m] @ grad_b[m])


def layer_nanmean(grad_W, grad_b):
    return (grad_W / grad_b[:, None]).nanmean(dim=0)  # dead units give 0/0 = nan


def layer_all_units(grad_W, grad_b):
    return (grad_W / grad_b[:, None]).mean(dim=0)


def layer_first_unit(grad_W, grad_b):
    return grad_W[0] / grad_b[0]


def layer_sum(grad_W, grad_b):
    m = grad_b != 0
    return (grad_W[m] / grad_b[m][:, None]).sum(dim=0)


def layer_abs_delta(grad_W, grad_b):
    m = grad_b != 0
    return (grad_W[m] / grad_b[m].abs()[:, None]).mean(dim=0)


def layer_wrong_axis(grad_W, grad_b):
    m = grad_b != 0
    return (grad_W[m] / grad_b[m][:, None]).mean(dim=1)


def layer_product(grad_W, grad_b):
    m = grad_b != 0
    return (grad_W[m] * grad_b[m][:, None]).mean(dim=0)


# --- 01.direction: direction_without_bias(grad_W) -> unit vector (d,) ---------------------------
def direction_largest_row(grad_W):
    row = grad_W[grad_W.norm(dim=1).argmax()]
    u = row / row.norm()
    return u if u.sum() > 0 else -u


def direction_svd(grad_W):
    _, _, vh = torch.linalg.svd(grad_W, full_matrices=False)
    u = vh[0]
    return u * torch.sign(u.sum())


def direction_signed_sum(grad_W):
    signs = torch.sign(grad_W.sum(dim=1, keepdim=True))
    total = (signs * grad_W).sum(dim=0)
    return total / torch.linalg.vector_norm(total)


def direction_no_sign(grad_W):
    _, _, vh = torch.linalg.svd(grad_W, full_matrices=False)
    return vh[0]


def direction_first_row(grad_W):
    u = grad_W[0] / grad_W[0].norm()
    return u if u.sum() > 0 else -u


def direction_l1(grad_W):
    row = grad_W[grad_W.norm(dim=1).argmax()]
    return row / row.sum()


def direction_first_pixel_sign(grad_W):
    row = grad_W[grad_W.norm(dim=1).argmax()]
    u = row / row.norm()
    return u if u[0] >= 0 else -u


def direction_left_vector(grad_W):
    u, _, _ = torch.linalg.svd(grad_W, full_matrices=False)
    return u[:, 0] * torch.sign(u[:, 0].sum())


def direction_max_scaled(grad_W):
    row = grad_W[grad_W.norm(dim=1).argmax()]
    u = row / row.abs().max()
    return u if u.sum() > 0 else -u


# --- 01.scale: scale_by_known_pixel(direction, pixel, value) -> x (d,) --------------------------
def scale_divide(direction, pixel, value):
    return direction * (value / direction[pixel])


def scale_item(direction, pixel, value):
    c = value / direction[pixel].item()
    return c * direction


def scale_numpy(direction, pixel, value):
    u = direction.numpy()
    return torch.from_numpy(u / u[pixel] * np.float32(value)).to(direction.dtype)


def scale_times_value(direction, pixel, value):
    return direction * value


def scale_divide_by_value(direction, pixel, value):
    return direction / value


def scale_off_by_one(direction, pixel, value):
    return direction * value / direction[pixel - 1]


def scale_by_max(direction, pixel, value):
    return direction * value / direction.max()


def scale_by_norm(direction, pixel, value):
    return direction * value / direction.norm()


def scale_by_next(direction, pixel, value):
    return direction * value / direction[pixel + 1]


ANSWERS = {
    "01.closed_form": [
        ("divide", closed_divide, True),
        ("reciprocal times", closed_reciprocal, True),
        ("divide by the float", closed_item, True),
        ("inverted ratio", closed_inverted, False),
        ("product", closed_times, False),
        ("divide by |∂ℓ/∂b|", closed_abs, False),
        ("no division", closed_no_division, False),
        ("shape (1, d)", closed_row_shape, False),
        ("normalised ∂ℓ/∂w", closed_normalised, False),
    ],
    "01.usable": [
        ("!= 0", usable_ne, True),
        ("abs > 0", usable_abs, True),
        ("Python list", usable_list, True),
        ("> 0 (sign)", usable_positive, False),
        ("abs > 1e-6", usable_abs_threshold, False),
        ("relative threshold 1e-3", usable_relative_threshold, False),
        ("float mask", usable_float, False),
        ("indices, not a mask", usable_indices, False),
        ("not isclose to 0 (atol 1e-8)", usable_isclose, False),
    ],
    "01.layer": [
        ("mean of usable ratios", layer_mean, True),
        ("unit with the largest |δ|", layer_largest_delta, True),
        ("least squares over usable units", layer_least_squares, True),
        ("nanmean over all units", layer_nanmean, True),
        ("mean over all units (dead ones too)", layer_all_units, False),
        ("first unit", layer_first_unit, False),
        ("sum of ratios", layer_sum, False),
        ("divide by |δ|", layer_abs_delta, False),
        ("mean over the wrong axis", layer_wrong_axis, False),
        ("product instead of ratio", layer_product, False),
    ],
    "01.direction": [
        ("largest row, sign by sum", direction_largest_row, True),
        ("top right-singular vector, sign by sum", direction_svd, True),
        ("rows flipped to positive sum, summed", direction_signed_sum, True),
        ("singular vector without sign fix", direction_no_sign, False),
        ("first row (may be dead)", direction_first_row, False),
        ("divided by the pixel sum (L1)", direction_l1, False),
        ("sign by the first pixel", direction_first_pixel_sign, False),
        ("left singular vector", direction_left_vector, False),
        ("scaled to max |pixel| = 1", direction_max_scaled, False),
    ],
    "01.scale": [
        ("divide by direction[pixel]", scale_divide, True),
        ("scalar c first", scale_item, True),
        ("numpy", scale_numpy, True),
        ("times value only", scale_times_value, False),
        ("divide by value", scale_divide_by_value, False),
        ("pixel − 1", scale_off_by_one, False),
        ("divide by max", scale_by_max, False),
        ("divide by norm", scale_by_norm, False),
        ("pixel + 1", scale_by_next, False),
    ],
}
