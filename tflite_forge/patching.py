"""Patch step: apply a recipe's patch sets to working copies of the unpacked trees.

    cache (read-only)                         work_dir/src/<label>-<arch>/
    trees/<sha256>/  ── copy ──▶ .tmp ── stage all edits in memory ── write ── rename ──▶ tensorflow/
                                                                                      deps/<name>/
                                                                                      .stamps/*.json

- Edits name their files (no walk over the tree); each says how many matches it expects.
- All-or-nothing per tree: every edit is staged in memory first; a drifted edit raises
  before anything is written, so the working copy (and the cache) stay byte-for-byte as
  they were. A fresh copy is patched beside the old one and swapped in with a rename.
- Idempotent: a stamp records the source, the sets' digests and the patched files'
  hashes. Same inputs and untouched files: no-op. Anything else: a fresh copy.

Public API: `prepare_sources`, `apply_in_place`, `plan_diff`, `check_recipes`.
Unified diffs are parsed and applied by difftools.py; the `patch`/`patches` task bodies
and their tables live in patch_report.py.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from filelock import FileLock

from .arches import resolve_arch
from .cache import Cache
from .difftools import apply_hunks, parse_unified_diff
from .errors import ConfigError, PatchError
from .fsutil import swap_dir, write_json_atomic
from .lockfile import load_lock
from .patchset import BACKENDS, DiffPatch, Edit, PatchSet, load_recipe_sets
from .recipe import Recipe
from .workspace import Cell, Workspace

STAMP_FORMAT = 1
TREE_TF = "tensorflow"


# --- evaluation: what each entry would do to a set of trees -----------------------------

@dataclass(frozen=True)
class EntryResult:
    set_name: str
    entry_id: str
    kind: str                       # "edit" or "patch"
    tree: str
    files: tuple[str, ...]
    status: str                     # applies | drift | upstream | n/a | no-tree
    expected: str = ""
    found: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "drift"


@dataclass
class Staging:
    """Patched file texts per tree, kept in memory until every entry has been checked."""
    trees: Mapping[str, Path]
    version: str
    original: dict[tuple[str, str], bytes] = field(default_factory=dict)
    staged: dict[tuple[str, str], str] = field(default_factory=dict)

    def read(self, tree: str, rel: str) -> str | None:
        key = (tree, rel)
        if key in self.staged:
            return self.staged[key]
        if key not in self.original:
            try:
                self.original[key] = _tree_path(self.trees[tree], rel, tree).read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None
        return self.original[key].decode("utf-8", errors="surrogateescape")

    def changed(self) -> dict[tuple[str, str], str]:
        out = {}
        for key, text in self.staged.items():
            before = self.original.get(key)
            if before is None or before != text.encode("utf-8", errors="surrogateescape"):
                out[key] = text
        return out


_GLOB_CHARS = re.compile(r"[*?\[]")


def _within(root: Path, path: Path) -> bool:
    """Does path, every link on the way followed, stay inside root?"""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _tree_path(root: Path, rel: str, tree: str) -> Path:
    """root/rel for reading or writing; a PatchError when a symbolic link takes it outside the tree.
    Defence in depth: unpack refuses such links, but the patch step never relies on that alone."""
    path = root / rel
    if not _within(root, path):
        raise PatchError(f"{tree}/{rel}: leads outside the {tree} tree ({root}) through a symbolic link; refusing "
                         f"to read or write it. The tree is not what a safe archive unpacks to: delete it and its "
                         f"working copy, then fetch again (and check the archive's pin)")
    return path


def _resolve_files(root: Path, specs: Iterable[str], tree: str = "") -> tuple[list[str], list[str]]:
    """(existing relpaths, missing specs). Globs expand under their fixed leading folder only; a
    file reached through a link leading out of the tree is a PatchError, never read."""
    found: list[str] = []
    missing: list[str] = []
    for spec in specs:
        if _GLOB_CHARS.search(spec):
            hits = sorted(str(p.relative_to(root).as_posix()) for p in root.glob(spec)
                          if os.path.lexists(p) and _tree_path(root, p.relative_to(root).as_posix(), tree).is_file())
            if hits:
                found.extend(h for h in hits if h not in found)
            else:
                missing.append(spec)
        elif os.path.lexists(root / spec) and _tree_path(root, spec, tree).is_file():
            if spec not in found:
                found.append(spec)
        else:
            missing.append(spec)
    return found, missing


def _literal_hint(pattern: str) -> str:
    """The plain text a pattern looks for, roughly: used to find the nearest lines on drift."""
    s = re.sub(r"\(\?[a-zA-Z]+\)", "", pattern)
    s = re.sub(r"\\[sSdDwWbBAZ]", " ", s)
    s = re.sub(r"\\(.)", r"\1", s)
    s = re.sub(r"\[[^\]]*\]|[()?*+{}|^$]|\d+,\d*\}", "", s)
    return " ".join(s.split())


def nearest_lines(text: str, pattern: str, spans: list[tuple[int, int]], limit: int = 3) -> str:
    lines = text.splitlines()
    if spans:  # wrong count: show where it did match
        shown = []
        for start, _ in spans[:limit]:
            n = text.count("\n", 0, start)
            shown.append(f"L{n + 1}: {lines[n].strip()!r}" if n < len(lines) else f"L{n + 1}")
        more = f" (+{len(spans) - limit} more)" if len(spans) > limit else ""
        return "matched at " + " | ".join(shown) + more
    hint = _literal_hint(pattern)
    if not hint or not lines:
        return "no similar lines"
    scored = []
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(hint)
    for n, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        matcher.set_seq1(stripped)
        # Whole-line likeness, or how much of the hint appears in one piece (short patterns).
        block = matcher.find_longest_match(0, len(stripped), 0, len(hint)).size / len(hint)
        r = max(matcher.ratio() if matcher.quick_ratio() >= 0.45 else 0.0, block if len(hint) > 1 else 0.0)
        if r >= 0.45:
            scored.append((r, n))
    if not scored:
        return f"no line resembles {hint!r}"
    best = sorted(scored, key=lambda t: (-t[0], t[1]))[:limit]
    return "nearest lines: " + " | ".join(f"L{n + 1}: {lines[n].strip()!r}" for _, n in sorted(best, key=lambda t: t[1]))


def _evaluate_edit(st: Staging, edit: Edit) -> EntryResult:
    base = dict(set_name=edit.set_name, entry_id=edit.id, kind="edit", tree=edit.tree, expected=edit.expected)
    root = st.trees[edit.tree]
    files, missing = _resolve_files(root, edit.files, edit.tree)
    if missing:
        return EntryResult(**base, files=tuple(edit.files), status="drift", found=0,
                           detail=f"{', '.join(missing)}: no such file in the {edit.tree} tree")
    rx = edit.regex
    repl = edit.render_replacement(st.version)
    total = 0
    new_texts: dict[str, str] = {}
    spans: dict[str, list[tuple[int, int]]] = {}
    for rel in files:
        text = st.read(edit.tree, rel)
        assert text is not None
        found = [m.span() for m in rx.finditer(text)]
        spans[rel] = found
        if found:
            new_texts[rel], n = rx.subn(repl, text)
            total += n
    if edit.min <= total <= edit.max:
        for rel, text in new_texts.items():
            st.staged[(edit.tree, rel)] = text
        return EntryResult(**base, files=tuple(files), status="applies", found=total)
    if total == 0:
        fixed = edit.applied_regex(st.version)
        if fixed is not None and any(fixed.search(st.read(edit.tree, rel) or "") for rel in files):
            return EntryResult(**base, files=tuple(files), status="upstream", found=0,
                               detail="pattern absent, fixed text present")
    context = "; ".join(f"{rel}: {nearest_lines(st.read(edit.tree, rel) or '', edit.pattern, spans[rel])}"
                        for rel in files)
    return EntryResult(**base, files=tuple(files), status="drift", found=total, detail=context)


def _evaluate_patch(st: Staging, patch: DiffPatch) -> EntryResult:
    diffs = parse_unified_diff(patch.text, source=str(patch.path))
    base: dict[str, Any] = dict(set_name=patch.set_name, entry_id=patch.id, kind="patch", tree=patch.tree,
                                files=tuple(d.path for d in diffs), expected="all hunks")
    new_texts: dict[str, str] = {}
    reversed_ok = True
    for d in diffs:
        text = st.read(patch.tree, d.path)
        if text is None and not d.new_file:
            return EntryResult(**base, status="drift", found=0, detail=f"{d.path}: no such file in the {patch.tree} tree")
        if text is not None and d.new_file:
            reversed_ok = reversed_ok and apply_hunks(text, d, reverse=True) == ""
            return EntryResult(**base, status="upstream" if reversed_ok else "drift", found=0,
                               detail=f"{d.path}: already exists; the patch creates it")
        result = apply_hunks(text or "", d)
        if result is None:
            if apply_hunks(text or "", d, reverse=True) is None:
                first = d.hunks[0]
                ctx = nearest_lines(text or "", re.escape(next((line for line in first.old_lines if line.strip()), "")), [])
                return EntryResult(**base, status="drift", found=0,
                                   detail=f"{d.path}: hunk at line {first.old_start} does not match; {ctx}")
            continue  # this file already has the change
        reversed_ok = False
        new_texts[d.path] = result
    if not new_texts:
        return EntryResult(**base, status="upstream", found=0, detail="every hunk is already present")
    for rel, text in new_texts.items():
        st.staged[(patch.tree, rel)] = text
    return EntryResult(**base, status="applies", found=sum(len(d.hunks) for d in diffs))


def evaluate(trees: Mapping[str, Path], sets: Iterable[PatchSet], *, version: str,
             arch: str | None = None, backend: str | None = None,
             excluded: Iterable[str] = ()) -> tuple[Staging, list[EntryResult]]:
    """Run every entry against the trees in memory. Nothing is written. `excluded`: locked trees the
    build's options leave out (XNNPACK on armhf): their entries are n/a, not missing trees."""
    excluded = frozenset(excluded)
    st = Staging(trees=trees, version=version)
    results: list[EntryResult] = []
    for ps in sets:
        for entry in ps.entries:
            kind = "edit" if isinstance(entry, Edit) else "patch"
            files = entry.files if isinstance(entry, Edit) else ()
            why = entry.applies.why_not(version, arch, backend)
            if not why and entry.tree in excluded:
                why = f"the build's options leave the {entry.tree} tree out"
            if why:
                results.append(EntryResult(ps.name, entry.id, kind, entry.tree, tuple(files), "n/a",
                                           expected=getattr(entry, "expected", ""), detail=why))
                continue
            if entry.tree not in trees:
                known = ", ".join(sorted(trees))
                results.append(EntryResult(ps.name, entry.id, kind, entry.tree, tuple(files), "no-tree",
                                           expected=getattr(entry, "expected", ""),
                                           detail=f"no {entry.tree!r} tree (trees: {known})"))
                continue
            results.append(_evaluate_edit(st, entry) if isinstance(entry, Edit) else _evaluate_patch(st, entry))
    return st, results


