"""Argument checks shared by every public function: one place, one wording.

Internal (the leading underscore): modules call these to turn a bad argument into a clear
``ValueError``/``TypeError`` that names the argument and what is wrong, before torch or numpy
can fail with an internal message. This module imports nothing from the rest of the library,
so any layer may use it. Wrong numbers, of any type, raise ``ValueError``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import torch
from torch import Tensor


def integer(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; bools, floats and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{name} must be an integer {_range(low, high)}, got {number}")
    return number


def real(name: str, value: object, low: float | None = None, high: float | None = None,
         open_low: bool = False) -> float:
    """``value`` as a finite float in [low, high] (``(low, high]`` when ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)
    too_low = low is not None and (number <= low if open_low else number < low)
    if not math.isfinite(number) or too_low or (high is not None and number > high):
        bound = f"> {low}" if open_low and high is None else _range(low, high)
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def nonnegative(name: str, value: object) -> float:
    """A finite float ≥ 0 (noise levels, tolerances, penalty weights)."""
    return real(name, value, low=0.0)


def positive(name: str, value: object) -> float:
    """A finite float > 0 (learning rates, clipping norms, scales)."""
    return real(name, value, low=0.0, open_low=True)


def choice(name: str, value: object, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def message(value: object, name: str = "message") -> None:
    """A FedSGD message: a non-empty dict {parameter name: finite floating-point tensor}."""
    if not isinstance(value, Mapping) or not value:
        raise TypeError(f"{name} must be a non-empty dict {{name: gradient tensor}}, as from "
                        "rl.fl.client_update")
    for key, entry in value.items():
        if not isinstance(entry, Tensor) or not entry.is_floating_point():
            got = entry.dtype if isinstance(entry, Tensor) else type(entry).__name__
            raise TypeError(f"{name}[{key!r}] must be a floating-point tensor, got {got}")
        if not torch.isfinite(entry).all():
            raise ValueError(f"{name}[{key!r}] contains NaN or inf; fix the client's loss first")


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    if low is not None:
        return f">= {low}"
    return f"<= {high}" if high is not None else ""
