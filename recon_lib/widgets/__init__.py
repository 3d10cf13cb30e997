"""Interactive explorers, one per chapter. Their logic is plain functions (tested without a
browser); the ipywidgets wrappers only wire sliders to those functions."""
from . import threat_model  # chapter 00: batch size B
from . import one_node  # chapter 01: depth, activation, width
from . import batches  # chapter 02: batch size B, width h, method
from . import convolutions  # chapter 03: kernel size, stride, padding, kernel count h
from . import medical  # chapter 05: kernel count h of a hospital's CNN, slice
from . import psnr  # chapter 06: an image distorted to a chosen PSNR
from . import defences  # chapter 07: defence and its strength
from . import optimisation  # chapter 04: preset, init, steps
from . import malicious  # chapter 09: bins, batch size B, statistic


def __getattr__(name: str):
    """``federation`` (chapter 08) imports Flower: loaded on first use, like ``recon_lib.flower``."""
    if name == "federation":
        import importlib
        return importlib.import_module(f"{__name__}.federation")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
