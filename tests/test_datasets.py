"""rl.datasets: the offline sample pack, describe(), and the full-dataset path end to end.

The full path is tested for real and offline: fixture files written in each official format
(IDX, CIFAR-100 binary, MedMNIST npz, NIfTI, image folders) are served by a local HTTP server
on 127.0.0.1 and fetched through the same pooch code with the real checksum check.
"""
import gzip
import hashlib
import importlib.util
import io
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.nn import functional as F

import recon_lib as rl
from recon_lib import datasets, sources

CHANNELS = {"fmri": 1, "wbc": 3, "mnist": 1, "kmnist": 1, "cifar100": 3, "imagenet": 3, "faces": 1}


# ---------------------------------------------------------------- the offline sample pack
@pytest.mark.parametrize("name", datasets.NAMES)
def test_every_kind_loads_offline_as_float_images_in_unit_range(name):
    x, y = rl.datasets.load(name)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.ndim == 4 and x.shape[1] == CHANNELS[name] and len(y) == len(x) >= 1
    assert 0 <= x.min() and x.max() <= 1 and x.max() > x.min()
    assert x.is_contiguous()


def test_the_pack_is_small_plain_arrays_and_fully_attributed():
    files = sorted(datasets.DATA_DIR.glob("*.npz"))
    assert {f.stem for f in files} == set(datasets.NAMES) - {"faces"}
    assert sum(f.stat().st_size for f in files) < 5e6
    attribution = (datasets.DATA_DIR / "ATTRIBUTION.md").read_text()
    for f in files:
        with np.load(f, allow_pickle=False) as pack:      # no object arrays anywhere
            assert set(pack.files) == {"images", "scale", "labels", "classes"}
            assert pack["images"].dtype.kind == "u" and pack["images"].ndim == 4
            assert len(pack["labels"]) == len(pack["images"])
        assert f"`{f.name}`" in attribution


def test_faces_are_the_first_100_lfw_crops_unchanged():
    from skimage.data import lfw_subset
    x, y = rl.datasets.load("faces")
    expected = torch.from_numpy(lfw_subset()[:100].astype(np.float32))
    assert x.shape == (100, 1, 25, 25) and torch.equal(x[:, 0], expected)
    assert torch.equal(y, torch.zeros(100, dtype=torch.int64))


def test_fmri_pack_holds_the_raw_values_of_nibabels_example_run():
    from nibabel.testing import data_path
    raw, slice_index = sources.nifti_slices(os.path.join(data_path, "example4d.nii.gz"))
    x, y = rl.datasets.load("fmri")
    assert torch.allclose(x * float(raw.max()), torch.from_numpy(raw.astype(np.float32)), atol=1e-3)
    assert torch.equal(y, torch.from_numpy(slice_index))


def test_provenance_script_rebuilds_the_fmri_pack_exactly():
    rebuilt = build_script().build_fmri()               # needs nibabel only (the other kinds: wheels)
    with np.load(datasets.DATA_DIR / "fmri.npz", allow_pickle=False) as pack:
        assert all(np.array_equal(rebuilt[key], pack[key]) for key in pack.files)


