"""`invoke package`: the build output becomes a versioned, reproducible release artifact.

Inputs (shared layout): `<work_dir>/out/<label>-<arch>/lib/libtensorflowlite_c.so*` and
`build-info.json` (build.py), the patched working copy `<work_dir>/src/<label>-<arch>/`
(`tensorflow/` for the C API headers and LICENSE, `deps/<name>/` for dependency licenses;
cache trees are the fallback), and the recipe's lock (dependency urls and sha256).

Output in `dist/`:

    libtensorflowlite_c-<v>-linux-<arch>.tar.gz        the release (one top folder, below)
    libtensorflowlite_c-<v>-linux-<arch>-dbg.tar.gz    split debug info (lib/.debug/<lib>.debug)
    SHA256SUMS [+ SHA256SUMS.asc with --sign KEYID]
    libtensorflowlite_c-<v>-linux-<arch>-cxx.tar.gz    with `build --cxx-shared`: the C++ library
    libtensorflowlite_c-<v>-linux-<arch>-cxx-dbg.tar.gz  (libtensorflow-lite.so), C++ headers, .pc, CMake
                                                         config, licenses, its own manifest and SBOM

With `--cxx-shared` the C library itself NEEDs libtensorflow-lite.so (one CMake configure with
BUILD_SHARED_LIBS=ON links it dynamically; the build sets RUNPATH $ORIGIN), so the release
tarball ships that library beside it and stays self-contained.

    libtensorflowlite_c-<v>-linux-<arch>/
      include/tensorflow/lite/...            C API headers, laid out as TensorFlow installs them
      lib/libtensorflowlite_c.so.<v>         stripped, with a .gnu_debuglink to the -dbg file
      lib/libtensorflowlite_c.so.<major>     SONAME symlink
      lib/libtensorflowlite_c.so             dev symlink
      lib/pkgconfig/tensorflowlite_c.pc      relocatable (${pcfiledir})
      lib/cmake/tensorflowlite_c/            Config + ConfigVersion, imported target tensorflowlite::c
      share/licenses/<component>/...         TensorFlow's and each locked dependency's license files
      manifest.json                          in-toto Statement v1 + SLSA provenance v1 (provenance.py)
      sbom.spdx.json                         SPDX 2.3 (sbom.py)

The tarball is a pure function of its inputs: entries are built in memory (so umask, mtimes,
owners and locale of the input files never reach it), sorted, with mtime = SOURCE_DATE_EPOCH,
uid/gid 0, no user names, plain USTAR headers (no pax records), and gzip with mtime 0 and no
file name. Everything is written to a temp file beside the destination, verified, then renamed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from filelock import FileLock

from .cache import sha256_file
from .errors import PackageError
from .fsutil import write_atomic
from .lock import load_lock, needed
from .sbom import license_files

LIB_NAME = "libtensorflowlite_c"
PKG_NAME = "tensorflowlite_c"
CXX_LIB_NAME = "libtensorflow-lite"
CXX_PKG_NAME = "tensorflow-lite"
CXX_VARIANT = "cxx"
# C++ headers: everything under tensorflow/lite except tests, tools, examples and other languages.
CXX_HEADER_ROOT = "tensorflow/lite"
CXX_HEADER_SKIP = re.compile(r"(^|/)(testing|testdata|tools|examples|java|objc|swift|g3doc|python)(/|$)"
                             r"|_test\.h$|_test_util\.h$|_testing\.h$")
DEBUG_DIR = "lib/.debug"       # gdb looks for a debuglink's file in <dir of the .so>/.debug/
HEADER_SEEDS = (               # public C API headers (facts: TF's install rule and the distro recipes)
    "tensorflow/lite/c",
    "tensorflow/lite/core/c",
    "tensorflow/lite/core/async/c",
    "tensorflow/compiler/mlir/lite/core/c",
)
HEADER_FILES = ("tensorflow/lite/builtin_ops.h",)
INCLUDE_RE = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


# ---------------------------------------------------------------- entries and the deterministic tarball

@dataclass(frozen=True)
class Entry:
    """One tar member, relative to the top folder: a file (data) or a symlink (link)."""

    path: str
    data: bytes | None = None
    link: str | None = None

    @property
    def is_link(self) -> bool:
        return self.link is not None

    @property
    def sha256(self) -> str:
        assert self.data is not None
        return hashlib.sha256(self.data).hexdigest()


def _dirs_of(paths: Iterable[str]) -> set[str]:
    dirs: set[str] = set()
    for p in paths:
        parent = PurePosixPath(p).parent
        while str(parent) not in (".", ""):
            dirs.add(str(parent))
            parent = parent.parent
    return dirs


def _tarinfo(name: str, kind: bytes, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if kind in (tarfile.DIRTYPE,) else 0o644
    return info


def tar_bytes(top: str, entries: Iterable[Entry], epoch: int) -> bytes:
    """The uncompressed tar stream: sorted members under one top folder, normalised headers."""
    entries = list(entries)
    names = [e.path for e in entries]
    if len(set(names)) != len(names):
        raise PackageError(f"internal: duplicate member in {top}: {sorted(n for n in names if names.count(n) > 1)[0]}")
    buf = io.BytesIO()
    # USTAR: no pax extended headers at all (no atime/ctime/mtime records, no uname bytes).
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        members: list[tuple[str, tarfile.TarInfo, bytes | None]] = [(top, _tarinfo(top, tarfile.DIRTYPE, epoch), None)]
        for d in _dirs_of(names):
            members.append((f"{top}/{d}", _tarinfo(f"{top}/{d}", tarfile.DIRTYPE, epoch), None))
        for e in entries:
            name = f"{top}/{e.path}"
            if e.is_link:
                info = _tarinfo(name, tarfile.SYMTYPE, epoch)
                info.linkname = e.link
                info.mode = 0o777
                members.append((name, info, None))
            else:
                info = _tarinfo(name, tarfile.REGTYPE, epoch)
                info.size = len(e.data or b"")
                members.append((name, info, e.data))
        for name, info, data in sorted(members, key=lambda m: m[0]):
            try:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
            except ValueError as err:  # USTAR name limits
                raise PackageError(f"{name}: cannot be stored in a portable tar header ({err}); shorten the path") from None
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with header mtime 0 and no file name: the same bytes whatever the clock."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


# ---------------------------------------------------------------- inputs

@dataclass(frozen=True)
class Dependency:
    """A locked third-party tree as the SBOM and the licenses need it."""

    name: str
    url: str
    sha256: str
    version: str
    tree: Path | None
    license_file: str = ""     # the declaration's LICENSE_FILE (fft2d: readme2d.txt)


@dataclass(frozen=True)
class PackageInputs:
    recipe: Any                   # recipe.Recipe
    arch: Any                     # arches.Arch
    build_dir: Path               # <work_dir>/out/<label>-<arch>
    tensorflow_tree: Path         # patched working copy (TensorFlow's repo root)
    dependencies: tuple[Dependency, ...]
    build_info: dict
    source_date_epoch: int
    extra_build_paths: tuple[str, ...] = ()
    variant: str = ""             # "" for the release, "cxx" for the C++ sibling

    @property
    def version(self) -> str:
        return self.recipe.version

    @property
    def stem(self) -> str:
        return artifact_stem(self.version, self.arch.name, self.variant)


def artifact_stem(version: str, arch_name: str, variant: str = "") -> str:
    return f"{LIB_NAME}-{version}-linux-{arch_name}" + (f"-{variant}" if variant else "")


def dependency_version(url: str, strip_prefix: str = "") -> str:
    """The tag or commit an archive URL names: .../archive/<tag>.tar.gz -> <tag>."""
    last = url.rstrip("/").rsplit("/", 1)[-1]
    for ext in (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".zip", ".tar"):
        if last.endswith(ext):
            last = last[: -len(ext)]
            break
    return last.removeprefix("v") if re.match(r"^v\d", last) else last or strip_prefix


def _load_lock_dependencies(recipe: Any, build_info: dict, arch: Any) -> list[Any]:
    """The locked dependencies this build's options brought in (lock.needed over build-info.json's
    cmake_options and the target's CMAKE_SYSTEM_PROCESSOR): only those are in the library, so only
    their licenses are shipped and only they are in the SBOM, whatever "dependencies" lists."""
    path = Path(recipe.lock_path)
    if not path.is_file():
        raise PackageError(f"{path}: no dependency lock for {recipe.label}; run `invoke lock --version {recipe.version}` "
                           "and build again (the SBOM and licenses come from the lock)")
    lock = load_lock(path)
    options = build_info.get("cmake_options")
    if not isinstance(options, dict):
        options = {}
    processor = getattr(arch, "cmake_system_processor", None) or options.get("CMAKE_SYSTEM_PROCESSOR")
    return list(needed(lock, options, processors=[processor]))


def collect_inputs(settings: Any, recipe: Any, arch: Any) -> PackageInputs:
    """Find the build output, working copy and lock for one (recipe, arch) cell."""
    work = Path(settings.work_dir).resolve()
    cell = f"{recipe.label}-{arch.name}"
    build_dir = work / "out" / cell
    lib_dir = build_dir / "lib"
    if not list(lib_dir.glob(f"{LIB_NAME}.so*")):
        raise PackageError(f"{lib_dir}: no {LIB_NAME}.so* for {cell}; run `invoke build --version {recipe.version} "
                           f"--arch {arch.name}` first")
    info_path = build_dir / "build-info.json"
    try:
        build_info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackageError(f"{info_path}: missing; the build did not finish, run `invoke build --arch {arch.name}` again") from None
    except json.JSONDecodeError as err:
        raise PackageError(f"{info_path}: not valid JSON ({err}); rebuild with `invoke build --arch {arch.name}`") from None
    tf_tree = work / "src" / cell / "tensorflow"
    if not (tf_tree / "tensorflow" / "lite").is_dir():
        raise PackageError(f"{tf_tree}: no patched TensorFlow working copy (headers and LICENSE come from it); "
                           f"run `invoke build --arch {arch.name}` first")
    deps = []
    for locked in _load_lock_dependencies(recipe, build_info, arch):
        tree = work / "src" / cell / "deps" / locked.name
        if not tree.is_dir():
            cached = Path(settings.cache_dir) / "trees" / locked.sha256
            tree = cached if cached.is_dir() else None
        deps.append(Dependency(name=locked.name, url=locked.url, sha256=locked.sha256,
                               version=dependency_version(locked.url, locked.strip_prefix), tree=tree,
                               license_file=locked.license_file))
    epoch = build_info.get("source_date_epoch", recipe.build.source_date_epoch)
    if epoch is None:
        raise PackageError(f"{info_path}: no source_date_epoch and the recipe sets none; add "
                           "[build].source_date_epoch to the recipe and rebuild")
    extra = tuple(str(p) for p in build_info.get("build_paths", ()) if p)
    return PackageInputs(recipe=recipe, arch=arch, build_dir=build_dir, tensorflow_tree=tf_tree,
                         dependencies=tuple(deps), build_info=build_info, source_date_epoch=int(epoch),
                         extra_build_paths=(str(work), *extra))


# ---------------------------------------------------------------- content: headers, library, metadata files

def header_entries(tf_tree: Path) -> list[Entry]:
    """The C API headers (seed folders + builtin_ops.h) and every project header they include."""
    todo: list[str] = []
    for seed in HEADER_SEEDS:
        folder = tf_tree / seed
        if folder.is_dir():
            todo += [f"{seed}/{p.name}" for p in sorted(folder.glob("*.h"))
                     if not p.name.endswith(("_internal.h", "_test.h", "_test_util.h"))]
    todo += [f for f in HEADER_FILES if (tf_tree / f).is_file()]
    if not any(t.endswith("/c_api.h") for t in todo):
        raise PackageError(f"{tf_tree}: no tensorflow/lite/c/c_api.h or tensorflow/lite/core/c/c_api.h; "
                           "is this a TensorFlow tree? (rebuild to recreate the working copy)")
    return _header_closure(tf_tree, todo)


def _header_closure(tf_tree: Path, seeds: list[str]) -> list[Entry]:
    """The seed headers plus every tensorflow/ header they include, transitively, as include/ entries."""
    todo = list(seeds)
    seen: dict[str, bytes] = {}
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        data = (tf_tree / rel).read_bytes()
        seen[rel] = data
        for inc in INCLUDE_RE.findall(data):
            name = inc.decode()
            if name.startswith("tensorflow/") and (tf_tree / name).is_file() and name not in seen:
                todo.append(name)
    return [Entry(f"include/{rel}", data) for rel, data in sorted(seen.items())]


def _cross_tool(arch: Any, tool: str) -> str:
    name = f"{arch.triplet}-{tool}"
    if shutil.which(name):
        return name
    if arch.runs_natively() and shutil.which(tool):  # the host's own arch: the host binutils
        return tool
    packages = " ".join(getattr(arch, "cross_packages", ()) or ("binutils",))
    raise PackageError(f"{name} not found: it splits debug info for {arch.name}; apt-get install {packages} "
                       "(ci/setup-host.sh does)")


def find_library(lib_dir: Path) -> Path:
    """The real library file among lib/libtensorflowlite_c.so* (the rest are symlinks)."""
    files = [p for p in sorted(lib_dir.glob(f"{LIB_NAME}.so*")) if p.is_file() and not p.is_symlink()]
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "none"
        raise PackageError(f"{lib_dir}: expected exactly one {LIB_NAME}.so* file besides symlinks, found {found}; "
                           "clean the build output and rebuild")
    return files[0]


def library_names(version: str, soname: str | None) -> tuple[str, str, str]:
    """(real file, SONAME link, dev link): libtensorflowlite_c.so.<v>, .so.<major>, .so."""
    real = f"{LIB_NAME}.so.{version}"
    if not soname or not re.fullmatch(rf"{re.escape(LIB_NAME)}\.so\.[0-9][0-9.]*", soname):
        found = f"SONAME {soname}" if soname else "no SONAME"
        raise PackageError(f"{LIB_NAME}.so has {found}, not a versioned {LIB_NAME}.so.<major>; enable the recipe's "
                           "`soname` patch set (patch_sets in [build]) and rebuild")
    return real, soname, f"{LIB_NAME}.so"


def find_cxx_library(lib_dir: Path) -> Path | None:
    """The C++ library's real file among lib/libtensorflow-lite.so* (built with --cxx-shared), or None."""
    files = [p for p in sorted(lib_dir.glob(f"{CXX_LIB_NAME}.so*")) if p.is_file() and not p.is_symlink()]
    if len(files) > 1:
        raise PackageError(f"{lib_dir}: expected one {CXX_LIB_NAME}.so* file besides symlinks, found "
                           f"{', '.join(p.name for p in files)}; clean the build output and rebuild")
    return files[0] if files else None


