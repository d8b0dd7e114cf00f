"""`invoke verify <tarball>`: is this artifact what a target device can load, and what we built?

Checks, each failure one line naming the file and what to fix:
- the tarball itself: one top folder, members sorted, uid/gid 0, no user names, no pax
  records, mtime = SOURCE_DATE_EPOCH, gzip header without mtime or file name;
- the library (pyelftools): ELF machine and class match the arch; SONAME present; NEEDED
  only from the toolchain's runtime (libc, libm, libdl, libpthread, librt, libstdc++,
  libgcc_s, ld-linux); the highest GLIBC_ / GLIBCXX_ version it needs (enforced with
  --glibc-max); no build-path strings; exported dynamic symbols only the C API (TfLite*);
- every file matches the sha256 recorded in manifest.json, and nothing is unlisted;
- the -dbg tarball (`verify_debug_tarball`): every shipped library's .gnu_debuglink names a
  file under lib/.debug/ whose CRC32 is the one the link records, and whose GNU build-id is
  the stripped library's.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from . import provenance
from .arches import resolve_arch
from .elf import ElfFacts, build_id, debuglink, elf_facts, version_key
from .errors import PackageError

ALLOWED_NEEDED = re.compile(
    r"^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1"
    r"|ld-linux[-.\w]*\.so\.\d+)$")
EXPORT_PREFIXES = ("TfLite", "tflite_plugin_")
# Paths a build machine has and a target does not; matched where a path starts in a string.
# The first five are host paths; the rest are build_plan.py's container mount points (SRC, DEPS, BUILD, OUT).
DEFAULT_BUILD_PATHS = ("/work/", "/build/", "/home/", "/root/", "/tmp/", "/src/tensorflow/", "/deps/", "/out/",
                       "/ccache/")
STRING_RE = re.compile(rb"[\x20-\x7e]{4,}")
PATH_CHAR = re.compile(r"[A-Za-z0-9._+-]")


def _upstream_glob(symbol: str) -> bool:
    """Exported only because TensorFlow's version_script.lds says `*TfLite*` (a mangled C++ name)."""
    return symbol.startswith("_Z") and "TfLite" in symbol


def build_path_strings(data: bytes, build_paths: Iterable[str] = ()) -> list[str]:
    """Printable strings that name a build-machine path (start of a path, not inside a word)."""
    prefixes = list(DEFAULT_BUILD_PATHS)
    for p in build_paths:
        p = str(p).rstrip("/")
        if p and p != "/":
            prefixes.append(p + "/")
    hits: list[str] = []
    for match in STRING_RE.finditer(data):
        text = match.group().decode("ascii")
        for prefix in prefixes:
            start = text.find(prefix)
            while start != -1:
                if start == 0 or not PATH_CHAR.match(text[start - 1]):
                    hits.append(text)
                    break
                start = text.find(prefix, start + 1)
            else:
                continue
            break
    return sorted(set(hits))


# ---------------------------------------------------------------- the tarball

@dataclass
class VerifyReport:
    tarball: Path
    problems: list[str] = field(default_factory=list)
    facts: ElfFacts | None = None
    library: str | None = None
    files: int = 0
    variant: str = ""        # "cxx": the C++ sibling tarball

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{self.tarball.name}: {where}: {what}")

    def summary(self) -> list[str]:
        if self.facts is None:
            return [f"{self.tarball.name}: {len(self.problems)} problem(s)"]
        f = self.facts
        glibc = f.highest("GLIBC_") or "none"
        glibcxx = f.highest("GLIBCXX_") or "none"
        status = "ok" if not self.problems else f"{len(self.problems)} problem(s)"
        kind = " (C++ library: exports not limited to the C API)" if self.variant == "cxx" else ""
        return [f"{self.tarball.name}: {status}{kind}; {self.files} files; {self.library}: {f.machine} "
                f"{f.elf_class}-bit, SONAME {f.soname}, NEEDED {', '.join(f.needed) or 'none'}, "
                f"needs {glibc} / {glibcxx}, {len(f.exported)} exported symbols"
                f"{f' ({cxx} C++ names via the upstream *TfLite* glob)' if (cxx := sum(map(_upstream_glob, f.exported))) else ''}"]