def _drift_error(results: list[EntryResult], sets: Iterable[PatchSet], version: str) -> PatchError | None:
    by_name = {ps.name: ps for ps in sets}
    for r in results:
        if r.status == "drift" or r.status == "no-tree":
            ps = by_name[r.set_name]
            entry = next(e for e in ps.entries if e.id == r.entry_id)
            files = ", ".join(f"{r.tree}/{f}" for f in r.files)
            if r.status == "no-tree":
                return PatchError(f"patch set {r.set_name!r}, {r.kind} {r.entry_id!r}: {r.detail}; lock the "
                                  f"dependency (invoke lock) or limit the edit with backends/versions in {ps.path}")
            what = (f"pattern {entry.pattern!r} expected {r.expected} match(es), found {r.found}"
                    if isinstance(entry, Edit) else "the diff does not apply")
            return PatchError(f"patch set {r.set_name!r}, {r.kind} {r.entry_id!r}: {files}: {what}; {r.detail}. "
                              f"Nothing was changed; update the {r.kind} in {ps.path} for TensorFlow {version} "
                              f"(pattern/count, or versions/skip if the line is gone)")
    return None


# --- writing --------------------------------------------------------------------------

def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()


def _write_all(changes: Mapping[Path, str]) -> None:
    """All or nothing: write every temp, keep a hard link to every original, then rename all; if
    anything fails, put back what was already replaced, remove what was created, unlink the temps."""
    temps: list[tuple[Path, Path]] = []
    backups: dict[Path, Path | None] = {}          # dest -> hard link of its original (None: new file)
    replaced: list[Path] = []
    try:
        for dest, text in changes.items():
            mode = dest.stat().st_mode & 0o7777 if dest.exists() else 0o644
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
            temps.append((Path(temp_name), dest))
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8", errors="surrogateescape"))
            os.chmod(temp_name, mode | 0o200)
        for tmp, dest in temps:
            if os.path.lexists(dest):
                if dest.is_dir() and not dest.is_symlink():
                    raise PatchError(f"{dest}: is a folder, a patch cannot replace it with a file; fix the patch "
                                     "set's `files` (nothing was changed)")
                backup = dest.with_name(f".{dest.name}.{os.getpid()}.orig")
                backup.unlink(missing_ok=True)
                os.link(dest, backup, follow_symlinks=False)
                backups[dest] = backup
            else:
                backups[dest] = None
        for tmp, dest in temps:
            os.replace(tmp, dest)
            replaced.append(dest)
    except BaseException:
        for dest in reversed(replaced):
            with contextlib.suppress(OSError):
                original = backups.pop(dest)
                if original is not None:
                    os.replace(original, dest)
                else:
                    dest.unlink()
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        for link in backups.values():
            if link is not None:
                link.unlink(missing_ok=True)
        raise
    for link in backups.values():
        if link is not None:
            link.unlink(missing_ok=True)


