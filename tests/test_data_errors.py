"""Bad data and bad requests get clear errors: damaged pack files, huge sizes, truncated user
files, absurd IDX headers, unknown download keys, empty paths, a file failing its second pin."""
import gzip
import hashlib
import io
import shutil
import struct

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import recon_lib as rl
from recon_lib import datasets, sources


# ---------------------------------------------------------------- the installed sample pack
@pytest.fixture
def pack_copy(tmp_path, monkeypatch):
    """A copy of the pack in a temporary folder that the loader reads instead."""
    copy = tmp_path / "data"
    shutil.copytree(datasets.DATA_DIR, copy)
    monkeypatch.setattr(datasets, "DATA_DIR", copy)
    return copy


def truncate(path, keep=0.5):
    path.write_bytes(path.read_bytes()[:int(path.stat().st_size * keep)])


def flip_a_byte(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", [truncate, flip_a_byte, lambda p: p.write_bytes(b"")])
@pytest.mark.parametrize("call", [lambda: rl.datasets.load("mnist"),
                                  lambda: rl.datasets.label_names("mnist")])
def test_a_damaged_pack_file_is_named_with_reinstall_advice(pack_copy, damage, call):
    damage(pack_copy / "mnist.npz")
    with pytest.raises(OSError, match=r"mnist\.npz is damaged.*reinstall"):
        call()
    assert rl.datasets.load("cifar100", n=1)[0].shape == (1, 3, 32, 32)   # the others still load


def test_a_pack_file_with_wrong_arrays_is_damaged_too(pack_copy):
    with np.load(pack_copy / "wbc.npz") as pack:
        arrays = dict(pack)
    arrays["labels"] = arrays["labels"][:-1]
    np.savez(pack_copy / "wbc.npz", **arrays)
    with pytest.raises(OSError, match=r"wbc\.npz is damaged \(images .* labels \(3,\)"):
        rl.datasets.load("wbc")


# ---------------------------------------------------------------- sizes
@pytest.mark.parametrize("request_", [dict(name="mnist", size=100_000),
                                      dict(name="imagenet", size=(20_000, 30_000)),
                                      dict(name="fmri", n=48, size=8192)])
def test_sizes_that_would_take_tens_of_gigabytes_are_refused_with_the_limit(request_):
    with pytest.raises(ValueError, match=r"would need [\d.]+ [GT]B, over the limit of 4 GB; ask for fewer"):
        rl.datasets.load(**request_)


def test_a_big_folder_is_refused_before_any_image_is_decoded(tmp_path, monkeypatch):
    folder = tmp_path / "val" / "n01440764"
    folder.mkdir(parents=True)
    (folder / "0.png").write_bytes(b"not decoded: refused before")
    monkeypatch.setattr(sources, "MAX_BYTES", 1e5)
    with pytest.raises(ValueError, match=r"1 images of 3×224×224 .* over the limit of 100 kB; pass n="):
        rl.datasets.load("imagenet", source="full", path=tmp_path / "val")


# ---------------------------------------------------------------- user files (path=)
def test_a_truncated_nifti_names_the_file(tmp_path):
    run = tmp_path / "bold.nii.gz"
    volume = np.arange(6 * 5 * 3 * 2, dtype=np.int16).reshape(6, 5, 3, 2)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(run))
    truncate(run, 0.6)
    with pytest.raises(ValueError, match=r"bold\.nii\.gz: cannot read this NIfTI file.*truncated"):
        rl.datasets.load("fmri", source="full", path=run)
    raw = tmp_path / "bold.nii"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 4), np.float32), np.eye(4)), str(raw))
    truncate(raw, 0.7)
    with pytest.raises(ValueError, match=r"bold\.nii: cannot read this NIfTI file"):
        rl.datasets.load("fmri", source="full", path=raw)
    with pytest.raises(ValueError, match=r"missing\.nii\.gz: cannot read"):
        rl.datasets.load("fmri", source="full", path=tmp_path / "missing.nii.gz")


@pytest.mark.parametrize("name, mode", [("imagenet", "RGB"), ("faces", "L")])
def test_a_truncated_image_in_a_folder_names_the_file(tmp_path, name, mode):
    folder = tmp_path / "people" / "Ada"
    folder.mkdir(parents=True)
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "PNG")
    (folder / "ada.png").write_bytes(buffer.getvalue()[:300])
    with pytest.raises(ValueError, match=r"ada\.png: cannot decode this image.*truncated"):
        rl.datasets.load(name, source="full", path=tmp_path / "people")