def _check_gzip_header(raw: bytes, report: VerifyReport) -> None:
    if raw[:2] != b"\x1f\x8b":
        report.fail("gzip header", "not a gzip file; re-run `invoke package`")
        return
    if raw[3] & 0x08:
        report.fail("gzip header", "records a file name; repack with `invoke package` (gzip without a name)")
    if raw[4:8] != b"\0\0\0\0":
        report.fail("gzip header", "records a timestamp; repack with `invoke package` (gzip mtime 0)")


@dataclass
class _Tarball:
    """What a .tar.gz holds, below its one top folder (rel paths: "lib/x.so")."""
    top: str
    members: list[tarfile.TarInfo]
    files: dict[str, bytes]
    links: dict[str, str]


def _open_tarball(tarball: Path, report: VerifyReport) -> _Tarball | None:
    """Read, check the gzip header, and find the one top folder (None, reported, when there is not one).
    An unreadable or corrupt file is one PackageError line naming it."""
    try:
        raw = tarball.read_bytes()
    except OSError as err:
        raise PackageError(f"{tarball}: cannot read ({err.strerror}); pass the path of a .tar.gz from dist/") from None
    _check_gzip_header(raw, report)
    try:
        tar = tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw)), mode="r:")
        members = tar.getmembers()
        tops = {PurePosixPath(m.name).parts[0] for m in members if m.name}
        if len(tops) != 1:
            report.fail("layout", f"expected one top folder, found {sorted(tops)}; repack with `invoke package`")
            return None
        top = tops.pop()
        files: dict[str, bytes] = {}
        links: dict[str, str] = {}
        for m in members:
            rel = m.name[len(top) + 1:] if m.name != top else ""
            if m.isfile():
                files[rel] = tar.extractfile(m).read()  # type: ignore[union-attr]
            elif m.issym():
                links[rel] = m.linkname
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        # zlib.error: a damaged deflate stream (not an OSError, unlike a bad gzip magic or CRC).
        raise PackageError(f"{tarball}: not a readable .tar.gz ({err}); re-download it or re-run `invoke package`") from None
    return _Tarball(top=top, members=members, files=files, links=links)


def _check_members(tar: _Tarball, report: VerifyReport) -> None:
    names = [m.name for m in tar.members]
    if names != sorted(names):
        report.fail("layout", "members are not sorted by name; repack with `invoke package`")
    for m in tar.members:
        if m.pax_headers:
            report.fail(m.name, f"has pax records {sorted(m.pax_headers)}; repack with USTAR headers (`invoke package`)")
        if m.uid or m.gid or m.uname or m.gname:
            report.fail(m.name, f"owned by {m.uname or m.uid}:{m.gname or m.gid}; repack with owner 0:0 and no names")
        if not (m.isfile() or m.issym() or m.isdir()):
            report.fail(m.name, "is neither a file, a folder nor a symlink; repack with `invoke package`")


def _read_manifest(tar: _Tarball, report: VerifyReport) -> tuple[dict, dict] | None:
    """(in-toto statement, its externalParameters), or None (reported)."""
    if "manifest.json" not in tar.files:
        report.fail("manifest.json", "missing; this is not a tflite-forge artifact (re-run `invoke package`)")
        return None
    try:
        statement = json.loads(tar.files["manifest.json"])
        external = statement["predicate"]["buildDefinition"]["externalParameters"]
    except (ValueError, KeyError, TypeError):
        report.fail("manifest.json", "not an in-toto Statement with SLSA provenance; re-run `invoke package`")
        return None
    return statement, external


def _check_mtimes(tar: _Tarball, epoch: int | None, report: VerifyReport) -> None:
    for m in tar.members:
        if epoch is not None and m.mtime != epoch:
            report.fail(m.name, f"mtime {m.mtime} is not SOURCE_DATE_EPOCH {epoch}; repack with `invoke package`")
            break


def _check_digests(tar: _Tarball, statement: dict, report: VerifyReport) -> None:
    """Every file listed, every listed file present and equal; symlinks as recorded."""
    expected = provenance.subject_digests(statement)
    for rel, data in sorted(tar.files.items()):
        if rel == "manifest.json":
            continue
        want = expected.get(rel)
        if want is None:
            report.fail(rel, "is not listed in manifest.json; the tarball was changed after packaging, rebuild it")
        elif hashlib.sha256(data).hexdigest() != want:
            report.fail(rel, "sha256 differs from manifest.json; the file was altered, re-download or re-package")
    for rel in sorted(set(expected) - set(tar.files)):
        report.fail(rel, "listed in manifest.json but missing from the tarball; re-download or re-package")
    want_links = provenance.symlinks(statement)
    for rel, target in sorted(tar.links.items()):
        if want_links.get(rel) != target:
            report.fail(rel, f"symlink to {target!r} is not the one manifest.json records; re-package")


