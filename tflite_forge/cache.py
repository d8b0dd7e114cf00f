"""The content-addressed download cache.

Layout under the cache dir (`--cache-dir`, `TFLITE_FORGE_CACHE`, default `$XDG_CACHE_HOME/tflite-forge`):

    sha256/<hex>            verified files only, read-only; the name IS the content's sha256
    partial/<hex>.part      bytes of an interrupted download, kept for resuming; never trusted
    partial/<hex>.part.json where those bytes came from (URL, ETag/Last-Modified) for If-Range
    origins/<hex>           the URL a cached file was downloaded from (for messages only; never trusted)
    trees/<archive-hex>/    unpacked archives (see unpack.py), strip_prefix removed
    locks/<hex>.lock        one file lock per entry, so two processes never write one entry

A file enters `sha256/` only by `os.replace` of a fsynced file whose sha256 was computed
while it was written: a crash at any moment leaves either nothing or a complete, verified file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator


from .errors import ConfigError
from .fsutil import held_lock

HEX_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        if sys.version_info >= (3, 11):
            return hashlib.file_digest(fh, "sha256").hexdigest()
        digest = hashlib.sha256()  # pragma: no cover - Python 3.10
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            digest.update(view[:n])
        return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Cache:
    root: Path

    @property
    def blobs(self) -> Path:
        return self.root / "sha256"

    @property
    def partials(self) -> Path:
        return self.root / "partial"

    @property
    def trees(self) -> Path:
        return self.root / "trees"

    def wheels(self, platform: str) -> Path:
        """Python wheels for one platform tag, downloaded for the wheel runtime image."""
        return self.root / "wheels" / platform

    @property
    def images(self) -> Path:
        """Base-image root filesystems made by debootstrap (image.base_tarball names them)."""
        return self.root / "images"

    def blob(self, hex_: str) -> Path:
        if not HEX_RE.match(hex_):
            raise ValueError(f"not a sha256: {hex_!r}")
        return self.blobs / hex_

    def has(self, hex_: str) -> bool:
        return self.blob(hex_).is_file()

    def partial(self, key: str) -> Path:
        return self.partials / f"{key}.part"

    def tree(self, hex_: str) -> Path:
        return self.trees / hex_

    @classmethod
    def of_blob(cls, path: Path) -> "Cache | None":
        """The cache a path is an entry of (`<root>/sha256/<hex>`), or None for any other file."""
        path = Path(path)
        if path.parent.name == "sha256" and HEX_RE.match(path.name):
            return cls(path.parent.parent)
        return None

    def origin(self, hex_: str) -> str | None:
        """The URL the entry was downloaded from, when known (messages only)."""
        try:
            return (self.root / "origins" / hex_).read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def note_origin(self, hex_: str, url: str) -> None:
        folder = self.root / "origins"
        with contextlib.suppress(OSError):
            folder.mkdir(exist_ok=True)
            tmp = folder / f".{hex_}.{unique_suffix()}.tmp"
            tmp.write_text(url + "\n", encoding="utf-8")
            os.replace(tmp, folder / hex_)

    def ensure_dirs(self) -> None:
        try:
            for d in (self.blobs, self.partials, self.trees, self.root / "locks"):
                d.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ConfigError(f"cache folder {self.root}: {exc.filename or self.root} is a file, not a folder; "
                              f"pass --cache-dir (or TFLITE_FORGE_CACHE) a folder, or move that file away") from None
        except PermissionError as exc:
            raise ConfigError(f"cache folder {self.root}: permission denied ({exc.filename}); pass --cache-dir "
                              f"(or TFLITE_FORGE_CACHE) a folder you can write to") from None

    @contextlib.contextmanager
    def locked(self, key: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the cross-process lock for one entry; call on_wait once if another process has it."""
        self.ensure_dirs()
        with held_lock(self.root / "locks" / f"{key}.lock", on_wait):
            yield

    def install(self, tmp: Path, hex_: str) -> Path:
        """Move a fully written file whose sha256 is hex_ into sha256/ (fsync, then os.replace)."""
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o444)
        dest = self.blob(hex_)
        os.replace(tmp, dest)
        fsync_dir(self.blobs)
        return dest

    def discard(self, hex_: str) -> None:
        for path in (self.blob(hex_), self.root / "origins" / hex_):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def entries(self) -> list[Path]:
        if not self.blobs.is_dir():
            return []
        return sorted(p for p in self.blobs.iterdir() if HEX_RE.match(p.name) and p.is_file())

    def verify(self, hex_: str) -> bool:
        """Re-hash a cached file; a file that no longer matches its name is removed."""
        path = self.blob(hex_)
        if not path.is_file():
            return False
        if sha256_file(path) == hex_:
            return True
        self.discard(hex_)
        return False


def unique_suffix() -> str:
    return f"{os.getpid()}-{time.monotonic_ns()}"