def cxx_library_names(version: str, soname: str | None) -> tuple[str, list[tuple[str, str]], list[str]]:
    """(real file name, [(link, target)], notes) for the C++ library.

    Versioned SONAME (libtensorflow-lite.so.<major>): the same treatment as the C library. Upstream
    sets none, so usually the SONAME is plain libtensorflow-lite.so: the file keeps that name (the
    C library's NEEDED and the dynamic loader look for exactly it) and a note says so."""
    if soname and re.fullmatch(rf"{re.escape(CXX_LIB_NAME)}\.so\.[0-9][0-9.]*", soname):
        real = f"{CXX_LIB_NAME}.so.{version}"
        links = [(soname, real)] if soname != real else []
        return real, links + [(f"{CXX_LIB_NAME}.so", soname)], []
    if soname == f"{CXX_LIB_NAME}.so":
        return soname, [], [f"{soname} has an unversioned SONAME (TensorFlow sets no VERSION/SOVERSION on "
                            "tensorflow-lite; a patch set could add one)"]
    found = f"SONAME {soname}" if soname else "no SONAME"
    raise PackageError(f"{CXX_LIB_NAME}.so has {found}; expected {CXX_LIB_NAME}.so[.<major>]: rebuild with "
                       "`invoke build --cxx-shared` (CMake sets the SONAME)")


