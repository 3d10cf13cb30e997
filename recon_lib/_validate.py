"""Argument checks shared by every public function: one place, one wording.

Internal (the leading underscore): modules call these to turn a bad argument into a clear
``ValueError``/``TypeError`` that names the argument and what is wrong, before torch or numpy
can fail with an internal message. This module imports nothing from the rest of the library,
so any layer may use it. Wrong numbers, of any type, raise ``ValueError``.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn


def integer(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; bools, floats and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{name} must be an integer {_range(low, high)}, got {number}")
    return number


def count(name: str, value: object) -> int:
    """A positive integer (sizes, counts, batch sizes): ``integer(name, value, low=1)`` worded so."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def shape(name: str, value: object, ndim: int | None = None) -> tuple[int, ...]:
    """A shape: a non-empty tuple/list/``torch.Size`` of positive integers (``ndim`` of them)."""
    if not isinstance(value, (tuple, list, torch.Size)) or not value or any(
            isinstance(s, bool) or not isinstance(s, Integral) or s < 1 for s in value):
        raise ValueError(f"{name} must be a non-empty tuple of positive integer sizes, got {value!r}")
    if ndim is not None and len(value) != ndim:
        what = "(C, H, W), a C×H×W image shape" if ndim == 3 else f"{ndim} sizes"
        raise ValueError(f"{name} must be {what}, got {tuple(value)}")
    return tuple(int(s) for s in value)


def counts(name: str, value: object) -> list[int]:
    """A non-empty list/tuple of positive integers (hidden widths, kernels per layer)."""
    if not isinstance(value, (tuple, list)) or not value:
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {value!r}")
    return [count(f"{name}[{i}]", v) for i, v in enumerate(value)]


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
    for key, entry in message_form(value, name).items():
        floating_entry(entry, name, key)
        if not all_finite(entry):
            raise ValueError(f"{name}[{key!r}] contains NaN or inf; fix the client's loss first")


def message_form(value: object, name: str = "message") -> Mapping[str, Tensor]:
    """A non-empty dict, its entries left unread: for an attack that reads only some of them.

    The closed form checks the two entries it uses (:func:`layer_gradients`, then one reduction
    over its result), so its checks cost microseconds whatever the size of the rest of the message.
    Returns ``value``, typed as a message.
    """
    if not isinstance(value, Mapping) or not value:
        raise TypeError(f"{name} must be a non-empty dict {{name: gradient tensor}}, as from "
                        "rl.fl.client_update")
    return value


def floating_entry(entry: object, name: str, key: str) -> Tensor:
    """``entry`` (``name[key]`` of a message) as a floating-point tensor, else a TypeError."""
    if not isinstance(entry, Tensor) or not entry.is_floating_point():
        got = entry.dtype if isinstance(entry, Tensor) else type(entry).__name__
        raise TypeError(f"{name}[{key!r}] must be a floating-point tensor, got {got}")
    return entry


def finite_entries(value: Mapping[str, Tensor], keys: Sequence[str], name: str = "message") -> None:
    """No NaN or inf in ``value[key]`` for each key (one sum each), else a ValueError naming it."""
    for key in keys:
        if not all_finite(value[key]):
            raise ValueError(f"{name}[{key!r}] contains NaN or inf; fix the client's loss first")


def all_finite(tensor: Tensor) -> bool:
    """No NaN or inf anywhere, in one cheap reduction: any NaN/inf makes the sum non-finite.

    Only when the sum is not finite (a NaN/inf, or an overflow of large finite values) is
    the exact element-wise test run, so large messages are checked at the cost of one sum.
    """
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def gradient_pair(grad_weight: Tensor, grad_bias: Tensor, finite: bool = True) -> None:
    """Shapes, dtypes, devices and (unless ``finite=False``: the caller checks its result
    instead) finiteness of a (∂W, ∂b) pair; raises a clear error."""
    if not isinstance(grad_weight, Tensor) or not isinstance(grad_bias, Tensor):
        raise TypeError("grad_weight and grad_bias must be torch tensors")
    if grad_weight.ndim < 2 or grad_weight.shape[:-1] != grad_bias.shape:
        raise ValueError(
            f"grad_weight must be (..., h, d) and grad_bias (..., h); got {tuple(grad_weight.shape)} "
            f"and {tuple(grad_bias.shape)}. Did you pass the gradients of the same layer?")
    if grad_weight.numel() == 0:
        raise ValueError(f"the gradients are empty (shape {tuple(grad_weight.shape)}): no client, unit "
                         "or input to recover")
    if not grad_weight.is_floating_point() or grad_weight.dtype != grad_bias.dtype:
        raise TypeError(f"gradients must share one floating dtype, got {grad_weight.dtype} and "
                        f"{grad_bias.dtype}")
    if grad_weight.device != grad_bias.device:
        raise ValueError(f"gradients live on different devices: {grad_weight.device} and "
                         f"{grad_bias.device}")
    if finite and not (all_finite(grad_weight) and all_finite(grad_bias)):
        raise ValueError("the gradients contain NaN or inf; a closed form would return garbage. "
                         "Check the client's loss (e.g. log of 0) before attacking.")


