"""The miniature TensorFlow generator: deterministic bytes, a valid recipe, real hashes, licenses."""

from __future__ import annotations

import hashlib
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from tflite_forge import miniature
from tflite_forge.miniature import write_release
from tflite_forge.recipe import load_recipe


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members(archive: Path) -> dict[str, bytes]:
    """name -> bytes of every regular file in a .tar.gz or .zip."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def text(archive: Path, name: str) -> str:
    return members(archive)[name].decode()


def tf_file(release, rel: str) -> str:
    return text(release.tensorflow_archive, f"{release.strip_prefix}/{rel}")


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_runs_write_identical_bytes(tmp_path):
    first = write_release(tmp_path / "a")
    second = write_release(tmp_path / "b")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert first.tensorflow_sha256 == second.tensorflow_sha256
    assert [d.sha256 for d in first.dependencies] == [d.sha256 for d in second.dependencies]
    # Writing again over an existing release changes nothing and leaves no temp files.
    write_release(tmp_path / "a")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_recipe_is_valid_and_names_the_real_upstream_url(miniature_release):
    recipe = load_recipe(miniature_release.recipe_path)
    assert miniature_release.recipe_path.name == "tensorflow-2.16.1.toml"
    assert recipe.source.urls == ("https://github.com/tensorflow/tensorflow/archive/refs/tags/v2.16.1.tar.gz",)
    assert recipe.source.sha256 == sha256(miniature_release.tensorflow_archive) == miniature_release.tensorflow_sha256
    assert recipe.source.strip_prefix == "tensorflow-2.16.1"
    assert recipe.build.cmake_source_dir == "tensorflow/lite/c"
    assert recipe.build.patch_sets == ("o3", "drop-mfpu-neon", "soname")
    assert recipe.build.host_tools_target == "flatbuffers-flatc"
    assert recipe.build.source_date_epoch == miniature_release.source_date_epoch == 1709856000
    assert miniature_release.local_path(recipe.source.urls[0]) == miniature_release.tensorflow_archive
    assert miniature_release.tensorflow_archive == (
        miniature_release.www_root / "github.com/tensorflow/tensorflow/archive/refs/tags/v2.16.1.tar.gz")


def test_archives_are_normalized(miniature_release):
    tars = [p for p in miniature_release.archives if p.name.endswith(".tar.gz")]
    assert len(tars) >= 6
    for archive in tars:
        raw = archive.read_bytes()
        assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0", f"{archive}: gzip header mtime must be 0"
        assert not raw[3] & 0x08, f"{archive}: gzip header must not name a file"
        with tarfile.open(archive) as tar:
            infos = tar.getmembers()
            top = infos[0].name
            assert infos[0].isdir() and "/" not in top
            names = [m.name for m in infos]
            assert names == sorted(names), f"{archive}: members not sorted"
            for m in infos:
                assert m.name == top or m.name.startswith(top + "/")
                assert not m.name.startswith("/") and ".." not in m.name.split("/")
                assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
                assert m.isdir() or m.isfile()
                assert m.mode in (0o775, 0o664)
            assert len({m.mtime for m in infos}) == 1
    with tarfile.open(miniature_release.tensorflow_archive) as tar:
        assert tar.getmembers()[0].mtime == miniature_release.source_date_epoch
        assert re.fullmatch(r"[0-9a-f]{40}", tar.pax_headers["comment"]), "GitHub-like pax comment = commit"


def test_dependency_list_is_the_expected_lock(miniature_release):
    deps = {d.name: d for d in miniature_release.dependencies}
    assert set(deps) == {"xnnpack", "flatbuffers", "fft2d", "pthreadpool", "fp16", "google_benchmark", "opencl_headers"}
    assert {n: d.cmake_variable for n, d in deps.items()} == {
        "xnnpack": "FETCHCONTENT_SOURCE_DIR_XNNPACK",
        "flatbuffers": "FETCHCONTENT_SOURCE_DIR_FLATBUFFERS",
        "fft2d": "FETCHCONTENT_SOURCE_DIR_FFT2D",
        "pthreadpool": "PTHREADPOOL_SOURCE_DIR",
        "fp16": "FP16_SOURCE_DIR",
        "google_benchmark": "FETCHCONTENT_SOURCE_DIR_GOOGLE_BENCHMARK",
        "opencl_headers": "FETCHCONTENT_SOURCE_DIR_OPENCL_HEADERS",
    }
    # Downloads gated by options, as in TensorFlow Lite: only the default ones are in a default build.
    assert {n: d.when for n, d in deps.items() if d.when != "TRUE"} == {
        "xnnpack": "TFLITE_ENABLE_XNNPACK", "fp16": "TFLITE_ENABLE_XNNPACK",
        "google_benchmark": "TFLITE_KERNEL_TEST", "opencl_headers": "TFLITE_ENABLE_GPU"}
    assert {d.name for d in miniature_release.default_dependencies} == \
        {"xnnpack", "flatbuffers", "fft2d", "pthreadpool", "fp16"}
    assert deps["google_benchmark"].strip_prefix == "benchmark-1.7.0"
    assert deps["xnnpack"].url == f"https://github.com/google/XNNPACK/archive/{miniature.XNNPACK_TAG}.tar.gz"
    assert deps["xnnpack"].strip_prefix == f"XNNPACK-{miniature.XNNPACK_TAG}"
    # GitHub drops a tag's leading "v" from the top folder.
    assert deps["flatbuffers"].strip_prefix == "flatbuffers-23.5.26"
    assert deps["fft2d"].url.startswith("https://storage.googleapis.com/")
    for d in deps.values():
        assert d.archive == miniature_release.local_path(d.url)
        assert d.sha256 == sha256(d.archive)
        tops = {name.split("/")[0] for name in members(d.archive)}
        assert tops == {d.strip_prefix}
        tree = miniature_release.tensorflow_archive if d.declared_by == "tensorflow" else deps[d.declared_by].archive
        prefix = miniature_release.strip_prefix if d.declared_by == "tensorflow" else deps[d.declared_by].strip_prefix
        assert f"{prefix}/{d.declared_in}" in members(tree), f"{d.name}: declared_in does not exist"


def test_url_hash_values_are_the_real_sha256_of_the_served_archives(miniature_release):
    xnnpack = miniature_release.dependency("xnnpack")
    files = [
        tf_file(miniature_release, "tensorflow/lite/tools/cmake/modules/fft2d.cmake"),
        tf_file(miniature_release, "tensorflow/lite/cmake/DownloadPThreadPool.cmake"),
        text(xnnpack.archive, f"{xnnpack.strip_prefix}/cmake/DownloadFP16.cmake"),
        text(xnnpack.archive, f"{xnnpack.strip_prefix}/cmake/DownloadPThreadPool.cmake"),
    ]
    seen = 0
    for content in files:
        pairs = re.findall(r"^\s*URL (\S+)\s*\n\s*URL_HASH SHA256=([0-9a-f]{64})\s*$", content, re.M)
        assert len(pairs) == 1, content
        url, declared = pairs[0]
        assert sha256(miniature_release.local_path(url)) == declared, url
        seen += 1
    assert seen == 4


def test_git_declarations_have_the_real_shape_and_resolve_to_served_archives(miniature_release):
    decl = re.compile(
        r"OverridableFetchContent_Declare\(\s*(?P<name>[\w-]+)\s+GIT_REPOSITORY (?P<repo>https://github.com/\S+)\s+"
        r"GIT_TAG (?P<tag>\S+)\s+GIT_SHALLOW TRUE\s+GIT_PROGRESS TRUE\s+"
        r'SOURCE_DIR "\$\{CMAKE_BINARY_DIR\}/(?P=name)"\s*\)')
    for name, tag in (("xnnpack", miniature.XNNPACK_TAG), ("flatbuffers", miniature.FLATBUFFERS_TAG)):
        m = decl.search(tf_file(miniature_release, f"tensorflow/lite/tools/cmake/modules/{name}.cmake"))
        assert m and m["name"] == name and m["tag"] == tag
        dep = miniature_release.dependency(name)
        for form in (f"{m['repo']}/archive/{tag}.tar.gz", f"{m['repo']}/archive/{tag}.zip"):
            path = miniature_release.local_path(form)
            assert path.is_file(), form
        # Both forms GitHub serves hold the same tree.
        assert members(dep.archive) == members(miniature_release.local_path(f"{m['repo']}/archive/{tag}.zip"))
    assert re.fullmatch(r"[0-9a-f]{40}", miniature.XNNPACK_TAG)


def test_every_tree_carries_a_license(miniature_release):
    for dep in miniature_release.dependencies:
        if dep.name == "fft2d":
            continue
        files = members(dep.archive)
        assert files.get(f"{dep.strip_prefix}/LICENSE", b"").strip(), f"{dep.name} has no LICENSE"
    assert tf_file(miniature_release, "LICENSE").strip()


def test_fft2d_keeps_its_license_only_in_readme_files_like_ooura(miniature_release):
    # Real OouraFFT (petewarden/OouraFFT) has no LICENSE/COPYING/NOTICE: the terms are the
    # "Copyright" paragraphs of readme.txt and readme2d.txt, and TFLite's fft2d.cmake declares
    # LICENSE_FILE "readme2d.txt" so its license check passes.
    dep = miniature_release.dependency("fft2d")
    files = {name.split("/", 1)[1]: data.decode() for name, data in members(dep.archive).items()}
    assert not [n for n in files if re.match(r"(?i)^(licen[cs]e|copying|notice|copyright)", n.rsplit("/", 1)[-1])]
    for readme in ("readme.txt", "readme2d.txt"):
        assert re.search(r"^Copyright:?\n\s+Copyright\(C\) .+\n\s+You may use, copy", files[readme], re.M), readme
    module = tf_file(miniature_release, "tensorflow/lite/tools/cmake/modules/fft2d.cmake")
    assert re.search(r'^\s*LICENSE_FILE "readme2d.txt"$', module, re.M)


def test_gated_downloads_are_declared_only_under_their_options(miniature_release):
    lite = tf_file(miniature_release, "tensorflow/lite/CMakeLists.txt")
    assert re.search(r"^if\(TFLITE_ENABLE_GPU\)\n  find_package\(opencl_headers REQUIRED\)\nendif\(\)$", lite, re.M)
    assert re.search(r'^if\(TFLITE_KERNEL_TEST\)\n  add_subdirectory\("\$\{TFLITE_SOURCE_DIR\}/kernels"', lite, re.M)
    kernels = tf_file(miniature_release, "tensorflow/lite/kernels/CMakeLists.txt")
    assert "find_package(google_benchmark REQUIRED)" in kernels
    for name in ("google_benchmark", "opencl_headers"):
        dep = miniature_release.dependency(name)
        assert dep.archive.is_file() and dep.sha256 == sha256(dep.archive)   # served like any other
    assert "google_benchmark" not in lite   # reached only through the kernel tests' directory


def test_flag_lines_sit_where_the_patch_sets_expect_them(miniature_release):
    xnnpack = miniature_release.dependency("xnnpack")
    cmake = text(xnnpack.archive, f"{xnnpack.strip_prefix}/CMakeLists.txt")
    # Real XNNPACK (b9d4073, TFLite 2.14's pin) has nine -O2 targets in its GCC branch, -Os ones, and
    # MSVC's /O2 lines: the o3 edit must raise exactly the nine.
    assert cmake.count('"$<$<NOT:$<CONFIG:Debug>>:-O2>"') == 9
    for target in ("microkernels-all", "microkernels-prod", "hardware-config", "indirection", "microparams-init",
                   "packing", "microkernel-utils", "operator-run", "operator-utils"):
        assert f'TARGET_COMPILE_OPTIONS({target} PRIVATE "$<$<NOT:$<CONFIG:Debug>>:-O2>")' in cmake
    assert cmake.count('"$<$<NOT:$<CONFIG:Debug>>:/O2>"') == 2
    assert 'TARGET_COMPILE_OPTIONS(XNNPACK PRIVATE "$<$<NOT:$<CONFIG:Debug>>:-Os>")' in cmake
    # -mfpu=neon only inside the 32-bit ARM branch (CMAKE_SYSTEM_PROCESSOR ^armv[5-8]).
    arm_branch = re.search(r'IF\(XNNPACK_TARGET_PROCESSOR STREQUAL "arm"\)\n(.*?)ENDIF\(\)', cmake, re.S)
    assert arm_branch and "-mfpu=neon" in arm_branch.group(1)
    assert cmake.count("-mfpu=neon") == 1
    assert 'CMAKE_SYSTEM_PROCESSOR MATCHES "^armv[5-8]"' in cmake
    # TFLite's own CMake files add neither -O2 nor -mfpu (facts section 4).
    for name, data in members(miniature_release.tensorflow_archive).items():
        if name.endswith((".cmake", "CMakeLists.txt")):
            assert b"-O2" not in data and b"-mfpu" not in data, name


def test_tflite_modules_write_into_dependency_source_trees_at_configure_time(miniature_release):
    # Real eigen.cmake writes cmake/language_support.cmake and blanks three CMakeLists in eigen's tree;
    # the miniature does the same to two other trees, so a rule for eigen alone would fail.
    modules = "tensorflow/lite/tools/cmake/modules"
    xnnpack = tf_file(miniature_release, f"{modules}/xnnpack.cmake")
    flatbuffers = tf_file(miniature_release, f"{modules}/flatbuffers.cmake")
    assert 'file(WRITE "${xnnpack_SOURCE_DIR}/cmake/tflite-configure.cmake"' in xnnpack
    assert 'file(WRITE "${xnnpack_SOURCE_DIR}/bench/CMakeLists.txt" "")' in xnnpack
    assert 'file(WRITE "${flatbuffers_SOURCE_DIR}/CMake/tflite-version.cmake"' in flatbuffers
    dep = miniature_release.dependency("xnnpack")
    assert b"FATAL_ERROR" in members(dep.archive)[f"{dep.strip_prefix}/bench/CMakeLists.txt"]


def test_c_api_contract_files_are_at_tensorflows_paths(miniature_release):
    names = set(members(miniature_release.tensorflow_archive))
    for rel in ("tensorflow/lite/CMakeLists.txt", "tensorflow/lite/c/CMakeLists.txt",
                "tensorflow/lite/c/version_script.lds", "tensorflow/lite/c/c_api.h", "tensorflow/lite/c/c_api_types.h",
                "tensorflow/lite/c/common.h", "tensorflow/lite/core/c/c_api.h", "tensorflow/lite/core/c/c_api_types.h",
                "tensorflow/lite/core/c/common.h", "tensorflow/lite/builtin_ops.h",
                "tensorflow/lite/tools/cmake/modules/OverridableFetchContent.cmake",
                "tensorflow/lite/cmake/DownloadPThreadPool.cmake"):
        assert f"{miniature_release.strip_prefix}/{rel}" in names, rel
    lite = tf_file(miniature_release, "tensorflow/lite/CMakeLists.txt")
    assert "cmake_minimum_required(VERSION 3.16)" in lite
    assert re.search(r"^add_library\(tensorflow-lite\n", lite, re.M), "no STATIC/SHARED keyword"
    for option, default in (("XNNPACK", "ON"), ("RUY", "OFF"), ("MMAP", "ON"), ("GPU", "OFF"), ("NNAPI", "ON"),
                            ("RESOURCE", "ON"), ("EXTERNAL_DELEGATE", "ON"), ("INSTALL", "OFF")):
        assert re.search(rf'^option\(TFLITE_ENABLE_{option} "[^"]*" {default}\)$', lite, re.M), option
    capi = tf_file(miniature_release, "tensorflow/lite/c/CMakeLists.txt")
    assert 'option(TFLITE_C_BUILD_SHARED_LIBS "Build shared libraries" ON)' in capi
    assert "-Wl,--version-script,${TENSORFLOW_SOURCE_DIR}/tensorflow/lite/c/version_script.lds" in capi
    assert "SOVERSION" not in capi.replace("no VERSION/SOVERSION", "")
    version_h = tf_file(miniature_release, "tensorflow/core/public/version.h")
    assert "#define TF_MINOR_VERSION 16" in version_h and "#define TF_PATCH_VERSION 1" in version_h


def test_bazel_files_from_the_bazel_module_are_in_the_tree(miniature_release):
    from tflite_forge.miniature import bazel

    files = bazel.bazel_files(miniature_release.version)
    assert files, "bazel_files returned nothing"
    for rel, content in files.items():
        assert tf_file(miniature_release, rel) == content


def test_no_placeholder_survives_rendering(miniature_release):
    for archive in miniature_release.archives:
        for name, data in members(archive).items():
            assert b"{{" not in data, f"{archive.name}:{name}"


def test_other_versions_and_bad_versions(tmp_path):
    release = write_release(tmp_path, "2.14.0")
    assert load_recipe(release.recipe_path).version == "2.14.0"
    assert release.source_date_epoch == 1695686400
    assert "#define TF_MINOR_VERSION 14" in tf_file(release, "tensorflow/core/public/version.h")
    assert release.tensorflow_archive.name == "v2.14.0.tar.gz"
    with pytest.raises(ValueError, match="MAJOR.MINOR.PATCH"):
        write_release(tmp_path / "bad", "2.16")
    assert not (tmp_path / "bad").exists()


def test_zip_archives_are_deterministic_and_github_shaped(miniature_release):
    dep = miniature_release.dependency("pthreadpool")
    assert dep.url.endswith(".zip")
    with zipfile.ZipFile(dep.archive) as zf:
        assert zf.comment.decode() == miniature.PTHREADPOOL_COMMIT
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        assert {i.date_time for i in infos} == {(2023, 5, 26, 0, 0, 0)}
    # The same tree is served as .tar.gz too (GitHub serves both forms).
    tgz = miniature_release.local_path(dep.url[: -len(".zip")] + ".tar.gz")
    assert members(tgz) == members(dep.archive)