def cxx_header_entries(tf_tree: Path) -> list[Entry]:
    """The C++ API headers: every .h under tensorflow/lite (minus tests, tools, other languages)
    and every tensorflow/ header they include."""
    root = tf_tree / CXX_HEADER_ROOT
    todo = [p.relative_to(tf_tree).as_posix() for p in sorted(root.rglob("*.h"))
            if not CXX_HEADER_SKIP.search(p.relative_to(root).as_posix())]
    return _header_closure(tf_tree, todo)


def split_debug(lib: Path, arch: Any, real_name: str) -> tuple[bytes, bytes]:
    """(stripped library with a .gnu_debuglink, debug file) using the arch's objcopy."""
    objcopy = _cross_tool(arch, "objcopy")
    debug_name = f"{real_name}.debug"
    with tempfile.TemporaryDirectory(prefix="tflite-forge-strip-") as tmp:
        work = Path(tmp)
        shutil.copyfile(lib, work / real_name)
        steps = (
            [objcopy, "--only-keep-debug", real_name, debug_name],
            [objcopy, "--strip-debug", "--strip-unneeded", real_name],
            # Relative names: the debuglink records only the basename (and a CRC of the debug file).
            [objcopy, f"--add-gnu-debuglink={debug_name}", real_name],
        )
        for argv in steps:
            proc = subprocess.run(argv, cwd=work, capture_output=True, text=True)
            if proc.returncode != 0:
                msg = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
                raise PackageError(f"{lib}: `{' '.join(argv[:2])}` failed: {msg}; is {lib.name} an {arch.name} ELF file?")
        return (work / real_name).read_bytes(), (work / debug_name).read_bytes()