def layer_gradients(grads: Mapping[str, Tensor], name: str, parts: Sequence[str],
                    like: Sequence[Tensor] | None = None) -> list[Tensor]:
    """``grads[f"{name}.{part}"]`` for each part, each a floating-point tensor, or a ValueError
    naming the missing keys; with ``like`` (the layer's parameters, in the order of ``parts``),
    each gradient must also end with its parameter's shape (else it is a message of another model)."""
    if not isinstance(grads, Mapping):
        raise TypeError(f"grads must be a dict {{name: gradient}} as from rl.fl.client_update, got "
                        f"{type(grads).__name__}")
    keys = [f"{name}.{part}" for part in parts]
    missing = [key for key in keys if key not in grads]
    if missing:
        raise ValueError(f"grads has no {missing}; it should be keyed like model.named_parameters() "
                         f"(it has {sorted(grads)[:6]}...). A frozen parameter (requires_grad=False) "
                         "sends no gradient, so its layer cannot be attacked from the message")
    entries = [floating_entry(grads[key], "grads", key) for key in keys]
    for key, entry, parameter in zip(keys, entries, like, strict=True) if like is not None else ():
        if entry.shape[-parameter.ndim:] != parameter.shape:
            raise ValueError(f"grads[{key!r}] has shape {tuple(entry.shape)} but the model's "
                             f"{key} is {tuple(parameter.shape)}: the message is of another model")
    return entries


def client_batch(model: nn.Module, x: Tensor, y: Tensor) -> None:
    """A client's batch (x, y) fits ``model``: trainable parameters, a non-empty finite batch of
    the model's input shape (where it records one), same batch size, device and dtype."""
    module(model)
    parameter = next(model.parameters(), None)
    if parameter is None:
        raise ValueError("the model has no parameters, so a client has no gradient to send")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters (all frozen: requires_grad=False), "
                         "so a client has no gradient to send")
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y need the same batch size in dim 0, got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"x is an empty batch (shape {tuple(x.shape)}); a client sends at least one image")
    expected = getattr(model, "in_shape", None)
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"x has images of shape {tuple(x.shape[1:])} but the model takes "
                         f"{tuple(expected)} (x must be B × {tuple(expected)})")
    if x.device != parameter.device or y.device != parameter.device:
        raise ValueError(f"model is on {parameter.device} but x is on {x.device} and y on "
                         f"{y.device}; move them with .to(device)")
    if x.dtype != parameter.dtype:
        raise TypeError(f"x is {x.dtype} but the model is {parameter.dtype}; cast one of them")
    if x.is_floating_point() and not all_finite(x):
        raise ValueError("x contains NaN or inf; the message would be NaN")


def seed(value: object, name: str = "seed") -> int:
    """A random seed: an integer in [0, 2³² − 1] (what NumPy, torch and Python all accept)."""
    return integer(name, value, low=0, high=2**32 - 1)


def module(value: object, name: str = "model") -> nn.Module:
    """A torch ``nn.Module`` (the victim model)."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch nn.Module, got {type(value).__name__}")
    return value


def labels(name: str, value: object, n_classes: int, batch: int | None = None) -> Tensor:
    """Class labels: a 1-D integer tensor (of ``batch`` entries) with values in [0, n_classes)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a tensor of class indices, got {type(value).__name__}")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices (torch.long), got {value.dtype}")
    if value.ndim != 1 or (batch is not None and len(value) != batch):
        want = f"({batch},)" if batch is not None else "(B,)"
        raise ValueError(f"{name} must have shape {want}, one class index per image, got "
                         f"{tuple(value.shape)}")
    if len(value) and (int(value.min()) < 0 or int(value.max()) >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes - 1}] (the model has {n_classes} "
                         f"classes), got values from {int(value.min())} to {int(value.max())}")
    return value


def floating(name: str, dtype: torch.dtype, allowed: Sequence[torch.dtype] = (torch.float32, torch.float64),
             why: str = "its linear algebra has no half-precision kernel") -> None:
    """A dtype an operation supports (LAPACK-backed ops: float32 and float64 only)."""
    if dtype not in allowed:
        raise TypeError(f"{name} has dtype {dtype}, but this needs one of {tuple(allowed)}: {why}; "
                        "cast with .float() or .double()")


def device(value: object, name: str = "device") -> torch.device:
    """A torch device: a ``torch.device`` or a string such as ``"cpu"`` or ``"cuda:0"``."""
    if isinstance(value, torch.device):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a torch.device or a string like 'cpu' or 'cuda', got "
                        f"{type(value).__name__}")
    try:
        return torch.device(value)
    except RuntimeError as err:
        raise ValueError(f"{name}={value!r} is not a torch device; use 'cpu' or 'cuda'") from err


def path(name: str, value: object) -> Path:
    """A file or folder path: a non-empty ``str`` or ``os.PathLike`` (``""`` would mean the
    current folder, silently)."""
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or pathlib.Path), got {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty path, got {value!r}")
    return Path(text).expanduser()


def limit(what: str, amount: float, most: float, unit: str, advice: str) -> None:
    """Refuse a request whose cost would exceed ``most``, stating the cost and the limit.

    ``unit`` is appended to the numbers: ``"B"`` gives "24 GB", ``" equations"`` "3 M equations".
    """
    if amount > most:
        raise ValueError(f"{what} would need {_amount(amount)}{unit}, over the limit of "
                         f"{_amount(most)}{unit}; {advice}")


def tensor(name: str, value: object, arrays: bool = False) -> Tensor:
    """A real-valued tensor with at least one element and no NaN or inf.

    With ``arrays``, NumPy arrays are accepted too (converted without copying). Complex and
    boolean tensors are refused: no metric or attack in the kit is defined on them.
    """
    if arrays and isinstance(value, np.ndarray):
        if value.dtype.kind not in "uif":
            raise TypeError(f"{name} must hold real numbers, got a NumPy array of {value.dtype}")
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, Tensor):
        kinds = "a torch tensor or NumPy array" if arrays else "a torch tensor"
        raise TypeError(f"{name} must be {kinds}, got {type(value).__name__}")
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    if value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)})")
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or inf")
    return value


def _amount(value: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value:.3g}"


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    if low is not None:
        return f">= {low}"
    return f"<= {high}" if high is not None else ""
