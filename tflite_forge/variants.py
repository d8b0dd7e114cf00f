"""The two libraries a release can hold, as data: one `Variant` per library says what it is called,
how its files are named from its SONAME, which headers it ships and which templates describe it.
package.assemble turns one variant plus one build into one tarball.

    RELEASE (C API)    libtensorflowlite_c.so.<v>, C API headers, tensorflowlite_c.pc,
                       CMake package tensorflowlite_c (target tensorflowlite::c)
    CXX (C++ library)  libtensorflow-lite.so[.<v>], tensorflow/lite headers, tensorflow-lite.pc,
                       CMake package tensorflow-lite (target tensorflowlite::tensorflow-lite);
                       only with `build --cxx-shared`, shipped as the -cxx sibling tarball

The .pc and CMake files are templates in templates/ (placeholders `@{name}`; a `$` is CMake's or
pkg-config's own), rendered with string.Template.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import PackageError
from .recipe import Policy
from .tarball import Entry

TEMPLATES_DIR = Path(__file__).resolve().with_name("templates")
DEBUG_DIR = "lib/.debug"       # gdb looks for a debuglink's file in <dir of the .so>/.debug/
INCLUDE_RE = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)

# Names for one library: (real file name, [(link, target)], notes).
Names = tuple[str, list[tuple[str, str]], list[str]]


class _Template(string.Template):
    delimiter = "@"


def render(template: str, **values: Any) -> bytes:
    """templates/<template> with every @{name} replaced (a missing value is an error, not a blank)."""
    text = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    return _Template(text).substitute({k: str(v) for k, v in values.items()}).encode()


# ---------------------------------------------------------------- headers

def header_closure(tf_tree: Path, seeds: list[str]) -> list[Entry]:
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


def c_headers(tf_tree: Path, policy: Policy) -> list[Entry]:
    """The C API headers (the recipe policy's seed folders and files: as TensorFlow's install rule
    lays them out) and every project header they include."""
    todo: list[str] = []
    for seed in policy.header_seeds:
        folder = tf_tree / seed
        if folder.is_dir():
            todo += [f"{seed}/{p.name}" for p in sorted(folder.glob("*.h"))
                     if not p.name.endswith(("_internal.h", "_test.h", "_test_util.h"))]
    todo += [f for f in policy.header_files if (tf_tree / f).is_file()]
    if not any(t.endswith("/c_api.h") for t in todo):
        raise PackageError(f"{tf_tree}: no tensorflow/lite/c/c_api.h or tensorflow/lite/core/c/c_api.h; "
                           "is this a TensorFlow tree? (rebuild to recreate the working copy)")
    return header_closure(tf_tree, todo)


def cxx_headers(tf_tree: Path, policy: Policy) -> list[Entry]:
    """The C++ API headers: every .h under the policy's cxx_header_root (tensorflow/lite) but
    those cxx_header_skip matches (tests, tools, other languages), and every tensorflow/ header
    they include."""
    root = tf_tree / policy.cxx_header_root
    todo = [p.relative_to(tf_tree).as_posix() for p in sorted(root.rglob("*.h"))
            if not policy.cxx_header_skip.search(p.relative_to(root).as_posix())]
    return header_closure(tf_tree, todo)


# ---------------------------------------------------------------- file names from the SONAME

def c_names(version: str, soname: str | None) -> Names:
    """libtensorflowlite_c.so.<v>, with links .so.<major> -> it and .so -> .so.<major>: the release
    refuses a library without a versioned SONAME."""
    lib = "libtensorflowlite_c"
    if not soname or not re.fullmatch(rf"{re.escape(lib)}\.so\.[0-9][0-9.]*", soname):
        found = f"SONAME {soname}" if soname else "no SONAME"
        raise PackageError(f"{lib}.so has {found}, not a versioned {lib}.so.<major>; enable the recipe's "
                           "`soname` patch set (patch_sets in [build]) and rebuild")
    real = f"{lib}.so.{version}"
    notes = []
    if soname != f"{lib}.so.{version.split('.')[0]}":
        notes.append(f"SONAME is {soname} (expected {lib}.so.<major>)")
    return real, [(soname, real), (f"{lib}.so", soname)], notes


def cxx_names(version: str, soname: str | None) -> Names:
    """The C++ library's names. A versioned SONAME (libtensorflow-lite.so.<major>) gets the C
    library's treatment. Upstream sets none, so usually the SONAME is plain libtensorflow-lite.so:
    the file keeps that name (the C library's NEEDED and the dynamic loader look for exactly it)
    and a note says so."""
    lib = "libtensorflow-lite"
    if soname and re.fullmatch(rf"{re.escape(lib)}\.so\.[0-9][0-9.]*", soname):
        real = f"{lib}.so.{version}"
        links = [(soname, real)] if soname != real else []
        return real, links + [(f"{lib}.so", soname)], []
    if soname == f"{lib}.so":
        return soname, [], [f"{soname} has an unversioned SONAME (TensorFlow sets no VERSION/SOVERSION on "
                            "tensorflow-lite; a patch set could add one)"]
    found = f"SONAME {soname}" if soname else "no SONAME"
    raise PackageError(f"{lib}.so has {found}; expected {lib}.so[.<major>]: rebuild with "
                       "`invoke build --cxx-shared` (CMake sets the SONAME)")


# ---------------------------------------------------------------- the variants

@dataclass(frozen=True)
class Variant:
    suffix: str                                  # "" for the release, "cxx" for the -cxx sibling
    lib_name: str                                # the library file's stem in lib/
    pkg_name: str                                # pkg-config and CMake package name
    names: Callable[[str, str | None], Names]
    headers: Callable[[Path, Policy], list[Entry]]
    pc_template: str
    config_template: str
    required: bool                               # does every build have this library?
    bundles: tuple["Variant", ...] = ()          # libraries it NEEDs, shipped beside it when built

    def find_library(self, lib_dir: Path) -> Path | None:
        """The real file among lib/<lib_name>.so* (the rest are symlinks); None when absent and
        not required."""
        files = [p for p in sorted(lib_dir.glob(f"{self.lib_name}.so*")) if p.is_file() and not p.is_symlink()]
        if self.required and len(files) != 1:
            found = ", ".join(p.name for p in files) or "none"
            raise PackageError(f"{lib_dir}: expected exactly one {self.lib_name}.so* file besides symlinks, found "
                               f"{found}; clean the build output and rebuild")
        if len(files) > 1:
            raise PackageError(f"{lib_dir}: expected one {self.lib_name}.so* file besides symlinks, found "
                               f"{', '.join(p.name for p in files)}; clean the build output and rebuild")
        return files[0] if files else None

    def metadata_entries(self, version: str, arch: Any, real: str, soname: str) -> list[Entry]:
        """lib/pkgconfig/<pkg>.pc and lib/cmake/<pkg>/<pkg>Config{,Version}.cmake."""
        major = version.split(".")[0]
        cmake = f"lib/cmake/{self.pkg_name}/{self.pkg_name}"
        return [
            Entry(f"lib/pkgconfig/{self.pkg_name}.pc", render(self.pc_template, version=version, triplet=arch.triplet)),
            Entry(f"{cmake}Config.cmake", render(self.config_template, version=version, major=major, real=real,
                                                 soname=soname)),
            Entry(f"{cmake}ConfigVersion.cmake", render("ConfigVersion.cmake.in", version=version, major=major,
                                                        elf_class=arch.elf_class, pointer=arch.elf_class // 8)),
        ]


CXX = Variant(suffix="cxx", lib_name="libtensorflow-lite", pkg_name="tensorflow-lite", names=cxx_names,
              headers=cxx_headers, pc_template="tensorflow-lite.pc.in",
              config_template="tensorflow-liteConfig.cmake.in", required=False)
RELEASE = Variant(suffix="", lib_name="libtensorflowlite_c", pkg_name="tensorflowlite_c", names=c_names,
                  headers=c_headers, pc_template="tensorflowlite_c.pc.in",
                  config_template="tensorflowlite_cConfig.cmake.in", required=True,
                  # --cxx-shared: the C library NEEDs libtensorflow-lite.so; it ships beside it (RUNPATH $ORIGIN)
                  bundles=(CXX,))
VARIANTS = (RELEASE, CXX)
LIB_NAME = RELEASE.lib_name


def artifact_stem(version: str, arch_name: str, variant: str = "") -> str:
    """libtensorflowlite_c-<v>-linux-<arch>[-<variant>]: every tarball's name and top folder."""
    return f"{LIB_NAME}-{version}-linux-{arch_name}" + (f"-{variant}" if variant else "")
