"""`invoke package`, one cell: the build output becomes versioned, reproducible release tarballs.

Inputs (paths from workspace.py): the cell's build output `out/<cell>/lib/*.so*` and
`build-info.json`, its patched working copy `src/<cell>/` (`tensorflow/` for headers and LICENSE,
`deps/<name>/` for dependency licenses; the cache's unpacked trees are the fallback), and the
recipe's lock (dependency urls and sha256).

Output in dist/, one pair per variant (variants.py) whose library the build made:

    libtensorflowlite_c-<v>-linux-<arch>.tar.gz        the release (one top folder, below)
    libtensorflowlite_c-<v>-linux-<arch>-dbg.tar.gz    split debug info (lib/.debug/<lib>.debug)
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

Tarballs are made in memory (tarball.py), verified in a temp folder beside dist/, and only then
written (each atomically). SHA256SUMS and its signature are signing.py's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from . import provenance, sbom
from .errors import PackageError
from .fsutil import write_atomic
from .licenses import license_files, license_sha256
from .lockfile import load_lock, needed
from .tarball import Entry, gzip_bytes, tar_bytes
from .variants import DEBUG_DIR, LIB_NAME, RELEASE, VARIANTS, Variant, artifact_stem
from .elf import elf_facts
from .verify import verify_debug_tarball, verify_tarball
from .workspace import Cell, Workspace

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
    license_sha256: str = ""   # that file's sha256 when locked ("": an older lock, or none declared)


@dataclass(frozen=True)
class PackageInputs:
    recipe: Any                   # recipe.Recipe
    arch: Any                     # arches.Arch
    build_dir: Path               # the cell's build output
    tensorflow_tree: Path         # patched working copy (TensorFlow's repo root)
    dependencies: tuple[Dependency, ...]
    build_info: dict
    source_date_epoch: int
    extra_build_paths: tuple[str, ...] = ()
    tensorflow_license_sha256: str = ""   # the lock's sha256 of TensorFlow's LICENSE ("": an older lock)
    variant: str = ""             # Variant.suffix: "" for the release, "cxx" for the C++ sibling

    @property
    def version(self) -> str:
        return self.recipe.version

    @property
    def stem(self) -> str:
        return artifact_stem(self.version, self.arch.name, self.variant)


def dependency_version(url: str, strip_prefix: str = "") -> str:
    """The tag or commit an archive URL names: .../archive/<tag>.tar.gz -> <tag>."""
    last = url.rstrip("/").rsplit("/", 1)[-1]
    for ext in (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".zip", ".tar"):
        if last.endswith(ext):
            last = last[: -len(ext)]
            break
    return last.removeprefix("v") if re.match(r"^v\d", last) else last or strip_prefix


def _load_lock_dependencies(recipe: Any, build_info: dict, arch: Any) -> tuple[Any, list[Any]]:
    """The locked dependencies this build's options brought in (lockfile.needed over build-info.json's
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
    return lock, list(needed(lock, options, processors=[processor]))


def collect_inputs(ws: Workspace, cell: Cell) -> PackageInputs:
    """Find the build output, working copy and lock for one cell."""
    ws = ws.resolved()
    recipe, arch = cell.recipe, cell.arch
    build_dir = ws.out(cell)
    lib_dir = build_dir / "lib"
    if not list(lib_dir.glob(f"{LIB_NAME}.so*")):
        raise PackageError(f"{lib_dir}: no {LIB_NAME}.so* for {cell.name}; run `invoke build --version {recipe.version} "
                           f"--arch {arch.name}` first")
    info_path = ws.build_info(cell)
    try:
        build_info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackageError(f"{info_path}: missing; the build did not finish, run `invoke build --arch {arch.name}` again") from None
    except json.JSONDecodeError as err:
        raise PackageError(f"{info_path}: not valid JSON ({err}); rebuild with `invoke build --arch {arch.name}`") from None
    tf_tree = ws.src_tensorflow(cell)
    if not (tf_tree / "tensorflow" / "lite").is_dir():
        raise PackageError(f"{tf_tree}: no patched TensorFlow working copy (headers and LICENSE come from it); "
                           f"run `invoke build --arch {arch.name}` first")
    deps = []
    lock, locked_deps = _load_lock_dependencies(recipe, build_info, arch)
    for locked in locked_deps:
        working, cached = ws.src_dependency(cell, locked.name), ws.cached_tree(locked.sha256)
        tree = working if working.is_dir() else cached if cached.is_dir() else None
        deps.append(Dependency(name=locked.name, url=locked.url, sha256=locked.sha256,
                               version=dependency_version(locked.url, locked.strip_prefix), tree=tree,
                               license_file=locked.license_file, license_sha256=locked.license_sha256))
    epoch = build_info.get("source_date_epoch", recipe.build.source_date_epoch)
    if epoch is None:
        raise PackageError(f"{info_path}: no source_date_epoch and the recipe sets none; add "
                           "[build].source_date_epoch to the recipe and rebuild")
    extra = tuple(str(p) for p in build_info.get("build_paths", ()) if p)
    return PackageInputs(recipe=recipe, arch=arch, build_dir=build_dir, tensorflow_tree=tf_tree,
                         dependencies=tuple(deps), build_info=build_info, source_date_epoch=int(epoch),
                         extra_build_paths=(str(ws.work_dir), *extra),
                         tensorflow_license_sha256=lock.license_sha256)


