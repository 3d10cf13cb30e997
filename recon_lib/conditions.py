"""When can inputs be reconstructed? The paper's counting conditions, checked numerically.

* Batches (chapter 02, Claim 2): a batch of B inputs needs h ≥ B first-layer units.
* Convolutions (chapter 03, Claim 3): a conv layer needs h ≥ (d/d′)² C kernels.
"""
from __future__ import annotations


# --- Batches (chapter 02) ------------------------------------------------------------------


# --- Convolutions (chapter 03) -------------------------------------------------------------
