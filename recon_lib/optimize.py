"""Optimisation attacks: gradient matching (chapters 02 and 04)."""
from __future__ import annotations
