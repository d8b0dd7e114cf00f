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
downloads of dependency trees (the recipe's [policy].test_only) are skipped: TFLite turns its
dependencies' tests off.

Which options bring each download in is read too (cmake_scan.reach): a walk from the recipe's
cmake_source_dir through find_package/include/add_subdirectory/configure_file keeps the if()
conditions around every declaration, and the lock records it as `when` (CMake if() text over the
build's options: "TRUE", "TFLITE_KERNEL_TEST", "TFLITE_ENABLE_GPU", ...). A tree a dependency
declares inherits its declarer's `when`. `invoke lock` pins only what some configuration of the
recipe needs (its options over every arch's defaults and CMAKE_SYSTEM_PROCESSOR) and records the
rest as [[skipped]] without downloading it; `invoke lock --all` pins everything. `needed()` is the
one rule fetch, the build's overrides, the licenses and the SBOM take their dependencies from.

A declaration's LICENSE_FILE is recorded with the sha256 of that file in the unpacked tree
(`license_sha256`), and [lock].license_sha256 is the TensorFlow tree's own LICENSE, so the
package step can tell that the license it ships is the one that was locked. Locks written before
these keys existed still read; they carry no license hashes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable


from . import __version__
from .arches import all_arches, default_cmake_options
from .cmake_scan import Declaration, condition_text, declarations, reach
from .errors import ChecksumError, LockError
from .fetch import Fetcher, fetch_recipe_archive
from .licenses import license_sha256
from .lockfile import (ALWAYS, TENSORFLOW_LICENSE, Lock, LockedDependency, SkippedDependency, either,
                       needed_by_recipe, write_lock)
from .recipe import DEFAULT_POLICY, Recipe, select_recipes
from .settings import Settings
from .unpack import top_folder, unpack_archive

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


def _silent(_message: str) -> None:
    pass


def scan_tree(root: Path, declared_by: str, note: Callable[[str], None] = _silent, *,
              not_built: Iterable[str] = DEFAULT_POLICY.not_built) -> list[tuple[str, Declaration]]:
    """Every download declared in one unpacked tree, without fetching anything: (relative file,
    declaration) in the order the lock considers them. TensorFlow's modules see TF_SOURCE_DIR as
    tensorflow/lite/CMakeLists.txt sets it, so pins read from Bazel files resolve inside the tree.
    not_built: TensorFlow modules (file stems) whose unreadable download is skipped with a note."""
    not_built = frozenset(not_built)
    preset = {"TENSORFLOW_SOURCE_DIR": str(root), "TF_SOURCE_DIR": str(root / "tensorflow")} \
        if declared_by == "tensorflow" else {}
    found: list[tuple[str, Declaration]] = []
    for path in declaration_files(root, declared_by):
        rel = path.relative_to(root).as_posix()
        try:
            decls = declarations(path, rel, root=root, preset=preset)
        except LockError as exc:
            if declared_by == "tensorflow" and path.stem in not_built:
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


def tensorflow_conditions(root: Path, recipe: Recipe) -> tuple[dict[tuple[str, int], str], dict[str, str]]:
    """{(file, line): when} for every download declaration the recipe's CMake project reaches, and
    the defaults of the options those conditions name."""
    preset = {"TENSORFLOW_SOURCE_DIR": str(root), "TF_SOURCE_DIR": str(root / "tensorflow"),
              "TFLITE_SOURCE_DIR": str(root / "tensorflow/lite")}
    symbols = {k for k, _ in recipe.build.cmake_options}
    for arch in all_arches():
        symbols.update(default_cmake_options(arch, recipe.version))
    found = reach(root, f"{recipe.build.cmake_source_dir}/CMakeLists.txt", preset=preset, symbols=sorted(symbols))
    conditions = {key: condition_text(node) for key, node in found.conditions.items()}
    named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", " ".join(conditions.values())))
    return conditions, {k: v for k, v in found.defaults.items() if k in named}


def generate_lock(fetcher: Fetcher, recipe: Recipe, *, everything: bool = False) -> Lock:
    """Pin what the recipe's configurations download (everything=True: every declared download)."""
    src = recipe.source
    test_only = recipe.policy.test_only
    archive = fetch_recipe_archive(fetcher, recipe)
    tf_root = unpack_archive(archive, fetcher.cache, src.sha256, src.strip_prefix)
    conditions, defaults = tensorflow_conditions(tf_root, recipe)
    queue: list[tuple[str, Path, str]] = [("tensorflow", tf_root, ALWAYS)]
    locked: list[LockedDependency] = []
    skipped: list[SkippedDependency] = []
    by_name: dict[str, str] = {}
    by_var: dict[str, str] = {}
    note = fetcher.progress.note
    entry = f"{recipe.build.cmake_source_dir}/CMakeLists.txt"
    while queue:
        declared_by, root, inherited = queue.pop(0)
        for rel, decl in scan_tree(root, declared_by, note, not_built=recipe.policy.not_built):
            name = decl.name.lower()
            var = cmake_variable(decl)
            reached = declared_by != "tensorflow" or (rel, decl.line) in conditions
            if declared_by == "tensorflow":
                # Unreached test libraries: only TFLite's kernel tests would use them.
                when = conditions.get((rel, decl.line), "TFLITE_KERNEL_TEST" if name in test_only else ALWAYS)
                if not reached and conditions and name not in test_only:
                    note(f"lock: {rel}: {name} is not reached from {entry}; pinned as always needed")
            else:
                when = inherited
            # A dependency tree's own tests are off inside TFLite; TensorFlow's test modules count as
            # test-only only when the walk did not say which option reaches them.
            if name in test_only and (declared_by != "tensorflow" or not (reached or everything)):
                note(f"lock: {declared_by} {rel}: {name} is test-only; skipped")
                continue
            first = by_name.get(name) or by_var.get(var)
            if first:
                # The build passes the first tree; whoever else declares it needs it too.
                for i, dep in enumerate(locked):
                    if dep.name == name or dep.cmake_variable == var:
                        locked[i] = replace(dep, when=either(dep.when, when))
                note(f"lock: {declared_by} {rel}: {name} already comes from {first}; the build passes that tree")
                continue
            if when == "FALSE" or not (everything or needed_by_recipe(when, recipe, defaults.items())):
                try:
                    url = archive_for(decl)[0]
                except LockError:
                    url = decl.git_repository or ""
                if all(d.name != name for d in skipped):
                    skipped.append(SkippedDependency(name=name, url=url, when=when, declared_in=rel,
                                                     declared_by=declared_by))
                note(f"lock: {declared_by} {rel}: {name} only when {when}, which no build of {recipe.label} sets; "
                     f"skipped (`invoke lock --all` pins it)")
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
            skipped = [d for d in skipped if d.name != name]
            license_file = decl.license_file or ""
            license_hash = license_sha256(tree, license_file)
            if license_file and not license_hash:
                note(f"lock: {name}: its LICENSE_FILE {license_file!r} ({rel}:{decl.line}) is not a file in its tree; "
                     f"no license_sha256 recorded")
            locked.append(LockedDependency(name=name, url=url, sha256=sha, strip_prefix=top,
                                           cmake_variable=var, declared_in=rel, declared_by=declared_by,
                                           when=when, license_file=license_file, license_sha256=license_hash))
            by_name[name] = by_var[var] = f"{declared_by}:{rel}"
            queue.append((name, tree, when))
    whens = [d.when for d in locked] + [d.when for d in skipped]
    named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", " ".join(whens)))
    return Lock(path=recipe.lock_path, archive_sha256=src.sha256, generated_by=f"tflite-forge {__version__}",
                dependencies=tuple(locked), scope="all" if everything else "recipe",
                option_defaults=tuple(sorted((k, v) for k, v in defaults.items() if k in named)),
                skipped=tuple(skipped), license_sha256=license_sha256(tf_root, TENSORFLOW_LICENSE))


def run_lock(settings: Settings, *, fetcher: Fetcher | None = None, everything: bool = False) -> list[Lock]:
    """`invoke lock` (`--all`: everything=True): generate and write <recipe>.lock for the selected recipe(s)."""
    fetcher = fetcher or Fetcher.from_settings(settings)
    written = []
    try:
        for recipe in select_recipes(version=settings.version, recipe=settings.recipe):
            lock = generate_lock(fetcher, recipe, everything=everything)
            write_lock(lock)
            extra = f", {len(lock.skipped)} skipped (only other options reach them)" if lock.skipped else ""
            fetcher.progress.note(f"lock: {recipe.label}: {len(lock.dependencies)} dependencies pinned{extra} in {lock.path}")
            written.append(lock)
    finally:
        fetcher.close()
    return written