def idx_file(path, header: bytes, data: bytes = b"", compress=True):
    path.write_bytes(gzip.compress(header + data) if compress else header + data)
    return path


def test_idx_headers_with_absurd_sizes_are_refused_without_overflow(tmp_path):
    huge = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1)
    with pytest.raises(ValueError, match=r"header says \(4294967295, 4294967295, 4294967295\) \("
                                         r"79228162458924105385300197375 data bytes\) but the file holds 4"):
        sources.read_idx(idx_file(tmp_path / "huge", huge, b"abcd"))
    wraps = struct.pack(">BBBB", 0, 0, 0x0E, 4) + struct.pack(">4I", 2**16, 2**16, 2**16, 2**16)
    with pytest.raises(ValueError, match="but the file holds 0 data bytes"):   # 8·2⁶⁴ wraps to 0 in int64
        sources.read_idx(idx_file(tmp_path / "wraps", wraps, compress=False))
    many = struct.pack(">BBBB", 0, 0, 0x08, 200)
    with pytest.raises(ValueError, match="announces 200 dimensions but the file ends after 4 bytes"):
        sources.read_idx(idx_file(tmp_path / "many", many))


def test_a_truncated_gzip_idx_names_the_file(tmp_path):
    whole = gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 1000) + bytes(1000))
    (tmp_path / "labels.gz").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=r"labels\.gz: damaged or truncated gzip file"):
        sources.read_idx(tmp_path / "labels.gz")


def test_a_damaged_or_foreign_medmnist_file_is_named(tmp_path):
    good = tmp_path / "blood.npz"
    np.savez(good, test_images=np.zeros((2, 28, 28, 3), np.uint8), test_labels=np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"blood\.npz has no split 'val'"):
        sources.read_medmnist(good, "val")
    truncate(good)
    with pytest.raises(ValueError, match=r"blood\.npz: damaged or truncated \.npz"):
        sources.read_medmnist(good, "test")


# ---------------------------------------------------------------- downloads: keys, roots, pins
def test_fetch_with_an_unknown_name_or_key_lists_the_choices():
    with pytest.raises(ValueError, match=r"name must be one of \(.*'mnist'.*\), got 'cifar10'"):
        sources.fetch("cifar10", "archive")
    with pytest.raises(ValueError, match=r"key must be one of \('train-images', .*\), got 'images'"):
        sources.fetch("mnist", "images")


@pytest.mark.parametrize("root, error", [("", ValueError), ("   ", ValueError), (5, TypeError),
                                         (b"cache", TypeError), (["cache"], TypeError)])
def test_empty_or_non_path_roots_and_paths_are_refused(root, error, tmp_path):
    with pytest.raises(error, match="root must be a"):
        rl.datasets.load("mnist", source="full", root=root)
    with pytest.raises(error, match="root must be a"):
        sources.cache_dir(root)
    with pytest.raises(error, match="path must be a"):
        rl.datasets.load("fmri", source="full", path=root)


def test_bloodmnist_pins_a_sha256_beside_the_published_md5():
    remote = sources.REMOTES["wbc"]["npz"]
    assert remote.known_hash.startswith("sha256:") and len(remote.known_hash) == 7 + 64
    assert remote.also == ("md5:7053d0359d879ad8a5505303e11de1dc",)


def test_a_file_that_fails_its_second_pin_is_discarded(server, cache, monkeypatch):
    payload = b"a file whose sha256 matches but whose md5 does not"
    (server.folder / "blood.npz").write_bytes(payload)
    monkeypatch.setitem(sources.REMOTES, "wbc", {"npz": sources.Remote(
        f"{server.url}/blood.npz", f"sha256:{hashlib.sha256(payload).hexdigest()}",
        also=(f"md5:{hashlib.md5(b'other bytes').hexdigest()}",))})
    with pytest.raises(ValueError, match="but not its published md5:.*discarded"):
        rl.datasets.load("wbc", source="full", root=cache)
    assert not [p for p in cache.rglob("*") if p.is_file()]
