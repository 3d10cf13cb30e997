"""Full datasets: where they are downloaded from, and how their official formats are read.

``rl.datasets.load(name, source="full")`` (chapters 05 and 06, at home with a network) calls
this module. Every download goes through :func:`fetch`, i.e. pooch with a pinned checksum into
a cache folder, so a file is either complete and verified or absent. Files are parsed from the
formats their publishers distribute, never unpickled:

* MNIST and Kuzushiji-MNIST: IDX (gzipped) -> :func:`read_idx`;
* CIFAR-100: the *binary* version (fixed-size records) -> :func:`read_cifar_binary`;
* BloodMNIST (MedMNIST): ``.npz`` loaded with ``allow_pickle=False`` -> :func:`read_medmnist`;
* fMRI: any NIfTI file via nibabel -> :func:`nifti_slices`;
* LFW faces: the funneled ``.tgz``, unpacked to a folder of people -> :func:`read_image_folder`;
* ImageNet: a local folder of class sub-folders -> :func:`read_image_folder` (ImageNet needs
  registration at image-net.org, so it is never downloaded for you).

``REMOTES`` maps each kind to its files; tests point it at a local server with their own
fixture files and hashes, and the very same code path runs.
"""
from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload
from urllib.parse import urlparse

import numpy as np

from . import _validate as check
from .archives import extract
from .kinds import KINDS, Remote

__all__ = ["CACHE_VARIABLE", "CIFAR_DIR", "IMAGE_SUFFIXES", "LFW_DIR", "MAX_BYTES", "REMOTES", "Remote",
           "cache_dir", "extract", "fetch", "nifti_slices", "read_cifar_binary", "read_idx",
           "read_image_folder", "read_medmnist"]

CACHE_VARIABLE = "RECON_DATA_DIR"
# The most memory one load may take (its images as float32): 4 GB, a laptop's spare memory.
MAX_BYTES = 4e9
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff")


# The files of every kind, from its Kind record (recon_lib.kinds); tests point entries at a
# local server.
REMOTES: dict[str, dict[str, Remote]] = {name: dict(kind.remotes) for name, kind in KINDS.items()
                                         if kind.remotes}
LFW_DIR = "lfw_funneled"
CIFAR_DIR = "cifar-100-binary"


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """Where downloads live: ``root``, else ``$RECON_DATA_DIR``, else pooch's OS cache folder."""
    if root is not None:
        return check.path("root", root)
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    import pooch
    return Path(pooch.os_cache("recon-course"))


@overload
def fetch(name: str, key: str, root: str | os.PathLike | None = None, processor: None = None) -> str: ...
@overload
def fetch(name: str, key: str, root: str | os.PathLike | None, processor: Callable) -> Any: ...
def fetch(name: str, key: str, root: str | os.PathLike | None = None,
          processor: Callable | None = None) -> Any:
    """Download ``REMOTES[name][key]`` once (progress bar, checksum) and return its local path
    (or, with a pooch ``processor``, the processor's result; for archives prefer
    :func:`extract`, which unpacks safely on every Python and checks the unpacked files).

    The checksum is checked again on every call: a cached file that was damaged since is
    downloaded again. Further checksums of the remote (``Remote.also``) are checked after it.

    Raises:
        ValueError: unknown ``name`` or ``key``; an empty ``root``; the downloaded bytes do
            not match a pinned checksum (nothing is kept).
        ConnectionError: the server cannot be reached (offline? use ``source="samples"``).
    """
    import pooch
    import requests
    check.choice("name", name, tuple(REMOTES))
    remote = REMOTES[name][check.choice("key", key, tuple(REMOTES[name]))]
    fname = f"{name}-{remote.fname or Path(urlparse(remote.url).path).name}"
    try:
        path = pooch.retrieve(remote.url, known_hash=remote.known_hash, fname=fname,
                              path=cache_dir(root), processor=processor, progressbar=True)
    except ValueError as err:
        if "does not match the known hash" not in str(err):
            raise
        raise ValueError(f"{name}: {remote.url} does not match its pinned checksum "
                         f"{remote.known_hash}; the download was discarded. Retry later, or "
                         f"report it if the publisher changed the file. ({err})") from err
    except requests.exceptions.RequestException as err:
        raise ConnectionError(f"{name}: cannot download {remote.url} ({type(err).__name__}: "
                              f"{err}). Offline? load(..., source='samples') needs no network.") from err
    if remote.also:
        _check_also(name, remote, cache_dir(root) / fname)
    return path


def _check_also(name: str, remote: Remote, path: Path) -> None:
    """The further checksums of ``remote``; a mismatching file is deleted, like pooch does."""
    import pooch
    for expected in remote.also:
        algorithm, digest = expected.split(":")
        if pooch.file_hash(str(path), alg=algorithm) != digest:
            path.unlink(missing_ok=True)
            raise ValueError(f"{name}: {remote.url} matches {remote.known_hash} but not its "
                             f"published {expected}; the file was discarded. Report it.")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (the MNIST/KMNIST format; gzipped or not) into a NumPy array.

    Header: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions, then
    each dimension as a big-endian uint32, then the data in C order.

    Raises:
        ValueError: not an IDX file, a header whose sizes disagree with the data (a truncated
            file, or sizes whose product is absurd), or a damaged gzip stream; naming the file.
    """
    path = check.path("path", path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":                     # the gzip magic number
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as err:
            raise ValueError(f"{path}: damaged or truncated gzip file ({err})") from err
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in types or raw[3] == 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim, dtype = raw[3], np.dtype(types[raw[2]])
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise ValueError(f"{path}: IDX header announces {ndim} dimensions but the file ends "
                         f"after {len(raw)} bytes (truncated?)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = dtype.itemsize * math.prod(shape)     # Python ints: no overflow
    if len(raw) - offset != expected:
        raise ValueError(f"{path}: IDX header says {shape} ({expected} data bytes) but the file "
                         f"holds {len(raw) - offset} data bytes (truncated or damaged?)")
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def read_cifar_binary(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse a CIFAR-100 binary file: records of <coarse label><fine label><3072 pixels>.

    Returns uint8 images N×3×32×32 (pixels are stored R plane, G plane, B plane, row-major)
    and the fine labels (0-99).
    """
    path = check.path("path", path)
    raw = np.fromfile(path, dtype=np.uint8)
    record = 2 + 3 * 32 * 32
    if raw.size == 0 or raw.size % record:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte "
                         "CIFAR-100 records (truncated or damaged?)")
    rows = raw.reshape(-1, record)
    return rows[:, 2:].reshape(-1, 3, 32, 32), rows[:, 1].astype(np.int64)


