"""Dependency locks: the CMake reader, URL rules, strict lock files, and lock generation against
archives served by a real HTTP server on 127.0.0.1 (upstream-form URLs reached through --rewrite)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from tflite_forge.cache import Cache, sha256_file
from tflite_forge.cmake_scan import declarations, parse_commands
from tflite_forge.download import FetchPolicy
from tflite_forge.errors import FetchError, LockError
from tflite_forge.fetch import Fetcher
from tflite_forge.lock import archive_for, cmake_variable, generate_lock, github_strip_prefix
from tflite_forge.lockfile import Lock, LockedDependency, dump_lock, load_lock, read_recipe_lock, write_lock
from tflite_forge.progress import PlainProgress
from tflite_forge.recipe import load_recipe
from tflite_forge.settings import Settings
from tflite_forge.sources import ensure_sources, run_fetch

from .faultserver import FaultServer

FAST = FetchPolicy(connect_timeout=2, read_timeout=2, retries=1, backoff_factor=0.01)


# ---------------------------------------------------------------- the CMake reader

MODULE = """\
# Copyright header-ish comment with a ( paren
include(OverridableFetchContent)
#[[ a bracket comment
OverridableFetchContent_Declare(ghost GIT_REPOSITORY https://github.com/no/ghost GIT_TAG v0)
]]
set(XNN_TAG "1234abcd")
OverridableFetchContent_Declare(
  xnnpack
  GIT_REPOSITORY https://github.com/google/XNNPACK   # trailing comment
  # Sync with tensorflow/workspace2.bzl
  GIT_TAG ${XNN_TAG}
  GIT_PROGRESS TRUE
  PREFIX "${CMAKE_BINARY_DIR}"
  SOURCE_DIR "${CMAKE_BINARY_DIR}/xnnpack"
)
function(my_declare name)
  FetchContent_Declare(${name} URL ${ARGN})