def _find_library(tar: _Tarball, variant: str, report: VerifyReport) -> str | None:
    """The C API's library, or in the -cxx sibling the C++ library (upstream gives it no
    VERSION/SOVERSION, so an unversioned libtensorflow-lite.so is accepted there)."""
    pattern = r"lib/libtensorflow-lite\.so(\.[\d.]+)?" if variant == "cxx" else r"lib/libtensorflowlite_c\.so\.[\d.]+"
    libs = [rel for rel in tar.files if re.fullmatch(pattern, rel)]
    if len(libs) != 1:
        want = "lib/libtensorflow-lite.so[.<version>]" if variant == "cxx" else "lib/libtensorflowlite_c.so.<version>"
        report.fail("lib/", f"expected one {want}, found {libs or 'none'}; re-package")
        return None
    return libs[0]


def _check_machine(facts: ElfFacts, lib: str, arch_name: str | None, report: VerifyReport) -> None:
    if not arch_name:
        return
    target = resolve_arch(arch_name)
    if facts.machine != target.elf_machine or facts.elf_class != target.elf_class:
        report.fail(lib, f"is {facts.machine} {facts.elf_class}-bit, not {target.elf_machine} {target.elf_class}-bit "
                         f"for {target.name}; build with --arch {target.name} (the {target.triplet} toolchain)")


def _check_soname(tar: _Tarball, facts: ElfFacts, lib: str, variant: str, report: VerifyReport) -> None:
    lib_name = PurePosixPath(lib).name
    if variant == "cxx":
        if not facts.soname or not re.fullmatch(r"libtensorflow-lite\.so(\.[0-9][0-9.]*)?", facts.soname):
            report.fail(lib, f"has {f'SONAME {facts.soname}' if facts.soname else 'no SONAME'}, not "
                             "libtensorflow-lite.so[.<major>]; rebuild with `invoke build --cxx-shared`")
            return
    elif not facts.soname or not re.fullmatch(r"libtensorflowlite_c\.so\.[0-9][0-9.]*", facts.soname):
        found = f"SONAME {facts.soname}" if facts.soname else "no SONAME"
        report.fail(lib, f"has {found}, not a versioned libtensorflowlite_c.so.<major>; enable the `soname` "
                         "patch set in the recipe and rebuild")
        return
    if facts.soname != lib_name and tar.links.get(f"lib/{facts.soname}") != lib_name:
        report.fail(f"lib/{facts.soname}", f"SONAME symlink to {lib_name} is missing; re-package")


def _check_runpaths(tar: _Tarball, facts: ElfFacts, lib: str, report: VerifyReport) -> None:
    for rel, data in sorted(tar.files.items()):
        if rel.startswith("lib/") and rel.count("/") == 1 and data[:4] == b"\x7fELF":
            entries = facts.runpath if rel == lib else elf_facts(data).runpath
            bad = [p for p in entries if not p.startswith(("$ORIGIN", "${ORIGIN}"))]
            if bad:
                report.fail(rel, f"has RUNPATH {':'.join(bad)}, a build-machine folder; link with "
                                 "CMAKE_BUILD_WITH_INSTALL_RPATH=ON and CMAKE_INSTALL_RPATH=$ORIGIN (the build does for "
                                 "--cxx-shared) and rebuild")


def _check_needed(tar: _Tarball, facts: ElfFacts, lib: str, report: VerifyReport) -> None:
    shipped = {PurePosixPath(rel).name for rel in (*tar.files, *tar.links)
               if rel.startswith("lib/") and rel.count("/") == 1}
    for needed in facts.needed:
        if needed in shipped:
            if not any(p.startswith(("$ORIGIN", "${ORIGIN}")) for p in facts.runpath):
                report.fail(lib, f"needs {needed}, shipped beside it, but has no RUNPATH $ORIGIN to find it; rebuild "
                                 "(the build sets CMAKE_INSTALL_RPATH=$ORIGIN with --cxx-shared)")
            continue
        if not ALLOWED_NEEDED.match(needed):
            report.fail(lib, f"needs {needed}, which target systems may lack; link it statically or turn off the "
                             "feature that pulls it in (allowed: libc, libm, libdl, libpthread, librt, libstdc++, libgcc_s)")


