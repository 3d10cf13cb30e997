"""Unpack a downloaded tar archive safely, and check the unpacked files on every load.

pooch verifies an archive's checksum, and asks tarfile for its ``data`` filter on Python ≥ 3.12
only: on 3.10 and 3.11 a crafted archive could write outside the cache through ``../``, an
absolute path or a link. :func:`extract` therefore checks every member itself, on every Python,
before anything is written (only plain files and folders with relative, inward names are
allowed), and also passes ``filter="data"`` wherever tarfile has it.

The checksum covers the archive, not what was unpacked from it, and unpacked files can be
truncated (a full disk, an interrupted run) or edited later. :func:`extract` records each
file's size and SHA-256 in a manifest beside the archive and checks them on every call;
anything missing or different is unpacked again from the (verified) archive.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import warnings
from pathlib import Path, PurePosixPath

_DATA_FILTER = hasattr(tarfile, "data_filter")          # Python 3.12, 3.11.4+, 3.10.12+
_UNSAFE_MODE = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH


def extract(archive: str | os.PathLike) -> Path:
    """Unpack ``archive`` into ``<archive>.untar/`` once and return that folder.

    Later calls check every unpacked file against the manifest (size and SHA-256) and unpack
    again if any is missing or changed.

    Raises:
        ValueError: the archive holds a member that could write outside the folder (an
            absolute path, ``..``, a link, a device), or is not a readable tar archive.
        OSError: the files still differ from the manifest after unpacking again.
    """
    archive = Path(archive)
    folder = archive.with_name(archive.name + ".untar")
    manifest = archive.with_name(archive.name + ".manifest.json")
    if _intact(folder, manifest):
        return folder
    if manifest.exists() or folder.exists():
        warnings.warn(f"{folder}: unpacked files are missing or changed; unpacking {archive.name} "
                      "again", RuntimeWarning, stacklevel=2)
    _unpack(archive, folder, manifest)
    if not _intact(folder, manifest):
        raise OSError(f"{folder}: the unpacked files do not match {archive.name} even after "
                      "unpacking it again (disk full? another process writing there?)")
    return folder


def unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` may not be unpacked (``None``: a plain file or folder inside the target)."""
    parts = PurePosixPath(member.name.replace("\\", "/")).parts
    if member.name.startswith(("/", "\\")) or (parts and ":" in parts[0]):
        return "an absolute path"
    if ".." in parts:
        return "a '..' path"
    if member.issym() or member.islnk():
        return f"a link (to {member.linkname!r})"
    if not (member.isfile() or member.isdir()):
        return "a device, pipe or other special file"
    return None


def _unpack(archive: Path, folder: Path, manifest: Path) -> None:
    """Check every member, unpack into a fresh folder, then write the manifest last."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                reason = unsafe_reason(member)
                if reason:
                    raise ValueError(f"{archive.name} holds {member.name!r}, {reason}; it could "
                                     "write outside the cache, so nothing was unpacked")
                member.mode &= ~_UNSAFE_MODE
            manifest.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
            partial = folder.with_name(folder.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            if _DATA_FILTER:
                tar.extractall(partial, members=members, filter="data")
            else:                                   # the checks above stand in for the filter
                tar.extractall(partial, members=members)
    except tarfile.TarError as err:
        raise ValueError(f"{archive}: not a readable tar archive ({err})") from err
    for member in members:                          # extractall resolved nothing outward
        if not (partial / member.name).resolve().is_relative_to(partial.resolve()):
            raise ValueError(f"{archive.name}: {member.name!r} resolved outside the folder")
    partial.rename(folder)
    entries = {m.name: [m.size, _sha256(folder / m.name)] for m in members if m.isfile()}
    temporary = manifest.with_name(manifest.name + ".partial")
    temporary.write_text(json.dumps(entries, indent=0, sort_keys=True))
    temporary.replace(manifest)


def _intact(folder: Path, manifest: Path) -> bool:
    """Every file of the manifest is present with its recorded size and SHA-256."""
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(entries, dict) or not folder.is_dir():
        return False
    try:
        return all((folder / name).is_file() and (folder / name).stat().st_size == size
                   and _sha256(folder / name) == digest for name, (size, digest) in entries.items())
    except (TypeError, ValueError):             # a damaged manifest: unpack again
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
