"""A build's sources: the recipe's TensorFlow tree and the locked dependency trees it needs, in the cache.

The one module that uses both fetch (verified downloads) and lock (the lock file, and locking a
recipe from its trees): a recipe without a lock is locked here first, then what the build's
options need is fetched and unpacked. Also the `fetch` and `recipes` tasks, which need both too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, TextIO

from .cache import Cache
from .fetch import Fetcher, fetch_recipe_archive
from .lockfile import Lock, LockedDependency, lock_status, read_recipe_lock, require_needed, write_lock
from .lock import generate_lock
from .recipe import Recipe, available_recipes, select_recipes
from .settings import Settings
from .tables import print_table
from .unpack import unpack_archive


@dataclass(frozen=True)
class LockedTree:
    dependency: LockedDependency
    tree: Path


@dataclass(frozen=True)
class Sources:
    recipe: Recipe
    tensorflow: Path
    dependencies: dict[str, LockedTree] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()   # locked, but the build's options do not bring them in (ensure_sources(options=))


def lock_or_generate(fetcher: Fetcher, recipe: Recipe) -> Lock:
    """The recipe's lock; a recipe that has none yet gets one (what `invoke lock` writes), so the
    main job works in one command on a connected machine. A lock that does not match its recipe
    is never regenerated silently (read_recipe_lock says to rerun `invoke lock`)."""
    if recipe.lock_path.is_file() or fetcher.offline:
        return read_recipe_lock(recipe)
    fetcher.progress.note(f"{recipe.label}: no dependency lock yet; locking now (as `invoke lock` does)")
    lock = generate_lock(fetcher, recipe)
    write_lock(lock)
    fetcher.progress.note(f"{recipe.label}: {len(lock.dependencies)} dependencies pinned in {lock.path}; "
                          f"commit it beside the recipe")
    return read_recipe_lock(recipe)


def ensure_sources(settings: Settings, recipe: Recipe, *, fetcher: Fetcher | None = None,
                   options: Mapping[str, object] | None = None,
                   processors: Iterable[str | None] | None = None) -> Sources:
    """Fetch (if needed) and unpack the recipe's archive and the locked dependencies a build needs.

    options: the build's CMake options (recipe over arch defaults); only the locked trees those
    options bring in are fetched (lockfile.needed), and a tree they need that the lock skipped is a
    LockError. processors: CMAKE_SYSTEM_PROCESSOR values the build configures for (target, plus the
    host's for a cross build's host tools). options=None: every locked dependency."""
    fetcher = fetcher or Fetcher.from_settings(settings)
    try:
        lock = lock_or_generate(fetcher, recipe)
        wanted = lock.dependencies if options is None else require_needed(lock, options, processors=processors)
        src = recipe.source
        tf_tree = fetcher.cache.tree(src.sha256)
        if not tf_tree.is_dir():
            archive = fetch_recipe_archive(fetcher, recipe)
            tf_tree = unpack_archive(archive, fetcher.cache, src.sha256, src.strip_prefix)
        deps: dict[str, LockedTree] = {}
        for dep in wanted:
            tree = fetcher.cache.tree(dep.sha256)
            if not tree.is_dir():
                archive = fetcher.fetch(dep.sha256, [dep.url], name=dep.name)
                tree = unpack_archive(archive, fetcher.cache, dep.sha256, dep.strip_prefix)
            deps[dep.name] = LockedTree(dependency=dep, tree=tree)
    finally:
        fetcher.close()
    excluded = tuple(d.name for d in lock.dependencies if d.name not in deps)
    return Sources(recipe=recipe, tensorflow=tf_tree, dependencies=deps, excluded=excluded)


# ---------------------------------------------------------------------- tasks

def run_fetch(settings: Settings, *, fetcher: Fetcher | None = None) -> list[Path]:
    """`invoke fetch`: download and verify the archive and every locked dependency."""
    fetcher = fetcher or Fetcher.from_settings(settings)
    fetched: list[Path] = []
    try:
        for recipe in select_recipes(version=settings.version, recipe=settings.recipe):
            fetched.append(fetch_recipe_archive(fetcher, recipe, verify=True))
            lock = lock_or_generate(fetcher, recipe)
            for dep in lock.dependencies:
                fetched.append(fetcher.fetch(dep.sha256, [dep.url], name=dep.name, verify=True))
            fetcher.progress.note(f"{recipe.label}: archive and {len(lock.dependencies)} locked "
                                  f"dependencies verified in {fetcher.cache.blobs}")
    finally:
        fetcher.close()
    return fetched


def run_recipes(settings: Settings, *, stream: TextIO | None = None) -> list[tuple[str, str, str, str]]:
    """`invoke recipes`: version, short sha256, fetched? locked? for every bundled recipe."""
    cache = Cache(settings.cache_dir)
    rows: list[tuple[str, str, str, str]] = []
    for recipe in available_recipes():
        fetched = "yes" if cache.has(recipe.source.sha256) else "no"
        lock, problem = lock_status(recipe)
        if lock is None:
            locked = "no" if problem.startswith("no lock") else "invalid"
        else:
            have = sum(cache.has(d.sha256) for d in lock.dependencies)
            locked = f"yes ({have}/{len(lock.dependencies)} deps fetched)"
        rows.append((recipe.version, recipe.source.sha256[:12], fetched, locked))
    print_table(stream, f"recipes (cache: {cache.root})", ("version", "sha256", "fetched", "locked"), rows)
    return rows
