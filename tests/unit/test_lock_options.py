"""Which options bring a download in: the reach walk over a CMake project, the `when` a lock records,
lockfile.needed(), and sources.ensure_sources(options=...) on the miniature served from 127.0.0.1."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from tflite_forge.cmake_scan import condition_text, evaluate_condition, reach
from tflite_forge.download import FetchPolicy
from tflite_forge.errors import FetchError, LockError
from tflite_forge.fetch import Fetcher
from tflite_forge.lock import generate_lock
from tflite_forge.lockfile import Lock, LockedDependency, SkippedDependency, dump_lock, load_lock, needed, write_lock
from tflite_forge.miniature import write_release
from tflite_forge.progress import PlainProgress
from tflite_forge.recipe import load_recipe
from tflite_forge.settings import Settings
from tflite_forge.sources import ensure_sources

from .faultserver import FaultServer

FAST = FetchPolicy(connect_timeout=2, read_timeout=2, retries=1, backoff_factor=0.01)


def _fetcher(cache: Path, **kw) -> Fetcher:
    return Fetcher(cache, policy=FAST, progress=PlainProgress(stream=io.StringIO()), **kw)


# ---------------------------------------------------------------- conditions as CMake evaluates them

@pytest.mark.parametrize(("text", "values", "expected"), [
    ("TRUE", {}, True),
    ("FALSE", {}, False),
    ("TFLITE_ENABLE_GPU", {}, False),                                  # undefined: false, as in CMake
    ("TFLITE_ENABLE_GPU", {"TFLITE_ENABLE_GPU": "ON"}, True),
    ("TFLITE_ENABLE_GPU", {"TFLITE_ENABLE_GPU": "OFF"}, False),
    ("NOT SYSTEM_PTHREADPOOL", {}, True),
    ('NOT CMAKE_SYSTEM_PROCESSOR OR CMAKE_SYSTEM_PROCESSOR MATCHES "x86"', {}, True),
    ('NOT CMAKE_SYSTEM_PROCESSOR OR CMAKE_SYSTEM_PROCESSOR MATCHES "x86"', {"CMAKE_SYSTEM_PROCESSOR": "x86_64"}, True),
    ('NOT CMAKE_SYSTEM_PROCESSOR OR CMAKE_SYSTEM_PROCESSOR MATCHES "x86"', {"CMAKE_SYSTEM_PROCESSOR": "aarch64"}, False),
    # AND and OR have one precedence, left to right (CMake's if() documentation).
    ("A OR B AND C", {"A": "ON", "C": "OFF"}, False),
    ("A OR (B AND C)", {"A": "ON", "C": "OFF"}, True),
    ("DEFINED X", {"X": ""}, True),
    ('V VERSION_GREATER_EQUAL "2.17"', {"V": "2.17.0"}, True),
])
def test_recorded_conditions_evaluate_like_cmake(text, values, expected):
    assert evaluate_condition(text, values) is expected


# Shapes seen in TensorFlow Lite's CMake files (2.14's tensorflow/lite/CMakeLists.txt and
# kernels/CMakeLists.txt; 2.17's unconditional add_subdirectory(profiling/proto) reaching protobuf),
# written for this test, not their text.
TREE = {
    "tensorflow/lite/c/CMakeLists.txt": """\
