"""Putting things in place: the one atomic file write, the one folder swap, the one waiting lock.

A file: a temp file beside the destination (same file system), written, fsynced, given its final
mode, then renamed over the destination. A crash or an error leaves the old file or the new one,
never a half-written one; the temp file is removed on any error. A folder: renamed into place, the
old one renamed aside first and removed after, so the destination is never a mix of both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout


def write_atomic(dest: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644) -> Path:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def write_json_atomic(dest: str | os.PathLike[str], data: Any) -> Path:
    """Stable JSON (sorted keys, 2-space indent, trailing newline), written atomically."""
    return write_atomic(dest, json.dumps(data, indent=2, sort_keys=True) + "\n")


def tree_digest(root: Path) -> str:
    """Cheap digest of a tree: every entry's path, size, mode and mtime (patching keeps these
    stable when it reuses a working copy, and any edit changes them)."""
    h = hashlib.sha256()
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            h.update(f"{os.path.relpath(path, root)}\0{st.st_size}\0{st.st_mode}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _remove_quietly(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def swap_dir(new: Path, dest: Path, *, remove: Callable[[Path], None] = _remove_quietly) -> None:
    """Put the folder `new` at `dest` by rename (same file system). An existing `dest` is renamed
    aside first (.old-<name>-<pid>) and removed with `remove` after, so `dest` holds the old folder
    or the new one, never a mix; `remove` also clears an aside left by a killed run of this process id."""
    new, dest = Path(new), Path(dest)
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".old-{dest.name}-{os.getpid()}")
        if old.exists():
            remove(old)
        os.replace(dest, old)
    os.replace(new, dest)
    if old is not None:
        remove(old)


@contextlib.contextmanager
def held_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the cross-process lock file `path`; if another process has it, call on_wait once (to say
    so) and wait for it."""
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0.5)
    except Timeout:
        if on_wait:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()

