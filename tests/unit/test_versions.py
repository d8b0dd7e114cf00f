"""versions.py: the one version-range syntax, shared by patch sets and the arch table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tflite_forge.versions as versions
from tflite_forge.versions import parse_versions, version_key, version_matches


def test_keys_pad_to_three_numbers_and_ignore_suffixes():
    assert version_key("2.16") == (2, 16, 0)
    assert version_key(" 2.16.1-rc0 ") == (2, 16, 1)
    with pytest.raises(ValueError):
        version_key("v2.16")


def test_ranges_are_and_joined_comparisons():
    assert parse_versions(">=2.14, <2.17") == [(">=", (2, 14, 0)), ("<", (2, 17, 0))]
    assert version_matches("2.16.1", ">=2.14, <2.17") and not version_matches("2.17.0", ">=2.14, <2.17")
    assert version_matches("2.17.0", "==2.17") and version_matches("2.17.1", "!=2.17")
    assert version_matches("1.0.0", None) and version_matches("1.0.0", "")
    with pytest.raises(ValueError, match="~=2.14"):
        parse_versions(">=2.1, ~=2.14")


def test_a_leaf_module_imports_nothing_from_the_package():
    tree = ast.parse(Path(versions.__file__).read_text())
    relative = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
    assert relative == []