set(TENSORFLOW_SOURCE_DIR "" CACHE PATH "TensorFlow")
if(NOT TENSORFLOW_SOURCE_DIR)
  get_filename_component(TENSORFLOW_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/../../../" ABSOLUTE)
endif()
set(TFLITE_SOURCE_DIR "${TENSORFLOW_SOURCE_DIR}/tensorflow/lite")
add_subdirectory("${TFLITE_SOURCE_DIR}" "${CMAKE_CURRENT_BINARY_DIR}/tensorflow-lite" EXCLUDE_FROM_ALL)
""",
    "tensorflow/lite/CMakeLists.txt": """\
set(CMAKE_MODULE_PATH "${TFLITE_SOURCE_DIR}/tools/cmake/modules" ${CMAKE_MODULE_PATH})
option(TFLITE_ENABLE_NNAPI "nnapi" ON)
option(TFLITE_ENABLE_GPU "gpu" OFF)
option(TFLITE_ENABLE_XNNPACK "xnnpack" ON)
option(TFLITE_KERNEL_TEST "tests" OFF)
set(_TFLITE_ENABLE_NNAPI "${TFLITE_ENABLE_NNAPI}")
if(NOT "${CMAKE_SYSTEM_NAME}" STREQUAL "Android")
  set(_TFLITE_ENABLE_NNAPI OFF)
endif()
find_package(widget REQUIRED)
if (NOT CMAKE_SYSTEM_PROCESSOR OR CMAKE_SYSTEM_PROCESSOR MATCHES "x86")
  find_package(NEON_2_SSE REQUIRED)
endif()
if(SYSTEM_PTHREADPOOL)
  find_library(PTHREADPOOL_LIB pthreadpool REQUIRED)
elseif(NOT DEFINED PTHREADPOOL_SOURCE_DIR)
  configure_file(cmake/DownloadPThreadPool.cmake "${CMAKE_BINARY_DIR}/pthreadpool-download/CMakeLists.txt")
endif()
if(TFLITE_ENABLE_GPU)
  find_package(fp16_headers REQUIRED)
  if(NOT "${CMAKE_SYSTEM_NAME}" STREQUAL "Android")
    find_package(egl_headers REQUIRED)
  endif()
endif()
if(_TFLITE_ENABLE_NNAPI)
  find_package(fp16_headers REQUIRED)
endif()
if(TFLITE_ENABLE_XNNPACK)
  find_package(fp16_headers REQUIRED)
endif()
if(TFLITE_KERNEL_TEST)
  add_subdirectory(${TFLITE_SOURCE_DIR}/kernels)
endif()
add_subdirectory(${TFLITE_SOURCE_DIR}/profiling/proto)
function(never_called)
  find_package(ghost REQUIRED)
endfunction()
""",
    "tensorflow/lite/kernels/CMakeLists.txt": "find_package(google_benchmark REQUIRED)\n",
    "tensorflow/lite/profiling/proto/CMakeLists.txt": "find_package(Protobuf REQUIRED)\n",
    "tensorflow/lite/cmake/DownloadPThreadPool.cmake":
        "ExternalProject_Add(pthreadpool URL https://example.org/pt.zip URL_HASH SHA256=" + "a" * 64 + ")\n",
}
MODULES = {
    "Findwidget.cmake": "include(widget)\n",
    "widget.cmake": "OverridableFetchContent_Declare(widget GIT_REPOSITORY https://github.com/e/widget GIT_TAG v1)\n",
    "FindNEON_2_SSE.cmake": "include(neon2sse)\n",
    "neon2sse.cmake": "OverridableFetchContent_Declare(neon2sse URL https://example.org/n.tar.gz)\n",
    "Findfp16_headers.cmake": "include(fp16_headers)\n",
    "fp16_headers.cmake": "if(TARGET fp16_headers OR fp16_headers_POPULATED OR TFLITE_ENABLE_XNNPACK)\n  return()\nendif()\n"
                          "OverridableFetchContent_Declare(fp16_headers GIT_REPOSITORY https://github.com/e/fp16 GIT_TAG c)\n",
    "Findegl_headers.cmake": "OverridableFetchContent_Declare(egl_headers GIT_REPOSITORY https://github.com/e/egl GIT_TAG c)\n",
    "Findgoogle_benchmark.cmake": "OverridableFetchContent_Declare(google_benchmark GIT_REPOSITORY https://github.com/g/b GIT_TAG v1)\n",
    "FindProtobuf.cmake": "include(protobuf)\n",
    "protobuf.cmake": "OverridableFetchContent_Declare(protobuf GIT_REPOSITORY https://github.com/p/protobuf GIT_TAG v3)\n",
    "Findghost.cmake": "OverridableFetchContent_Declare(ghost URL https://example.org/ghost.tar.gz)\n",
}


def _tree(root: Path) -> Path:
    files = dict(TREE)
    files.update({f"tensorflow/lite/tools/cmake/modules/{k}": v for k, v in MODULES.items()})
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_reach_keeps_the_if_conditions_around_each_download(tmp_path):
    root = _tree(tmp_path / "tf")
    found = reach(root, "tensorflow/lite/c/CMakeLists.txt",
                  preset={"TENSORFLOW_SOURCE_DIR": str(root), "TFLITE_SOURCE_DIR": str(root / "tensorflow/lite")})
    by_file = {f.rsplit("/", 1)[-1]: condition_text(c) for (f, _), c in found.conditions.items()}
    assert by_file == {
        "widget.cmake": "TRUE",
        "neon2sse.cmake": 'NOT CMAKE_SYSTEM_PROCESSOR OR CMAKE_SYSTEM_PROCESSOR MATCHES "x86"',
        "DownloadPThreadPool.cmake": "NOT SYSTEM_PTHREADPOOL",
        # NNAPI is forced OFF off Android (Linux is a fact); XNNPACK's path returns before declaring.
        "fp16_headers.cmake": "TFLITE_ENABLE_GPU AND NOT TFLITE_ENABLE_XNNPACK",
        "Findegl_headers.cmake": "TFLITE_ENABLE_GPU",
        "Findgoogle_benchmark.cmake": "TFLITE_KERNEL_TEST",
        "protobuf.cmake": "TRUE",        # 2.17+: the C API configure reaches it unconditionally
    }                                    # ghost: only inside a function body, never reached
    assert found.defaults["TFLITE_ENABLE_XNNPACK"] == "ON" and found.defaults["TFLITE_KERNEL_TEST"] == "OFF"
    defaults = found.defaults
    need = {name for name, when in by_file.items() if evaluate_condition(when, {**defaults, "CMAKE_SYSTEM_PROCESSOR": "aarch64"})}
    assert need == {"widget.cmake", "DownloadPThreadPool.cmake", "protobuf.cmake"}
    gpu = {name for name, when in by_file.items()
           if evaluate_condition(when, {**defaults, "TFLITE_ENABLE_GPU": "ON", "TFLITE_ENABLE_XNNPACK": "OFF"})}
    assert {"fp16_headers.cmake", "Findegl_headers.cmake", "neon2sse.cmake"} <= gpu


# ---------------------------------------------------------------- the lock format and needed()

def _dep(name: str, when: str = "TRUE", **kw) -> LockedDependency:
    return LockedDependency(name=name, url=f"https://github.com/e/{name}/archive/v1.tar.gz", sha256="a" * 64,
                            strip_prefix=f"{name}-1", cmake_variable=f"FETCHCONTENT_SOURCE_DIR_{name.upper()}",
                            declared_in=f"tensorflow/lite/tools/cmake/modules/{name}.cmake", declared_by="tensorflow",
                            when=when, **kw)


def test_lock_records_when_license_file_defaults_and_skipped(tmp_path):
    lock = Lock(path=tmp_path / "r.toml.lock", archive_sha256="b" * 64, generated_by="t",
                dependencies=(_dep("fft2d", license_file="readme2d.txt", license_sha256="c" * 64),
                              _dep("xnnpack", "TFLITE_ENABLE_XNNPACK")),
                license_sha256="d" * 64,
                option_defaults=(("TFLITE_ENABLE_GPU", "OFF"), ("TFLITE_ENABLE_XNNPACK", "ON")),
                skipped=(SkippedDependency(name="egl_headers", url="https://github.com/k/egl/archive/c.tar.gz",
                                           when="TFLITE_ENABLE_GPU", declared_in="m/egl_headers.cmake",
                                           declared_by="tensorflow"),))
    write_lock(lock)
    text = lock.path.read_text()
    assert 'when = "TFLITE_ENABLE_XNNPACK"' in text and 'license_file = "readme2d.txt"' in text
    assert f'license_sha256 = "{"c" * 64}"' in text and f'license_sha256 = "{"d" * 64}"' in text
    assert "[[skipped]]" in text and "[lock.option_defaults]" in text
    assert load_lock(lock.path) == lock


def test_a_lock_written_before_license_hashes_still_reads(tmp_path):
    path = tmp_path / "old.toml.lock"
    path.write_text('[lock]\narchive_sha256 = "' + "b" * 64 + '"\ngenerated_by = "tflite-forge 0.1.0"\nscope = "recipe"\n\n'
                    '[[dependency]]\nname = "fft2d"\nurl = "https://example.org/f.tar.gz"\nsha256 = "' + "a" * 64 + '"\n'
                    'strip_prefix = "f-1"\ncmake_variable = "FETCHCONTENT_SOURCE_DIR_FFT2D"\n'
                    'declared_in = "m/fft2d.cmake"\ndeclared_by = "tensorflow"\nwhen = "TRUE"\n'
                    'license_file = "readme2d.txt"\n')
    lock = load_lock(path)
    assert lock.license_sha256 == "" and lock.get("fft2d").license_file == "readme2d.txt"
    assert lock.get("fft2d").license_sha256 == ""
    assert "license_sha256" not in dump_lock(lock)


def test_an_old_lock_without_when_means_every_entry_is_needed_and_says_so_once(tmp_path, capsys):
    path = tmp_path / "old.toml.lock"
    path.write_text(dump_lock(Lock(path=path, archive_sha256="b" * 64, generated_by="x", dependencies=(_dep("a"),)))
                    .replace('when = "TRUE"\n', "").replace('scope = "recipe"\n', ""))
    lock = load_lock(path)
    assert lock.dependencies[0].when == "TRUE"
    assert needed(lock, {"TFLITE_ENABLE_GPU": True}) == lock.dependencies
    # Found on a real 2.14 lock written before `when` existed: it was taken silently, and the tarball
    # shipped licenses of trees the build never compiled.
    load_lock(path)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "predates option conditions" in err[0] and "run `invoke lock`" in err[0]
    new = tmp_path / "new.toml.lock"
    new.write_text(dump_lock(Lock(path=new, archive_sha256="b" * 64, generated_by="x", dependencies=(_dep("a"),))))
    load_lock(new)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("bad", ["TFLITE_ENABLE_GPU AND (", "TFLITE_ENABLE_GPU AND", "A B", ") A", ""])
def test_a_when_that_is_not_a_condition_is_refused(tmp_path, bad):
    path = tmp_path / "r.toml.lock"
    path.write_text(dump_lock(Lock(path=path, archive_sha256="b" * 64, generated_by="x",
                                   dependencies=(_dep("a", "TFLITE_ENABLE_GPU"),)))
                    .replace('when = "TFLITE_ENABLE_GPU"', f'when = "{bad}"'))
    with pytest.raises(LockError, match=r"r.toml.lock: \[\[dependency\]\] #1.when: not a CMake condition") as err:
        load_lock(path)
    assert "\n" not in str(err.value)


def test_needed_follows_the_build_options_the_defaults_and_the_processor(tmp_path):
    lock = Lock(path=tmp_path / "r.lock", archive_sha256="b" * 64, generated_by="t",
                dependencies=(_dep("abseil"), _dep("xnnpack", "TFLITE_ENABLE_XNNPACK"),
                              _dep("benchmark", "TFLITE_KERNEL_TEST"), _dep("opencl", "TFLITE_ENABLE_GPU"),
                              _dep("neon2sse", 'NOT CMAKE_SYSTEM_PROCESSOR OR CMAKE_SYSTEM_PROCESSOR MATCHES "x86"')),
                option_defaults=(("TFLITE_ENABLE_GPU", "OFF"), ("TFLITE_ENABLE_XNNPACK", "ON"),
                                 ("TFLITE_KERNEL_TEST", "OFF")))

    def names(options, **kw):
        return [d.name for d in needed(lock, options, **kw)]
    assert names({}, processors=["aarch64"]) == ["abseil", "xnnpack"]
    assert names({}, processors=["x86_64"]) == ["abseil", "xnnpack", "neon2sse"]
    assert names({}) == ["abseil", "xnnpack", "neon2sse"]                  # processor unknown: as CMake without one
    assert names({"CMAKE_SYSTEM_PROCESSOR": "armv7", "TFLITE_ENABLE_XNNPACK": False}) == ["abseil"]
    assert names({"TFLITE_KERNEL_TEST": True, "TFLITE_ENABLE_GPU": "ON"}, processors=["aarch64"]) == \
        ["abseil", "xnnpack", "benchmark", "opencl"]
    # A cross build configures twice: the target's and the host tools' (x86_64) needs together.
    assert names({}, processors=["aarch64", "x86_64"]) == ["abseil", "xnnpack", "neon2sse"]
    # A plain list of entries works too (defaults given, or none: unset options are undefined).
    assert [d.name for d in needed(lock.dependencies, {}, processors=["aarch64"])] == ["abseil"]


def test_build_processors_adds_the_host_for_a_cross_build():
    from tflite_forge.arches import resolve_arch
    from tflite_forge.lockfile import build_processors
    assert build_processors(resolve_arch("aarch64"), "x86_64") == ("aarch64", "x86_64")
    assert build_processors(resolve_arch("armhf"), "x86_64") == ("armv7", "x86_64")
    assert build_processors(resolve_arch("x86_64"), "x86_64") == ("x86_64",)


# ---------------------------------------------------------------- the miniature: gated downloads

@pytest.fixture()
def release(tmp_path):
    return write_release(tmp_path / "release")


def _gated(release):
    return [d for d in release.dependencies if d not in release.default_dependencies]


def test_default_lock_needs_no_gated_download_to_be_reachable(release, tmp_path):
    # An unreachable GPU/kernel-test repository used to stop the whole lock.
    for dep in _gated(release):
        for path in dep.archive.parent.glob(Path(dep.url).name.split(".")[0] + ".*"):
            path.unlink()
    with FaultServer(release.www_root) as srv:
        lock = generate_lock(_fetcher(tmp_path / "cache", rewrites=[("https://", srv.base)]), load_recipe(release.recipe_path))
        assert all("benchmark" not in p and "OpenCL" not in p for p, _, _ in srv.log)
    assert {d.name for d in lock.dependencies} == {d.name for d in release.default_dependencies}
    assert {d.name for d in lock.skipped} == {"google_benchmark", "opencl_headers"}
    with FaultServer(release.www_root) as srv:     # --all does need them
        with pytest.raises(FetchError, match="google_benchmark"):
            generate_lock(_fetcher(tmp_path / "cache2", rewrites=[("https://", srv.base)]),
                          load_recipe(release.recipe_path), everything=True)


def test_lock_all_pins_the_gated_downloads_with_their_conditions(release, tmp_path):
    with FaultServer(release.www_root) as srv:
        lock = generate_lock(_fetcher(tmp_path / "cache", rewrites=[("https://", srv.base)]),
                             load_recipe(release.recipe_path), everything=True)
    assert lock.scope == "all" and lock.skipped == ()
    want = {d.name: d for d in release.dependencies}
    assert {d.name: (d.when, d.sha256) for d in lock.dependencies} == {n: (d.when, d.sha256) for n, d in want.items()}
    assert dict(lock.option_defaults) == {"TFLITE_ENABLE_GPU": "OFF", "TFLITE_ENABLE_XNNPACK": "ON",
                                          "TFLITE_KERNEL_TEST": "OFF"}
    assert [d.name for d in needed(lock, {"TFLITE_KERNEL_TEST": "ON"})] == \
        [d.name for d in lock.dependencies if d.name != "opencl_headers"]


def test_ensure_sources_fetches_only_what_the_options_need(release, tmp_path):
    recipe_path = tmp_path / "mini.toml"
    shutil.copy(release.recipe_path, recipe_path)
    recipe = load_recipe(recipe_path)
    cache = tmp_path / "cache"
    with FaultServer(release.www_root) as srv:
        fetcher = _fetcher(cache, rewrites=[("https://", srv.base)])
        write_lock(generate_lock(fetcher, recipe, everything=True))
    shutil.rmtree(cache)   # an --all lock, nothing cached: only what the build needs is downloaded
    with FaultServer(release.www_root) as srv:
        settings = Settings(cache_dir=cache, recipe=str(recipe_path), rewrites=(("https://", srv.base),))
        sources = ensure_sources(settings, recipe, fetcher=_fetcher(cache, rewrites=settings.rewrites),
                                 options={"TFLITE_ENABLE_XNNPACK": "OFF"}, processors=["armv7"])
        assert set(sources.dependencies) == {"flatbuffers", "fft2d", "pthreadpool"}
        assert set(sources.excluded) == {"xnnpack", "fp16", "google_benchmark", "opencl_headers"}
        assert all(n not in p for p, _, _ in srv.log for n in ("XNNPACK", "FP16", "benchmark", "OpenCL"))
        sources = ensure_sources(settings, recipe, fetcher=_fetcher(cache, rewrites=settings.rewrites))
        assert set(sources.dependencies) == {d.name for d in release.dependencies}   # options=None: everything


def test_ensure_sources_refuses_options_the_lock_was_not_made_for(release, tmp_path):
    recipe_path = tmp_path / "mini.toml"
    shutil.copy(release.recipe_path, recipe_path)
    recipe = load_recipe(recipe_path)
    cache = tmp_path / "cache"
    with FaultServer(release.www_root) as srv:
        write_lock(generate_lock(_fetcher(cache, rewrites=[("https://", srv.base)]), recipe))
    with pytest.raises(LockError, match=r"the build's options need opencl_headers \(when TFLITE_ENABLE_GPU\), which "
                                        r"this lock skipped; rerun `invoke lock`") as err:
        ensure_sources(Settings(cache_dir=cache, recipe=str(recipe_path), offline=True), recipe,
                       fetcher=_fetcher(cache, offline=True), options={"TFLITE_ENABLE_GPU": True})
    assert "\n" not in str(err.value)


def test_invoke_lock_all_pins_everything_and_plain_lock_says_what_it_skipped(release, tmp_path):
    from .test_fetch_cli import invoke
    recipe = tmp_path / "my.toml"
    recipe.write_text(release.recipe_path.read_text())
    with FaultServer(release.www_root) as srv:
        plain = invoke("lock", f"--recipe={recipe}", f"--rewrite=https://={srv.base}", cache=tmp_path / "cache")
        assert plain.returncode == 0, plain.stderr
        assert "5 dependencies pinned, 2 skipped (only other options reach them)" in plain.stdout + plain.stderr
        assert "opencl_headers only when TFLITE_ENABLE_GPU" in plain.stdout + plain.stderr
        everything = invoke("lock", "--all", f"--recipe={recipe}", f"--rewrite=https://={srv.base}",
                            cache=tmp_path / "cache")
        assert everything.returncode == 0, everything.stderr
    lock = load_lock(tmp_path / "my.toml.lock")
    assert lock.scope == "all" and {d.name for d in lock.dependencies} == {d.name for d in release.dependencies}
