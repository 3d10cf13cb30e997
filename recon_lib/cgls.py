"""CGLS: least squares A x = y with only x ↦ A x and y ↦ Aᵀ y (chapter 03's solver).

Reference: Hestenes & Stiefel (1952), CG applied to the normal equations AᵀA x = Aᵀ y in the
"CGLS" form of Björck, *Numerical Methods for Least Squares Problems* (1996, §7.4), which never
forms AᵀA. Every image of a batch is solved at once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from . import _validate as check
from .runtime import intra_op_threads, threads_for


@dataclass(frozen=True)
class SolveInfo:
    """How a matrix-free solve went: iterations used and the final relative residual
    ‖Aᵀ(y − A x)‖ / ‖Aᵀ y‖ of the normal equations (worst image of the batch)."""

    iterations: int
    residual: float
    converged: bool


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-image inner products: a vector of N for batches N×…."""
    return (a * b).flatten(1).sum(1)


def _per_image(values: Tensor, like: Tensor) -> Tensor:
    """Reshape N values to broadcast over the images of ``like``."""
    return values.reshape(-1, *[1] * (like.ndim - 1))


def cgls(apply: Callable[[Tensor], Tensor], adjoint: Callable[[Tensor], Tensor], y: Tensor,
         tol: float = 1e-7, max_iter: int = 2000) -> tuple[Tensor, SolveInfo]:
    """Least-squares solution of A x = y by conjugate gradients on AᵀA x = Aᵀ y (CGLS).

    Matrix-free: needs only ``apply`` (x ↦ A x) and ``adjoint`` (y ↦ Aᵀ y), each on a batch;
    every image of the batch is solved at once (one convolution per iteration for all).
    Starting from x = 0 it converges to the minimum-norm least-squares solution, so below the
    kernel bound it returns the smallest image consistent with the output, not the true one.

    An image stops iterating once its relative residual reaches ``tol`` or the round-off floor
    of the dtype (eps), or when a step would no longer be finite, so that running past
    convergence (``tol=0``) keeps the best iterate instead of dividing 0 by 0.

    Args:
        apply, adjoint: the operator and its transpose (e.g. :class:`ConvMap` methods).
        y: right-hand side, a batch N×….
        tol: stop when ‖Aᵀ r‖ ≤ tol·‖Aᵀ y‖ for every image (≥ 0; below eps means "to round-off").
        max_iter: iteration cap; ``info.converged`` says whether max(tol, eps) was reached.

    Runs on one intra-op thread when ``y`` is small (:func:`recon_lib.runtime.threads_for`):
    each iteration is a few small ops and a convergence test, where threads only wait.

    Raises:
        ValueError: a negative tolerance, a non-positive ``max_iter``, or a non-finite y.
    """
    tol, max_iter = check.nonnegative("tol", tol), check.count("max_iter", max_iter)
    with intra_op_threads(threads_for(y.numel(), y.device)):
        return _cgls(apply, adjoint, y, tol, max_iter)


def _cgls(apply: Callable[[Tensor], Tensor], adjoint: Callable[[Tensor], Tensor], y: Tensor,
          tol: float, max_iter: int) -> tuple[Tensor, SolveInfo]:
    """The CGLS iterations of :func:`cgls`."""
    if not torch.isfinite(y).all():
        raise ValueError("the right-hand side contains NaN or inf")
    tiny, floor = torch.finfo(y.dtype).tiny, max(tol, torch.finfo(y.dtype).eps)
    residual = y.clone()
    s = adjoint(residual)
    x, direction = torch.zeros_like(s), s.clone()
    gamma = _dot(s, s)
    start = gamma.sqrt().clamp_min(tiny)
    active = gamma.sqrt() > floor * start
    iterations = 0
    while iterations < max_iter and bool(active.any()):
        q = apply(direction)
        alpha = torch.where(active, gamma / _dot(q, q).clamp_min(tiny), 0.0)
        step_x, step_r = _per_image(alpha, x) * direction, _per_image(alpha, q) * q
        finite = torch.isfinite(step_x).flatten(1).all(1) & torch.isfinite(step_r).flatten(1).all(1)
        active = active & finite
        x += torch.where(_per_image(active, x), step_x, 0.0)
        residual -= torch.where(_per_image(active, q), step_r, 0.0)
        s = adjoint(residual)
        gamma_new = torch.where(active, _dot(s, s), gamma)
        beta = torch.where(active, gamma_new / gamma.clamp_min(tiny), 0.0)
        direction = torch.where(_per_image(active, s), s + _per_image(beta, s) * direction, direction)
        gamma = gamma_new
        active = active & (gamma.sqrt() > floor * start)
        iterations += 1
    relative = float((gamma.sqrt() / start).max())
    return x, SolveInfo(iterations, relative, relative <= floor)