def pkgconfig_text(version: str, arch: Any) -> str:
    return (
        "# Relocatable: every path is relative to this file's folder.\n"
        "prefix=${pcfiledir}/../..\n"
        "exec_prefix=${prefix}\n"
        "libdir=${prefix}/lib\n"
        "includedir=${prefix}/include\n"
        "\n"
        f"Name: {PKG_NAME}\n"
        f"Description: TensorFlow Lite C API ({arch.triplet})\n"
        "URL: https://www.tensorflow.org/lite\n"
        f"Version: {version}\n"
        f"Libs: -L${{libdir}} -l{PKG_NAME}\n"
        "Cflags: -I${includedir}\n"
    )


def cmake_config_text(version: str, real: str, soname: str) -> str:
    return f"""# CMake package for the TensorFlow Lite C API {version}, written by tflite-forge.
# Relocatable: paths are computed from this file's location.
#   find_package(tensorflowlite_c {version.split('.')[0]} REQUIRED)
#   target_link_libraries(app PRIVATE tensorflowlite::c)
get_filename_component(_tflite_c_prefix "${{CMAKE_CURRENT_LIST_DIR}}/../../.." ABSOLUTE)
if(NOT EXISTS "${{_tflite_c_prefix}}/lib/{real}")
  set(tensorflowlite_c_FOUND FALSE)
  set(tensorflowlite_c_NOT_FOUND_MESSAGE "${{_tflite_c_prefix}}/lib/{real} is missing; unpack the whole tarball")
  return()
endif()
if(NOT TARGET tensorflowlite::c)
  add_library(tensorflowlite::c SHARED IMPORTED)
  set_target_properties(tensorflowlite::c PROPERTIES
    IMPORTED_LOCATION "${{_tflite_c_prefix}}/lib/{real}"
    IMPORTED_SONAME "{soname}"
    INTERFACE_INCLUDE_DIRECTORIES "${{_tflite_c_prefix}}/include")
endif()
set(tensorflowlite_c_INCLUDE_DIRS "${{_tflite_c_prefix}}/include")
set(tensorflowlite_c_LIBRARIES tensorflowlite::c)
unset(_tflite_c_prefix)
"""


