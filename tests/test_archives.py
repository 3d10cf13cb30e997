"""Safe unpacking of downloaded archives (recon_lib.archives), end to end through a local server.

Crafted LFW archives are served from 127.0.0.1 and loaded with ``rl.datasets.load("faces",
source="full")``, the real download path with its checksum check: each tries to write outside
the cache (``../``, an absolute path, a symbolic or hard link, a special file). Every one must
be refused before anything is written, on Pythons with tarfile's ``data`` filter and, with the
filter switched off as on Python < 3.10.12 / 3.11.4, by the kit's own checks alone.
"""
import io
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import recon_lib as rl
from recon_lib import archives


def png(value: int = 200) -> bytes:
    face = np.zeros((40, 40), np.uint8)
    face[10:30, 10:30] = value
    buffer = io.BytesIO()
    Image.fromarray(face).save(buffer, "PNG")
    return buffer.getvalue()


def add_file(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))


def add_link(archive: tarfile.TarFile, name: str, target: str, kind=tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    archive.addfile(info)


def lfw_archive(extra=None) -> bytes:
    """Two people with two photos each, plus whatever ``extra(archive)`` adds."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for person in ("Ada_Lovelace", "Alan_Turing"):
            for i in (1, 2):
                add_file(archive, f"lfw_funneled/{person}/{person}_000{i}.png", png(150 + 40 * i))
        if extra is not None:
            extra(archive)
    return buffer.getvalue()


def everything_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def attacks(outside: Path) -> dict:
    """Crafted members, each aimed at ``outside`` (a folder next to the cache, not in it)."""
    def fifo(archive):
        info = tarfile.TarInfo("lfw_funneled/pipe")
        info.type = tarfile.FIFOTYPE
        archive.addfile(info)
    return {
        "dot-dot": lambda a: add_file(a, "lfw_funneled/../../outside/escaped.txt", b"escaped"),
        "absolute": lambda a: add_file(a, str(outside / "absolute.txt"), b"escaped"),
        "symlink then write through it": lambda a: (
            add_link(a, "lfw_funneled/door", str(outside)),
            add_file(a, "lfw_funneled/door/through.txt", b"escaped")),
        "relative symlink out": lambda a: add_link(a, "lfw_funneled/up", "../../../outside"),
        "hard link to an outside file": lambda a: add_link(a, "lfw_funneled/hard",
                                                         str(outside / "victim.txt"), tarfile.LNKTYPE),
        "special file": fifo,
    }


ATTACKS = list(attacks(Path("/")))


@pytest.mark.parametrize("data_filter", [True, False], ids=["with data filter", "own checks only"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_crafted_archives_are_refused_and_write_nothing(attack, data_filter, publish, server, cache,
                                                        tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "_DATA_FILTER", data_filter and archives._DATA_FILTER)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    publish("faces", {"archive": lfw_archive(attacks(outside)[attack])},
            key_of=lambda key: "lfw-funneled.tgz")
    with pytest.raises(ValueError, match="could write outside the cache, so nothing was unpacked"):
        rl.datasets.load("faces", source="full", root=cache)
    assert everything_under(outside) == {outside / "victim.txt"}
    assert (outside / "victim.txt").read_text() == "precious"
    assert not list(cache.glob("*.untar")) and not list(cache.glob("*.manifest.json"))
    assert {p.name for p in tmp_path.iterdir()} == {"outside", "served", "cache"}


@pytest.mark.parametrize("name, reason", [
    ("a/b.txt", None), ("./a/b.txt", None), ("a/../../b", "'..'"), ("/etc/passwd", "absolute"),
    ("C:/Windows/x", "absolute"), ("a\\..\\..\\b", "'..'")])
def test_member_names_are_judged_before_unpacking(name, reason):
    info = tarfile.TarInfo(name)
    verdict = archives.unsafe_reason(info)
    assert (verdict is None) if reason is None else (reason in verdict)


def test_unpacked_files_are_checked_on_every_load_and_restored(publish, server, cache):
    publish("faces", {"archive": lfw_archive()}, key_of=lambda key: "lfw-funneled.tgz")
    first, labels = rl.datasets.load("faces", source="full", root=cache, size=25)
    server.stop()                                 # from here on: the cache only
    folder = next(cache.glob("*.untar"))
    photos = sorted(folder.rglob("*.png"))
    assert len(photos) == 4 and next(cache.glob("*.manifest.json")).is_file()
    damages = {
        "truncated": lambda: photos[0].write_bytes(photos[0].read_bytes()[:50]),
        "same size, other bytes": lambda: photos[1].write_bytes(png(10)[:photos[1].stat().st_size]
                                                                .ljust(photos[1].stat().st_size, b"\0")),
        "deleted": lambda: photos[2].unlink(),
        "manifest damaged": lambda: next(cache.glob("*.manifest.json")).write_text("{not json"),
    }
    for what, damage in damages.items():
        damage()
        with pytest.warns(RuntimeWarning, match="missing or changed; unpacking"):
            again, again_labels = rl.datasets.load("faces", source="full", root=cache, size=25)
        assert torch.equal(again, first) and torch.equal(again_labels, labels), what
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # intact now: no second unpacking
        rl.datasets.load("faces", source="full", root=cache, size=25)


def test_a_damaged_cached_archive_is_fetched_again(publish, server, cache):
    """pooch re-checks the archive's checksum on every load and downloads it again."""
    publish("faces", {"archive": lfw_archive()}, key_of=lambda key: "lfw-funneled.tgz")
    first, _ = rl.datasets.load("faces", source="full", root=cache, size=25)
    archive = cache / "faces-lfw-funneled.tgz"
    archive.write_bytes(archive.read_bytes()[:100])
    again, _ = rl.datasets.load("faces", source="full", root=cache, size=25)
    assert torch.equal(again, first)
    archive.write_bytes(archive.read_bytes()[:100])
    server.stop()
    with pytest.raises(ConnectionError, match="cannot download"):
        rl.datasets.load("faces", source="full", root=cache, size=25)


def test_cifar100_is_unpacked_through_the_same_safe_path(publish, server, cache):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        add_file(archive, "cifar-100-binary/test.bin",
                 b"".join(bytes([0, 7]) + image.tobytes() for image in images))
        add_file(archive, "cifar-100-binary/../../escape.bin", b"x")
    publish("cifar100", {"archive": buffer.getvalue()}, key_of=lambda key: "cifar-100-binary.tar.gz")
    with pytest.raises(ValueError, match="escape.bin.*'..' path"):
        rl.datasets.load("cifar100", source="full", root=cache)
    assert not (cache.parent / "escape.bin").exists()


def test_a_file_that_is_not_a_tar_archive_is_a_clear_error(tmp_path):
    fake = tmp_path / "fake.tgz"
    fake.write_bytes(b"this is not gzip")
    with pytest.raises(ValueError, match="not a readable tar archive"):
        archives.extract(fake)
