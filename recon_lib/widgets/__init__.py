"""Interactive explorers, one per chapter. Their logic is plain functions (tested without a
browser); the ipywidgets wrappers only wire sliders to those functions."""
from types import ModuleType

from . import (
    batches,  # chapter 02: batch size B, width h, method
    convolutions,  # chapter 03: kernel size, stride, padding, kernel count h
    defences,  # chapter 07: defence and its strength
    malicious,  # chapter 09: bins, batch size B, statistic
    medical,  # chapter 05: kernel count h of a hospital's CNN, slice
    one_node,  # chapter 01: depth, activation, width
    optimisation,  # chapter 04: preset, init, steps
    psnr,  # chapter 06: an image distorted to a chosen PSNR
    threat_model,  # chapter 00: batch size B
)

# In chapter order; ``federation`` (chapter 08) is loaded lazily by ``__getattr__`` below.
__all__ = ["threat_model", "one_node", "batches", "convolutions", "optimisation", "medical", "psnr",
           "defences", "malicious"]


def __getattr__(name: str) -> ModuleType:
    """``federation`` (chapter 08) imports Flower: loaded on first use, like ``recon_lib.flower``."""
    if name == "federation":
        import importlib
        return importlib.import_module(f"{__name__}.federation")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