def cmake_version_text(version: str, elf_class: int) -> str:
    major = version.split(".")[0]
    pointer = elf_class // 8
    return f"""# Version check for tensorflowlite_c {version}: same major version, same pointer size.
set(PACKAGE_VERSION "{version}")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT "${{PACKAGE_FIND_VERSION}}" STREQUAL "" AND NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "{major}")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
if(NOT "${{CMAKE_SIZEOF_VOID_P}}" STREQUAL "" AND NOT "${{CMAKE_SIZEOF_VOID_P}}" STREQUAL "{pointer}")
  set(PACKAGE_VERSION "${{PACKAGE_VERSION}} ({elf_class}bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
"""


def cxx_pkgconfig_text(version: str, arch: Any) -> str:
    return (
        "# Relocatable: every path is relative to this file's folder.\n"
        "prefix=${pcfiledir}/../..\n"
        "libdir=${prefix}/lib\n"
        "includedir=${prefix}/include\n"
        "\n"
        f"Name: {CXX_PKG_NAME}\n"
        f"Description: TensorFlow Lite C++ library ({arch.triplet}); built with CMake BUILD_SHARED_LIBS=ON, which "
        "TensorFlow supports for the C API only\n"
        "URL: https://www.tensorflow.org/lite\n"
        f"Version: {version}\n"
        f"Libs: -L${{libdir}} -l{CXX_PKG_NAME}\n"
        "Cflags: -I${includedir}\n"
    )


