"""Atomic file writes: the one way tflite-forge puts a file in place.

A temp file beside the destination (same file system), written, fsynced, given its final mode,
then renamed over the destination. A crash or an error leaves the old file or the new one,
never a half-written one; the temp file is removed on any error.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


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
