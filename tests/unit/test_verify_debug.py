"""The -dbg tarball is checked against its release: debuglink CRC and GNU build-id must match."""

from __future__ import annotations

import tarfile
import zlib

import pytest

from tests.fake_build import VERSION, make_fake_build, settings_for
from tests.unit.test_verify import STEM, _rewrite
from tflite_forge.elf import build_id, debuglink
from tflite_forge.errors import PackageError
from tflite_forge.pipeline import run_package
from tflite_forge.variants import LIB_NAME
from tflite_forge.verify import run_verify, verify_debug_tarball

DEBUG = f"lib/.debug/{LIB_NAME}.so.{VERSION}.debug"


def _package(root, **fake_options):
    fake = make_fake_build(root, "x86_64", **fake_options)
    run_package(settings_for(fake, root / "dist"), log=lambda _: None)
    return fake, root / "dist" / f"{STEM}.tar.gz", root / "dist" / f"{STEM}-dbg.tar.gz"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    return _package(tmp_path_factory.mktemp("dbg"))


def _member(tarball, rel):
    with tarfile.open(tarball, "r:gz") as tar:
        return tar.extractfile(f"{STEM}/{rel}").read()


def test_debug_file_matches_the_stripped_library(packaged):
    _, release, debug = packaged
    lib = _member(release, f"lib/{LIB_NAME}.so.{VERSION}")
    debug_data = _member(debug, DEBUG)
    name, crc = debuglink(lib)
    assert name == DEBUG.rsplit("/", 1)[1]
    assert crc == zlib.crc32(debug_data)
    assert build_id(lib) and build_id(lib) == build_id(debug_data)
    report = verify_debug_tarball(debug, release)
    assert report.problems == [] and report.files == 1


def test_altered_debug_file_fails_the_crc(packaged, tmp_path):
    _, release, debug = packaged
    bad = _rewrite(debug, tmp_path / debug.name,
                   lambda rel, data: data[:-1] + bytes([data[-1] ^ 0xFF]) if rel == DEBUG else data)
    problems = verify_debug_tarball(bad, release).problems
    assert len(problems) == 1 and "CRC32" in problems[0] and DEBUG in problems[0]


def test_debug_file_from_another_build_fails_the_build_id(packaged, tmp_path):
    _, release, _ = packaged
    _, _, other_debug = _package(tmp_path / "other", variant="other")   # other code: new build-id
    problems = verify_debug_tarball(other_debug, release).problems
    assert any("build-id" in p and "another build" in p for p in problems), problems
    assert any("CRC32" in p for p in problems), problems


def test_missing_debug_file_is_named(packaged, tmp_path):
    _, release, debug = packaged
    empty = _rewrite(debug, tmp_path / debug.name, lambda rel, data: None if rel == DEBUG else data)
    problems = verify_debug_tarball(empty, release).problems
    assert any(DEBUG in p and "missing" in p for p in problems), problems


def test_invoke_verify_checks_the_sibling_and_a_dbg_path(packaged, tmp_path):
    fake, release, debug = packaged
    lines: list[str] = []
    run_verify(settings_for(fake, tmp_path), str(release), log=lines.append)
    assert any(f"{debug.name}: ok; 1 debug file(s)" in line for line in lines), lines
    lines.clear()
    run_verify(settings_for(fake, tmp_path), str(debug), log=lines.append)
    assert lines == [f"verify: {debug.name}: ok; 1 debug file(s) match {release.name} (build-id, debuglink CRC)"]
    # A lone -dbg tarball: one line naming the release it needs.
    lone = tmp_path / debug.name
    lone.write_bytes(debug.read_bytes())
    with pytest.raises(PackageError, match="is missing") as err:
        run_verify(settings_for(fake, tmp_path), str(lone), log=lambda _: None)
    assert "\n" not in str(err.value)


def test_invoke_verify_fails_on_a_mismatched_sibling(packaged, tmp_path):
    fake, release, debug = packaged
    copy = tmp_path / release.name
    copy.write_bytes(release.read_bytes())
    _rewrite(debug, tmp_path / debug.name, lambda rel, data: data + b"\0" if rel == DEBUG else data)
    lines: list[str] = []
    with pytest.raises(PackageError, match="1 verification problem"):
        run_verify(settings_for(fake, tmp_path), str(copy), log=lines.append)
    assert any("CRC32" in line for line in lines)
