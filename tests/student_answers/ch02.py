"""Chapter 02: batch gradient, mixture weights, leaked span, membership, labels, matching."""
import itertools

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


# --- 02.gradient: first_layer_gradient(delta (h×B), X (B×d)) -> (∇W (h×d), ∇b (h,)) -----------
def gradient_matrix(delta, X):
    B = X.shape[0]
    return delta @ X / B, delta.sum(dim=1) / B


def gradient_einsum(delta, X):
    return torch.einsum("hb,bd->hd", delta, X) / X.shape[0], delta.mean(dim=1)


def gradient_loop(delta, X):
    grad_W = torch.zeros(delta.shape[0], X.shape[1], dtype=X.dtype)
    for n in range(X.shape[0]):
        grad_W += torch.outer(delta[:, n], X[n])
    return grad_W / X.shape[0], delta.mean(1)


def gradient_no_average(delta, X):
    return delta @ X, delta.sum(dim=1)


def gradient_bias_not_averaged(delta, X):
    return delta @ X / X.shape[0], delta.sum(dim=1)


def gradient_transposed(delta, X):
    return X.T @ delta.T / X.shape[0], delta.mean(dim=1)


def gradient_bias_wrong_axis(delta, X):
    return delta @ X / X.shape[0], delta.mean(dim=0)


def gradient_divide_by_h(delta, X):
    return delta @ X / delta.shape[0], delta.sum(1) / delta.shape[0]


# --- 02.mixture: mixture_weights(delta) -> Ω (h×B) ---------------------------------------------
def mixture_row_sum(delta):
    return delta / delta.sum(dim=1, keepdim=True)


def mixture_diag(delta):
    return torch.diag(1 / delta.sum(1)) @ delta


def mixture_loop(delta):
    rows = [delta[i] / delta[i].sum() for i in range(delta.shape[0])]
    return torch.stack(rows)


def mixture_column_sum(delta):
    return delta / delta.sum(dim=0, keepdim=True)


def mixture_abs_sum(delta):
    return delta / delta.abs().sum(dim=1, keepdim=True)


def mixture_softmax(delta):
    return delta.softmax(dim=1)


def mixture_over_b(delta):
    return delta / delta.shape[1]


def mixture_transposed(delta):
    return (delta / delta.sum(dim=1, keepdim=True)).T


def mixture_row_norm(delta):
    return delta / delta.norm(dim=1, keepdim=True)


# --- 02.span: leaked_span(grad_W, batch_size) -> V (d×r) ----------------------------------------
def _tolerance(grad_W, largest):
    return largest * max(grad_W.shape) * torch.finfo(grad_W.dtype).eps


def span_svd(grad_W, batch_size):
    _, s, vh = torch.linalg.svd(grad_W, full_matrices=False)
    r = min(int((s > _tolerance(grad_W, s[0])).sum()), batch_size)
    return vh[:r].T


def span_svd_of_transpose(grad_W, batch_size):
    u, s, _ = torch.linalg.svd(grad_W.T, full_matrices=False)
    keep = s > s.max() * max(grad_W.shape) * torch.finfo(grad_W.dtype).eps
    return u[:, keep][:, :batch_size]


def span_numpy(grad_W, batch_size):
    _, s, vh = np.linalg.svd(grad_W.numpy().astype(np.float64), full_matrices=False)
    r = min(int(np.sum(s > s[0] * max(grad_W.shape) * torch.finfo(grad_W.dtype).eps)), batch_size)
    return torch.from_numpy(vh[:r].T.copy()).to(grad_W.dtype)


def span_no_tolerance(grad_W, batch_size):
    _, _, vh = torch.linalg.svd(grad_W, full_matrices=False)
    return vh[:batch_size].T


def span_absolute_tolerance(grad_W, batch_size):
    _, s, vh = torch.linalg.svd(grad_W, full_matrices=False)
    r = min(int((s > 1e-6).sum()), batch_size)
    return vh[:r].T


