"""--cxx-shared packaging on the fake build: the release ships the C++ library its C library NEEDs,
and a -cxx sibling holds the C++ library with C++ headers, .pc, CMake config, manifest and SBOM."""

from __future__ import annotations

import json
import tarfile

import pytest

from tests.fake_build import VERSION, make_fake_build, settings_for
from tflite_forge.errors import PackageError
from tflite_forge.elf import elf_facts
from tflite_forge.pipeline import run_package
from tflite_forge.verify import debug_tarball_for, verify_debug_tarball, verify_tarball

STEM = f"libtensorflowlite_c-{VERSION}-linux-x86_64"
CXX = f"{STEM}-cxx"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("cxx")
    fake = make_fake_build(root, "x86_64", cxx_shared=True)
    lines: list[str] = []
    run_package(settings_for(fake, root / "dist"), log=lines.append)
    return fake, root / "dist", lines


def _names(tarball):
    with tarfile.open(tarball) as tar:
        top = tar.getnames()[0]
        return {m.name[len(top) + 1:] for m in tar.getmembers() if not m.isdir()}


def _read(tarball, rel):
    with tarfile.open(tarball) as tar:
        top = tar.getnames()[0]
        return tar.extractfile(f"{top}/{rel}").read()


def test_four_tarballs_all_in_sha256sums(packaged):
    _, dist, lines = packaged
    listed = sorted(line.split("  ")[1] for line in (dist / "SHA256SUMS").read_text().splitlines())
    assert listed == sorted([f"{STEM}.tar.gz", f"{STEM}-dbg.tar.gz", f"{CXX}.tar.gz", f"{CXX}-dbg.tar.gz"])
    assert any("unversioned SONAME" in line for line in lines), "the plain CMake SONAME is noted, not hidden"


def test_release_ships_the_cxx_library_its_c_library_needs(packaged):
    _, dist, _ = packaged
    release = dist / f"{STEM}.tar.gz"
    names = _names(release)
    assert {f"lib/libtensorflowlite_c.so.{VERSION}", "lib/libtensorflow-lite.so"} <= names
    assert not any(n.startswith("include/tensorflow/lite/core/fake_runtime") for n in names), "C++ headers: -cxx only"
    assert verify_tarball(release).problems == []
    assert _names(debug_tarball_for(release)) >= {"lib/.debug/libtensorflow-lite.so.debug",
                                                  f"lib/.debug/libtensorflowlite_c.so.{VERSION}.debug"}
    report = verify_debug_tarball(debug_tarball_for(release), release)
    assert report.problems == [] and report.files == 2


def test_cxx_sibling_contents_and_its_own_manifest(packaged):
    _, dist, _ = packaged
    cxx = dist / f"{CXX}.tar.gz"
    names = _names(cxx)
    assert {"lib/libtensorflow-lite.so", "lib/pkgconfig/tensorflow-lite.pc",
            "lib/cmake/tensorflow-lite/tensorflow-liteConfig.cmake",
            "lib/cmake/tensorflow-lite/tensorflow-liteConfigVersion.cmake",
            "include/tensorflow/lite/core/fake_runtime.h", "include/tensorflow/lite/kernels/fake_kernel.h",
            "include/tensorflow/lite/core/c/c_api_types.h",     # included by the C++ header
            "share/licenses/tensorflow/LICENSE", "manifest.json", "sbom.spdx.json"} <= names
    assert "include/tensorflow/lite/kernels/fake_kernel_test.h" not in names
    assert not any(n.startswith("lib/libtensorflowlite_c") for n in names)
    manifest = json.loads(_read(cxx, "manifest.json"))
    assert manifest["predicate"]["buildDefinition"]["externalParameters"]["variant"] == "cxx"
    assert {s["name"] for s in manifest["subject"]} == names - {"manifest.json"}
    assert manifest["predicate"]["runDetails"]["byproducts"][0]["annotations"]["tarball"] == f"{CXX}-dbg.tar.gz"
    sbom = json.loads(_read(cxx, "sbom.spdx.json"))
    assert sbom["name"] == CXX and sbom["packages"][0]["name"] == "libtensorflow-lite"
    pc = _read(cxx, "lib/pkgconfig/tensorflow-lite.pc").decode()
    assert "Libs: -L${libdir} -ltensorflow-lite" in pc and "prefix=${pcfiledir}/../.." in pc
    # The release's manifest and SBOM are unchanged in kind: no variant key, the C library first.
    release_manifest = json.loads(_read(dist / f"{STEM}.tar.gz", "manifest.json"))
    assert "variant" not in release_manifest["predicate"]["buildDefinition"]["externalParameters"]


def test_verify_applies_cxx_rules_to_the_sibling(packaged):
    _, dist, _ = packaged
    cxx = dist / f"{CXX}.tar.gz"
    report = verify_tarball(cxx)
    assert report.problems == [] and report.variant == "cxx"
    assert any(s.startswith("_ZN6tflite4fake") for s in report.facts.exported), "C++ exports are allowed here"
    assert "C++ library" in report.summary()[0]
    assert verify_debug_tarball(debug_tarball_for(cxx), cxx).problems == []


def test_repackaging_is_byte_identical_and_drops_a_stale_sibling(packaged, tmp_path):
    fake, dist, _ = packaged
    again = tmp_path / "dist"
    run_package(settings_for(fake, again), log=lambda _: None)
    for name in (f"{STEM}.tar.gz", f"{STEM}-dbg.tar.gz", f"{CXX}.tar.gz", f"{CXX}-dbg.tar.gz", "SHA256SUMS"):
        assert (again / name).read_bytes() == (dist / name).read_bytes(), name
    # A later build without --cxx-shared: the old -cxx tarballs would not match it any more.
    plain = make_fake_build(tmp_path / "plain", "x86_64")
    for p in again.iterdir():
        (tmp_path / "plain-dist").mkdir(exist_ok=True)
        (tmp_path / "plain-dist" / p.name).write_bytes(p.read_bytes())
    run_package(settings_for(plain, tmp_path / "plain-dist"), log=lambda _: None)
    left = sorted(p.name for p in (tmp_path / "plain-dist").glob("*.tar.gz"))
    assert left == [f"{STEM}-dbg.tar.gz", f"{STEM}.tar.gz"]
    assert CXX not in (tmp_path / "plain-dist" / "SHA256SUMS").read_text()


def test_build_path_runpath_is_refused_with_one_line(tmp_path):
    fake = make_fake_build(tmp_path, "x86_64", cxx_shared=True, cxx_rpath="/build/target/tensorflow-lite")
    lines: list[str] = []
    with pytest.raises(PackageError, match="nothing was written") as err:
        run_package(settings_for(fake, tmp_path / "dist"), log=lines.append)
    assert "\n" not in str(err.value)
    assert any("RUNPATH /build/target/tensorflow-lite" in line and "CMAKE_INSTALL_RPATH=$ORIGIN" in line
               for line in lines), lines
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").glob("*.tar.gz"))
    assert elf_facts(fake.lib.read_bytes()).runpath == ["/build/target/tensorflow-lite"]
