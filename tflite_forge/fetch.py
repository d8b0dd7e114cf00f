"""Verified downloads into the content-addressed cache, and the mirror task.

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
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from .cache import Cache
from .download import (FetchPolicy, TransferError, copy_atomic, copy_file_url, drop_partial,
                       http_download, make_session)
from .errors import ChecksumError, FetchError, OfflineError, UnpackError
from .progress import Progress, default_progress
from .settings import check_cache_dir, check_file_mirrors
from .unpack import check_archive

if TYPE_CHECKING:
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
        kwargs.setdefault("policy", settings.fetch_policy)
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
        waited: list[int] = []

        def on_wait() -> None:
            waited.append(1)
            self.progress.note(f"{name}: another tflite-forge process is downloading it; waiting")

        with self.cache.locked(sha256, on_wait=on_wait):
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
        raise self._failure(name, errors, self.cache.partial(key))

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
        raise self._failure(name, errors, part)

    def _failure(self, name: str, errors: list[TransferError], part: Path) -> FetchError:
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


def fetch_recipe_archive(fetcher: Fetcher, recipe: "Recipe", *, verify: bool = False) -> Path:
    """The recipe's TensorFlow archive, verified, in the cache."""
    src = recipe.source
    return fetcher.fetch(src.sha256, src.urls, name=f"{src.name} {src.version}", verify=verify)


# ---------------------------------------------------------------------- tasks

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