# ---------------------------------------------------------------- content

def _cross_tool(arch: Any, tool: str) -> str:
    name = f"{arch.triplet}-{tool}"
    if shutil.which(name):
        return name
    if arch.runs_natively() and shutil.which(tool):  # the host's own arch: the host binutils
        return tool
    packages = " ".join(getattr(arch, "cross_packages", ()) or ("binutils",))
    raise PackageError(f"{name} not found: it splits debug info for {arch.name}; apt-get install {packages} "
                       "(ci/setup-host.sh does)")


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


def _check_pinned_license(name: str, tree: Path, rel: str, pinned: str) -> None:
    path = tree / rel
    found = license_sha256(tree, rel)
    if found != pinned:
        what = f"has sha256 {found}" if found else "is missing"
        raise PackageError(f"{path}: {name}'s license file {what}, the lock pinned {pinned}; the tree is not the "
                           f"one locked: re-lock with `invoke lock` (and review the license) or rebuild")


def license_entries(inputs: PackageInputs) -> tuple[list[Entry], list[str]]:
    """share/licenses/<component>/<file>; also the components that have none (reported, not fatal).
    A license file the lock pinned must still be the file it hashed: the licenses shipped are the
    ones `invoke lock` saw."""
    entries: list[Entry] = []
    missing: list[str] = []
    if inputs.tensorflow_license_sha256:
        _check_pinned_license("tensorflow", inputs.tensorflow_tree, "LICENSE", inputs.tensorflow_license_sha256)
    for dep in inputs.dependencies:
        if dep.license_sha256 and dep.tree is not None:
            _check_pinned_license(dep.name, dep.tree, dep.license_file, dep.license_sha256)
    for name, tree, declared in (("tensorflow", inputs.tensorflow_tree, ""),
                                 *((d.name, d.tree, d.license_file) for d in inputs.dependencies)):
        files = license_files(tree, declared)
        if not files:
            missing.append(name)
        entries += [Entry(f"share/licenses/{name}/{p.name}", p.read_bytes()) for p in files]
    if "tensorflow" in missing:
        raise PackageError(f"{inputs.tensorflow_tree}: TensorFlow's LICENSE is missing; rebuild to recreate the working copy")
    return entries, missing


@dataclass
class _Library:
    """One variant's library as tar entries: the stripped file and its links, its debug file."""

    real: str
    soname: str
    needed: list[str]
    entries: list[Entry]
    debug_entries: list[Entry]
    notes: list[str]


def _library(lib: Path, inputs: PackageInputs, variant: Variant) -> _Library:
    facts = elf_facts(lib.read_bytes())
    real, links, notes = variant.names(inputs.version, facts.soname)
    stripped, debug = split_debug(lib, inputs.arch, real)
    entries = [Entry(f"lib/{real}", stripped)] + [Entry(f"lib/{name}", link=target) for name, target in links]
    return _Library(real=real, soname=facts.soname or real, needed=list(facts.needed), entries=entries,
                    debug_entries=[Entry(f"{DEBUG_DIR}/{real}.debug", debug)], notes=list(notes))


