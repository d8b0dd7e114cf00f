"""Verified downloads into the content-addressed cache, and the fetch/mirror/recipes tasks.

Where bytes come from, in order, for a file whose sha256 is known:
  1. the cache: `<cache>/sha256/<hex>` (re-hashed when `verify=True`, as `invoke fetch` does);
  2. each mirror (`--mirror`, `TFLITE_FORGE_MIRRORS`): `<mirror>/sha256/<hex>`, http(s) or file://;
  3. each upstream URL, after `--rewrite FROM=TO` (the longest matching FROM wins, like git's
     `url.<base>.insteadOf`).
With `--offline`, http(s) sources are skipped without creating a socket; file:// still works.
Nothing enters the cache unless its sha256 is the expected one; one file lock per sha256 makes a
second process wait, then find the file cached.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from .cache import Cache
from .download import (FetchPolicy, TransferError, copy_atomic, copy_file_url, drop_partial,
                       http_download, make_session)
from .errors import ChecksumError, FetchError, OfflineError, UnpackError
from .lock import require_needed
from .progress import Progress, default_progress
from .settings import check_cache_dir, check_file_mirrors
from .tables import print_table
from .unpack import check_archive

if TYPE_CHECKING:
    from .lock import LockedDependency
    from .recipe import Recipe
    from .settings import Settings

MIRROR_HINT = ("no network? fetch through a mirror: pass --mirror URL (or set TFLITE_FORGE_MIRRORS), "
               "a folder made by `invoke mirror --dest DIR` on a connected machine, served over http(s) or as file:///DIR")


def rewrite_url(url: str, rewrites: Sequence[tuple[str, str]]) -> str:
    """Apply the rewrite whose FROM is the longest prefix of url (git insteadOf semantics)."""
    best = None
    for src, dst in rewrites:
        if url.startswith(src) and (best is None or len(src) > len(best[0])):
            best = (src, dst)
    return url if best is None else best[1] + url[len(best[0]):]


def mirror_url(mirror: str, hex_: str) -> str:
    return f"{mirror.rstrip('/')}/sha256/{hex_}"


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


class Fetcher:
    """Fetches files by sha256 through cache -> mirrors -> rewritten upstream URLs."""

    def __init__(self, cache_dir: Path, *, mirrors: Sequence[str] = (), rewrites: Sequence[tuple[str, str]] = (),
                 offline: bool = False, policy: FetchPolicy | None = None, progress: Progress | None = None):
        check_cache_dir(Path(cache_dir))
        check_file_mirrors(mirrors)
        self.cache = Cache(Path(cache_dir))
        self.mirrors = tuple(mirrors)
        self.rewrites = tuple(rewrites)
        self.offline = offline
        self.policy = policy or FetchPolicy.from_env()
        self.progress = progress or default_progress()
        self._session = None

    @classmethod
    def from_settings(cls, settings: "Settings", **kwargs) -> "Fetcher":
        return cls(settings.cache_dir, mirrors=settings.mirrors, rewrites=settings.rewrites,
                   offline=settings.offline, **kwargs)

    @property
    def session(self):
        if self.offline:  # pragma: no cover - guarded by callers; a bug if reached
            raise AssertionError("no HTTP session in offline mode")
        if self._session is None:
            self._session = make_session(self.policy)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def candidates(self, sha256: str | None, urls: Iterable[str]) -> list[str]:
        out = [mirror_url(m, sha256) for m in self.mirrors] if sha256 else []
        out += [rewrite_url(u, self.rewrites) for u in urls]
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ public

    def fetch(self, sha256: str, urls: Sequence[str], *, name: str, verify: bool = False) -> Path:
        """Return the cache path of the file with this sha256, downloading it if needed."""
        self.cache.ensure_dirs()
        if self._cached(sha256, name, verify):
            return self.cache.blob(sha256)
        waited = []
        with self.cache.locked(sha256, on_wait=lambda: (waited.append(1), self.progress.note(
                f"{name}: another tflite-forge process is downloading it; waiting"))):
            if self.cache.has(sha256) and (not waited or self.cache.verify(sha256)):
                return self.cache.blob(sha256)
            return self._download(sha256, urls, name)

    def fetch_unpinned(self, urls: Sequence[str], *, name: str) -> tuple[str, Path]:
        """Download a file whose sha256 is not known yet (lock generation); return (sha256, path).

        Only upstream URLs (rewritten) can serve it: a mirror is addressed by sha256. No pin vouches
        for these bytes, so before they are cached (and then locked) they are read through as an
        archive with a single top folder; anything else is an UnpackError naming the URL."""
        self.cache.ensure_dirs()
        key = "url-" + hashlib.sha256("\n".join(urls).encode()).hexdigest()
        with self.cache.locked(key):
            errors: list[TransferError] = []
            for url in self.candidates(None, urls):
                if self.offline and _is_http(url):
                    errors.append(TransferError(url, "skipped (--offline)", unreachable=True))
                    continue
                part = self.cache.partial(key)
                try:
                    actual, _ = self._transfer(url, part, name)
                except TransferError as exc:
                    errors.append(exc)
                    continue
                try:
                    check_archive(part, origin=url)
                except UnpackError as exc:
                    drop_partial(part)
                    raise UnpackError(f"{name}: {exc}; nothing was cached") from None
                if not self.cache.has(actual):
                    self.cache.install(part, actual)
                    self.cache.note_origin(actual, url)
                drop_partial(part)
                return actual, self.cache.blob(actual)
        if self.offline:
            raise OfflineError(f"{name}: {urls[0]} has no pinned sha256 yet, so only the network can "
                               f"provide it; run this once without --offline")
        raise self._failure(name, None, errors, self.cache.partial(key))

    # ------------------------------------------------------------------ internals

    def _cached(self, sha256: str, name: str, verify: bool) -> bool:
        if not self.cache.has(sha256):
            return False
        if not verify or self.cache.verify(sha256):
            return True
        self.progress.note(f"{name}: cached file {sha256[:12]} no longer matches its sha256; removed, downloading again")
        return False

    def _transfer(self, url: str, part: Path, name: str) -> tuple[str, int]:
        label = f"{name} from {url}"
        if url.startswith("file://"):
            return copy_file_url(url, part, self.progress, label)
        return http_download(self.session, url, part, self.policy, self.progress, label)

    def _download(self, sha256: str, urls: Sequence[str], name: str) -> Path:
        part = self.cache.partial(sha256)
        errors: list[TransferError] = []
        mismatch: tuple[str, str] | None = None
        for url in self.candidates(sha256, urls):
            if self.offline and _is_http(url):
                continue
            for _ in range(2):  # a resumed download that fails its check is retried once from zero
                resumed = part.exists()
                try:
                    actual, size = self._transfer(url, part, name)
                except TransferError as exc:
                    errors.append(exc)
                    break
                if actual == sha256:
                    self.cache.install(part, sha256)
                    self.cache.note_origin(sha256, url)
                    drop_partial(part)
                    return self.cache.blob(sha256)
                drop_partial(part)
                if not resumed:
                    mismatch = (url, actual)
                    errors.append(TransferError(url, f"sha256 mismatch ({size} bytes, sha256 {actual})"))
                    break
        if mismatch:
            url, actual = mismatch
            raise ChecksumError(
                f"{name}: checksum mismatch for {url}: expected sha256 {sha256}, got {actual}; nothing was "
                f"cached. The server changed the file (GitHub archives can change) or the recipe/lock pin is "
                f"wrong: fetch the pinned bytes from a mirror (--mirror URL) or check the pin")
        if self.offline:
            where = ", ".join(m for m in self.mirrors if not _is_http(m)) or "no file:// mirror given"
            raise OfflineError(
                f"{name} (sha256 {sha256[:12]}...) is not in the cache {self.cache.root} nor in a file:// mirror "
                f"({where}); --offline forbids the network: run `invoke fetch` without --offline, or copy a "
                f"mirror made by `invoke mirror --dest DIR` and pass --mirror file:///DIR")
        raise self._failure(name, sha256, errors, part)

    def _failure(self, name: str, sha256: str | None, errors: list[TransferError], part: Path) -> FetchError:
        if not errors:
            return FetchError(f"{name}: no URL to download it from; add one to the recipe or pass --mirror URL")
        last = errors[-1]
        tried = len(errors)
        summary = f"{last.url}: {last.reason}" + (f" (and {tried - 1} other source(s) failed)" if tried > 1 else "")
        if all(e.unreachable for e in errors):
            return FetchError(f"cannot download {name}: {summary}; {MIRROR_HINT}")
        again = "rerun to resume" if part.exists() else "rerun to try again"
        return FetchError(f"cannot download {name}: {summary}; nothing was cached, {again}, "
                          f"or use --mirror URL / --rewrite FROM=TO to fetch it elsewhere")


# ---------------------------------------------------------------------- sources for the build

@dataclass(frozen=True)
class LockedTree:
    dependency: "LockedDependency"
    tree: Path


@dataclass(frozen=True)
class Sources:
    recipe: "Recipe"
    tensorflow: Path
    dependencies: dict[str, LockedTree] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()   # locked, but the build's options do not bring them in (ensure_sources(options=))


def fetch_recipe_archive(fetcher: Fetcher, recipe: "Recipe", *, verify: bool = False) -> Path:
    src = recipe.source
    return fetcher.fetch(src.sha256, src.urls, name=f"{src.name} {src.version}", verify=verify)


def lock_or_generate(fetcher: Fetcher, recipe: "Recipe"):
    """The recipe's lock; a recipe that has none yet gets one (what `invoke lock` writes), so the
    main job works in one command on a connected machine. A lock that does not match its recipe
    is never regenerated silently (read_recipe_lock says to rerun `invoke lock`)."""
    from .lock import generate_lock, read_recipe_lock, write_lock
    if recipe.lock_path.is_file() or fetcher.offline:
        return read_recipe_lock(recipe)
    fetcher.progress.note(f"{recipe.label}: no dependency lock yet; locking now (as `invoke lock` does)")
    lock = generate_lock(fetcher, recipe)
    write_lock(lock)
    fetcher.progress.note(f"{recipe.label}: {len(lock.dependencies)} dependencies pinned in {lock.path}; "
                          f"commit it beside the recipe")
    return read_recipe_lock(recipe)


def ensure_sources(settings: "Settings", recipe: "Recipe", *, fetcher: Fetcher | None = None,
                   options: Mapping[str, object] | None = None,
                   processors: Iterable[str | None] | None = None) -> Sources:
    """Fetch (if needed) and unpack the recipe's archive and the locked dependencies a build needs.

    options: the build's CMake options (recipe over arch defaults); only the locked trees those
    options bring in are fetched (lock.needed), and a tree they need that the lock skipped is a
    LockError. processors: CMAKE_SYSTEM_PROCESSOR values the build configures for (target, plus the
    host's for a cross build's host tools). options=None: every locked dependency."""
    from .unpack import unpack_archive

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

def run_fetch(settings: "Settings", *, fetcher: Fetcher | None = None) -> list[Path]:
    """`invoke fetch`: download and verify the archive and every locked dependency."""
    from .recipe import select_recipes

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


def _recipe_flag(recipe: "Recipe") -> str:
    from .recipe import RECIPES_DIR
    if recipe.path.parent == RECIPES_DIR.resolve():
        return f"--version {recipe.version}"
    return f"--recipe {recipe.path}"


def run_mirror_export(settings: "Settings", dest: str | Path) -> int:
    """`invoke mirror --dest DIR`: copy (hardlink where possible) every cached file to DIR/sha256/<hex>."""
    cache = Cache(settings.cache_dir)
    if not cache.entries():
        raise FetchError(f"the cache {cache.root} is empty, so there is nothing to export; run `invoke fetch` "
                         f"(and `invoke lock`) for the versions the site needs, then `invoke mirror --dest DIR`")
    out = Path(dest).expanduser() / "sha256"
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for blob in cache.entries():
        target = out / blob.name
        if target.is_file() and target.stat().st_size == blob.stat().st_size:
            continue
        copy_atomic(blob, target)
        count += 1
    total = len(cache.entries())
    print(f"mirror: {out.parent}: {total} file(s) ({count} new); use it with "
          f"--mirror {out.parent.resolve().as_uri()} or serve the folder over http(s)")
    return count


def run_recipes(settings: "Settings", *, stream=None) -> list[tuple[str, str, str, str]]:
    """`invoke recipes`: version, short sha256, fetched? locked? for every bundled recipe."""
    from .lock import lock_status
    from .recipe import available_recipes

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