def build_script():
    script = Path(__file__).resolve().parents[1] / "scripts" / "build_sample_pack.py"
    spec = importlib.util.spec_from_file_location("build_sample_pack", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_kind_record_drives_names_remotes_pack_script_and_attribution():
    from recon_lib import kinds
    assert datasets.NAMES == tuple(kinds.KINDS) and datasets.KINDS is kinds.KINDS
    assert sources.REMOTES == {n: dict(k.remotes) for n, k in kinds.KINDS.items() if k.remotes}
    assert rl.benchmark.N_CLASSES == {n: k.classes for n, k in kinds.KINDS.items()}
    assert {n: (p.start, p.stop) for n, p in rl.benchmark.POOLS.items()} == {
        n: k.pool for n, k in kinds.KINDS.items() if k.pool}
    for profile, chosen in rl.benchmark.SETTINGS.items():
        assert dict(chosen.sizes) == {n: k.benchmark_sizes[profile] for n, k in kinds.KINDS.items()
                                      if profile in k.benchmark_sizes}
    packed = {n for n, k in kinds.KINDS.items() if k.packed}
    assert {f.stem for f in datasets.DATA_DIR.glob("*.npz")} == packed
    script = build_script()
    assert all(callable(getattr(script, f"build_{name}", None)) for name in packed)
    committed = (datasets.DATA_DIR / "ATTRIBUTION.md").read_text()
    assert committed == rl.datasets.attribution(), "rerun scripts/build_sample_pack.py (or write " \
        "rl.datasets.attribution() to recon_lib/data/ATTRIBUTION.md)"
    for name, kind in kinds.KINDS.items():
        assert kind.title in committed and kind.licence in committed
        assert rl.datasets.describe(name).startswith(f"{kind.title} [{kind.status}]")
        assert set(kind.splits) >= ({"test"} if kind.splits else set())
        assert not kind.labels or rl.datasets.label_names(name) == kind.labels


def test_mnist_and_kmnist_packs_interleave_classes_so_any_first_ten_are_distinct():
    for name in ("mnist", "kmnist"):
        _, y = rl.datasets.load(name, n=10)
        assert sorted(y.tolist()) == list(range(10))


def test_label_names_match_the_labels_of_the_pack():
    assert rl.datasets.label_names("wbc")[rl.datasets.load("wbc", n=1)[1].item()] == "neutrophil"
    assert rl.datasets.label_names("kmnist")[:3] == ("お", "き", "す")
    assert rl.datasets.label_names("mnist") == tuple(str(d) for d in range(10))
    assert rl.datasets.label_names("faces") == ("face",)
    assert rl.datasets.label_names("imagenet") == ()
    for name in ("fmri", "wbc", "mnist", "kmnist"):
        assert rl.datasets.load(name)[1].max() < len(rl.datasets.label_names(name))


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(datasets.NAMES), data=st.data())
def test_any_valid_n_and_size_give_that_many_images_of_that_size(name, data):
    everything, labels = rl.datasets.load(name)
    n = data.draw(st.integers(1, len(everything)), label="n")
    size = data.draw(st.tuples(st.integers(1, 40), st.integers(1, 40)), label="size")
    x, y = rl.datasets.load(name, n=n, size=size)
    assert x.shape == (n, CHANNELS[name], *size) and torch.equal(y, labels[:n])
    assert 0 <= x.min() and x.max() <= 1 and torch.isfinite(x).all()


@pytest.mark.parametrize("name", datasets.NAMES)
def test_describe_says_what_where_licence_and_real_or_stand_in(name):
    text = rl.datasets.describe(name)
    headline = text.splitlines()[0]
    assert ("[real]" in headline) != ("[STAND-IN]" in headline)
    assert ("[STAND-IN]" in headline) == (name == "kmnist")
    for field in ("sample pack:", "source:", "licence:", "full data"):
        assert field in text


def test_kmnist_stand_in_says_how_to_get_the_real_one():
    text = rl.datasets.describe("kmnist")
    assert "NOT real KMNIST" in text and "source='full'" in text


def test_n_takes_the_first_images_and_size_resizes_with_antialiasing():
    full, labels = rl.datasets.load("imagenet")
    x, y = rl.datasets.load("imagenet", n=3, size=32)
    assert x.shape == (3, 3, 32, 32) and torch.equal(y, labels[:3])
    expected = F.interpolate(full[:3], size=(32, 32), mode="bilinear", antialias=True)
    assert torch.allclose(x, expected.clamp(0, 1))
    # antialiasing averages: a 4x smaller image keeps each image's mean brightness
    assert torch.allclose(x.mean((1, 2, 3)), full[:3].mean((1, 2, 3)), atol=0.01)
    assert rl.datasets.load("mnist", n=2, size=(32, 20))[0].shape == (2, 1, 32, 20)