def cxx_cmake_config_text(version: str, real: str, soname: str) -> str:
    return f"""# CMake package for the TensorFlow Lite C++ library {version}, written by tflite-forge.
#   find_package(tensorflow-lite {version.split('.')[0]} REQUIRED)
#   target_link_libraries(app PRIVATE tensorflowlite::tensorflow-lite)
get_filename_component(_tflite_cxx_prefix "${{CMAKE_CURRENT_LIST_DIR}}/../../.." ABSOLUTE)
if(NOT EXISTS "${{_tflite_cxx_prefix}}/lib/{real}")
  set(tensorflow-lite_FOUND FALSE)
  set(tensorflow-lite_NOT_FOUND_MESSAGE "${{_tflite_cxx_prefix}}/lib/{real} is missing; unpack the whole tarball")
  return()
endif()
if(NOT TARGET tensorflowlite::tensorflow-lite)
  add_library(tensorflowlite::tensorflow-lite SHARED IMPORTED)
  set_target_properties(tensorflowlite::tensorflow-lite PROPERTIES
    IMPORTED_LOCATION "${{_tflite_cxx_prefix}}/lib/{real}"
    IMPORTED_SONAME "{soname}"
    INTERFACE_INCLUDE_DIRECTORIES "${{_tflite_cxx_prefix}}/include"
    INTERFACE_COMPILE_FEATURES cxx_std_17)
endif()
unset(_tflite_cxx_prefix)
"""


def license_entries(inputs: PackageInputs) -> tuple[list[Entry], list[str]]:
    """share/licenses/<component>/<file>; also the components that have none (reported, not fatal)."""
    entries: list[Entry] = []
    missing: list[str] = []
    for name, tree, declared in (("tensorflow", inputs.tensorflow_tree, ""),
                                 *((d.name, d.tree, d.license_file) for d in inputs.dependencies)):
        files = license_files(tree, declared)
        if not files:
            missing.append(name)
        entries += [Entry(f"share/licenses/{name}/{p.name}", p.read_bytes()) for p in files]
    if "tensorflow" in missing:
        raise PackageError(f"{inputs.tensorflow_tree}: TensorFlow's LICENSE is missing; rebuild to recreate the working copy")
    return entries, missing


# ---------------------------------------------------------------- one artifact

@dataclass
class Artifact:
    tarball: Path
    debug_tarball: Path
    notes: list[str] = field(default_factory=list)
    cxx_tarball: Path | None = None
    cxx_debug_tarball: Path | None = None


def _cxx_library_entries(lib: Path, inputs: PackageInputs) -> tuple[list[Entry], list[Entry], list[str], str, str]:
    """(entries, debug entries, notes, real name, SONAME) for lib/libtensorflow-lite.so*: stripped, with
    its debuglink, its links; shared by the release (as the C library's dependency) and the -cxx tarball."""
    from .elf import elf_facts

    facts = elf_facts(lib.read_bytes())
    real, links, notes = cxx_library_names(inputs.version, facts.soname)
    stripped, debug = split_debug(lib, inputs.arch, real)
    entries = [Entry(f"lib/{real}", stripped)] + [Entry(f"lib/{name}", link=target) for name, target in links]
    return entries, [Entry(f"{DEBUG_DIR}/{real}.debug", debug)], notes, real, facts.soname or real


def assemble(inputs: PackageInputs) -> tuple[list[Entry], list[Entry], list[str]]:
    """(release entries, debug entries, notes) for one cell; pure apart from reading inputs."""
    from . import provenance, sbom
    from .elf import elf_facts

    lib = find_library(inputs.build_dir / "lib")
    facts = elf_facts(lib.read_bytes())
    real, soname, dev = library_names(inputs.version, facts.soname)
    stripped, debug = split_debug(lib, inputs.arch, real)
    notes: list[str] = []
    if facts.soname != f"{LIB_NAME}.so.{inputs.version.split('.')[0]}":
        notes.append(f"SONAME is {facts.soname} (expected {LIB_NAME}.so.<major>)")

    entries = [
        Entry(f"lib/{real}", stripped),
        Entry(f"lib/{soname}", link=real),
        Entry(f"lib/{dev}", link=soname),
        Entry(f"lib/pkgconfig/{PKG_NAME}.pc", pkgconfig_text(inputs.version, inputs.arch).encode()),
        Entry(f"lib/cmake/{PKG_NAME}/{PKG_NAME}Config.cmake", cmake_config_text(inputs.version, real, soname).encode()),
        Entry(f"lib/cmake/{PKG_NAME}/{PKG_NAME}ConfigVersion.cmake",
              cmake_version_text(inputs.version, inputs.arch.elf_class).encode()),
    ]
    debug_entries = [Entry(f"{DEBUG_DIR}/{real}.debug", debug)]
    # --cxx-shared: the C library NEEDs libtensorflow-lite.so; ship it beside it (RUNPATH $ORIGIN).
    cxx = find_cxx_library(inputs.build_dir / "lib")
    if cxx is not None and any(n.startswith(f"{CXX_LIB_NAME}.so") for n in facts.needed):
        cxx_entries, cxx_debug, cxx_notes, _, _ = _cxx_library_entries(cxx, inputs)
        entries += cxx_entries
        debug_entries += cxx_debug
        notes += cxx_notes
    entries += header_entries(inputs.tensorflow_tree)
    licenses, missing = license_entries(inputs)
    entries += licenses
    if missing:
        notes.append(f"no license file found for: {', '.join(missing)}")

    sbom_doc = sbom.build_sbom(inputs, library_sha256=hashlib.sha256(stripped).hexdigest())
    entries.append(Entry("sbom.spdx.json", sbom.dumps(sbom_doc)))
    statement = provenance.build_statement(inputs, entries, debug_entries)
    entries.append(Entry("manifest.json", provenance.dumps(statement)))
    return entries, debug_entries, notes