endfunction()
OverridableFetchContent_Declare(fft2d
  URL "https://storage.googleapis.com/mirror.tensorflow.org/github.com/petewarden/OouraFFT/archive/v1.0.tar.gz"
  URL_HASH SHA256=5F4DABC2AE21E1F537425D58A49CDCA1C49EA11DB0D6271E2A4B27E9697548EB
  SOURCE_DIR "${CMAKE_BINARY_DIR}/fft2d"
  LICENSE_FILE "readme2.txt"
)
ExternalProject_Add(flatbuffers-flatc SOURCE_DIR ${flatbuffers_SOURCE_DIR} CMAKE_ARGS -DX=1)
"""


def test_reader_handles_comments_quotes_multiline_and_functions(tmp_path):
    f = tmp_path / "m.cmake"
    f.write_text(MODULE)
    decls = declarations(f, "tensorflow/lite/tools/cmake/modules/m.cmake")
    assert [d.name for d in decls] == ["xnnpack", "fft2d"]
    xnn, fft = decls
    assert (xnn.git_repository, xnn.git_tag, xnn.kind, xnn.line) == ("https://github.com/google/XNNPACK", "1234abcd", "fetchcontent", 7)
    assert fft.urls == ("https://storage.googleapis.com/mirror.tensorflow.org/github.com/petewarden/OouraFFT/archive/v1.0.tar.gz",)
    assert fft.url_hash == ("SHA256", "5f4dabc2ae21e1f537425d58a49cdca1c49ea11db0d6271e2a4b27e9697548eb")


def test_reader_quoted_escapes_and_bracket_arguments():
    cmds = parse_commands('set(A "x\\"y\\\\z" [==[raw ]] text]==] b\\ c)\nmessage(STATUS ok)', "f")
    assert [a.value for a in cmds[0].args] == ["A", 'x"y\\z', "raw ]] text", "b c"]
    assert cmds[1].line == 2


@pytest.mark.parametrize("text,message", [
    ('ExternalProject_Add(p URL https://x/${UNKNOWN}.zip)', r"f.cmake:1: cannot resolve \$\{UNKNOWN\}"),
    ('\n\nFetchContent_Declare(p\n GIT_REPOSITORY https://github.com/a/b\n GIT_TAG $ENV{TAG})', r"f.cmake:5: .*environment"),
    ('set(A "unterminated)\n', r"f.cmake:1: unterminated quoted argument"),
    ('FetchContent_Declare(p URL x\n', r"f.cmake:1: unterminated command"),
])
def test_reader_errors_name_file_and_line(tmp_path, text, message):
    f = tmp_path / "f.cmake"
    f.write_text(text)
    with pytest.raises(LockError, match=message):
        declarations(f, "f.cmake")


def test_archive_url_rules():
    from tflite_forge.cmake_scan import Declaration
    gh = Declaration("xnnpack", "fetchcontent", (), None, "https://github.com/google/XNNPACK.git", "abc123", "m", 1)
    assert archive_for(gh) == ("https://github.com/google/XNNPACK/archive/abc123.tar.gz", "XNNPACK-abc123")
    gl = Declaration("eigen", "fetchcontent", (), None, "https://gitlab.com/libeigen/eigen.git", "3.4.0", "m", 1)
    assert archive_for(gl) == ("https://gitlab.com/libeigen/eigen/-/archive/3.4.0/eigen-3.4.0.tar.gz", "eigen-3.4.0")
    other = Declaration("x", "fetchcontent", (), None, "https://git.example.org/x.git", "v1", "m.cmake", 9)
    with pytest.raises(LockError, match=r"m.cmake:9: x: GIT_REPOSITORY .* neither on GitHub nor GitLab"):
        archive_for(other)
    assert github_strip_prefix("tensorflow", "v2.16.1") == "tensorflow-2.16.1"
    assert github_strip_prefix("Vulkan-Headers", "vulkan-sdk-1.3") == "Vulkan-Headers-vulkan-sdk-1.3"
    assert cmake_variable(gh.__class__("abseil-cpp", "fetchcontent", (), None, None, None, "m", 1)) == "FETCHCONTENT_SOURCE_DIR_ABSEIL-CPP"
    assert cmake_variable(gh.__class__("fp16", "externalproject", (), None, None, None, "m", 1)) == "FP16_SOURCE_DIR"


# ---------------------------------------------------------------- lock files

def _dep(**kw) -> LockedDependency:
    base = dict(name="xnnpack", url="https://github.com/google/XNNPACK/archive/abc.tar.gz", sha256="a" * 64,
                strip_prefix="XNNPACK-abc", cmake_variable="FETCHCONTENT_SOURCE_DIR_XNNPACK",
                declared_in="tensorflow/lite/tools/cmake/modules/xnnpack.cmake", declared_by="tensorflow")
    return LockedDependency(**{**base, **kw})


def test_lock_round_trip_is_atomic_and_exact(tmp_path):
    lock = Lock(path=tmp_path / "r.toml.lock", archive_sha256="b" * 64, generated_by="tflite-forge 0.1.0",
                dependencies=(_dep(), _dep(name="fp16", cmake_variable="FP16_SOURCE_DIR", declared_by="xnnpack",
                                           declared_in="cmake/DownloadFP16.cmake")))
    write_lock(lock)
    assert [p.name for p in tmp_path.iterdir()] == ["r.toml.lock"]
    assert load_lock(lock.path) == lock


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace('sha256 = "' + "a" * 64, 'sha256 = "' + "A" * 64), r"\.sha256: expected 64 lower-case hex"),
    (lambda t: t.replace("strip_prefix = ", "strip_prefx = "), r"unknown key 'strip_prefx'; perhaps you meant 'strip_prefix'"),
    (lambda t: t.replace('strip_prefix = "XNNPACK-abc"', 'strip_prefix = "../up"'), r"strip_prefix: expected the archive's top folder"),
    (lambda t: t.replace('url = "https://', 'url = "ftp://'), r"\.url: expected an http\(s\)://"),
    (lambda t: t + t[t.index("[[dependency]]"):], r"'xnnpack' is locked twice"),
    (lambda t: t.replace("[lock]", "[lock]\nextra = 1"), r"\[lock\]: unknown key 'extra'"),
    (lambda t: t.replace('name = "xnnpack"\n', ""), r"#1.name: missing"),
    (lambda t: t + "\n[oops", r"not valid TOML"),
    (lambda t: t.replace('declared_by = "tensorflow"', 'declared_by = "tensorflow"\nlicense_file = "LICENSE"\n'
                         'license_sha256 = "0123"'), r"#1.license_sha256: expected 64 lower-case hex"),
    (lambda t: t.replace('declared_by = "tensorflow"', 'declared_by = "tensorflow"\nlicense_sha256 = "' + "e" * 64 + '"'),
     r"#1.license_sha256: set without license_file"),
    (lambda t: t.replace('generated_by = "x"', 'generated_by = "x"\nlicense_sha256 = "LICENSE"'),
     r"\[lock\]\.license_sha256: expected 64 lower-case hex"),
])
def test_load_lock_is_strict(tmp_path, edit, message):
    path = tmp_path / "r.toml.lock"
    lock = Lock(path=path, archive_sha256="b" * 64, generated_by="x", dependencies=(_dep(),))
    path.write_text(edit(dump_lock(lock)))
    with pytest.raises(LockError, match=message) as err:
        load_lock(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- generation against a served release

def _tar(entries: dict[str, str], top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(entries: dict[str, str], top: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in entries.items():
            zf.writestr(f"{top}/{name}", text)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Release:
    """A tiny TF-shaped release: two modules, TF's DownloadPThreadPool, and an XNNPACK-like tree
    that downloads FP16 (zip, URL_HASH) and pthreadpool (already provided by TensorFlow)."""

    def __init__(self, root: Path, *, fp16_hash: str | None = None):
        self.www = root / "www"
        self.pthreadpool = _zip({"LICENSE": "pt", "include/pthreadpool.h": ""}, "pthreadpool-1111")
        self.fp16 = _zip({"LICENSE": "fp16", "include/fp16.h": ""}, "FP16-2222")
        xnn_download = (
            "ExternalProject_Add(fp16\n  URL https://github.com/Maratyszcza/FP16/archive/2222.zip\n"
            f"  URL_HASH SHA256={fp16_hash or sha(self.fp16)}\n  SOURCE_DIR \"${{CMAKE_BINARY_DIR}}/FP16-source\")\n")
        xnn_pt = ("ExternalProject_Add(pthreadpool\n  URL https://github.com/Maratyszcza/pthreadpool/archive/9999.zip\n"
                  f"  URL_HASH SHA256={'c' * 64})\n")
        self.xnnpack = _tar({"LICENSE": "x", "CMakeLists.txt": "", "cmake/DownloadFP16.cmake": xnn_download,
                             "cmake/DownloadPThreadPool.cmake": xnn_pt,
                             "cmake/DownloadGoogleTest.cmake": "ExternalProject_Add(googletest URL https://github.com/google/googletest/archive/x.zip)\n"},
                            "XNNPACK-5555")
        self.fft2d = _tar({"readme2.txt": "ooura", "fftsg.c": ""}, "OouraFFT-1.0")
        modules = {
            "xnnpack.cmake": "OverridableFetchContent_Declare(xnnpack\n  GIT_REPOSITORY https://github.com/google/XNNPACK\n"
                             "  GIT_TAG 5555\n  SOURCE_DIR \"${CMAKE_BINARY_DIR}/xnnpack\")\n",
            "fft2d.cmake": "OverridableFetchContent_Declare(fft2d\n  URL https://github.com/petewarden/OouraFFT/archive/v1.0.tar.gz\n"
                           f"  URL_HASH SHA256={sha(self.fft2d)}\n)\n",
            "OverridableFetchContent.cmake": "function(OverridableFetchContent_Declare name)\n  FetchContent_Declare(${name} ${ARGN})\nendfunction()\n",
        }
        tf = {f"tensorflow/lite/tools/cmake/modules/{k}": v for k, v in modules.items()}
        tf["tensorflow/lite/cmake/DownloadPThreadPool.cmake"] = (
            "ExternalProject_Add(pthreadpool\n  URL https://github.com/Maratyszcza/pthreadpool/archive/1111.zip\n"
            f"  URL_HASH SHA256={sha(self.pthreadpool)}\n)\n")
        tf["tensorflow/lite/c/CMakeLists.txt"] = "project(x)\n"
        self.tf = _tar(tf, "tensorflow-9.9.9")
        files = {
            "github.com/tensorflow/tensorflow/archive/refs/tags/v9.9.9.tar.gz": self.tf,
            "github.com/google/XNNPACK/archive/5555.tar.gz": self.xnnpack,
            "github.com/petewarden/OouraFFT/archive/v1.0.tar.gz": self.fft2d,
            "github.com/Maratyszcza/pthreadpool/archive/1111.zip": self.pthreadpool,
            "github.com/Maratyszcza/FP16/archive/2222.zip": self.fp16,
        }
        for rel, data in files.items():
            (self.www / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.www / rel).write_bytes(data)
        self.recipe_path = root / "recipes" / "tensorflow-9.9.9.toml"
        self.recipe_path.parent.mkdir(parents=True)
        self.recipe_path.write_text(
            '[source]\nname = "tensorflow"\nversion = "9.9.9"\n'
            'urls = ["https://github.com/tensorflow/tensorflow/archive/refs/tags/v9.9.9.tar.gz"]\n'
            f'sha256 = "{sha(self.tf)}"\nstrip_prefix = "tensorflow-9.9.9"\n')


def _fetcher(cache: Path, **kw) -> Fetcher:
    return Fetcher(cache, policy=FAST, progress=PlainProgress(stream=io.StringIO()), **kw)


def test_lock_generation_reads_modules_tf_downloads_and_dependency_downloads(tmp_path):
    rel = Release(tmp_path)
    recipe = load_recipe(rel.recipe_path)
    with FaultServer(rel.www) as srv:
        fetcher = _fetcher(tmp_path / "cache", rewrites=[("https://", srv.base)])
        lock = generate_lock(fetcher, recipe)
        assert srv.requests("/github.com/google/googletest/archive/x.zip") == []  # test-only: skipped
        assert srv.requests("/github.com/Maratyszcza/pthreadpool/archive/9999.zip") == []  # TF's comes first
    got = {d.name: d for d in lock.dependencies}
    assert list(got) == ["fft2d", "xnnpack", "pthreadpool", "fp16"]
    assert got["xnnpack"] == LockedDependency(
        name="xnnpack", url="https://github.com/google/XNNPACK/archive/5555.tar.gz", sha256=sha(rel.xnnpack),
        strip_prefix="XNNPACK-5555", cmake_variable="FETCHCONTENT_SOURCE_DIR_XNNPACK",
        declared_in="tensorflow/lite/tools/cmake/modules/xnnpack.cmake", declared_by="tensorflow")
    assert got["fft2d"].strip_prefix == "OouraFFT-1.0"  # read from the archive: the 'v' is gone
    assert got["pthreadpool"].cmake_variable == "PTHREADPOOL_SOURCE_DIR"
    assert got["pthreadpool"].declared_in == "tensorflow/lite/cmake/DownloadPThreadPool.cmake"
    assert (got["fp16"].declared_by, got["fp16"].declared_in, got["fp16"].cmake_variable, got["fp16"].strip_prefix) == \
        ("xnnpack", "cmake/DownloadFP16.cmake", "FP16_SOURCE_DIR", "FP16-2222")
    assert lock.archive_sha256 == sha(rel.tf)
    # Every locked archive is in the cache, verified, and unpacked.
    cache = Cache(tmp_path / "cache")
    for dep in lock.dependencies:
        assert sha256_file(cache.blob(dep.sha256)) == dep.sha256
        assert (cache.tree(dep.sha256) / "LICENSE").exists() or dep.name == "fft2d"
    # No LICENSE_FILE declared and no LICENSE in this TensorFlow tree: no license hash anywhere.
    assert lock.license_sha256 == "" and all(d.license_sha256 == "" for d in lock.dependencies)


def test_test_only_downloads_come_from_the_recipes_policy(tmp_path):
    rel = Release(tmp_path)
    rel.recipe_path.write_text(rel.recipe_path.read_text() + "\n[policy]\ntest_only = []\n")
    with FaultServer(rel.www) as srv:
        with pytest.raises(FetchError, match="googletest"):
            generate_lock(_fetcher(tmp_path / "cache", rewrites=[("https://", srv.base)]), load_recipe(rel.recipe_path))
        assert srv.requests("/github.com/google/googletest/archive/x.zip")  # no longer skipped as test-only


def test_upstream_url_hash_is_verified_not_trusted(tmp_path):
    rel = Release(tmp_path, fp16_hash="d" * 64)
    recipe = load_recipe(rel.recipe_path)
    with FaultServer(rel.www) as srv:
        with pytest.raises(LockError) as err:
            generate_lock(_fetcher(tmp_path / "cache", rewrites=[("https://", srv.base)]), recipe)
    msg = str(err.value)
    assert "fp16" in msg and "d" * 64 in msg and sha(rel.fp16) in msg and "cmake/DownloadFP16.cmake" in msg
    assert not (tmp_path / "cache" / "sha256" / ("d" * 64)).exists()
    assert not rel.recipe_path.with_name(rel.recipe_path.name + ".lock").exists()


def test_lock_then_offline_fetch_and_sources_from_cache(tmp_path, monkeypatch):
    from tflite_forge.lock import run_lock
    rel = Release(tmp_path)
    cache = tmp_path / "cache"
    with FaultServer(rel.www) as srv:
        settings = Settings(cache_dir=cache, recipe=str(rel.recipe_path), rewrites=(("https://", srv.base),))
        run_lock(settings, fetcher=_fetcher(cache, rewrites=settings.rewrites))
    lock = load_lock(rel.recipe_path.with_name("tensorflow-9.9.9.toml.lock"))
    assert len(lock.dependencies) == 4

    import socket

    def refuse(*a, **k):
        raise AssertionError("socket used offline")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    offline = Settings(cache_dir=cache, recipe=str(rel.recipe_path), offline=True)
    fetched = run_fetch(offline, fetcher=_fetcher(cache, offline=True))
    assert len(fetched) == 5
    # Trees already unpacked by the lock are reused; a wiped trees/ is rebuilt from sha256/, offline.
    import shutil
    shutil.rmtree(cache / "trees")
    sources = ensure_sources(offline, load_recipe(rel.recipe_path), fetcher=_fetcher(cache, offline=True))
    assert (sources.tensorflow / "tensorflow/lite/c/CMakeLists.txt").is_file()
    assert set(sources.dependencies) == {"fft2d", "xnnpack", "pthreadpool", "fp16"}
    assert (sources.dependencies["fp16"].tree / "include/fp16.h").is_file()
    assert sources.dependencies["fp16"].dependency.cmake_variable == "FP16_SOURCE_DIR"


def test_sources_without_lock_say_how_to_make_one(tmp_path):
    rel = Release(tmp_path)
    with pytest.raises(LockError, match=r"has no dependency lock .* run `invoke lock --recipe .*tensorflow-9.9.9.toml` first"):
        ensure_sources(Settings(cache_dir=tmp_path), load_recipe(rel.recipe_path), fetcher=_fetcher(tmp_path, offline=True))


def test_lock_from_another_archive_is_refused(tmp_path):
    rel = Release(tmp_path)
    recipe = load_recipe(rel.recipe_path)
    write_lock(Lock(path=recipe.lock_path, archive_sha256="e" * 64, generated_by="x", dependencies=()))
    with pytest.raises(LockError, match=r"generated from archive eeeeeeeeeeee\.\.\., but the recipe pins"):
        read_recipe_lock(recipe)


# ---------------------------------------------------------------- the miniature TensorFlow (tflite_forge.miniature)

@pytest.fixture(scope="module")
def miniature(tmp_path_factory):
    from tflite_forge.miniature import write_release
    return write_release(tmp_path_factory.mktemp("miniature") / "release")


def test_lock_of_the_miniature_matches_what_it_declares(miniature, tmp_path, monkeypatch):
    recipe = load_recipe(miniature.recipe_path)
    cache = tmp_path / "cache"
    with FaultServer(miniature.www_root) as srv:
        lock = generate_lock(_fetcher(cache, rewrites=[("https://", srv.base)]), recipe)
        # Only archives were requested, each once; XNNPACK's own pthreadpool was not downloaded,
        # nor were the downloads only kernel tests or the GPU delegate reach.
        paths = [p for p, _, _ in srv.log]
        assert len(paths) == len(set(paths)) == 1 + len(miniature.default_dependencies)
    expected = {d.name: d for d in miniature.default_dependencies}
    assert {d.name for d in lock.dependencies} == set(expected)
    for dep in lock.dependencies:
        want = expected[dep.name]
        assert (dep.url, dep.sha256, dep.strip_prefix, dep.cmake_variable, dep.declared_in, dep.declared_by, dep.when) == \
            (want.url, want.sha256, want.strip_prefix, want.cmake_variable, want.declared_in, want.declared_by, want.when)
    assert {(d.name, d.when) for d in lock.skipped} == {("google_benchmark", "TFLITE_KERNEL_TEST"),
                                                        ("opencl_headers", "TFLITE_ENABLE_GPU")}
    assert lock.get("fft2d").license_file == "readme2d.txt"
    assert lock.archive_sha256 == miniature.tensorflow_sha256
    # The declared license file's sha256, as unpacked; and TensorFlow's own LICENSE.
    fft2d = lock.get("fft2d")
    assert fft2d.license_sha256 == sha256_file(cache / "trees" / fft2d.sha256 / "readme2d.txt")
    assert lock.license_sha256 == sha256_file(cache / "trees" / lock.archive_sha256 / "LICENSE")
    assert all(d.license_sha256 == "" for d in lock.dependencies if not d.license_file)
    written = tmp_path / "written.toml.lock"
    write_lock(replace(lock, path=written))
    assert load_lock(written) == replace(lock, path=written)
    assert f'license_sha256 = "{fft2d.license_sha256}"' in written.read_text()

    # Then everything comes from the cache with the network forbidden.
    import socket

    def refuse(*a, **k):
        raise AssertionError("socket used offline")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    lock_path = tmp_path / "mini.toml.lock"
    write_lock(Lock(path=lock_path, archive_sha256=lock.archive_sha256, generated_by=lock.generated_by,
                    dependencies=lock.dependencies, option_defaults=lock.option_defaults, skipped=lock.skipped))
    recipe_copy = tmp_path / "mini.toml"
    recipe_copy.write_text(miniature.recipe_path.read_text())
    offline = Settings(cache_dir=cache, recipe=str(recipe_copy), offline=True)
    assert len(run_fetch(offline, fetcher=_fetcher(cache, offline=True))) == 1 + len(miniature.default_dependencies)
    sources = ensure_sources(offline, load_recipe(recipe_copy), fetcher=_fetcher(cache, offline=True))
    assert (sources.tensorflow / "tensorflow/lite/c/CMakeLists.txt").is_file()
    for name, locked in sources.dependencies.items():
        assert locked.tree == cache / "trees" / expected[name].sha256


# ---------------------------------------------------------------- shapes seen in real upstream trees
# Short snippets written for these tests; each mimics one shape found in stored TensorFlow/XNNPACK
# files (see /work/research/real-files-check.md), not their text.

PIN_HELPER_MODULE = """\
include(utils)
get_dependency_archive("widget" "${TF_SOURCE_DIR}/pins.bzl" WIDGET_URL WIDGET_SUM)
get_dependency_tag("gadget" "${TF_SOURCE_DIR}/../third_party/gadget/pins.bzl" GADGET_REV)
OverridableFetchContent_Declare(widget
  URL ${WIDGET_URL}
  URL_HASH SHA256=${WIDGET_SUM}
  LICENSE_FILE "COPYING"
  LICENSE_URL "https://example.org/widget/license"
)
OverridableFetchContent_Declare(gadget GIT_REPOSITORY https://github.com/example/gadget GIT_TAG ${GADGET_REV})
"""


def _pin_tree(tmp_path, widget_lines: str):
    root = tmp_path / "src"
    mod = root / "tensorflow/lite/tools/cmake/modules/widget.cmake"
    mod.parent.mkdir(parents=True)
    mod.write_text(PIN_HELPER_MODULE)
    (root / "tensorflow/pins.bzl").write_text(widget_lines)
    (root / "third_party/gadget").mkdir(parents=True)
    (root / "third_party/gadget/pins.bzl").write_text('GADGET_COMMIT = "' + "ab" * 20 + '"\n')
    return root, mod


def test_reader_follows_tflite_pin_helpers_into_bazel_files(tmp_path):
    root, mod = _pin_tree(tmp_path, 'x = 1\n  WIDGET_URL = "https://example.org/w-1.0.tar.gz"\nWIDGET_SHA256 = "' + "0f" * 32 + '"\n')
    preset = {"TF_SOURCE_DIR": str(root / "tensorflow")}
    widget, gadget = declarations(mod, "m.cmake", root=root, preset=preset)
    assert widget.urls == ("https://example.org/w-1.0.tar.gz",)
    assert widget.url_hash == ("SHA256", "0f" * 32)
    assert (gadget.git_repository, gadget.git_tag) == ("https://github.com/example/gadget", "ab" * 20)


def test_reader_pin_helper_without_pin_line_names_the_bazel_file(tmp_path):
    # Bazel files that only hold tf_http_archive(...) have no NAME_URL line: CMake itself stops there.
    root, mod = _pin_tree(tmp_path, 'tf_http_archive(\n    name = "widget",\n    sha256 = "00",\n)\n')
    with pytest.raises(LockError, match=r"m.cmake:5: cannot resolve \$\{WIDGET_URL\} .*get_dependency_archive at line 2: "
                                        r"tensorflow/pins.bzl has no line `WIDGET_URL = "):
        declarations(mod, "m.cmake", root=root, preset={"TF_SOURCE_DIR": str(root / "tensorflow")})
    with pytest.raises(LockError, match=r"get_dependency_archive at line 2: .*outside the source tree"):
        declarations(mod, "m.cmake", root=root, preset={"TF_SOURCE_DIR": str(tmp_path / "elsewhere")})


def test_scan_tree_skips_unreadable_modules_only_for_features_never_built(tmp_path):
    from tflite_forge.lock import scan_tree
    modules = tmp_path / "tensorflow/lite/tools/cmake/modules"
    modules.mkdir(parents=True)
    # A GPU-only header module whose URL is computed at configure time (downloaded then grepped).
    (modules / "opencl_headers.cmake").write_text(
        'file(DOWNLOAD https://example.org/conf.cmake ${CMAKE_BINARY_DIR}/conf.cmake)\n'
        'string(SUBSTRING ${LINE} 4 -1 CL_URL)\nOverridableFetchContent_Declare(opencl_headers URL ${CL_URL})\n')
    (modules / "ruy.cmake").write_text("OverridableFetchContent_Declare(ruy GIT_REPOSITORY https://github.com/g/ruy GIT_TAG v1)\n")
    notes = []
    found = scan_tree(tmp_path, "tensorflow", notes.append)
    assert [d.name for _, d in found] == ["ruy"]
    assert len(notes) == 1 and "opencl_headers.cmake: skipped" in notes[0] and "CL_URL" in notes[0]
    # Which modules count as never built is the recipe's [policy].not_built.
    with pytest.raises(LockError, match=r"opencl_headers.cmake:3: cannot resolve \$\{CL_URL\}"):
        scan_tree(tmp_path, "tensorflow", notes.append, not_built=())
    (modules / "ruy.cmake").write_text("OverridableFetchContent_Declare(ruy URL ${RUY_URL})\n")
    with pytest.raises(LockError, match=r"ruy.cmake:1: cannot resolve \$\{RUY_URL\}"):
        scan_tree(tmp_path, "tensorflow", notes.append)


def test_plain_download_file_is_read_before_its_variant(tmp_path):
    from tflite_forge.lock import declaration_files, scan_tree
    cmake = tmp_path / "cmake"
    cmake.mkdir()
    body = 'ExternalProject_Add(kernels URL https://example.org/{0}.zip URL_HASH SHA256={1})\n'
    (cmake / "DownloadKernels-Vendor.cmake").write_text(body.format("vendor", "11" * 32))
    (cmake / "DownloadKernels.cmake").write_text(body.format("default", "22" * 32))
    (cmake / "DownloadA.cmake").write_text(body.format("a", "33" * 32).replace("kernels", "a"))
    assert [p.name for p in declaration_files(tmp_path, "xnnpack")] == \
        ["DownloadA.cmake", "DownloadKernels.cmake", "DownloadKernels-Vendor.cmake"]
    first_kernels = next(d for _, d in scan_tree(tmp_path, "xnnpack") if d.name == "kernels")
    assert first_kernels.urls == ("https://example.org/default.zip",)