def read_medmnist(path: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A MedMNIST 2-D ``.npz`` (e.g. BloodMNIST) -> uint8 images N×C×H×W and int labels."""
    path = check.path("path", path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive[f"{split}_images"], archive[f"{split}_labels"]
    except KeyError as err:
        raise ValueError(f"{path} has no split {split!r} ({err}); is it a MedMNIST .npz?") from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: damaged or truncated .npz file ({err})") from err
    if images.ndim not in (3, 4) or len(labels) != len(images):
        raise ValueError(f"{path}: {split} images {images.shape} and labels {labels.shape} are "
                         "not a MedMNIST 2-D split")
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    return images, labels.reshape(len(labels), -1)[:, 0].astype(np.int64)


def nifti_slices(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Every axial slice of a 3-D or 4-D NIfTI image, as N×1×H×W raw values and slice indices.

    The image is first turned to the closest RAS+ orientation (axis flips and swaps only, no
    resampling); slices are shown from above with anterior at the top (the neurological
    convention: the subject's right on the image's right). Volumes follow one another.

    Raises:
        ValueError: not a readable NIfTI image (missing, truncated, damaged), naming the file;
            an image that is not 3-D or 4-D; one larger than :data:`MAX_BYTES` as float32.
    """
    import nibabel as nib
    path = check.path("path", path)
    damage = (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError)
    try:
        image = nib.as_closest_canonical(nib.load(str(path)))
    except damage as err:
        raise _unreadable(path, err) from err
    check.limit(f"{path} as float32", 4 * math.prod(image.shape), MAX_BYTES, "B", "use a smaller image")
    try:
        data = np.asanyarray(image.dataobj)
    except damage as err:
        raise _unreadable(path, err) from err
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4:
        raise ValueError(f"{path}: expected a 3-D or 4-D image, got shape {data.shape}")
    width, height, depth, volumes = data.shape
    slices = data[:, ::-1].transpose(3, 2, 1, 0).reshape(-1, 1, height, width)
    return np.ascontiguousarray(slices), np.tile(np.arange(depth), volumes)


def _unreadable(path: Path, err: Exception) -> ValueError:
    return ValueError(f"{path}: cannot read this NIfTI file ({type(err).__name__}: {err}); is it "
                      "missing, truncated or damaged?")


def read_image_folder(folder: str | os.PathLike, n: int | None, size: int, mode: str = "RGB",
                      central: float = 1.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images from ``folder/<class>/<file>`` (the ImageFolder and LFW layout), square-cropped.

    Classes are the sorted sub-folder names. Files are taken round-robin over classes, so any
    first ``n`` span as many classes as possible; only those ``n`` are decoded (pass ``n`` for
    big folders: all of ImageNet's validation set would need 7.5 GB, and requests above
    :data:`MAX_BYTES` as float32 are refused before decoding). Each image keeps its
    ``central`` fraction (LFW: 0.5 keeps the face), is resized (shorter side to ``size``,
    Lanczos) and centre-cropped to ``size``×``size``.

    Raises:
        ValueError: not a folder, no images, too many bytes, or an image that cannot be
            decoded (truncated, damaged), naming the file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError
    folder = check.path("folder", folder)
    size = check.integer("size", size, low=1)
    mode = check.choice("mode", mode, ("RGB", "L"))
    central = check.real("central", central, low=0.0, high=1.0, open_low=True)
    if n is not None:
        n = check.integer("n", n, low=1)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; expected one sub-folder per class")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    per_class = [sorted(f for f in (folder / c).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
                 for c in classes]
    order = [(label, files[i]) for i in range(max(map(len, per_class), default=0))
             for label, files in enumerate(per_class) if i < len(files)]
    if not order:
        raise ValueError(f"{folder} holds no images in class sub-folders ({IMAGE_SUFFIXES})")
    order = order[:n] if n is not None else order
    check.limit(f"{len(order)} images of {len(mode)}×{size}×{size} from {folder}",
                4 * len(order) * len(mode) * size * size, MAX_BYTES, "B",
                "pass n= (fewer images) or a smaller size")
    images = []
    for _, file in order:
        try:
            with Image.open(file) as opened:
                image = _central(opened.convert(mode), central)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
            raise ValueError(f"{file}: cannot decode this image ({err}); is it truncated or "
                             "damaged?") from err
        images.append(np.asarray(ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)))
    stack = np.stack(images)
    stack = stack[:, None] if stack.ndim == 3 else stack.transpose(0, 3, 1, 2)
    return stack, np.array([label for label, _ in order], dtype=np.int64), classes


def _central(image, fraction: float):
    """The centred ``fraction`` of a PIL image in each direction (1.0: the whole image)."""
    if fraction >= 1:
        return image
    width, height = image.size
    left, top = round(width * (1 - fraction) / 2), round(height * (1 - fraction) / 2)
    return image.crop((left, top, width - left, height - top))