def assemble_cxx(inputs: PackageInputs) -> tuple[list[Entry], list[Entry], list[str]] | None:
    """The -cxx sibling (None without a C++ library): libtensorflow-lite.so, the C++ headers, .pc,
    CMake config, licenses, and its own manifest and SBOM. `inputs.variant` must be "cxx"."""
    from . import provenance, sbom

    assert inputs.variant == CXX_VARIANT
    lib = find_cxx_library(inputs.build_dir / "lib")
    if lib is None:
        return None
    entries, debug_entries, notes, real, soname = _cxx_library_entries(lib, inputs)
    entries += [
        Entry(f"lib/pkgconfig/{CXX_PKG_NAME}.pc", cxx_pkgconfig_text(inputs.version, inputs.arch).encode()),
        Entry(f"lib/cmake/{CXX_PKG_NAME}/{CXX_PKG_NAME}Config.cmake",
              cxx_cmake_config_text(inputs.version, real, soname).encode()),
        Entry(f"lib/cmake/{CXX_PKG_NAME}/{CXX_PKG_NAME}ConfigVersion.cmake",
              cmake_version_text(inputs.version, inputs.arch.elf_class).encode()),
    ]
    entries += cxx_header_entries(inputs.tensorflow_tree)
    licenses, missing = license_entries(inputs)
    entries += licenses
    if missing:
        notes.append(f"no license file found for: {', '.join(missing)}")
    sbom_doc = sbom.build_sbom(inputs, library_sha256=entries[0].sha256, library_name=CXX_LIB_NAME,
                               library_file=f"lib/{real}")
    entries.append(Entry("sbom.spdx.json", sbom.dumps(sbom_doc)))
    statement = provenance.build_statement(inputs, entries, debug_entries)
    entries.append(Entry("manifest.json", provenance.dumps(statement)))
    return entries, debug_entries, notes


def _verified(dist: Path, stem: str, data: bytes, debug_data: bytes, *, arch: Any, glibc_max: str | None,
              build_paths: tuple[str, ...]):
    """Verify a tarball and its -dbg in a temp folder beside dist/ (nothing in dist/ changes)."""
    from .verify import verify_debug_tarball, verify_tarball

    with tempfile.TemporaryDirectory(prefix=".verify-", dir=dist) as tmp:
        candidate = Path(tmp) / f"{stem}.tar.gz"
        candidate.write_bytes(data)
        report = verify_tarball(candidate, arch=arch.name, glibc_max=glibc_max, build_paths=build_paths)
        debug_candidate = Path(tmp) / f"{stem}-dbg.tar.gz"
        debug_candidate.write_bytes(debug_data)
        report.problems += verify_debug_tarball(debug_candidate, candidate).problems
    return report


