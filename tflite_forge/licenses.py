"""Which files of a source tree are its license: shipped by package.py under share/licenses/,
classified by sbom.py into the SPDX document; a declared license file's sha256, pinned by lock.py
and checked by package.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from .cache import sha256_file

LICENSE_RE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|COPYRIGHT)([._-].*)?$", re.IGNORECASE)
README_RE = re.compile(r"^readme[\w.-]*$", re.IGNORECASE)
_COPYRIGHT_LINE_RE = re.compile(r"^\s*(copyright\b|\(c\)\s|\u00a9)", re.IGNORECASE)
_GRANT_RE = re.compile(r"(you may|permission|licen[cs]e|redistribut|free of charge|without fee)", re.IGNORECASE)


def license_excerpt(text: str) -> str | None:
    """The copyright paragraph of a readme that states its terms (a line starting with 'Copyright'
    and what it grants, up to the next blank line), or None when the text holds no such paragraph."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _COPYRIGHT_LINE_RE.match(line):
            end = i
            while end + 1 < len(lines) and lines[end + 1].strip():
                end += 1
            block = "\n".join(lines[i:end + 1]).strip()
            if _GRANT_RE.search(block):
                return block
    return None


def _inside(tree: Path, rel: str) -> Path | None:
    path = (tree / rel).resolve()
    try:
        path.relative_to(tree.resolve())
    except ValueError:
        return None
    return path if path.is_file() else None


def license_files(tree: Path | None, license_file: str = "") -> list[Path]:
    """A tree's license files: its declared LICENSE_FILE and its top-level LICENSE/COPYING/NOTICE
    files; a tree without the latter (OouraFFT), also its top-level readme files that state a
    copyright and its terms (each readme may cover other parts of the package)."""
    if tree is None or not tree.is_dir():
        return []
    top = [p for p in sorted(tree.iterdir()) if p.is_file()]
    declared = _inside(tree, license_file) if license_file else None
    found = [declared] if declared is not None else []
    conventional = [p for p in top if LICENSE_RE.match(p.name)]
    found += [p for p in conventional if p.resolve() not in found]
    if not conventional:
        found += [p for p in top if README_RE.match(p.name) and p.resolve() not in found
                  and license_excerpt(p.read_text(encoding="utf-8", errors="replace"))]
    return found


def license_sha256(tree: Path, license_file: str) -> str:
    """sha256 of a tree's license file, or "" when the tree holds no such file."""
    path = tree / license_file
    if not license_file or not path.is_file() or not path.resolve().is_relative_to(tree.resolve()):
        return ""
    return sha256_file(path)
