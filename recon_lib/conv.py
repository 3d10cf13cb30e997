"""Convolution as a linear map, and solving it matrix-free (chapter 03)."""
from __future__ import annotations
