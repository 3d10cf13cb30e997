"""Where and how big the course runs: the device and the quick/full profile.

Every notebook starts by printing both, so a learner always knows what they are running:

* the **device** is CUDA when PyTorch sees a GPU, else the CPU;
* the **profile** is ``quick`` (default: small settings, each notebook under a minute on a
  laptop CPU) or ``full`` (paper-scale settings meant for a GPU), chosen with the environment
  variable ``RECON_PROFILE``.
"""
from __future__ import annotations

import os
import random
from typing import TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

PROFILE_VARIABLE = "RECON_PROFILE"
PROFILES = ("quick", "full")
T = TypeVar("T")


def device() -> torch.device:
    """The device the course computes on: the first CUDA GPU if available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def profile() -> str:
    """The active profile, ``"quick"`` or ``"full"``, read from ``$RECON_PROFILE``.

    Raises:
        ValueError: if the variable holds anything else (a typo should not silently run the
            wrong scale).
    """
    name = os.environ.get(PROFILE_VARIABLE, "quick").strip().lower() or "quick"
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_VARIABLE}={name!r} is not a profile; use one of {PROFILES}.")
    return name


def pick(quick: T, full: T) -> T:
    """Return ``quick`` or ``full`` according to the active profile (one switch, many knobs)."""
    return full if profile() == "full" else quick


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """A ``tqdm.auto`` bar that is off when ``enabled`` is False or ``$TQDM_DISABLE`` is set.

    ``tqdm.notebook`` ignores ``$TQDM_DISABLE`` (it turns ``disable=None`` into False), so a
    notebook executed for storage would keep a widget output; this one honours the variable.
    """
    quiet = os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")
    return tqdm(iterable, disable=quiet or not enabled, **kwargs)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a notebook gives the same numbers every run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def banner() -> str:
    """One line for the top of every notebook: profile, device and library versions."""
    return (f"profile={profile()} (set {PROFILE_VARIABLE}=full for paper scale) | "
            f"device={device().type}")