def package_cell(settings: Any, recipe: Any, arch: Any, *, glibc_max: str | None = None,
                 log=print) -> Artifact:
    from dataclasses import replace

    inputs = collect_inputs(settings, recipe, arch)
    dist = Path(settings.dist_dir)
    dist.mkdir(parents=True, exist_ok=True)
    cells = [(inputs, assemble(inputs))]
    cxx_inputs = replace(inputs, variant=CXX_VARIANT)
    cxx = assemble_cxx(cxx_inputs)
    if cxx is not None:
        cells.append((cxx_inputs, cxx))
    outputs, reports, notes = [], [], []
    for cell_inputs, (entries, debug_entries, cell_notes) in cells:
        data = gzip_bytes(tar_bytes(cell_inputs.stem, entries, cell_inputs.source_date_epoch))
        debug_data = gzip_bytes(tar_bytes(cell_inputs.stem, debug_entries, cell_inputs.source_date_epoch))
        report = _verified(dist, cell_inputs.stem, data, debug_data, arch=arch, glibc_max=glibc_max,
                           build_paths=inputs.extra_build_paths)
        if report.problems:
            for line in report.problems:
                log(f"verify: {line}")
            raise PackageError(f"{cell_inputs.stem}.tar.gz: {len(report.problems)} verification problem(s) listed "
                               "above; nothing was written to dist/")
        outputs.append((dist / f"{cell_inputs.stem}.tar.gz", data, dist / f"{cell_inputs.stem}-dbg.tar.gz", debug_data))
        reports.append(report)
        notes += [note for note in cell_notes if note not in notes]
    # Everything verified: only now does dist/ change (each file atomically).
    for tarball, data, debug_tarball, debug_data in outputs:
        write_atomic(debug_tarball, debug_data)
        write_atomic(tarball, data)
    if cxx is None:   # a rebuild without --cxx-shared: an old C++ sibling would no longer match
        for stale in (dist / f"{cxx_inputs.stem}.tar.gz", dist / f"{cxx_inputs.stem}-dbg.tar.gz"):
            stale.unlink(missing_ok=True)
    for note in notes:
        log(f"package: note: {note}")
    for report in reports:
        for line in report.summary():
            log(f"verify: {line}")
    artifact = Artifact(tarball=outputs[0][0], debug_tarball=outputs[0][2], notes=notes)
    if cxx is not None:
        artifact.cxx_tarball, artifact.cxx_debug_tarball = outputs[1][0], outputs[1][2]
    return artifact


# ---------------------------------------------------------------- SHA256SUMS and signing

def write_sha256sums(dist: Path) -> Path:
    """SHA256SUMS over every release file in dist/ (sha256sum -c format), sorted by name."""
    files = sorted(p for p in dist.iterdir() if p.is_file() and p.name.endswith((".tar.gz", ".tar.xz")))
    text = "".join(f"{sha256_file(p)}  {p.name}\n" for p in files)
    sums = dist / "SHA256SUMS"
    write_atomic(sums, text.encode())
    return sums


def sign_file(path: Path, key_id: str, *, gnupg_home: str | None = None) -> Path:
    """Detached, ASCII-armoured signature `<path>.asc` made by gpg with key KEYID."""
    if not shutil.which("gpg"):
        raise PackageError("gpg not found: --sign needs it; apt-get install gnupg (ci/setup-host.sh does)")
    asc = path.with_name(path.name + ".asc")
    tmp = asc.with_name(f".{asc.name}.tmp")
    env = dict(os.environ)
    if gnupg_home:
        env["GNUPGHOME"] = gnupg_home
    argv = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--local-user", key_id,
            "--armor", "--detach-sign", "--output", str(tmp), str(path)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        msg = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise PackageError(f"gpg could not sign {path.name} with key {key_id!r} ({msg}); check `gpg --list-secret-keys` "
                           "or GNUPGHOME")
    os.replace(tmp, asc)
    return asc


def run_package(settings: Any, *, sign: str | None = None, glibc_max: str | None = None, log=print) -> list[Artifact]:
    """`invoke package`: every (recipe, arch) cell, then SHA256SUMS (and .asc with --sign)."""
    from .arches import resolve_arches_or_host
    from .pipeline import ensure_built
    from .recipe import select_recipes

    recipes = select_recipes(version=settings.version, recipe=settings.recipe)
    arches = resolve_arches_or_host(settings.arch)
    artifacts = []
    for recipe in recipes:
        for arch in arches:
            ensure_built(settings, recipe, arch, log=log)
            artifact = package_cell(settings, recipe, arch, glibc_max=glibc_max, log=log)
            for path in (artifact.tarball, artifact.debug_tarball, artifact.cxx_tarball, artifact.cxx_debug_tarball):
                if path is not None:
                    log(f"package: {path}")
            artifacts.append(artifact)
    dist = Path(settings.dist_dir)
    # Matrix cells package in parallel processes: list and write under one lock, so the
    # last writer's SHA256SUMS covers every tarball already in dist/.
    with FileLock(str(dist / ".SHA256SUMS.lock")):
        # The old signature goes before the new sums are written: if gpg then fails (or we are
        # killed), dist/ holds unsigned sums, never sums beside a signature that does not verify.
        asc = dist / "SHA256SUMS.asc"
        asc.unlink(missing_ok=True)
        sums = write_sha256sums(dist)
        if sign:
            sign_file(sums, sign)
            log(f"package: {sums} (signed: {asc.name})")
        else:
            log(f"package: {sums}")
    return artifacts
