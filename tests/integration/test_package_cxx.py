"""`invoke build --cxx-shared` then `invoke package` on the miniature: the -cxx sibling tarball.

One CMake configure with BUILD_SHARED_LIBS=ON makes libtensorflow-lite.so and links the C library
against it, so: the release tarball ships libtensorflow-lite.so beside the C library (RUNPATH
$ORIGIN) and stays self-contained; the -cxx tarball holds the C++ library, the C++ headers, its
.pc and CMake config, and its own manifest and SBOM; both pass verify (the C++ one with C++
rules), their -dbg tarballs match, SHA256SUMS lists all four, and packaging again is byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tflite_forge.elf import elf_facts
from tflite_forge.verify import verify_debug_tarball, verify_tarball

pytestmark = pytest.mark.integration


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cxx_shared_build_packages_a_cxx_sibling(miniature, base_image_docker, docker_engine, tmp_path, forge):
    env = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / "work"), "TFLITE_FORGE_DIST_DIR": str(tmp_path / "dist")}
    proc = forge("build", "--arch=x86_64", "--engine=docker", "--cxx-shared", *miniature.args, "package", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dist = tmp_path / "dist"
    stem = "libtensorflowlite_c-2.16.1-linux-x86_64"
    release, cxx = dist / f"{stem}.tar.gz", dist / f"{stem}-cxx.tar.gz"
    names = sorted(line.split("  ")[1] for line in (dist / "SHA256SUMS").read_text().splitlines())
    assert names == sorted(f"{stem}{s}.tar.gz" for s in ("", "-dbg", "-cxx", "-cxx-dbg"))

    # The release: the C library and, beside it, the C++ library it NEEDs, found through $ORIGIN.
    with tarfile.open(release) as tar:
        c_lib = tar.extractfile(f"{stem}/lib/libtensorflowlite_c.so.2.16.1").read()
        assert f"{stem}/lib/libtensorflow-lite.so" in tar.getnames()
    facts = elf_facts(c_lib)
    assert "libtensorflow-lite.so" in facts.needed and facts.runpath == ["$ORIGIN"]
    assert verify_tarball(release).problems == []

    # The -cxx sibling: C++ library (CMake's plain SONAME: upstream sets no SOVERSION), C++ headers.
    with tarfile.open(cxx) as tar:
        members = {m.name[len(stem) + 5:]: m for m in tar.getmembers() if m.name != f"{stem}-cxx"}
        manifest = json.loads(tar.extractfile(f"{stem}-cxx/manifest.json").read())
        sbom = json.loads(tar.extractfile(f"{stem}-cxx/sbom.spdx.json").read())
        cxx_lib = tar.extractfile(f"{stem}-cxx/lib/libtensorflow-lite.so").read()
    assert {"lib/libtensorflow-lite.so", "include/tensorflow/lite/core/miniature_runtime.h",
            "include/tensorflow/lite/core/c/c_api.h", "lib/pkgconfig/tensorflow-lite.pc",
            "lib/cmake/tensorflow-lite/tensorflow-liteConfig.cmake", "share/licenses/tensorflow/LICENSE"} <= set(members)
    assert not any(n.startswith("lib/libtensorflowlite_c") for n in members)
    assert elf_facts(cxx_lib).soname == "libtensorflow-lite.so"
    assert any(s.startswith("_ZN6tflite") for s in elf_facts(cxx_lib).exported), "C++ API is exported"
    assert manifest["predicate"]["buildDefinition"]["externalParameters"]["variant"] == "cxx"
    assert sbom["packages"][0]["name"] == "libtensorflow-lite"
    assert sbom["packages"][0]["checksums"][0]["checksumValue"] == hashlib.sha256(cxx_lib).hexdigest()
    report = verify_tarball(cxx)
    assert report.problems == [] and report.variant == "cxx"
    assert verify_debug_tarball(dist / f"{stem}-cxx-dbg.tar.gz", cxx).problems == []
    assert verify_debug_tarball(dist / f"{stem}-dbg.tar.gz", release).problems == []
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dist, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    # The same inputs packaged again: byte-identical, all four.
    before = {p.name: _sha(p) for p in dist.glob("*.tar.gz")}
    proc = forge("package", "--arch=x86_64", "--engine=docker", *miniature.args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name: _sha(p) for p in dist.glob("*.tar.gz")} == before

    # The release alone runs the smoke program (C library -> libtensorflow-lite.so via $ORIGIN).
    proc = forge("test", "--arch=x86_64", "--no-cmake", *miniature.args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "{3, 9}" in proc.stdout