def span_unscaled_eps(grad_W, batch_size):
    _, s, vh = torch.linalg.svd(grad_W, full_matrices=False)
    r = min(int((s > max(grad_W.shape) * torch.finfo(grad_W.dtype).eps).sum()), batch_size)
    return vh[:r].T


def span_rows(grad_W, batch_size):
    _, s, vh = torch.linalg.svd(grad_W, full_matrices=False)
    r = min(int((s > _tolerance(grad_W, s[0])).sum()), batch_size)
    return vh[:r]


def span_left_vectors(grad_W, batch_size):
    u, s, _ = torch.linalg.svd(grad_W, full_matrices=False)
    r = min(int((s > _tolerance(grad_W, s[0])).sum()), batch_size)
    return u[:, :r]


def span_gram_eigh(grad_W, batch_size):
    values, vectors = torch.linalg.eigh(grad_W.T @ grad_W)
    values, vectors = values.flip(0), vectors.flip(1)
    s = values.clamp(min=0).sqrt()
    r = min(int((s > _tolerance(grad_W, s[0])).sum()), batch_size)
    return vectors[:, :r]


def span_always_b(grad_W, batch_size):
    _, _, vh = torch.linalg.svd(grad_W, full_matrices=True)
    return vh[:batch_size].T


# --- 02.membership: span_residuals(candidates (N×d), V (d×r)) -> (N,) ---------------------------
def residual_projection(candidates, V):
    residual = candidates - candidates @ V @ V.T
    return residual.norm(dim=1) / candidates.norm(dim=1)


def residual_columns(candidates, V):
    X = candidates.T
    return torch.linalg.vector_norm(X - V @ (V.T @ X), dim=0) / torch.linalg.vector_norm(X, dim=0)


def residual_loop(candidates, V):
    out = []
    for x in candidates:
        out.append(torch.linalg.norm(x - V @ (V.T @ x)) / torch.linalg.norm(x))
    return torch.stack(out)


def residual_absolute(candidates, V):
    return (candidates - candidates @ V @ V.T).norm(dim=1)


def residual_captured(candidates, V):
    return (candidates @ V).norm(dim=1) / candidates.norm(dim=1)


def residual_squared(candidates, V):
    residual = candidates - candidates @ V @ V.T
    return (residual ** 2).sum(1) / (candidates ** 2).sum(1)


def residual_one_minus(candidates, V):
    return 1 - (candidates @ V).norm(dim=1) / candidates.norm(dim=1)


def residual_by_projection_norm(candidates, V):
    residual = candidates - candidates @ V @ V.T
    return residual.norm(dim=1) / (candidates @ V).norm(dim=1)


def residual_over_squared_norm(candidates, V):
    residual = candidates - candidates @ V @ V.T
    return residual.norm(dim=1) / (candidates ** 2).sum(dim=1)


# --- 02.labels: batch_labels(grad_head_bias, batch_size) -> B labels -----------------------------
def labels_topk(grad_head_bias, batch_size):
    return torch.topk(-grad_head_bias, batch_size).indices


def labels_argsort(grad_head_bias, batch_size):
    return torch.argsort(grad_head_bias)[:batch_size]


def labels_argpartition(grad_head_bias, batch_size):
    return torch.from_numpy(np.argpartition(grad_head_bias.numpy(), batch_size - 1)[:batch_size])


def labels_largest(grad_head_bias, batch_size):
    return torch.topk(grad_head_bias, batch_size).indices


def labels_negative(grad_head_bias, batch_size):
    return torch.nonzero(grad_head_bias < 0).flatten()


def labels_one_short(grad_head_bias, batch_size):
    return torch.argsort(grad_head_bias)[: batch_size - 1]


def labels_values(grad_head_bias, batch_size):
    return torch.topk(-grad_head_bias, batch_size).values


def labels_float(grad_head_bias, batch_size):
    return torch.argsort(grad_head_bias)[:batch_size].float()


def labels_argmin(grad_head_bias, batch_size):
    return grad_head_bias.argmin().repeat(batch_size)


