"""Where and how big the course runs: the device and the quick/full profile.

Every notebook starts by printing both, so a learner always knows what they are running:

* the **device** is CUDA when PyTorch sees a GPU, else the CPU;
* the **profile** is ``quick`` (default: small settings, each notebook under a minute on a
  laptop CPU) or ``full`` (paper-scale settings meant for a GPU), chosen with the environment
  variable ``RECON_PROFILE``;
* the **intra-op threads** of an attack: :func:`threads_for` runs problems too small to gain
  from parallel ops on one thread. With torch's default of one thread per core, every small op
  ends in a barrier that waits for all threads; when another program keeps one core busy (a
  browser beside the notebook) each barrier waits for a descheduled thread, and an attack that
  takes 3 s on one thread took 40-90 s on two (measured, 2-core CPU, LeNet-DLG at 32×32).
  :func:`small_problem` also turns oneDNN (mkldnn) convolutions off for such problems: on
  LeNet-DLG's 32×32 attack torch's native convolutions made one evaluation of the matching
  loss 27 % faster (2.2 ms against 2.9 ms, one thread).
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

PROFILE_VARIABLE = "RECON_PROFILE"
PROFILES = ("quick", "full")
T = TypeVar("T")
# Below this many elements in the largest tensor an op handles, intra-op threads cost more in
# synchronisation than they save (a 3×224×224 image has 150 528; LeNet-DLG's 32×32 attack 3072).
SMALL_PROBLEM = 1 << 16


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
    """Seed Python, NumPy and PyTorch so that a notebook gives the same numbers every run.

    Raises:
        ValueError: ``seed`` is not an integer in [0, 2³² − 1] (NumPy's range). The check is
            written here because this module sits in the lowest layer beside ``_validate``.
    """
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def banner() -> str:
    """One line for the top of every notebook: profile, device and library versions."""
    return (f"profile={profile()} (set {PROFILE_VARIABLE}=full for paper scale) | "
            f"device={device().type}")


@contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads, then restore the caller's setting.

    ``None`` leaves the setting alone. The caller's value is restored even when the block
    raises, so a notebook that chose its own threads keeps them.
    """
    before = torch.get_num_threads()
    if count is not None and count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def small_problem(elements: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run a problem of ``elements`` (its largest tensor) the way small problems run fastest on
    a CPU: one intra-op thread (:func:`threads_for`) and torch's native convolutions instead
    of oneDNN's, whose per-call set-up outweighs the work on tiny images. Larger problems and
    CUDA keep the caller's settings; the caller's settings are restored afterwards."""
    threads = threads_for(elements, device)
    onednn = bool(torch.backends.mkldnn.enabled)  # (its flags() context manager warns about TF32)
    with intra_op_threads(threads):
        torch.backends.mkldnn.enabled = onednn and threads is None  # type: ignore[assignment]
        try:
            yield
        finally:
            torch.backends.mkldnn.enabled = onednn  # type: ignore[assignment]


def threads_for(elements: int, device: torch.device | str | None = None) -> int | None:
    """The intra-op threads a problem should use: 1 for a CPU problem below :data:`SMALL_PROBLEM`
    elements, else None (keep the caller's setting; CUDA does not use them)."""
    on_cpu = device is None or torch.device(device).type == "cpu"
    return 1 if on_cpu and elements < SMALL_PROBLEM else None