def _check_glibc(facts: ElfFacts, lib: str, glibc_max: str | None, report: VerifyReport) -> None:
    if not glibc_max:
        return
    highest = facts.highest("GLIBC_")
    if highest and version_key(highest) > version_key(glibc_max):
        too_new = sorted(v for v in facts.version_needs
                         if v.startswith("GLIBC_") and version_key(v) > version_key(glibc_max))
        symbols = sorted({s for v in too_new for s in facts.version_needs[v]})
        report.fail(lib, f"needs {highest} (> --glibc-max {glibc_max}) via {', '.join(symbols[:6]) or 'version refs'}; "
                         f"build on an older base image, e.g. `invoke image --bootstrap --debian-suite bullseye` "
                         f"(glibc 2.31) then `invoke build --base-image tflite-forge/debian-base:bullseye`")


def _check_exports(facts: ElfFacts, lib: str, variant: str, report: VerifyReport) -> None:
    # TensorFlow's version script exports `*TfLite*`, which also matches C++ names that mention a
    # TfLite type (e.g. _ZN12TfLiteTensorD1Ev): reported in the summary, not a failure. Anything
    # else outside the C API is a leak. A C++ library exports its C++ API (and what it links in):
    # no export rule there.
    if variant == "cxx":
        return
    bad_exports = sorted((s for s in facts.exported if not s.startswith(EXPORT_PREFIXES) and not _upstream_glob(s)),
                         key=lambda s: (s.startswith("_Z"), s))  # plain C names first: the telling ones
    if bad_exports:
        report.fail(lib, f"exports {len(bad_exports)} non-C-API symbol(s) ({', '.join(bad_exports[:5])}); link with "
                         "tensorflow/lite/c/version_script.lds (-Wl,--version-script) so only TfLite* is exported")


def _check_build_paths(tar: _Tarball, build_paths: Iterable[str], report: VerifyReport) -> None:
    for rel, data in sorted(tar.files.items()):
        if rel.startswith("lib/") and data[:4] == b"\x7fELF":
            leaks = build_path_strings(data, build_paths)
            if leaks:
                report.fail(rel, f"contains build-machine paths ({'; '.join(leaks[:3])}); map them out with "
                                 "-ffile-prefix-map=<build dir>=. (the build's CMAKE_C/CXX_FLAGS) and rebuild")


def verify_tarball(tarball: str | Path, *, arch: str | None = None, glibc_max: str | None = None,
                   build_paths: Iterable[str] = ()) -> VerifyReport:
    """Every check above; problems are collected, not raised (the caller decides)."""
    tarball = Path(tarball)
    report = VerifyReport(tarball=tarball)
    tar = _open_tarball(tarball, report)
    if tar is None:
        return report
    _check_members(tar, report)
    report.files = len(tar.files)
    manifest = _read_manifest(tar, report)
    if manifest is None:
        return report
    statement, external = manifest
    _check_mtimes(tar, external.get("sourceDateEpoch"), report)
    _check_digests(tar, statement, report)
    report.variant = variant = str(external.get("variant", ""))
    lib = _find_library(tar, variant, report)
    if lib is None:
        return report
    report.library = lib
    try:
        facts = elf_facts(tar.files[lib])
    except PackageError as err:
        report.fail(lib, str(err))
        return report
    report.facts = facts
    _check_machine(facts, lib, arch or external.get("arch"), report)
    _check_soname(tar, facts, lib, variant, report)
    _check_runpaths(tar, facts, lib, report)
    _check_needed(tar, facts, lib, report)
    _check_glibc(facts, lib, glibc_max, report)
    _check_exports(facts, lib, variant, report)
    _check_build_paths(tar, build_paths, report)
    return report


def debug_tarball_for(tarball: Path) -> Path:
    """dist/<stem>.tar.gz -> dist/<stem>-dbg.tar.gz"""
    return tarball.with_name(tarball.name.removesuffix(".tar.gz") + "-dbg.tar.gz")


