"""Dependency locks: every tree TFLite's CMake would download at configure time, pinned by sha256.

`invoke lock` fetches and unpacks the recipe's TensorFlow archive, then reads, in this order:
  1. `tensorflow/lite/tools/cmake/modules/*.cmake`  (OverridableFetchContent_Declare: FetchContent)
  2. `tensorflow/lite/cmake/Download*.cmake`         (ExternalProject_Add: pthreadpool)
  3. in every tree found so far, breadth first: `cmake/Download*.cmake` (XNNPACK's FP16, FXdiv, ...)
Each download becomes an archive URL (GIT_REPOSITORY + GIT_TAG on GitHub -> archive/<tag>.tar.gz,
on GitLab -> /-/archive/<tag>/<repo>-<tag>.tar.gz; URL as given), is fetched through the same
fetcher (cache, mirrors, rewrites), checked against an upstream URL_HASH when there is one, unpacked,
and recorded with the archive's real top folder as strip_prefix.

The first declaration of a name (or of a CMake variable) wins: the build passes that tree, so CMake
never runs a later declaration of the same thing (XNNPACK's own cpuinfo and pthreadpool downloads
are skipped because TensorFlow's cpuinfo module and DownloadPThreadPool.cmake come first). Test-only
downloads (TEST_ONLY) are skipped: TFLite turns its dependencies' tests and benchmarks off.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from ._toml import check_keys, expect, load_toml, require
from .cmake_scan import Declaration, declarations
from .errors import ChecksumError, LockError
from .fsutil import write_atomic
from .recipe import SHA256_RE, select_recipes

if TYPE_CHECKING:
    from .fetch import Fetcher
    from .recipe import Recipe
    from .settings import Settings

TEST_ONLY = frozenset({"googletest", "googlebenchmark", "benchmark", "gtest"})
# Modules TFLite's CMakeLists only reaches for features tflite-forge never builds: the GPU delegate's
# headers, and fp16_headers (GPU and Android NNAPI only; with XNNPACK on it returns before declaring
# anything). Some trees compute their pins at configure time (fp16_headers downloads XNNPACK's
# master DownloadFP16.cmake and greps it), which no reader can pin: a module from this set whose
# download cannot be read is skipped with a note instead of failing the whole lock.
NOT_BUILT = frozenset({"fp16_headers", "opencl_headers", "vulkan_headers", "opengl_headers", "egl_headers"})
LOCK_KEYS = ("archive_sha256", "generated_by")
DEP_KEYS = ("name", "url", "sha256", "strip_prefix", "cmake_variable", "declared_in", "declared_by")
CMAKE_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")


@dataclass(frozen=True, kw_only=True)
class LockedDependency:
    name: str
    url: str
    sha256: str
    strip_prefix: str
    cmake_variable: str
    declared_in: str
    declared_by: str


@dataclass(frozen=True, kw_only=True)
class Lock:
    path: Path
    archive_sha256: str
    generated_by: str
    dependencies: tuple[LockedDependency, ...]

    def get(self, name: str) -> LockedDependency:
        for dep in self.dependencies:
            if dep.name == name:
                return dep
        raise KeyError(name)


# ---------------------------------------------------------------------- reading and writing

def load_lock(path: str | Path) -> Lock:
    """Read and strictly validate a lock file; every problem is a one-line LockError."""
    path = Path(path)
    data = load_toml(path, error=LockError)
    check_keys(path, "top level", data, ("lock", "dependency"), error=LockError)
    head = require(path, "", data, "lock", dict, "a [lock] table", error=LockError)
    check_keys(path, "[lock]", head, LOCK_KEYS, error=LockError)
    archive = require(path, "[lock]", head, "archive_sha256", str, "64 lower-case hex characters", error=LockError)
    if not SHA256_RE.match(archive):
        raise LockError(f"{path}: [lock].archive_sha256: expected 64 lower-case hex characters, got {archive!r}")
    generated_by = require(path, "[lock]", head, "generated_by", str, "a string", error=LockError)
    raw = expect(path, "[[dependency]]", data.get("dependency", []), list, "an array of tables", error=LockError)
    deps = []
    names: set[str] = set()
    variables: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"[[dependency]] #{i + 1}"
        expect(path, where, entry, dict, "a table", error=LockError)
        check_keys(path, where, entry, DEP_KEYS, error=LockError)
        values = {k: require(path, where, entry, k, str, "a string", error=LockError) for k in DEP_KEYS}
        if not NAME_RE.match(values["name"]):
            raise LockError(f"{path}: {where}.name: expected a lower-case name, got {values['name']!r}")
        if not re.match(r"^(https?|file)://", values["url"]):
            raise LockError(f"{path}: {where}.url: expected an http(s):// or file:// URL, got {values['url']!r}")
        if not SHA256_RE.match(values["sha256"]):
            raise LockError(f"{path}: {where}.sha256: expected 64 lower-case hex characters, got {values['sha256']!r}")
        sp = values["strip_prefix"]
        if not sp or sp.startswith("/") or ".." in sp.split("/"):
            raise LockError(f"{path}: {where}.strip_prefix: expected the archive's top folder, got {sp!r}")
        if not CMAKE_VAR_RE.match(values["cmake_variable"]):
            raise LockError(f"{path}: {where}.cmake_variable: not a CMake variable name: {values['cmake_variable']!r}")
        if values["name"] in names:
            raise LockError(f"{path}: {where}.name: {values['name']!r} is locked twice; keep one entry")
        if values["cmake_variable"] in variables:
            raise LockError(f"{path}: {where}.cmake_variable: {values['cmake_variable']!r} is set twice; keep one entry")
        names.add(values["name"])
        variables.add(values["cmake_variable"])
        deps.append(LockedDependency(**values))
    return Lock(path=path, archive_sha256=archive, generated_by=generated_by, dependencies=tuple(deps))


def dump_lock(lock: Lock) -> str:
    import tomli_w
    body = tomli_w.dumps({
        "lock": {"archive_sha256": lock.archive_sha256, "generated_by": lock.generated_by},
        "dependency": [{k: getattr(d, k) for k in DEP_KEYS} for d in lock.dependencies],
    })
    return ("# Written by `invoke lock`: every tree TFLite's CMake downloads at configure time, pinned.\n"
            "# Regenerate rather than edit; `invoke fetch` downloads all of them for an offline build.\n\n" + body)


def write_lock(lock: Lock) -> Path:
    """Write atomically: a temp file beside the lock, fsync, rename."""
    return write_atomic(lock.path, dump_lock(lock))


def _lock_flag(recipe: "Recipe") -> str:
    from .fetch import _recipe_flag
    return _recipe_flag(recipe)


def read_recipe_lock(recipe: "Recipe") -> Lock:
    """The recipe's lock, checked to belong to the recipe's archive."""
    if not recipe.lock_path.is_file():
        raise LockError(f"{recipe.label} has no dependency lock ({recipe.lock_path}); run "
                        f"`invoke lock {_lock_flag(recipe)}` first")
    lock = load_lock(recipe.lock_path)
    if lock.archive_sha256 != recipe.source.sha256:
        raise LockError(f"{recipe.lock_path} was generated from archive {lock.archive_sha256[:12]}..., but the recipe "
                        f"pins {recipe.source.sha256[:12]}...; rerun `invoke lock {_lock_flag(recipe)}`")
    return lock


def lock_status(recipe: "Recipe") -> tuple[Lock | None, str]:
    try:
        return read_recipe_lock(recipe), ""
    except LockError as exc:
        if not recipe.lock_path.is_file():
            return None, f"no lock ({recipe.lock_path.name})"
        return None, str(exc)


# ---------------------------------------------------------------------- declarations -> archives

def github_strip_prefix(repo: str, ref: str) -> str:
    """GitHub's top folder for archive/<ref>: <repo>-<ref>, a tag's leading 'v' before a digit
    dropped, '/' in branch names turned into '-'. Only a prediction: locks record the real one."""
    ref = ref[1:] if re.match(r"^v\d", ref) else ref
    return f"{repo}-{ref.replace('/', '-')}"


def archive_for(decl: Declaration) -> tuple[str, str | None]:
    """(archive URL, predicted strip_prefix or None) for one declaration."""
    where = f"{decl.file}:{decl.line}"
    if decl.urls:
        return decl.urls[0], None
    repo, tag = decl.git_repository or "", decl.git_tag
    if not tag:
        raise LockError(f"{where}: {decl.name} has GIT_REPOSITORY but no GIT_TAG; cannot pin it")
    m = re.match(r"^(?:https?://|git@)(github\.com|gitlab\.com)[/:](.+?)(?:\.git)?/?$", repo)
    if not m:
        raise LockError(f"{where}: {decl.name}: GIT_REPOSITORY {repo!r} is neither on GitHub nor GitLab, so it has "
                        f"no archive URL; pin it in a hand-edited lock")
    host, path = m.groups()
    name = path.rsplit("/", 1)[-1]
    if host == "github.com":
        return f"https://github.com/{path}/archive/{tag}.tar.gz", github_strip_prefix(name, tag)
    return f"https://gitlab.com/{path}/-/archive/{tag}/{name}-{tag}.tar.gz", f"{name}-{tag}"


def cmake_variable(decl: Declaration) -> str:
    """FETCHCONTENT_SOURCE_DIR_<NAME> for FetchContent; <NAME>_SOURCE_DIR for the ExternalProject
    downloads TFLite and XNNPACK guard with `if(NOT DEFINED <NAME>_SOURCE_DIR)` (facts section 3)."""
    if decl.kind == "fetchcontent":
        return f"FETCHCONTENT_SOURCE_DIR_{decl.name.upper()}"
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', decl.name).upper()}_SOURCE_DIR"


def _download_order(path: Path) -> tuple[str, bool, str]:
    # Download<X>.cmake before its variants Download<X>-<variant>.cmake (XNNPACK's
    # DownloadKleidiAI-QMX.cmake declares the same name as DownloadKleidiAI.cmake): the plain
    # file is the default download, so it must be the first declaration of the name.
    return path.stem.split("-", 1)[0], "-" in path.stem, path.name


def declaration_files(root: Path, declared_by: str) -> list[Path]:
    if declared_by == "tensorflow":
        modules = sorted((root / "tensorflow/lite/tools/cmake/modules").glob("*.cmake"))
        downloads = sorted((root / "tensorflow/lite/cmake").glob("Download*.cmake"), key=_download_order)
        return modules + downloads
    return sorted((root / "cmake").glob("Download*.cmake"), key=_download_order)


def scan_tree(root: Path, declared_by: str, note=lambda message: None) -> list[tuple[str, Declaration]]:
    """Every download declared in one unpacked tree, without fetching anything: (relative file,
    declaration) in the order the lock considers them. TensorFlow's modules see TF_SOURCE_DIR as
    tensorflow/lite/CMakeLists.txt sets it, so pins read from Bazel files resolve inside the tree."""
    preset = {"TENSORFLOW_SOURCE_DIR": str(root), "TF_SOURCE_DIR": str(root / "tensorflow")} \
        if declared_by == "tensorflow" else {}
    found = []
    for path in declaration_files(root, declared_by):
        rel = path.relative_to(root).as_posix()
        try:
            decls = declarations(path, rel, root=root, preset=preset)
        except LockError as exc:
            if declared_by == "tensorflow" and path.stem in NOT_BUILT:
                note(f"lock: {declared_by} {rel}: skipped, tflite-forge never builds the feature that needs it "
                     f"and its download cannot be read ({exc})")
                continue
            raise
        found.extend((rel, decl) for decl in decls)
    return found


# ---------------------------------------------------------------------- generation

def _check_upstream_hash(decl: Declaration, url: str, path: Path, actual_sha256: str) -> None:
    algo, expected = decl.url_hash  # type: ignore[misc]
    if algo == "SHA256":
        got = actual_sha256
    else:
        try:
            digest = hashlib.new(algo.lower())
        except ValueError:
            raise LockError(f"{decl.file}:{decl.line}: URL_HASH algorithm {algo} is unknown") from None
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        got = digest.hexdigest()
    if got != expected:
        raise LockError(f"{decl.name}: {url} does not match the URL_HASH in {decl.file}:{decl.line}: "
                        f"expected {algo} {expected}, got {got}; the upstream pin and the bytes disagree")


def generate_lock(fetcher: "Fetcher", recipe: "Recipe") -> Lock:
    from .fetch import fetch_recipe_archive
    from .unpack import top_folder, unpack_archive

    src = recipe.source
    archive = fetch_recipe_archive(fetcher, recipe)
    queue: list[tuple[str, Path]] = [("tensorflow", unpack_archive(archive, fetcher.cache, src.sha256, src.strip_prefix))]
    locked: list[LockedDependency] = []
    by_name: dict[str, str] = {}
    by_var: dict[str, str] = {}
    note = fetcher.progress.note
    while queue:
        declared_by, root = queue.pop(0)
        for rel, decl in scan_tree(root, declared_by, note):
            name = decl.name.lower()
            var = cmake_variable(decl)
            if name in TEST_ONLY:
                note(f"lock: {declared_by} {rel}: {name} is test-only; skipped")
                continue
            first = by_name.get(name) or by_var.get(var)
            if first:
                note(f"lock: {declared_by} {rel}: {name} already comes from {first}; the build passes that tree")
                continue
            url, predicted = archive_for(decl)
            pinned = decl.url_hash[1] if decl.url_hash and decl.url_hash[0] == "SHA256" else None
            if pinned:
                try:
                    blob = fetcher.fetch(pinned, [url], name=name)
                except ChecksumError as exc:
                    raise LockError(f"{name} declared in {declared_by}:{rel}:{decl.line}: {exc}") from None
                sha = pinned
            else:
                sha, blob = fetcher.fetch_unpinned([url], name=name)
            if decl.url_hash:
                _check_upstream_hash(decl, url, blob, sha)
            top = top_folder(blob)
            if top is None:
                raise LockError(f"{name}: {url} has no single top folder, so no strip_prefix; "
                                f"tflite-forge expects a source archive with one")
            if predicted and predicted != top:
                note(f"lock: {name}: archive top folder is {top!r}, not the predicted {predicted!r}; using the archive's")
            tree = unpack_archive(blob, fetcher.cache, sha, top)
            locked.append(LockedDependency(name=name, url=url, sha256=sha, strip_prefix=top,
                                           cmake_variable=var, declared_in=rel, declared_by=declared_by))
            by_name[name] = by_var[var] = f"{declared_by}:{rel}"
            queue.append((name, tree))
    return Lock(path=recipe.lock_path, archive_sha256=src.sha256, generated_by=f"tflite-forge {__version__}",
                dependencies=tuple(locked))


def run_lock(settings: "Settings", *, fetcher: "Fetcher | None" = None) -> list[Lock]:
    """`invoke lock`: generate and write <recipe>.lock for the selected recipe(s)."""
    from .fetch import Fetcher

    fetcher = fetcher or Fetcher.from_settings(settings)
    written = []
    try:
        for recipe in select_recipes(version=settings.version, recipe=settings.recipe):
            lock = generate_lock(fetcher, recipe)
            write_lock(lock)
            fetcher.progress.note(f"lock: {recipe.label}: {len(lock.dependencies)} dependencies pinned in {lock.path}")
            written.append(lock)
    finally:
        fetcher.close()
    return written