# --- 02.match: pair(x_hat, x) -> perm with x_hat[perm][i] paired to x[i] -------------------------
def _squared(a, b):
    return ((a.flatten(1)[:, None, :] - b.flatten(1)[None, :, :]) ** 2).sum(-1)


def match_cdist(x_hat, x):
    cost = torch.cdist(x.flatten(1).double(), x_hat.flatten(1).double()) ** 2
    _, cols = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(cols)


def match_broadcast(x_hat, x):
    _, cols = linear_sum_assignment(_squared(x, x_hat).numpy())
    return torch.from_numpy(cols).long()


def match_inverse(x_hat, x):
    rows, cols = linear_sum_assignment(_squared(x_hat, x).numpy())  # rows: reconstructions
    perm = torch.empty(len(rows), dtype=torch.long)
    perm[torch.as_tensor(cols)] = torch.as_tensor(rows)
    return perm


def match_brute_force_small(x_hat, x):
    cost = _squared(x, x_hat)
    if len(x) > 7:
        return match_broadcast(x_hat, x)
    best = min(itertools.permutations(range(len(x))), key=lambda p: sum(cost[i, j] for i, j in enumerate(p)))
    return torch.tensor(best)


def match_greedy(x_hat, x):
    return _squared(x, x_hat).argmin(dim=1)


def match_unsquared(x_hat, x):
    _, cols = linear_sum_assignment(torch.cdist(x.flatten(1), x_hat.flatten(1)).numpy())
    return torch.as_tensor(cols)


def match_rows(x_hat, x):
    rows, _ = linear_sum_assignment(_squared(x, x_hat).numpy())
    return torch.as_tensor(rows)


def match_not_inverted(x_hat, x):
    _, cols = linear_sum_assignment(_squared(x_hat, x).numpy())
    return torch.as_tensor(cols)


def match_maximise(x_hat, x):
    _, cols = linear_sum_assignment(_squared(x, x_hat).numpy(), maximize=True)
    return torch.as_tensor(cols)


def match_float(x_hat, x):
    _, cols = linear_sum_assignment(_squared(x, x_hat).numpy())
    return torch.tensor(cols, dtype=torch.float32)


# --- 02.impostor: impostor_batch(delta (h×B), X (B×d), T (B×d)) -> X′ closest to T, Δ X′ = Δ X -----
def impostor_projector(delta, X, T):
    P = torch.eye(delta.shape[1], dtype=delta.dtype) - torch.linalg.pinv(delta) @ delta
    return X + P @ (T - X)


def impostor_from_target(delta, X, T):
    return T - torch.linalg.pinv(delta) @ (delta @ (T - X))


def impostor_svd_basis(delta, X, T):
    _, s, vh = torch.linalg.svd(delta.double(), full_matrices=True)
    rank = int((s > s.max() * max(delta.shape) * torch.finfo(delta.dtype).eps).sum()) if s.numel() else 0
    N = vh[rank:].T  # B × (B − rank): the null space of Δ
    return (X.double() + N @ (N.T @ (T - X).double())).to(X.dtype)


def impostor_row_space(delta, X, T):
    P = torch.linalg.pinv(delta) @ delta
    return X + P @ (T - X)


def impostor_target(delta, X, T):
    return T.clone()


def impostor_unchanged(delta, X, T):
    return X.clone()


def impostor_without_pinv(delta, X, T):
    P = torch.eye(delta.shape[1], dtype=delta.dtype) - delta.T @ delta
    return X + P @ (T - X)


def impostor_forgot_x(delta, X, T):
    P = torch.eye(delta.shape[1], dtype=delta.dtype) - torch.linalg.pinv(delta) @ delta
    return X + P @ T


def impostor_assumes_full_rank(delta, X, T):
    _, _, vh = torch.linalg.svd(delta, full_matrices=True)
    N = vh[delta.shape[0]:].T  # assumes rank h: misses null directions of a rank-deficient Δ
    return X + N @ (N.T @ (T - X))