@dataclass(frozen=True)
class ApplyReport:
    results: tuple[EntryResult, ...]
    changed: tuple[tuple[str, str], ...]           # (tree, relpath)
    hashes: Mapping[tuple[str, str], str]          # sha256 of each changed file after patching


def apply_in_place(trees: Mapping[str, Path], sets: Iterable[PatchSet], *, version: str,
                   arch: str | None = None, backend: str | None = None) -> ApplyReport:
    """Stage every entry, raise on the first drift (nothing written), then write atomically."""
    sets = list(sets)
    st, results = evaluate(trees, sets, version=version, arch=arch, backend=backend)
    err = _drift_error(results, sets, version)
    if err:
        raise err
    changes = st.changed()
    _write_all({_tree_path(trees[t], rel, t): text for (t, rel), text in changes.items()})
    return ApplyReport(results=tuple(results), changed=tuple(sorted(changes)),
                       hashes={k: _sha256_text(v) for k, v in changes.items()})


def unified_diff(st: Staging, labels: Mapping[str, str] | None = None) -> str:
    """The staged changes as one unified diff (a/<tree>/<path> b/<tree>/<path>), files sorted."""
    out: list[str] = []
    for (tree, rel), text in sorted(st.changed().items()):
        label = (labels or {}).get(tree, tree)
        before = st.original.get((tree, rel))
        old = before.decode("utf-8", errors="surrogateescape") if before is not None else ""
        out.extend(difflib.unified_diff(old.splitlines(keepends=True), text.splitlines(keepends=True),
                                        fromfile=f"a/{label}/{rel}" if before is not None else "/dev/null",
                                        tofile=f"b/{label}/{rel}"))
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n\\ No newline at end of file\n"
    return "".join(out)


