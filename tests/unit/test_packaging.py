"""pyproject's wheel contents: the package's own code and data, never the miniature (the tool runs from a
checkout; recipes/, patches/, toolchains/ and smoke/ are read there)."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tflite_forge"


def test_every_data_file_the_package_reads_is_package_data_and_the_miniature_is_not_shipped():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["exclude"] == ["tflite_forge.miniature*"]
    patterns = setuptools["package-data"]["tflite_forge"]
    data = sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "miniature" not in p.parts)
    assert data, "the package reads arches.toml and its Dockerfiles"
    for rel in data:
        assert any(rel.match(pattern) for pattern in patterns), f"{rel} is missing from package-data"