def test_bad_requests_get_clear_errors_listing_the_options():
    with pytest.raises(ValueError, match="choose one of.*fmri.*faces"):
        rl.datasets.load("cifar10")
    with pytest.raises(ValueError, match="source must be one of.*samples.*full"):
        rl.datasets.load("mnist", source="web")
    with pytest.raises(ValueError, match=r"n=21 but 'cifar100' \(samples\) has 20 images"):
        rl.datasets.load("cifar100", n=21)
    for n in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="positive integer"):
            rl.datasets.load("mnist", n=n)
    for size in (0, -4, (1, 2, 3), (8, 0), "big", 2.5, (8.0, 8)):
        with pytest.raises(ValueError, match="size must be"):
            rl.datasets.load("mnist", size=size)
    for misplaced in ({"split": "train"}, {"path": "x.nii"}, {"root": "cache"}):
        with pytest.raises(ValueError, match="source='full' only"):
            rl.datasets.load("mnist", **misplaced)
    with pytest.raises(ValueError, match="choose one of"):
        rl.datasets.describe("lfw")


# ---------------------------------------------------------------- official-format fixtures
def idx_bytes(array: np.ndarray) -> bytes:
    """IDX written independently of the reader: magic 0 0 0x08 ndim, big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def cifar_tar(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """A cifar-100-binary.tar.gz: per split, records <coarse><fine><R plane><G plane><B plane>."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for split, (images, fine) in splits.items():
            rows = [bytes([f // 5, f]) + img.tobytes() for img, f in zip(images, fine, strict=True)]
            payload = b"".join(rows)
            info = tarfile.TarInfo(f"cifar-100-binary/{split}.bin")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def mnist_style(rng, count):
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), rng.integers(0, 10, count).astype(np.uint8)


# ---------------------------------------------------------------- the full path, end to end
@pytest.mark.parametrize("name", ["mnist", "kmnist"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_datasets_download_verify_and_parse(publish, name, split, server, monkeypatch, cache):
    rng = np.random.default_rng(1)
    files = {}
    for part, count in (("train", 9), ("test", 7)):
        images, labels = mnist_style(rng, count)
        files[f"{part}-images"], files[f"{part}-labels"] = idx_bytes(images), idx_bytes(labels)
        if part == split:
            expected = images, labels
    publish(name, files, key_of=lambda key: f"{key}.gz")
    x, y = rl.datasets.load(name, source="full", root=cache, split=split)
    assert x.shape == (len(expected[0]), 1, 28, 28)
    assert torch.equal((x[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(expected[0]))
    assert torch.equal(y, torch.from_numpy(expected[1].astype(np.int64)))


def test_second_load_hits_the_cache_with_the_server_gone(publish, server, monkeypatch, cache):
    images, labels = mnist_style(np.random.default_rng(2), 5)
    publish("mnist", {"test-images": idx_bytes(images),
                                           "test-labels": idx_bytes(labels)})
    first = rl.datasets.load("mnist", n=4, source="full", root=cache)
    server.stop()
    second = rl.datasets.load("mnist", n=4, source="full", root=cache)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert len(files_under(cache)) == 2


def test_downloads_show_a_progress_bar(server, cache):
    """In a fresh interpreter: tqdm reads TQDM_DISABLE (set for stored outputs) at import."""
    payload = bytes(range(256)) * 400
    (server.folder / "blob.bin").write_bytes(payload)
    code = ("import sys; from recon_lib import sources; "
            "sources.REMOTES['demo'] = {'blob': sources.Remote(sys.argv[1], sys.argv[2])}; "
            "sources.fetch('demo', 'blob', sys.argv[3])")
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    env["PYTHONPATH"] = str(Path(sources.__file__).resolve().parents[1])
    run = subprocess.run([sys.executable, "-c", code, f"{server.url}/blob.bin",
                          f"sha256:{hashlib.sha256(payload).hexdigest()}", str(cache)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "100%" in run.stderr and "102k/102k" in run.stderr


def test_a_corrupted_download_is_rejected_and_leaves_nothing_behind(publish, server, monkeypatch, cache):
    images, labels = mnist_style(np.random.default_rng(3), 5)
    publish("mnist", {"test-images": idx_bytes(images),
                                           "test-labels": idx_bytes(labels)})
    served = server.folder / "test-images"
    served.write_bytes(served.read_bytes()[:-10] + b"corrupted!")   # same size, wrong bytes
    with pytest.raises(ValueError, match="does not match its pinned checksum.*discarded"):
        rl.datasets.load("mnist", source="full", root=cache)
    assert files_under(cache) == []


def test_no_network_and_no_cache_is_a_clear_connection_error(publish, server, monkeypatch, cache):
    images, labels = mnist_style(np.random.default_rng(4), 3)
    publish("kmnist", {"test-images": idx_bytes(images),
                                            "test-labels": idx_bytes(labels)})
    server.stop()
    with pytest.raises(ConnectionError, match=r"cannot download.*source='samples'\) needs no network"):
        rl.datasets.load("kmnist", source="full", root=cache)
    assert files_under(cache) == []


def test_a_missing_file_on_the_server_is_reported_with_its_status(server, monkeypatch, cache):
    monkeypatch.setitem(sources.REMOTES, "mnist", {
        key: sources.Remote(f"{server.url}/nowhere/{key}", "sha256:" + "0" * 64)
        for key in ("test-images", "test-labels")})
    with pytest.raises(ConnectionError, match="404"):
        rl.datasets.load("mnist", source="full", root=cache)
    assert files_under(cache) == []


def test_cifar100_binary_archive_is_unpacked_and_parsed_per_split(publish, server, monkeypatch, cache):
    rng = np.random.default_rng(5)
    splits = {s: (rng.integers(0, 256, (k, 3, 32, 32), dtype=np.uint8), rng.integers(0, 100, k))
              for s, k in (("train", 6), ("test", 4))}
    publish("cifar100", {"archive": cifar_tar(splits)},
            key_of=lambda key: "cifar-100-binary.tar.gz")
    for split, (images, fine) in splits.items():
        x, y = rl.datasets.load("cifar100", source="full", root=cache, split=split)
        assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(images))
        assert torch.equal(y, torch.from_numpy(fine.astype(np.int64)))


def test_archives_and_idx_pairs_that_do_not_fit_are_refused(publish, server, monkeypatch, cache):
    rng = np.random.default_rng(8)
    only_train = {"train": (rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8), np.arange(2))}
    publish("cifar100", {"archive": cifar_tar(only_train)},
            key_of=lambda key: "cifar-100-binary.tar.gz")
    with pytest.raises(ValueError, match="archive holds no cifar-100-binary/test.bin"):
        rl.datasets.load("cifar100", source="full", root=cache)
    images, labels = mnist_style(rng, 4)
    publish("mnist", {"test-images": idx_bytes(images),
                                           "test-labels": idx_bytes(labels[:3])})
    with pytest.raises(ValueError, match="disagree"):
        rl.datasets.load("mnist", source="full", root=cache)


def test_bloodmnist_npz_with_md5_pin_and_channel_order(publish, server, monkeypatch, cache):
    rng = np.random.default_rng(6)
    arrays = {}
    for split, k in (("train", 5), ("val", 3), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (k, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 8, (k, 1))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    publish("wbc", {"npz": buffer.getvalue()}, algorithm="md5",
            key_of=lambda key: "bloodmnist.npz")
    x, y = rl.datasets.load("wbc", source="full", root=cache, split="val", size=56)
    assert x.shape == (3, 3, 56, 56)
    x, y = rl.datasets.load("wbc", source="full", root=cache, split="val")
    assert torch.equal((x * 255).round().to(torch.uint8),
                       torch.from_numpy(arrays["val_images"].transpose(0, 3, 1, 2)))
    assert torch.equal(y, torch.from_numpy(arrays["val_labels"][:, 0]))


def marked_run(tmp_path) -> Path:
    """A 4-D LAS-oriented NIfTI whose brightest voxel sits right-most and anterior-most."""
    data = np.full((6, 5, 3, 2), 100, dtype=np.int16)
    data[0, 4, 1, 1] = 900                     # voxel i=0 is the subject's right (x flipped)
    path = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([-2.0, 2.0, 2.0, 1.0])), str(path))
    return path


def test_fmri_from_a_local_nifti_is_oriented_and_scaled(tmp_path):
    x, y = rl.datasets.load("fmri", source="full", path=marked_run(tmp_path))
    assert x.shape == (6, 1, 5, 6) and y.tolist() == [0, 1, 2, 0, 1, 2]
    bright = (x == 1).nonzero().tolist()
    assert bright == [[4, 0, 0, 5]]            # volume 2, slice 1: top row, right-hand column
    assert x.min() == 0


def test_fmri_default_url_is_fetched_through_pooch(publish, server, monkeypatch, cache, tmp_path):
    publish("fmri", {"nifti": marked_run(tmp_path).read_bytes()},
            key_of=lambda key: "example4d.nii.gz")
    x, _ = rl.datasets.load("fmri", source="full", root=cache, n=4, size=10)
    assert x.shape == (4, 1, 10, 10)


def write_folder(root: Path, classes: dict[str, int], mode: str) -> None:
    rng = np.random.default_rng(7)
    for c, count in classes.items():
        (root / c).mkdir(parents=True)
        for i in range(count):
            shape = (40 + 10 * i, 60) + ((3,) if mode == "RGB" else ())
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")
        (root / c / "notes.txt").write_text("not an image")


def test_imagenet_needs_a_local_folder_and_interleaves_its_classes(tmp_path):
    with pytest.raises(ValueError, match="cannot be downloaded automatically.*path="):
        rl.datasets.load("imagenet", source="full")
    write_folder(tmp_path / "val", {"n01440764": 3, "n01443537": 1}, "RGB")
    x, y = rl.datasets.load("imagenet", source="full", path=tmp_path / "val")
    assert x.shape == (4, 3, 224, 224) and y.tolist() == [0, 1, 0, 0]
    x, _ = rl.datasets.load("imagenet", n=2, size=32, source="full", path=tmp_path / "val")
    assert x.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="n=5 but 'imagenet' \\(full\\) has 4"):
        rl.datasets.load("imagenet", n=5, source="full", path=tmp_path / "val")


def test_full_lfw_is_downloaded_unpacked_and_cropped_to_the_face(publish, server, monkeypatch, cache):
    buffer = io.BytesIO()
    face = np.zeros((250, 250), np.uint8)
    face[62:188, 62:188] = 200                   # a bright central half, like a face in LFW
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for person in ("Ada_Lovelace", "Alan_Turing"):
            for i in (1, 2):
                png = io.BytesIO()
                Image.fromarray(face).save(png, "PNG")
                info = tarfile.TarInfo(f"lfw_funneled/{person}/{person}_000{i}.png")
                info.size = len(png.getvalue())
                archive.addfile(info, io.BytesIO(png.getvalue()))
    publish("faces", {"archive": buffer.getvalue()},
            key_of=lambda key: "lfw-funneled.tgz")
    x, y = rl.datasets.load("faces", source="full", root=cache, size=25)
    assert x.shape == (4, 1, 25, 25) and y.tolist() == [0, 1, 0, 1]
    assert x.min() > 0.7                          # only the face region, no dark border
    server.stop()
    again, _ = rl.datasets.load("faces", source="full", root=cache, n=2, size=25)
    assert torch.equal(again, x[:2])


def test_full_lfw_faces_come_from_a_folder_of_people_in_grey(tmp_path):
    write_folder(tmp_path / "lfw", {"Ada_Lovelace": 2, "Alan_Turing": 2}, "L")
    x, y = rl.datasets.load("faces", source="full", path=tmp_path / "lfw", size=25)
    assert x.shape == (4, 1, 25, 25) and y.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="not a folder"):
        rl.datasets.load("faces", source="full", path=tmp_path / "missing")
    with pytest.raises(ValueError, match="no images"):
        rl.datasets.load("faces", source="full", path=tmp_path)


def test_full_source_rejects_splits_and_paths_that_do_not_apply(tmp_path):
    with pytest.raises(ValueError, match="splits \\('train', 'test'\\)"):
        rl.datasets.load("mnist", source="full", split="val")
    with pytest.raises(ValueError, match="path= applies to"):
        rl.datasets.load("mnist", source="full", path=tmp_path)
    with pytest.raises(ValueError, match="splits none"):
        rl.datasets.load("fmri", source="full", split="train", path=tmp_path)


IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@settings(max_examples=40, deadline=None)
@given(code=st.sampled_from(sorted(IDX_TYPES)), shape=st.lists(st.integers(1, 5), min_size=1,
       max_size=4), compress=st.booleans(), seed=st.integers(0, 2**16))
def test_idx_round_trips_every_type_and_rank(tmp_path_factory, code, shape, compress, seed):
    values = np.random.default_rng(seed).integers(-100, 100, shape).astype(IDX_TYPES[code])
    if IDX_TYPES[code] == ">u1":
        values = np.abs(values).astype(">u1")
    raw = struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
    raw += values.tobytes()
    path = tmp_path_factory.mktemp("idx") / "file"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    parsed = sources.read_idx(path)
    assert parsed.shape == tuple(shape) and np.array_equal(parsed, values)
    assert parsed.dtype.byteorder in ("=", "|")          # native order for torch


def test_format_readers_reject_malformed_files(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x01\x02\x08\x01abcd"))
    with pytest.raises(ValueError, match="not an IDX file"):
        sources.read_idx(bad)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(struct.pack(">BBBBII", 0, 0, 8, 2, 2, 3) + b"12345"))
    with pytest.raises(ValueError, match=r"header says \(2, 3\) \(6 data bytes\) but the file holds 5"):
        sources.read_idx(short)
    torn = tmp_path / "test.bin"
    torn.write_bytes(b"\x00" * 3075)
    with pytest.raises(ValueError, match="not a whole number of 3074-byte"):
        sources.read_cifar_binary(torn)
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 2), np.int16), np.eye(4)), str(flat))
    with pytest.raises(ValueError, match="constant"):
        rl.datasets.load("fmri", source="full", path=flat)
    plane = tmp_path / "plane.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(16, dtype=np.int16).reshape(4, 4), np.eye(4)), str(plane))
    with pytest.raises(ValueError, match="expected a 3-D or 4-D image"):
        rl.datasets.load("fmri", source="full", path=plane)


def test_cache_folder_is_root_then_environment_then_os_cache(tmp_path, monkeypatch):
    import pooch
    monkeypatch.delenv(sources.CACHE_VARIABLE, raising=False)
    assert sources.cache_dir() == Path(pooch.os_cache("recon-course"))
    monkeypatch.setenv(sources.CACHE_VARIABLE, str(tmp_path / "env"))
    assert sources.cache_dir() == tmp_path / "env"
    assert sources.cache_dir(tmp_path / "root") == tmp_path / "root"


def test_pinned_remotes_are_well_formed():
    for name, files in sources.REMOTES.items():
        for remote in files.values():
            for pin in (remote.known_hash, *remote.also):
                algorithm, digest = pin.split(":")
                assert len(digest) == {"sha256": 64, "md5": 32}[algorithm], name
                assert int(digest, 16) >= 0, name          # hexadecimal
            assert remote.url.startswith("https://"), remote.url
