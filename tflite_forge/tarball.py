"""The reproducible tarball: members built in memory, then written with normalised headers.

A tarball is a pure function of its entries and SOURCE_DATE_EPOCH: members sorted by name under
one top folder, mtime = the epoch, uid/gid 0, no user names, plain USTAR headers (no pax
records), and gzip with mtime 0 and no file name. The umask, mtimes, owners and locale of the
files the entries were read from never reach it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable

from .errors import PackageError


@dataclass(frozen=True)
class Entry:
    """One tar member, relative to the top folder: a file (data) or a symlink (link)."""

    path: str
    data: bytes | None = None
    link: str | None = None

    @property
    def is_link(self) -> bool:
        return self.link is not None

    @property
    def sha256(self) -> str:
        assert self.data is not None
        return hashlib.sha256(self.data).hexdigest()


def _dirs_of(paths: Iterable[str]) -> set[str]:
    dirs: set[str] = set()
    for p in paths:
        parent = PurePosixPath(p).parent
        while str(parent) not in (".", ""):
            dirs.add(str(parent))
            parent = parent.parent
    return dirs


def _tarinfo(name: str, kind: bytes, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def tar_bytes(top: str, entries: Iterable[Entry], epoch: int) -> bytes:
    """The uncompressed tar stream: sorted members under one top folder, normalised headers."""
    entries = list(entries)
    names = [e.path for e in entries]
    if len(set(names)) != len(names):
        raise PackageError(f"internal: duplicate member in {top}: {sorted(n for n in names if names.count(n) > 1)[0]}")
    members: list[tuple[str, tarfile.TarInfo, bytes | None]] = [(top, _tarinfo(top, tarfile.DIRTYPE, epoch), None)]
    for d in _dirs_of(names):
        members.append((f"{top}/{d}", _tarinfo(f"{top}/{d}", tarfile.DIRTYPE, epoch), None))
    for e in entries:
        name = f"{top}/{e.path}"
        if e.is_link:
            info = _tarinfo(name, tarfile.SYMTYPE, epoch)
            info.linkname = e.link or ""
            info.mode = 0o777
            members.append((name, info, None))
        else:
            info = _tarinfo(name, tarfile.REGTYPE, epoch)
            info.size = len(e.data or b"")
            members.append((name, info, e.data))
    buf = io.BytesIO()
    # USTAR: no pax extended headers at all (no atime/ctime/mtime records, no uname bytes).
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, info, data in sorted(members, key=lambda m: m[0]):
            try:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
            except ValueError as err:  # USTAR name limits
                raise PackageError(f"{name}: cannot be stored in a portable tar header ({err}); shorten the path") from None
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with header mtime 0 and no file name: the same bytes whatever the clock."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()
