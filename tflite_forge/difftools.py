"""Unified diffs in pure Python, so a patch is staged like an edit: all or nothing.

`parse_unified_diff` reads a -p1 unified diff (git or diff -u) into `FileDiff`s;
`apply_hunks` applies one file's hunks exactly (context must match; the position may move).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from .errors import PatchError


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_lines: tuple[str, ...]     # context + removed, without the leading marker
    new_lines: tuple[str, ...]     # context + added


@dataclass(frozen=True)
class FileDiff:
    path: str                      # relative to the tree root (a/ b/ prefix stripped)
    new_file: bool
    hunks: tuple[Hunk, ...]


_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _strip_prefix(name: str) -> str:
    name = name.split("\t")[0].strip()
    if name == "/dev/null":
        return name
    parts = PurePosixPath(name).parts
    return str(PurePosixPath(*parts[1:])) if len(parts) > 1 and parts[0] in ("a", "b") else name


def parse_unified_diff(text: str, *, source: str = "<patch>") -> tuple[FileDiff, ...]:
    """Parse a -p1 unified diff (git or diff -u). Raises PatchError naming the line."""
    lines = text.splitlines()
    files: list[FileDiff] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("--- "):
            i += 1
            continue
        if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
            raise PatchError(f"{source}:{i + 1}: '---' line not followed by '+++'; not a unified diff")
        old, new = _strip_prefix(lines[i][4:]), _strip_prefix(lines[i + 1][4:])
        if new == "/dev/null":
            raise PatchError(f"{source}:{i + 2}: deleting files is not supported; delete with an edit instead")
        i += 2
        hunks: list[Hunk] = []
        while i < len(lines) and lines[i].startswith("@@"):
            m = _HUNK_RE.match(lines[i])
            if not m:
                raise PatchError(f"{source}:{i + 1}: malformed hunk header {lines[i]!r}")
            n_old = int(m.group(2)) if m.group(2) is not None else 1
            n_new = int(m.group(4)) if m.group(4) is not None else 1
            start = int(m.group(1))
            i += 1
            old_l: list[str] = []
            new_l: list[str] = []
            while len(old_l) < n_old or len(new_l) < n_new:
                if i >= len(lines):
                    raise PatchError(f"{source}: hunk at line {start} ends early (expected -{n_old} +{n_new} lines)")
                line = lines[i]
                if line.startswith("\\"):
                    i += 1
                    continue
                tag, body = (line[:1], line[1:]) if line else (" ", "")
                if tag == " ":
                    old_l.append(body)
                    new_l.append(body)
                elif tag == "-":
                    old_l.append(body)
                elif tag == "+":
                    new_l.append(body)
                else:
                    raise PatchError(f"{source}:{i + 1}: unexpected line in hunk: {line!r}")
                i += 1
            while i < len(lines) and lines[i].startswith("\\"):
                i += 1
            hunks.append(Hunk(start, tuple(old_l), tuple(new_l)))
        if not hunks:
            raise PatchError(f"{source}: {new} has no hunks")
        files.append(FileDiff(path=new, new_file=(old == "/dev/null"), hunks=tuple(hunks)))
    if not files:
        raise PatchError(f"{source}: no '--- a/...' / '+++ b/...' file headers; not a unified diff")
    return tuple(files)


def apply_hunks(text: str, diff: FileDiff, *, reverse: bool = False) -> str | None:
    """Apply every hunk exactly (context must match; the position may move). None if any hunk fails."""
    lines = text.splitlines(keepends=True)
    trailing_nl = text.endswith("\n") or not text
    bare = [line.rstrip("\n").rstrip("\r") for line in lines]
    offset = 0
    out_bare = list(bare)
    for h in diff.hunks:
        old, new = (h.new_lines, h.old_lines) if reverse else (h.old_lines, h.new_lines)
        want = max(h.old_start - 1 + offset, 0)
        pos = None
        for delta in range(0, len(out_bare) + 1):  # nearest position first
            for cand in (want - delta, want + delta) if delta else (want,):
                if 0 <= cand <= len(out_bare) - len(old) and out_bare[cand:cand + len(old)] == list(old):
                    pos = cand
                    break
            if pos is not None:
                break
        if pos is None:
            return None
        out_bare[pos:pos + len(old)] = list(new)
        offset += len(new) - len(old)
    result = "\n".join(out_bare)
    return result + "\n" if (trailing_nl and out_bare) else result