def assemble(inputs: PackageInputs, variant: Variant = RELEASE) -> tuple[list[Entry], list[Entry], list[str]] | None:
    """(entries, debug entries, notes) of one variant's tarball pair, or None when the build made
    no such library; pure apart from reading inputs. `inputs.variant` names the variant."""
    lib_file = variant.find_library(inputs.build_dir / "lib")
    if lib_file is None:
        return None
    lib = _library(lib_file, inputs, variant)
    entries = lib.entries + variant.metadata_entries(inputs.version, inputs.arch, lib.real, lib.soname)
    debug_entries, notes = list(lib.debug_entries), list(lib.notes)
    for other in variant.bundles:
        other_file = other.find_library(inputs.build_dir / "lib")
        if other_file is not None and any(n.startswith(f"{other.lib_name}.so") for n in lib.needed):
            bundled = _library(other_file, inputs, other)
            entries += bundled.entries
            debug_entries += bundled.debug_entries
            notes += bundled.notes
    entries += variant.headers(inputs.tensorflow_tree, inputs.recipe.policy)
    licenses, missing = license_entries(inputs)
    entries += licenses
    if missing:
        notes.append(f"no license file found for: {', '.join(missing)}")
    sbom_doc = sbom.build_sbom(inputs, library_sha256=lib.entries[0].sha256, library_name=variant.lib_name,
                               library_file=f"lib/{lib.real}")
    entries.append(Entry("sbom.spdx.json", sbom.dumps(sbom_doc)))
    statement = provenance.build_statement(inputs, entries, debug_entries)
    entries.append(Entry("manifest.json", provenance.dumps(statement)))
    return entries, debug_entries, notes


# ---------------------------------------------------------------- one cell

@dataclass
class Artifact:
    tarball: Path
    debug_tarball: Path
    notes: list[str] = field(default_factory=list)
    cxx_tarball: Path | None = None
    cxx_debug_tarball: Path | None = None

    @property
    def files(self) -> list[Path]:
        """Every tarball written, in the order `invoke package` lists them."""
        return [p for p in (self.tarball, self.debug_tarball, self.cxx_tarball, self.cxx_debug_tarball) if p]


def _verified(dist: Path, stem: str, data: bytes, debug_data: bytes, *, arch: Any, glibc_max: str | None,
              build_paths: tuple[str, ...]):
    """Verify a tarball and its -dbg in a temp folder beside dist/ (nothing in dist/ changes)."""
    with tempfile.TemporaryDirectory(prefix=".verify-", dir=dist) as tmp:
        candidate = Path(tmp) / f"{stem}.tar.gz"
        candidate.write_bytes(data)
        report = verify_tarball(candidate, arch=arch.name, glibc_max=glibc_max, build_paths=build_paths)
        debug_candidate = Path(tmp) / f"{stem}-dbg.tar.gz"
        debug_candidate.write_bytes(debug_data)
        report.problems += verify_debug_tarball(debug_candidate, candidate).problems
    return report


def package_cell(ws: Workspace, cell: Cell, *, glibc_max: str | None = None,
                 log: Callable[[str], None] = print) -> Artifact:
    """Every variant's tarball pair for one built cell, verified, then written to dist/."""
    inputs = collect_inputs(ws, cell)
    dist = ws.dist_dir
    dist.mkdir(parents=True, exist_ok=True)
    outputs, reports, notes, absent = [], [], [], []
    for variant in VARIANTS:
        cell_inputs = replace(inputs, variant=variant.suffix)
        made = assemble(cell_inputs, variant)
        if made is None:
            absent.append(cell_inputs.stem)
            continue
        entries, debug_entries, cell_notes = made
        data = gzip_bytes(tar_bytes(cell_inputs.stem, entries, cell_inputs.source_date_epoch))
        debug_data = gzip_bytes(tar_bytes(cell_inputs.stem, debug_entries, cell_inputs.source_date_epoch))
        report = _verified(dist, cell_inputs.stem, data, debug_data, arch=cell.arch, glibc_max=glibc_max,
                           build_paths=inputs.extra_build_paths)
        if report.problems:
            for line in report.problems:
                log(f"verify: {line}")
            raise PackageError(f"{cell_inputs.stem}.tar.gz: {len(report.problems)} verification problem(s) listed "
                               "above; nothing was written to dist/")
        outputs.append((ws.release(f"{cell_inputs.stem}.tar.gz"), data,
                        ws.release(f"{cell_inputs.stem}-dbg.tar.gz"), debug_data))
        reports.append(report)
        notes += [note for note in cell_notes if note not in notes]
    # Everything verified: only now does dist/ change (each file atomically).
    for tarball, data, debug_tarball, debug_data in outputs:
        write_atomic(debug_tarball, debug_data)
        write_atomic(tarball, data)
    for stem in absent:   # e.g. a rebuild without --cxx-shared: an old C++ sibling would no longer match
        for stale in (ws.release(f"{stem}.tar.gz"), ws.release(f"{stem}-dbg.tar.gz")):
            stale.unlink(missing_ok=True)
    for note in notes:
        log(f"package: note: {note}")
    for report in reports:
        for line in report.summary():
            log(f"verify: {line}")
    artifact = Artifact(tarball=outputs[0][0], debug_tarball=outputs[0][2], notes=notes)
    if len(outputs) > 1:
        artifact.cxx_tarball, artifact.cxx_debug_tarball = outputs[1][0], outputs[1][2]
    return artifact
