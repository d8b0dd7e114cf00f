"""The real patch sets (patches/*.toml) on trees with the real line shapes: the miniature's
Bazel files (tflite_forge.miniature.bazel), and — through the miniature's write_release — the
whole miniature release unpacked as the cache would hold it."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tflite_forge.miniature.bazel import bazel_files
from tflite_forge.patching import apply_in_place, evaluate
from tflite_forge.patchset import available_sets

BAZEL = list(bazel_files("2.16.1"))

# Line shapes of XNNPACK's CMakeLists (GCC branch) and TFLite's c/CMakeLists, written here
# with the same form as the upstream lines the sets were checked against.
XNNPACK_CMAKE = (
    'IF(MSVC)\n'
    '  TARGET_COMPILE_OPTIONS(microkernels-prod PRIVATE "$<$<NOT:$<CONFIG:Debug>>:/O2>")\n'
    'ELSE()\n'
    '  TARGET_COMPILE_OPTIONS(microkernels-prod PRIVATE "$<$<NOT:$<CONFIG:Debug>>:-O2>")\n'
    '  TARGET_COMPILE_OPTIONS(packing PRIVATE "$<$<NOT:$<CONFIG:Debug>>:-O2>")\n'
    '  TARGET_COMPILE_OPTIONS(subgraph PRIVATE "$<$<NOT:$<CONFIG:Debug>>:-Os>")\n'
    'ENDIF()\n'
)
C_CMAKE = (
    'set(TFLITE_C_LIBTYPE STATIC)\n'
    'if (TFLITE_C_BUILD_SHARED_LIBS)\n'
    '  set(TFLITE_C_LIBTYPE SHARED)\n'
    'endif()\n'
    '\n'
    'add_library(tensorflowlite_c ${TFLITE_C_LIBTYPE}\n'
    '  ${TFLITE_SOURCE_DIR}/core/c/c_api.cc\n'
    '  c_api.h\n'
    ')\n'
    '\n'
    'target_link_libraries(tensorflowlite_c\n'
    '  tensorflow-lite\n'
    ')\n'
)


@pytest.fixture
def trees(tmp_path):
    tf = tmp_path / "tensorflow"
    for rel, text in {**bazel_files("2.16.1"), "tensorflow/lite/c/CMakeLists.txt": C_CMAKE}.items():
        (tf / rel).parent.mkdir(parents=True, exist_ok=True)
        (tf / rel).write_text(text)
    xnn = tmp_path / "xnnpack"
    xnn.mkdir()
    (xnn / "CMakeLists.txt").write_text(XNNPACK_CMAKE)
    return {"tensorflow": tf, "xnnpack": xnn}


def sets(*names):
    by = {ps.name: ps for ps in available_sets()}
    return [by[n] for n in names]


def test_aarch64_cmake_drops_neon_and_raises_xnnpack(trees):
    report = apply_in_place(trees, sets("o3", "drop-mfpu-neon", "soname"), version="2.16.1",
                            arch="aarch64", backend="cmake")
    status = {r.entry_id: (r.status, r.found) for r in report.results}
    assert status == {"xnnpack-cmake-o2": ("applies", 2), "bazel-arm-linux-opt-o2": ("n/a", None),
                      "kernels-internal-neon-flags": ("applies", 4), "build-def-tflite-copts": ("applies", 1),
                      "c-api-soversion": ("applies", 1)}
    for rel in BAZEL:
        assert "-mfpu=neon" not in (trees["tensorflow"] / rel).read_text(), rel
    build = (trees["tensorflow"] / "tensorflow/lite/kernels/internal/BUILD").read_text()
    assert build.count('"-O3",') == 5                    # the -O3 beside each removed line stays
    xnn = (trees["xnnpack"] / "CMakeLists.txt").read_text()
    assert xnn.count(":-O3>") == 2 and ":-O2>" not in xnn
    assert ":/O2>" in xnn and ":-Os>" in xnn             # MSVC and size-tuned targets untouched
    c = (trees["tensorflow"] / "tensorflow/lite/c/CMakeLists.txt").read_text()
    assert "c_api.h\n)\nset_target_properties(tensorflowlite_c PROPERTIES\n  VERSION 2.16.1\n  SOVERSION 2\n)\n" in c


def test_armhf_keeps_every_neon_flag(trees):
    before = {rel: (trees["tensorflow"] / rel).read_text() for rel in BAZEL}
    apply_in_place(trees, sets("o3", "drop-mfpu-neon"), version="2.16.1", arch="armhf", backend="cmake")
    for rel in BAZEL:
        assert (trees["tensorflow"] / rel).read_text() == before[rel]


def test_bazel_backend_raises_the_toolchain_opt_level(trees):
    apply_in_place(trees, sets("o3"), version="2.16.1", arch="armhf", backend="bazel")
    tpl = (trees["tensorflow"] / "tensorflow/tools/toolchains/embedded/arm-linux/cc_config.bzl.tpl").read_text()
    assert tpl.count('"-O3",') == 2 and '"-O2",' not in tpl
    assert ":-O2>" in (trees["xnnpack"] / "CMakeLists.txt").read_text()   # cmake-only edit left alone


@pytest.mark.parametrize("version", ["2.14.0", "2.15.0", "2.16.1", "2.17.0", "2.18.0"])
def test_every_supported_version_of_the_miniature_bazel_files_patches(trees, version):
    for rel, text in bazel_files(version).items():
        (trees["tensorflow"] / rel).write_text(text)
    _st, results = evaluate(trees, sets("o3", "drop-mfpu-neon"), version=version, arch="aarch64", backend="bazel")
    assert {r.entry_id: r.status for r in results} == {
        "xnnpack-cmake-o2": "n/a", "bazel-arm-linux-opt-o2": "applies",
        "kernels-internal-neon-flags": "applies", "build-def-tflite-copts": "applies"}


def _unpack(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    return top


def test_miniature_release_patched_for_aarch64(tmp_path):
    """Helper B's miniature release, unpacked like the cache does, patched with the recipe's sets."""
    from tflite_forge.miniature import write_release

    release = write_release(tmp_path / "mini", "2.16.1")
    www = tmp_path / "mini" / "www"
    tf = _unpack(www / "github.com/tensorflow/tensorflow/archive/refs/tags/v2.16.1.tar.gz", tmp_path / "tf")
    (xnn_archive,) = (www / "github.com/google/XNNPACK/archive").glob("*.tar.gz")
    xnn = _unpack(xnn_archive, tmp_path / "xnn")
    trees = {"tensorflow": tf, "xnnpack": xnn}
    xnn_before = (xnn / "CMakeLists.txt").read_text()
    assert ":-O2>" in xnn_before
    report = apply_in_place(trees, sets("o3", "drop-mfpu-neon", "soname"), version="2.16.1",
                            arch="aarch64", backend="cmake")
    assert all(r.status in ("applies", "n/a") for r in report.results), report.results
    for rel in BAZEL:
        assert "-mfpu=neon" not in (tf / rel).read_text(), rel
    xnn_after = (xnn / "CMakeLists.txt").read_text()
    assert ":-O2>" not in xnn_after and xnn_after.count(":-O3>") == xnn_before.count(":-O2>")
    assert "SOVERSION 2" in (tf / "tensorflow/lite/c/CMakeLists.txt").read_text()
    assert release is not None