def verify_debug_tarball(debug_tarball: str | Path, release_tarball: str | Path) -> VerifyReport:
    """The -dbg tarball belongs to the release: for every ELF file the release ships in lib/ with a
    .gnu_debuglink, lib/.debug/<link name> is in the -dbg tarball, its CRC32 is the one the link
    records (gdb checks it) and its GNU build-id equals the stripped library's."""
    debug_tarball, release_tarball = Path(debug_tarball), Path(release_tarball)
    report = VerifyReport(tarball=debug_tarball)
    debug = _open_tarball(debug_tarball, report)
    release = _open_tarball(release_tarball, VerifyReport(tarball=release_tarball))
    if debug is None or release is None:
        return report
    debug_files, release_files = debug.files, release.files
    if debug.top != release.top:
        report.fail("layout", f"top folder {debug.top} is not the release's {release.top}; unpack-over would miss; "
                              "re-package both")
    for m in debug.members:
        if m.uid or m.gid or m.uname or m.gname or m.pax_headers:
            report.fail(m.name, "owner or pax records are not normalised; repack with `invoke package`")
            break
    for rel, data in sorted(release_files.items()):
        if not rel.startswith("lib/") or data[:4] != b"\x7fELF":
            continue
        link = debuglink(data)
        if link is None:
            report.fail(rel, "has no .gnu_debuglink, so gdb cannot find its debug file; re-package (objcopy --add-gnu-debuglink)")
            continue
        name, crc = link
        debug_rel = f"{str(PurePosixPath(rel).parent)}/.debug/{name}"
        debug_data = debug_files.get(debug_rel)
        if debug_data is None:
            report.fail(debug_rel, f"missing; {rel} links to it; re-package both tarballs from the same build")
            continue
        report.files += 1
        if zlib.crc32(debug_data) != crc:
            report.fail(debug_rel, f"CRC32 {zlib.crc32(debug_data):08x} is not the {crc:08x} {rel}'s debuglink "
                                   "records (gdb ignores it); re-package both tarballs from the same build")
        stripped_id, debug_id = build_id(data), build_id(debug_data)
        if stripped_id is None:
            report.fail(rel, "has no GNU build-id; link with -Wl,--build-id=sha1 (the build's LDFLAGS) and rebuild")
        elif stripped_id != debug_id:
            report.fail(debug_rel, f"build-id {debug_id or 'none'} is not {rel}'s {stripped_id}; it is from another "
                                   "build: re-package both tarballs from the same build")
    if report.files == 0 and not report.problems:
        report.fail("lib/.debug/", f"holds no debug file for {release_tarball.name}; re-package")
    return report


def run_verify(settings: Any, tarball: str, *, glibc_max: str | None = None, arch: str | None = None,
               log=print) -> VerifyReport:
    """`invoke verify`: print the report; one line per problem, then fail with a summary."""
    path = Path(tarball)
    if path.name.endswith("-dbg.tar.gz"):
        release = path.with_name(path.name.removesuffix("-dbg.tar.gz") + ".tar.gz")
        if not release.is_file():
            raise PackageError(f"{path.name}: a -dbg tarball is checked against its release; {release} is missing")
        report = verify_debug_tarball(path, release)
        for line in report.problems:
            log(f"verify: {line}")
        if report.problems:
            raise PackageError(f"{path.name}: {len(report.problems)} verification problem(s) listed above")
        log(f"verify: {path.name}: ok; {report.files} debug file(s) match {release.name} (build-id, debuglink CRC)")
        return report
    report = verify_tarball(tarball, arch=arch, glibc_max=glibc_max,
                            build_paths=(str(Path(settings.work_dir).resolve()),))
    debug, debug_line = debug_tarball_for(path), None
    if debug.is_file():   # the sibling -dbg tarball is checked against this release too
        debug_report = verify_debug_tarball(debug, path)
        report.problems += debug_report.problems
        if not debug_report.problems:
            debug_line = f"{debug.name}: ok; {debug_report.files} debug file(s) match (build-id, debuglink CRC)"
    for line in report.problems:
        log(f"verify: {line}")
    for line in report.summary() + ([debug_line] if debug_line else []):
        log(f"verify: {line}")
    if report.problems:
        raise PackageError(f"{Path(tarball).name}: {len(report.problems)} verification problem(s) listed above")
    return report
