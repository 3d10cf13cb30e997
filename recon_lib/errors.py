"""What a solver says when its answer cannot be trusted: one warning and one error class.

A closed form or solver that does not reproduce the message it was given returns a wrong image;
the library never does that silently. It raises :class:`ReconstructionError` (a ``ValueError``)
when asked to be strict, and otherwise warns with :class:`ReconstructionWarning`, which a
caller can filter or turn into an error
(``warnings.simplefilter("error", rl.ReconstructionWarning)``).
This module imports nothing, so every layer may use it.
"""
from __future__ import annotations


class ReconstructionWarning(UserWarning):
    """A result that does not reproduce the message, or a solver that stopped before its tolerance."""


class ReconstructionError(ValueError):
    """A strict reconstruction that does not reproduce the message (e.g. a rank-deficient layer)."""