ANSWERS = {
    "02.gradient": [
        ("Δ X / B", gradient_matrix, True),
        ("einsum", gradient_einsum, True),
        ("sum of outer products", gradient_loop, True),
        ("not averaged", gradient_no_average, False),
        ("bias not averaged", gradient_bias_not_averaged, False),
        ("transposed (d × h)", gradient_transposed, False),
        ("bias mean over units", gradient_bias_wrong_axis, False),
        ("divided by h", gradient_divide_by_h, False),
    ],
    "02.mixture": [
        ("rows divided by their sums", mixture_row_sum, True),
        ("diag(1 / row sums) Δ", mixture_diag, True),
        ("row by row", mixture_loop, True),
        ("columns divided by their sums", mixture_column_sum, False),
        ("rows divided by |Δ| sums", mixture_abs_sum, False),
        ("softmax of the rows", mixture_softmax, False),
        ("Δ / B", mixture_over_b, False),
        ("transposed", mixture_transposed, False),
        ("rows divided by their norms", mixture_row_norm, False),
    ],
    "02.span": [
        ("SVD, relative tolerance, ≤ B", span_svd, True),
        ("SVD of ∇Wᵀ, left vectors", span_svd_of_transpose, True),
        ("numpy SVD in float64", span_numpy, True),
        ("no tolerance, B vectors", span_no_tolerance, False),
        ("absolute tolerance 1e-6", span_absolute_tolerance, False),
        ("tolerance not relative to the largest", span_unscaled_eps, False),
        ("basis as rows", span_rows, False),
        ("left singular vectors", span_left_vectors, False),
        ("eigenvectors of ∇Wᵀ∇W (squares the condition)", span_gram_eigh, False),
        ("full SVD, always B vectors", span_always_b, False),
    ],
    "02.membership": [
        ("residual rows", residual_projection, True),
        ("residual columns", residual_columns, True),
        ("loop", residual_loop, True),
        ("absolute residual", residual_absolute, False),
        ("captured part, not residual", residual_captured, False),
        ("squared ratio", residual_squared, False),
        ("1 − captured ratio", residual_one_minus, False),
        ("divided by the projection's norm", residual_by_projection_norm, False),
        ("divided by ‖x‖²", residual_over_squared_norm, False),
    ],
    "02.labels": [
        ("topk of −g", labels_topk, True),
        ("argsort, first B", labels_argsort, True),
        ("numpy argpartition (unsorted)", labels_argpartition, True),
        ("topk of g (largest)", labels_largest, False),
        ("all negative entries", labels_negative, False),
        ("B − 1 labels", labels_one_short, False),
        ("the values, not the indices", labels_values, False),
        ("float labels", labels_float, False),
        ("argmin repeated", labels_argmin, False),
    ],
    "02.match": [
        ("assignment on cdist²", match_cdist, True),
        ("assignment on broadcast squared distances", match_broadcast, True),
        ("assignment on the transposed cost, inverted", match_inverse, True),
        ("brute force for small B", match_brute_force_small, True),
        ("greedy nearest", match_greedy, False),
        ("unsquared distances", match_unsquared, False),
        ("the row indices (identity)", match_rows, False),
        ("transposed cost, not inverted", match_not_inverted, False),
        ("maximised cost", match_maximise, False),
        ("float permutation", match_float, False),
    ],
    "02.impostor": [
        ("projector I − Δ⁺Δ", impostor_projector, True),
        ("T minus its row-space part", impostor_from_target, True),
        ("null-space basis from the SVD, float64", impostor_svd_basis, True),
        ("row-space projector Δ⁺Δ", impostor_row_space, False),
        ("the target itself", impostor_target, False),
        ("the batch unchanged", impostor_unchanged, False),
        ("I − ΔᵀΔ without a pseudo-inverse", impostor_without_pinv, False),
        ("X + P T (forgot − X)", impostor_forgot_x, False),
        ("null space assumed of dimension B − h", impostor_assumes_full_rank, False),
    ],
}
