"""The two variants as data, and the .pc/CMake templates they render."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tflite_forge import variants
from tflite_forge.errors import PackageError
from tflite_forge.variants import CXX, RELEASE, TEMPLATES_DIR, render

ARCH = SimpleNamespace(triplet="aarch64-linux-gnu", elf_class=64)

def _metadata(variant, real, soname):
    return {e.path: e.data for e in variant.metadata_entries("2.16.1", ARCH, real, soname)}


def test_templates_ship_inside_the_package():
    assert TEMPLATES_DIR.parent == Path(variants.__file__).resolve().parent
    names = {p.name for p in TEMPLATES_DIR.iterdir()}
    assert {RELEASE.pc_template, RELEASE.config_template, CXX.pc_template, CXX.config_template,
            "ConfigVersion.cmake.in"} <= names


def test_rendering_fills_every_placeholder_and_keeps_cmake_and_pkgconfig_dollars():
    files = {**_metadata(RELEASE, "libtensorflowlite_c.so.2.16.1", "libtensorflowlite_c.so.2"),
             **_metadata(CXX, "libtensorflow-lite.so", "libtensorflow-lite.so")}
    assert len(files) == 6
    for path, data in files.items():
        text = data.decode()
        assert "@{" not in text and "@" not in text, path
    pc = files["lib/pkgconfig/tensorflowlite_c.pc"].decode()
    assert "prefix=${pcfiledir}/../..\n" in pc and "Description: TensorFlow Lite C API (aarch64-linux-gnu)\n" in pc
    config = files["lib/cmake/tensorflowlite_c/tensorflowlite_cConfig.cmake"].decode()
    assert '"${_tflite_c_prefix}/lib/libtensorflowlite_c.so.2.16.1"' in config
    assert "find_package(tensorflowlite_c 2 REQUIRED)" in config and 'IMPORTED_SONAME "libtensorflowlite_c.so.2"' in config
    version = files["lib/cmake/tensorflow-lite/tensorflow-liteConfigVersion.cmake"].decode()
    assert 'STREQUAL "8")' in version and "(64bit)" in version and 'PACKAGE_FIND_VERSION_MAJOR STREQUAL "2"' in version


def test_a_missing_value_is_an_error_not_a_blank():
    with pytest.raises(KeyError):
        render("ConfigVersion.cmake.in", version="2.16.1")


def test_release_names_need_a_versioned_soname_and_cxx_names_accept_cmakes_plain_one():
    assert RELEASE.names("2.16.1", "libtensorflowlite_c.so.2") == (
        "libtensorflowlite_c.so.2.16.1",
        [("libtensorflowlite_c.so.2", "libtensorflowlite_c.so.2.16.1"), ("libtensorflowlite_c.so", "libtensorflowlite_c.so.2")],
        [])
    real, links, notes = CXX.names("2.16.1", "libtensorflow-lite.so")
    assert (real, links) == ("libtensorflow-lite.so", []) and "unversioned SONAME" in notes[0]
    with pytest.raises(PackageError, match="`soname` patch set"):
        RELEASE.names("2.16.1", "libtensorflowlite_c.so")
