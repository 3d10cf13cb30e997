"""What a solver says when its answer cannot be trusted: one warning and one error class.

A closed form or solver that does not reproduce the message it was given returns a wrong image;
the library never does that silently. It raises :class:`ReconstructionError` (a ``ValueError``)
when asked to be strict, and otherwise warns with :class:`ReconstructionWarning`, which a
caller can filter or turn into an error
(``warnings.simplefilter("error", rl.ReconstructionWarning)``).
This module imports nothing of the library, so every layer may use it.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


class ReconstructionWarning(UserWarning):
    """A result that does not reproduce the message, or a solver that stopped before its tolerance."""


class ReconstructionError(ValueError):
    """A strict reconstruction that does not reproduce the message (e.g. a rank-deficient layer)."""


@contextmanager
def scored_against_truth() -> Iterator[None]:
    """Silence :class:`ReconstructionWarning` in a block whose results are scored against the
    private data (a study, a benchmark, a scored widget): there the score says whether each image
    is right, and one warning per failed seed would bury the table a learner is reading."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReconstructionWarning)
        yield