# --- working copies -------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedSources:
    recipe: Recipe
    arch: str
    backend: str
    root: Path
    tensorflow: Path
    dependencies: Mapping[str, Path]
    sets: tuple[tuple[str, str], ...]              # (name, digest) in recipe order
    results: tuple[EntryResult, ...]
    reused: bool                                   # True: stamps matched, nothing was copied or written

    def stamp_summary(self) -> dict:
        """For build-info.json: the sets, their digests and what each entry did."""
        return {"sets": [{"name": n, "sha256": d} for n, d in self.sets],
                "entries": [{"set": r.set_name, "id": r.entry_id, "tree": r.tree, "status": r.status}
                            for r in self.results]}


def _tree_key(tree: str) -> str:
    return TREE_TF if tree == TREE_TF else f"deps-{tree}"


def _tree_dest(root: Path, tree: str) -> Path:
    return root / TREE_TF if tree == TREE_TF else root / "deps" / tree


def _stamp_path(root: Path, tree: str) -> Path:
    return root / ".stamps" / f"{_tree_key(tree)}.json"


def _read_stamp(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _stamp_is_current(stamp: dict | None, key: dict, dest: Path) -> bool:
    if not stamp or stamp.get("key") != key or not dest.is_dir():
        return False
    for rel, digest in stamp.get("files", {}).items():
        if not _within(dest, dest / rel):
            return False
        try:
            if hashlib.sha256((dest / rel).read_bytes()).hexdigest() != digest:
                return False
        except FileNotFoundError:
            return False
    return True


def _rmtree(path: Path) -> None:
    def onerror(func, p, _exc):  # read-only folders copied from the cache
        os.chmod(os.path.dirname(p), 0o700)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, 0o700)
        func(p)
    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=onerror)


