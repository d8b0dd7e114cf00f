"""Patch sets as data: `patches/<name>.toml`, validated into frozen dataclasses.

A set is a list of edits (regex + replacement on named files, with an expected match
count) and optional unified-diff patches (`patches/<name>/NNNN-*.patch`, Buildroot-style
header with an `Upstream:` line). Every entry says where it applies: TensorFlow version
range, arches, build backend. The full format is in patches/SCHEMA.md.

    [set]
    kind = "tuning"
    description = "Raise -O2 to -O3 where TFLite's dependencies pin it"

    [[edit]]
    id = "xnnpack-microkernels"
    description = "XNNPACK pins -O2 on its hot targets ... (upstream: N/A, a tuning choice)"
    tree = "xnnpack"
    files = ["CMakeLists.txt"]
    pattern = '\\$<\\$<NOT:\\$<CONFIG:Debug>>:-O2>'
    replacement = '$<$<NOT:$<CONFIG:Debug>>:-O3>'
    min = 1
    max = 40
    backends = ["cmake"]
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ._toml import check_keys, expect, load_toml, require
from .arches import arch_names, resolve_arch
from .difftools import parse_unified_diff
from .errors import ConfigError, PatchError
from .resources import PATCHES_DIR
from .versions import parse_versions, version_key, version_matches


BACKENDS = ("cmake", "bazel")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PATCH_FILE_RE = re.compile(r"^\d{4}-[A-Za-z0-9._-]+\.patch$")

TOP_KEYS = ("set", "edit", "patch", "compile_check")
SET_KEYS = ("kind", "description", "upstream")
# Why a set exists (patches/SCHEMA.md): taken from upstream, needed on a target or platform, or a choice.
KINDS = ("backport", "portability", "tuning")
APPLICABILITY_KEYS = ("versions", "arches", "backends", "skip")
EDIT_KEYS = ("id", "description", "upstream", "tree", "files", "pattern", "replacement",
             "count", "min", "max", "applied", *APPLICABILITY_KEYS)
PATCH_KEYS = ("file", "tree", *APPLICABILITY_KEYS)
SKIP_KEYS = ("versions", "arches", "backends", "reason")
CHECK_KEYS = ("id", "description", "tree", "targets", "files", "forbid", "require", "last_opt", "versions", "arches")
OPT_RE = re.compile(r"^-O(\d|s|z|g|fast)?$")

# Filled into replacements from the recipe being patched (configure_file style, so they
# never collide with CMake's ${...} or regex group references).
PLACEHOLDERS = ("@TF_VERSION@", "@TF_VERSION_MAJOR@", "@TF_VERSION_MINOR@", "@TF_VERSION_PATCH@")


# --- the data model -----------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Skip:
    versions: str | None = None
    arches: tuple[str, ...] | None = None
    backends: tuple[str, ...] | None = None
    reason: str


@dataclass(frozen=True, kw_only=True)
class Applicability:
    versions: str | None = None
    arches: tuple[str, ...] | None = None      # None: every arch
    backends: tuple[str, ...] | None = None    # None: both backends
    skip: tuple[Skip, ...] = ()

    def why_not(self, version: str, arch: str | None = None, backend: str | None = None) -> str | None:
        """None when it applies; else a short reason. arch/backend None = not decided yet (any)."""
        if not version_matches(version, self.versions):
            return f"only for TensorFlow {self.versions}"
        if arch is not None and self.arches is not None and arch not in self.arches:
            return f"only for {', '.join(self.arches)}"
        if backend is not None and self.backends is not None and backend not in self.backends:
            return f"only for the {'/'.join(self.backends)} backend"
        for s in self.skip:
            if (version_matches(version, s.versions)
                    and (s.arches is None or arch in s.arches)
                    and (s.backends is None or backend in s.backends)):
                return s.reason
        return None


@dataclass(frozen=True, kw_only=True)
class Edit:
    set_name: str
    id: str
    description: str
    upstream: str
    tree: str
    files: tuple[str, ...]
    pattern: str
    replacement: str
    min: int
    max: int
    applied: str | None                   # regex that finds the fixed state ("already upstream")
    applies: Applicability

    @property
    def expected(self) -> str:
        return str(self.min) if self.min == self.max else f"{self.min}..{self.max}"

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.MULTILINE)

    def render_replacement(self, version: str) -> str:
        major, minor, patch = version_key(version)[:3]
        text = self.replacement
        for key, value in zip(PLACEHOLDERS, (version, str(major), str(minor), str(patch))):
            text = text.replace(key, value)
        return text

    def applied_regex(self, version: str) -> re.Pattern[str] | None:
        if self.applied:
            return re.compile(self.applied, re.MULTILINE)
        rendered = self.render_replacement(version)
        # A literal replacement (no group references) is its own fingerprint.
        if rendered.strip() and not re.search(r"\\(\d|g<)", rendered):
            return re.compile(re.escape(rendered), re.MULTILINE)
        return None


@dataclass(frozen=True, kw_only=True)
class DiffPatch:
    set_name: str
    id: str                       # file name, e.g. 0001-foo.patch
    path: Path
    description: str              # the header (text before the first ---)
    upstream: str                 # the Upstream: line's value
    tree: str
    text: str
    applies: Applicability


@dataclass(frozen=True, kw_only=True)
class CompileCheck:
    """What a set promises about the compiler's command lines, checked on the build's
    compile_commands.json (`tflite_forge.compile_checks`)."""
    set_name: str
    id: str
    description: str
    tree: str | None              # only compiles of files in this tree ("tensorflow" or a dependency); None: all
    targets: tuple[str, ...]      # fnmatch patterns on the CMake target the object belongs to; (): any
    files: tuple[str, ...]        # fnmatch patterns on the source file's name; (): any
    forbid: tuple[str, ...]       # no argument may equal one of these or, when it ends in "=", start with it
    require: tuple[str, ...]      # every matched command carries each of these arguments
    last_opt: str | None          # the last -O flag of every matched command
    applies: Applicability


@dataclass(frozen=True, kw_only=True)
class PatchSet:
    name: str
    path: Path
    kind: str                     # one of KINDS
    description: str
    upstream: str | None
    edits: tuple[Edit, ...]
    patches: tuple[DiffPatch, ...]
    digest: str                   # sha256 over the TOML and every .patch it names
    checks: tuple[CompileCheck, ...] = ()

    @property
    def entries(self) -> tuple[Edit | DiffPatch, ...]:
        return (*self.edits, *self.patches)


# --- loading --------------------------------------------------------------------------

def _err(path: Path, where: str, message: str) -> PatchError:
    return PatchError(f"{path}: {where}: {message}")


def _str_list(path: Path, where: str, value: Any, what: str) -> tuple[str, ...]:
    expect(path, where, value, list, f"a list of {what}", error=PatchError)
    if not value:
        raise _err(path, where, f"expected a non-empty list of {what}")
    for i, item in enumerate(value):
        expect(path, f"{where}[{i}]", item, str, what, error=PatchError)
    return tuple(value)


def _applicability(path: Path, where: str, table: dict[str, Any], *, allow_skip: bool = True) -> Applicability:
    kwargs: dict[str, Any] = {}
    if "versions" in table:
        spec = expect(path, f"{where}.versions", table["versions"], str, "a version range such as '>=2.14, <2.17'",
                      error=PatchError)
        try:
            parse_versions(spec)
        except ValueError as exc:
            raise _err(path, f"{where}.versions", f"{str(exc)!r} is not OP VERSION (OP one of >= <= > < == !=); "
                                                  f"write e.g. '>=2.14, <2.17'") from None
        kwargs["versions"] = spec
    if "arches" in table:
        names = []
        for i, a in enumerate(_str_list(path, f"{where}.arches", table["arches"], f"arch names ({', '.join(arch_names())})")):
            try:
                names.append(resolve_arch(a).name)
            except ConfigError as exc:
                raise _err(path, f"{where}.arches[{i}]", str(exc).replace("--arch ", "")) from None
        kwargs["arches"] = tuple(dict.fromkeys(names))
    if "backends" in table:
        backends = _str_list(path, f"{where}.backends", table["backends"], "backend names (cmake, bazel)")
        for i, b in enumerate(backends):
            if b not in BACKENDS:
                raise _err(path, f"{where}.backends[{i}]", f"unknown backend {b!r}; expected one of {', '.join(BACKENDS)}")
        kwargs["backends"] = backends
    if "skip" in table:
        if not allow_skip:
            raise _err(path, f"{where}.skip", "skip entries cannot nest")
        skips = expect(path, f"{where}.skip", table["skip"], list, "a list of tables {versions, arches, backends, reason}",
                       error=PatchError)
        out = []
        for i, s in enumerate(skips):
            w = f"{where}.skip[{i}]"
            expect(path, w, s, dict, "a table {versions = ..., reason = ...}", error=PatchError)
            check_keys(path, w, s, SKIP_KEYS, error=PatchError)
            reason = require(path, w, s, "reason", str, "why the edit does not apply there", error=PatchError)
            inner = _applicability(path, w, {k: v for k, v in s.items() if k != "reason"}, allow_skip=False)
            if inner.versions is None and inner.arches is None and inner.backends is None:
                raise _err(path, w, "needs versions, arches or backends saying where the edit is skipped")
            out.append(Skip(versions=inner.versions, arches=inner.arches, backends=inner.backends, reason=reason))
        kwargs["skip"] = tuple(out)
    return Applicability(**kwargs)


def _safe_glob(path: Path, where: str, value: str) -> str:
    p = PurePosixPath(value)
    if not value or p.is_absolute() or ".." in p.parts or "\\" in value:
        raise _err(path, where, f"expected a path or glob relative to the tree root, got {value!r}")
    if value.startswith("**") or p.parts[0] in ("*", "**"):
        raise _err(path, where, f"{value!r} would walk the whole tree; name the folder the file lives in")
    return value


def _trees_ok(path: Path, where: str, tree: str) -> str:
    if not NAME_RE.match(tree):
        raise _err(path, where, f"expected 'tensorflow' or a locked dependency name such as 'xnnpack', got {tree!r}")
    return tree


def _template_problem(rx: re.Pattern[str], replacement: str) -> str | None:
    """Why `replacement` would fail as a re.sub template for `rx` (None when fine)."""
    for m in re.finditer(r"\\(?:g<([^>]*)>|(\d{1,2})|(.)|$)", replacement):
        name, num, other = m.group(1), m.group(2), m.group(3)
        if name is not None:
            if name.isdigit() and int(name) <= rx.groups or name in rx.groupindex:
                continue
            return f"\\g<{name}> names no group of the pattern"
        if num is not None:
            if int(num) <= rx.groups and int(num) > 0:
                continue
            return f"\\{num} refers to a group the pattern does not have ({rx.groups} groups)"
        if other is not None and (other in "\\nrtfvab" or not other.isascii() or not other.isalpha()):
            continue
        return f"bad escape {m.group(0)!r} (write \\\\ for a backslash)"
    return None


def _parse_edit(path: Path, set_name: str, i: int, e: dict[str, Any], seen: set[str]) -> Edit:
    where = f"[[edit]] #{i + 1}"
    expect(path, where, e, dict, "a table", error=PatchError)
    check_keys(path, where, e, EDIT_KEYS, error=PatchError)
    eid = require(path, where, e, "id", str, "a short name such as 'xnnpack-o3'", error=PatchError)
    if not NAME_RE.match(eid):
        raise _err(path, f"{where}.id", f"expected lower-case letters, digits, '.', '_' or '-', got {eid!r}")
    if eid in seen:
        raise _err(path, f"{where}.id", f"{eid!r} is used twice in this set; ids must be unique")
    seen.add(eid)
    where = f"edit {eid!r}"
    description = require(path, where, e, "description", str, "why the edit exists, with the upstream issue/PR",
                          error=PatchError)
    upstream = require(path, where, e, "upstream", str,
                       "the upstream issue/PR URL, or 'N/A <why>'", error=PatchError)
    if not (upstream.startswith("https://") or upstream.startswith("N/A")):
        raise _err(path, f"{where}.upstream", f"expected an https:// URL or 'N/A <why>', got {upstream!r}")
    tree = _trees_ok(path, f"{where}.tree", require(path, where, e, "tree", str, "'tensorflow' or a dependency name",
                                                    error=PatchError))
    files = tuple(_safe_glob(path, f"{where}.files[{j}]", f)
                  for j, f in enumerate(_str_list(path, f"{where}.files", require(path, where, e, "files", list,
                                                  "a list of paths or globs", error=PatchError), "paths or globs")))
    pattern = require(path, where, e, "pattern", str, "a Python regular expression", error=PatchError)
    try:
        rx = re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise _err(path, f"{where}.pattern", f"not a valid regular expression ({exc})") from None
    if rx.match(""):
        raise _err(path, f"{where}.pattern", "matches the empty string, so it would 'succeed' anywhere; anchor it on text")
    replacement = require(path, where, e, "replacement", str, "the text to put in place ('' deletes)", error=PatchError)
    bad = _template_problem(rx, replacement)
    if bad:
        raise _err(path, f"{where}.replacement", bad)
    if "count" in e and ("min" in e or "max" in e):
        raise _err(path, where, "give either count (exact) or min/max (a range), not both")
    if "count" in e:
        lo = hi = expect(path, f"{where}.count", e["count"], int, "a positive whole number", error=PatchError)
    elif "min" in e or "max" in e:
        if "min" not in e or "max" not in e:
            raise _err(path, where, "a range needs both min and max")
        lo = expect(path, f"{where}.min", e["min"], int, "a positive whole number", error=PatchError)
        hi = expect(path, f"{where}.max", e["max"], int, "a whole number >= min", error=PatchError)
    else:
        raise _err(path, where, "missing count (exact) or min/max (a range): say how many matches you expect")
    if lo < 1:
        raise _err(path, where, f"expected matches must be at least 1 (got {lo}); an edit never succeeds by matching "
                                f"nothing: use versions/skip to say where it does not apply")
    if hi < lo:
        raise _err(path, f"{where}.max", f"max ({hi}) is below min ({lo})")
    applied = None
    if "applied" in e:
        applied = expect(path, f"{where}.applied", e["applied"], str, "a regular expression for the fixed text",
                         error=PatchError)
        try:
            re.compile(applied, re.MULTILINE)
        except re.error as exc:
            raise _err(path, f"{where}.applied", f"not a valid regular expression ({exc})") from None
    applies = _applicability(path, where, e)
    return Edit(set_name=set_name, id=eid, description=description, upstream=upstream, tree=tree, files=files,
                pattern=pattern, replacement=replacement, min=lo, max=hi, applied=applied, applies=applies)


def parse_patch_header(path: Path, text: str) -> tuple[str, str]:
    """(header, upstream) of a Buildroot-style patch; PatchError when either is missing."""
    header_lines = []
    for line in text.splitlines():
        if line.startswith("--- ") or line.startswith("diff "):
            break
        header_lines.append(line)
    header = "\n".join(header_lines).strip()
    up = re.search(r"^Upstream:\s*(\S.*)$", header, re.MULTILINE)
    if not header or not up:
        raise PatchError(f"{path}: the header (text before the first '---') must say why the patch exists and "
                         f"carry an 'Upstream: <URL or N/A why>' line")
    why = "\n".join(line for line in header_lines if line.strip() and not line.startswith("Upstream:")
                    and not line.startswith("Signed-off-by:")).strip()
    if not why:
        raise PatchError(f"{path}: the header has an Upstream: line but no sentence saying why the patch exists")
    return why, up.group(1).strip()


def _parse_patch(path: Path, set_name: str, i: int, p: dict[str, Any], seen: set[str]) -> DiffPatch:
    where = f"[[patch]] #{i + 1}"
    expect(path, where, p, dict, "a table", error=PatchError)
    check_keys(path, where, p, PATCH_KEYS, error=PatchError)
    rel = require(path, where, p, "file", str, f"a file under patches/{set_name}/ such as '0001-fix.patch'",
                  error=PatchError)
    if not PATCH_FILE_RE.match(rel):
        raise _err(path, f"{where}.file", f"expected NNNN-name.patch (e.g. 0001-fix-soname.patch), got {rel!r}")
    if rel in seen:
        raise _err(path, f"{where}.file", f"{rel!r} is listed twice")
    seen.add(rel)
    ppath = path.parent / set_name / rel
    try:
        text = ppath.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _err(path, f"{where}.file", f"{ppath} does not exist") from None
    why, upstream = parse_patch_header(ppath, text)
    tree = _trees_ok(path, f"{where}.tree", require(path, where, p, "tree", str, "'tensorflow' or a dependency name",
                                                    error=PatchError))
    parse_unified_diff(text, source=str(ppath))   # a diff that does not parse is a schema error, found now
    return DiffPatch(set_name=set_name, id=rel, path=ppath, description=why, upstream=upstream, tree=tree,
                     text=text, applies=_applicability(path, where, p))


def _parse_check(path: Path, set_name: str, i: int, c: dict[str, Any], seen: set[str]) -> CompileCheck:
    where = f"[[compile_check]][{i}]"
    expect(path, where, c, dict, "a table", error=PatchError)
    check_keys(path, where, c, CHECK_KEYS, error=PatchError)
    cid = require(path, where, c, "id", str, "a short unique id", error=PatchError)
    if not NAME_RE.match(cid) or cid in seen:
        raise _err(path, f"{where}.id", f"{cid!r} must be unique in the set and lower-case letters, digits, '.', '_', '-'")
    seen.add(cid)
    description = require(path, where, c, "description", str, "what the check proves", error=PatchError)
    tree = _trees_ok(path, f"{where}.tree", expect(path, f"{where}.tree", c["tree"], str, "a tree name",
                                                   error=PatchError)) if "tree" in c else None
    targets = _str_list(path, f"{where}.targets", c["targets"], "CMake target patterns") if "targets" in c else ()
    files = _str_list(path, f"{where}.files", c["files"], "file-name patterns") if "files" in c else ()
    forbid = _str_list(path, f"{where}.forbid", c["forbid"], "compiler arguments") if "forbid" in c else ()
    required = _str_list(path, f"{where}.require", c["require"], "compiler arguments") if "require" in c else ()
    last_opt = None
    if "last_opt" in c:
        last_opt = expect(path, f"{where}.last_opt", c["last_opt"], str, "an optimisation flag such as '-O3'",
                          error=PatchError)
        if not OPT_RE.match(last_opt):
            raise _err(path, f"{where}.last_opt", f"{last_opt!r} is not a -O flag; write e.g. '-O3'")
    if not (forbid or required or last_opt):
        raise _err(path, where, "checks nothing; give forbid, require or last_opt")
    return CompileCheck(set_name=set_name, id=cid, description=description, tree=tree, targets=targets,
                        files=files, forbid=forbid, require=required, last_opt=last_opt,
                        applies=_applicability(path, where, {k: c[k] for k in ("versions", "arches") if k in c}))


def load_patch_set(path: Path) -> PatchSet:
    path = Path(path)
    data = load_toml(path, error=PatchError)
    name = path.stem
    if not NAME_RE.match(name):
        raise PatchError(f"{path}: a patch-set file name must be lower-case letters, digits, '.', '_', '-'")
    check_keys(path, "top level", data, TOP_KEYS, error=PatchError)
    s = require(path, "", data, "set", dict, "a [set] table with a description", error=PatchError)
    check_keys(path, "[set]", s, SET_KEYS, error=PatchError)
    kind = require(path, "[set]", s, "kind", str, f"one of {', '.join(KINDS)} (patches/SCHEMA.md says which)",
                   error=PatchError)
    if kind not in KINDS:
        raise _err(path, "[set].kind", f"{kind!r} is not a kind; write one of {', '.join(KINDS)} "
                                       f"(patches/SCHEMA.md says which)")
    description = require(path, "[set]", s, "description", str, "what the set is for", error=PatchError)
    upstream = expect(path, "[set].upstream", s["upstream"], str, "a URL or 'N/A <why>'", error=PatchError) \
        if "upstream" in s else None
    edits_raw = data.get("edit", [])
    expect(path, "[[edit]]", edits_raw, list, "an array of tables ([[edit]])", error=PatchError)
    patches_raw = data.get("patch", [])
    expect(path, "[[patch]]", patches_raw, list, "an array of tables ([[patch]])", error=PatchError)
    if not edits_raw and not patches_raw:
        raise PatchError(f"{path}: the set has no [[edit]] and no [[patch]]; an empty set would change nothing")
    seen: set[str] = set()
    edits = tuple(_parse_edit(path, name, i, e, seen) for i, e in enumerate(edits_raw))
    pseen: set[str] = set()
    patches = tuple(_parse_patch(path, name, i, p, pseen) for i, p in enumerate(patches_raw))
    checks_raw = data.get("compile_check", [])
    expect(path, "[[compile_check]]", checks_raw, list, "an array of tables ([[compile_check]])", error=PatchError)
    cseen: set[str] = set()
    checks = tuple(_parse_check(path, name, i, c, cseen) for i, c in enumerate(checks_raw))
    h = hashlib.sha256()
    h.update(path.read_bytes())
    for p in patches:
        h.update(b"\0" + p.id.encode() + b"\0" + p.text.encode("utf-8"))
    return PatchSet(name=name, path=path.resolve(), kind=kind, description=description, upstream=upstream,
                    edits=edits, patches=patches, digest=h.hexdigest(), checks=checks)


def find_patch_set(name: str, search: tuple[Path, ...] = ()) -> Path:
    dirs = (*search, PATCHES_DIR)
    for d in dirs:
        candidate = Path(d) / f"{name}.toml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for d in dirs if Path(d).is_dir() for p in Path(d).glob("*.toml")})
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; perhaps you meant {close[0]!r}" if close else ""
    raise PatchError(f"patch set {name!r} not found in {', '.join(str(d) for d in dirs)}{hint}; "
                     f"known sets: {', '.join(known) or 'none'}")


def load_recipe_sets(recipe) -> list[PatchSet]:
    """The sets a recipe names, in its order; a recipe folder's patches/ shadows the bundled one."""
    search = (Path(recipe.path).parent / "patches",)
    return [load_patch_set(find_patch_set(n, search)) for n in recipe.build.patch_sets]


def available_sets(directory: Path = PATCHES_DIR) -> list[PatchSet]:
    return [load_patch_set(p) for p in sorted(Path(directory).glob("*.toml"))]
