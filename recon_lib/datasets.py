"""Real images for the course (interim: faces only; the data issue adds all seven kinds).

``load(name, n=None, size=None, source="samples", root=None) -> (x, y)`` returns a float
tensor N×C×H×W in [0, 1] and integer labels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

NAMES = ("faces",)


def _faces() -> tuple[np.ndarray, np.ndarray]:
    from skimage.data import lfw_subset
    faces = lfw_subset()[:100].astype(np.float32)
    return faces[:, None], np.zeros(len(faces), dtype=np.int64)


def load(name: str, n: int | None = None, size: int | tuple[int, int] | None = None,
         source: str = "samples", root: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """Load ``n`` real images of kind ``name`` as (x, y); ``size`` resizes (antialiased)."""
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {NAMES}")
    images, labels = _faces()
    if n is not None:
        if not 1 <= n <= len(images):
            raise ValueError(f"n={n} but {name!r} has {len(images)} images")
        images, labels = images[:n], labels[:n]
    x = torch.from_numpy(images)
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x, torch.from_numpy(labels)
