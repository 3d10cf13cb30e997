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
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

CACHE_VARIABLE = "RECON_DATA_DIR"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff")


@dataclass(frozen=True)
class Remote:
    """One downloadable file: its URL, the checksum pooch verifies (``"sha256:..."``) and,
    where the URL does not end in one, the file's name in the cache."""

    url: str
    known_hash: str
    fname: str = ""


def _idx_files(base: str, digests: tuple[str, str, str, str]) -> dict[str, Remote]:
    """The four gzipped IDX files of an MNIST-style dataset, keyed ``<split>-<images|labels>``."""
    names = {"train-images": "train-images-idx3-ubyte.gz", "train-labels": "train-labels-idx1-ubyte.gz",
             "test-images": "t10k-images-idx3-ubyte.gz", "test-labels": "t10k-labels-idx1-ubyte.gz"}
    return {key: Remote(f"{base}/{name}", f"sha256:{digest}")
            for (key, name), digest in zip(names.items(), digests)}


# SHA-256 values as published with the datasets' standard loaders (torchvision, TFDS and
# others agree); BloodMNIST publishes only an MD5 (MedMNIST's INFO table and Zenodo's record).
REMOTES: dict[str, dict[str, Remote]] = {
    "mnist": _idx_files("https://ossci-datasets.s3.amazonaws.com/mnist", (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")),
    "kmnist": _idx_files("https://codh.rois.ac.jp/kmnist/dataset/kmnist", (
        "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c")),
    "cifar100": {"archive": Remote(
        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        "sha256:58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec")},
    "wbc": {"npz": Remote("https://zenodo.org/records/10519652/files/bloodmnist.npz?download=1",
                          "md5:7053d0359d879ad8a5505303e11de1dc")},
    # default: the public run the sample pack was cut from (its SHA-256 is that of the identical
    # file in the nibabel 5.4.2 wheel); pass path= for any other NIfTI file, e.g. an OpenNeuro run.
    "fmri": {"nifti": Remote(
        "https://github.com/nipy/nibabel/raw/5.4.2/nibabel/tests/data/example4d.nii.gz",
        "sha256:42097dfbab9d2a036b41ae5c97a359591cf2cf5c3f8dc6ca6455c0b8a7f22696")},
    # LFW "funneled" (aligned) photos, scikit-learn's figshare mirror and SHA-256
    "faces": {"archive": Remote(
        "https://ndownloader.figshare.com/files/5976015",
        "sha256:b47c8422c8cded889dc5a13418c4bc2abbda121092b3533a83306f90d900100a",
        "lfw-funneled.tgz")},
}
LFW_DIR = "lfw_funneled"
CIFAR_DIR = "cifar-100-binary"


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """Where downloads live: ``root``, else ``$RECON_DATA_DIR``, else pooch's OS cache folder."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    import pooch
    return Path(pooch.os_cache("recon-course"))


def fetch(name: str, key: str, root: str | os.PathLike | None = None,
          processor: Callable | None = None) -> str | list[str]:
    """Download ``REMOTES[name][key]`` once (progress bar, checksum) and return its local path
    (or, with a pooch ``processor`` such as ``Untar``, the processor's list of paths).

    Raises:
        ValueError: the downloaded bytes do not match the pinned checksum (nothing is kept).
        ConnectionError: the server cannot be reached (offline? use ``source="samples"``).
    """
    import pooch
    import requests
    remote = REMOTES[name][key]
    fname = f"{name}-{remote.fname or Path(urlparse(remote.url).path).name}"
    try:
        return pooch.retrieve(remote.url, known_hash=remote.known_hash, fname=fname,
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


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (the MNIST/KMNIST format; gzipped or not) into a NumPy array.

    Header: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions, then
    each dimension as a big-endian uint32, then the data in C order.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":                     # the gzip magic number
        raw = gzip.decompress(raw)
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in types:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim, dtype = raw[3], np.dtype(types[raw[2]])
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(raw) - offset != dtype.itemsize * int(np.prod(shape)):
        raise ValueError(f"{path}: IDX header says {shape} but the file holds "
                         f"{len(raw) - offset} data bytes")
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def read_cifar_binary(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse a CIFAR-100 binary file: records of <coarse label><fine label><3072 pixels>.

    Returns uint8 images N×3×32×32 (pixels are stored R plane, G plane, B plane, row-major)
    and the fine labels (0-99).
    """
    raw = np.fromfile(path, dtype=np.uint8)
    record = 2 + 3 * 32 * 32
    if raw.size == 0 or raw.size % record:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte "
                         "CIFAR-100 records")
    rows = raw.reshape(-1, record)
    return rows[:, 2:].reshape(-1, 3, 32, 32), rows[:, 1].astype(np.int64)


def read_medmnist(path: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A MedMNIST 2-D ``.npz`` (e.g. BloodMNIST) -> uint8 images N×C×H×W and int labels."""
    with np.load(path, allow_pickle=False) as archive:
        images, labels = archive[f"{split}_images"], archive[f"{split}_labels"]
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    return images, labels.reshape(len(labels), -1)[:, 0].astype(np.int64)


def nifti_slices(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Every axial slice of a 3-D or 4-D NIfTI image, as N×1×H×W raw values and slice indices.

    The image is first turned to the closest RAS+ orientation (axis flips and swaps only, no
    resampling); slices are shown from above with anterior at the top (the neurological
    convention: the subject's right on the image's right). Volumes follow one another.
    """
    import nibabel as nib
    image = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asanyarray(image.dataobj)
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4:
        raise ValueError(f"{path}: expected a 3-D or 4-D image, got shape {data.shape}")
    width, height, depth, volumes = data.shape
    slices = data[:, ::-1].transpose(3, 2, 1, 0).reshape(-1, 1, height, width)
    return np.ascontiguousarray(slices), np.tile(np.arange(depth), volumes)


def read_image_folder(folder: str | os.PathLike, n: int | None, size: int, mode: str = "RGB",
                      central: float = 1.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images from ``folder/<class>/<file>`` (the ImageFolder and LFW layout), square-cropped.

    Classes are the sorted sub-folder names. Files are taken round-robin over classes, so any
    first ``n`` span as many classes as possible; only those ``n`` are decoded (pass ``n`` for
    big folders: all of ImageNet's validation set would need 7.5 GB). Each image keeps its
    ``central`` fraction (LFW: 0.5 keeps the face), is resized (shorter side to ``size``,
    Lanczos) and centre-cropped to ``size``×``size``.
    """
    from PIL import Image, ImageOps
    folder = Path(folder).expanduser()
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
    images = [np.asarray(ImageOps.fit(_central(Image.open(f).convert(mode), central),
                                      (size, size), Image.LANCZOS)) for _, f in order]
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
