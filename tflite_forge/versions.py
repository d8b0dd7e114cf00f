"""TensorFlow versions and version ranges: the one range syntax patch sets and the arch table share.

A range is comparisons joined by commas, all of which must hold: ">=2.14, <2.17". Versions
compare by their leading numbers, padded to three ("2.16" is "2.16.0"; "2.16.0-rc1" is "2.16.0").
"""

from __future__ import annotations

import re

_SPEC_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*$")
_NUMBERS_RE = re.compile(r"^(\d+(?:\.\d+)*)")


def version_key(version: str) -> tuple[int, ...]:
    """'2.16.1' -> (2, 16, 1); '2.16' -> (2, 16, 0); raises ValueError when it starts with no number."""
    nums = _NUMBERS_RE.match(version.strip())
    if not nums:
        raise ValueError(version)
    parts = [int(p) for p in nums.group(1).split(".")]
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def parse_versions(spec: str) -> list[tuple[str, tuple[int, ...]]]:
    """'>=2.14, <2.17' -> [('>=', (2, 14, 0)), ('<', (2, 17, 0))]; raises ValueError naming the bad part."""
    out = []
    for part in spec.split(","):
        m = _SPEC_RE.match(part)
        if not m:
            raise ValueError(part.strip())
        out.append((m.group(1), version_key(m.group(2))))
    return out


def version_matches(version: str, spec: str | None) -> bool:
    """Does TensorFlow `version` fall in `spec`? None or '' means every version."""
    if not spec:
        return True
    v = version_key(version)
    ops = {">=": v.__ge__, "<=": v.__le__, "==": v.__eq__, "!=": v.__ne__, ">": v.__gt__, "<": v.__lt__}
    return all(ops[op](bound) for op, bound in parse_versions(spec))