def _remove_stale_copies(root: Path) -> None:
    """What a killed prepare_sources left under root (call holding root/.lock): half-made copies
    (.tmp-*), a previous copy parked as .old-* between two renames, and stamp temps."""
    for folder in (root, root / "deps"):
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name.startswith((".tmp-", ".old-")) and path.is_dir() and not path.is_symlink():
                    _rmtree(path)
    stamps = root / ".stamps"
    if stamps.is_dir():
        for path in stamps.glob(".*.tmp"):
            path.unlink(missing_ok=True)


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True)
    for dirpath, _dirs, _files in os.walk(dest):  # the copy is ours to patch, even if the cache is read-only
        mode = os.stat(dirpath).st_mode
        if mode & 0o700 != 0o700:
            os.chmod(dirpath, mode | 0o700)


def _source_id(tree: str, sources) -> str:
    if tree == TREE_TF:
        return getattr(getattr(sources.recipe, "source", None), "sha256", None) or str(sources.tensorflow)
    locked = sources.dependencies[tree]
    return getattr(getattr(locked, "dependency", None), "sha256", None) or str(locked.tree)


def prepare_sources(settings, sources, arch, backend: str = "cmake") -> PreparedSources:
    """Working copies under <work_dir>/src/<recipe.label>-<arch>/ with the recipe's sets applied.

    `sources` is sources.ensure_sources()'s result: .recipe, .tensorflow (cache tree) and
    .dependencies {name: LockedTree(dependency, tree)}. The cache is only read.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    arch_row = resolve_arch(arch)
    arch_name = arch_row.name
    recipe = sources.recipe
    version = recipe.version
    sets = load_recipe_sets(recipe)
    cache_trees: dict[str, Path] = {TREE_TF: Path(sources.tensorflow)}
    for name, locked in sorted(sources.dependencies.items()):
        cache_trees[name] = Path(locked.tree)
    for tree, path in cache_trees.items():
        if not path.is_dir():
            raise PatchError(f"{tree} tree {path} is missing from the cache; run `invoke fetch --version {version}`")

    root = Workspace.of(settings).src(Cell(recipe, arch_row))
    root.mkdir(parents=True, exist_ok=True)
    set_ids = [(ps.name, ps.digest) for ps in sets]
    with FileLock(str(root / ".lock")):
        _remove_stale_copies(root)
        # Evaluate against the cache: cheap (only named files are read) and decides everything.
        st, results = evaluate(cache_trees, sets, version=version, arch=arch_name, backend=backend,
                               excluded=getattr(sources, "excluded", ()))
        err = _drift_error(results, sets, version)
        if err:
            raise err
        changes = st.changed()
        reused = True
        for tree, src in cache_trees.items():
            dest = _tree_dest(root, tree)
            tree_changes = {rel: text for (t, rel), text in changes.items() if t == tree}
            key = {"format": STAMP_FORMAT, "source": _source_id(tree, sources), "version": version,
                   "arch": arch_name, "backend": backend, "sets": [list(s) for s in set_ids]}
            stamp_path = _stamp_path(root, tree)
            if _stamp_is_current(_read_stamp(stamp_path), key, dest):
                continue
            reused = False
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{_tree_key(tree)}-", dir=dest.parent))
            try:
                _rmtree(tmp)
                _copy_tree(src, tmp)
                _write_all({_tree_path(tmp, rel, tree): text for rel, text in tree_changes.items()})
                stamp_path.unlink(missing_ok=True)
                swap_dir(tmp, dest, remove=_rmtree)
            except BaseException:
                _rmtree(tmp)
                raise
            write_json_atomic(stamp_path, {
                "key": key,
                "cache_tree": str(src),
                "files": {rel: _sha256_text(text) for rel, text in sorted(tree_changes.items())},
                "entries": [{"set": r.set_name, "id": r.entry_id, "status": r.status, "found": r.found}
                            for r in results if r.tree == tree],
            })
    deps = {name: _tree_dest(root, name) for name in cache_trees if name != TREE_TF}
    return PreparedSources(recipe=recipe, arch=arch_name, backend=backend, root=root,
                           tensorflow=_tree_dest(root, TREE_TF), dependencies=deps, sets=tuple(set_ids),
                           results=tuple(results), reused=reused)


def plan_diff(sources, arch, backend: str = "cmake") -> str:
    """The unified diff prepare_sources would apply (read from the cache trees; nothing written)."""
    arch_name = resolve_arch(arch).name
    recipe = sources.recipe
    sets = load_recipe_sets(recipe)
    trees = {TREE_TF: Path(sources.tensorflow), **{n: Path(dep.tree) for n, dep in sources.dependencies.items()}}
    st, results = evaluate(trees, sets, version=recipe.version, arch=arch_name, backend=backend)
    err = _drift_error(results, sets, recipe.version)
    if err:
        raise err
    return unified_diff(st, labels={n: f"deps/{n}" for n in trees if n != TREE_TF})


# --- check: every recipe against whatever is in the cache -----------------------------

@dataclass(frozen=True)
class RecipeCheck:
    recipe: Recipe
    fetched: bool
    note: str
    results: tuple[EntryResult, ...]

    @property
    def drifted(self) -> list[EntryResult]:
        return [r for r in self.results if r.status == "drift"]


def cached_trees(cache_dir: Path, recipe) -> tuple[dict[str, Path], str]:
    """Trees of a recipe already unpacked in the cache, and a note on what is missing."""
    trees: dict[str, Path] = {}
    cache = Cache(Path(cache_dir))
    tf = cache.trees / recipe.source.sha256
    if not tf.is_dir():
        return trees, f"archive not fetched (run `invoke fetch --version {recipe.version}`)"
    trees[TREE_TF] = tf
    notes = []
    lock_path = recipe.lock_path
    if not Path(lock_path).is_file():
        return trees, f"not locked (run `invoke lock --version {recipe.version}`): dependency edits not checked"
    for dep in load_lock(lock_path).dependencies:
        d = cache.trees / dep.sha256
        if d.is_dir():
            trees[dep.name] = d
        else:
            notes.append(dep.name)
    return trees, (f"dependencies not fetched: {', '.join(notes)}" if notes else "")


def check_recipe(cache_dir: Path, recipe, sets: list[PatchSet] | None = None) -> RecipeCheck:
    sets = load_recipe_sets(recipe) if sets is None else sets
    trees, note = cached_trees(cache_dir, recipe)
    if TREE_TF not in trees:
        return RecipeCheck(recipe, False, note, ())
    _st, results = evaluate(trees, sets, version=recipe.version)
    return RecipeCheck(recipe, True, note, tuple(results))


def check_recipes(cache_dir: Path, recipes) -> list[RecipeCheck]:
    return [check_recipe(cache_dir, r) for r in recipes]
