"""One transfer: bytes from one URL into one `.part` file, hashed while they are written.

The caller (fetch.py) decides what the bytes must hash to and whether they enter the cache;
this module only moves bytes, retries and resumes:

- requests Session + urllib3 `Retry`: connect errors, errors before the response, and the
  statuses in RETRY_STATUSES are retried with exponential backoff; `Retry-After` is honoured
  (capped by `FetchPolicy.max_retry_after`). Only GET/HEAD are retried. A 404 is final.
- `(connect, read)` timeouts on every request; `Session.max_redirects` bounds redirects.
- A body cut short (reset, stall past the read timeout, fewer bytes than Content-Length) is
  resumed with `Range: bytes=N-` + `If-Range: <ETag or Last-Modified>` — from the same run, or
  from a later run because the `.part` file and a `.part.json` note of its origin are kept in
  `<cache>/partial/`. Without a strong validator the download restarts from zero instead, and a
  server that ignores Range (answers 200) simply overwrites the partial bytes.
- Bodies are read raw (`decode_content=False`, `Accept-Encoding: identity`): an archive is
  hashed exactly as served, like curl does.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import queue
import re
import shutil
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Mapping

import requests
import urllib3.exceptions as u3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import __version__
from .cache import CHUNK
from .errors import DiskSpaceError, Interrupted
from .fetch_policy import FetchPolicy
from .progress import Progress

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
class TransferError(Exception):
    """One URL failed. `unreachable` means no connection could be made at all (DNS, refused,
    connect timeout): the case where a mirror is the answer."""

    def __init__(self, url: str, reason: str, *, unreachable: bool = False, status: int | None = None):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.unreachable = unreachable
        self.status = status


def make_session(policy: FetchPolicy):
    class CappedRetry(Retry):
        def get_retry_after(self, response):
            value = super().get_retry_after(response)
            return None if value is None else min(value, policy.max_retry_after)

    retry = CappedRetry(
        total=policy.retries, connect=policy.retries, read=policy.retries, status=policy.retries,
        other=0, redirect=False,  # redirects: requests follows them, bounded by max_redirects
        allowed_methods=frozenset({"GET", "HEAD"}), status_forcelist=RETRY_STATUSES,
        backoff_factor=policy.backoff_factor, backoff_max=policy.backoff_max,
        respect_retry_after_header=True, raise_on_status=False, raise_on_redirect=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.max_redirects = policy.max_redirects
    session.headers["User-Agent"] = f"tflite-forge/{__version__}"
    return session


# ---------------------------------------------------------------- partial bookkeeping

def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_meta(part: Path) -> dict:
    try:
        return json.loads(_meta_path(part).read_text())
    except (OSError, ValueError):
        return {}


def _write_meta(part: Path, meta: dict) -> None:
    path = _meta_path(part)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, sort_keys=True))
    os.replace(tmp, path)


def drop_partial(part: Path) -> None:
    for p in (part, _meta_path(part)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _validator(headers: Mapping[str, str]) -> str | None:
    """A validator usable in If-Range: a strong ETag, else Last-Modified (RFC 9110 13.1.5)."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def _hash_prefix(part: Path) -> "hashlib._Hash":
    digest = hashlib.sha256()
    with open(part, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest


# ---------------------------------------------------------------- transfers

def file_url_path(url: str) -> Path:
    parsed = urllib.parse.urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise TransferError(url, "file:// URLs must name a local path (file:///abs/path)")
    return Path(urllib.request.url2pathname(parsed.path))


def copy_file_url(url: str, part: Path, progress: Progress, label: str) -> tuple[str, int]:
    src = file_url_path(url)
    try:
        size = src.stat().st_size
        fin = open(src, "rb")
    except FileNotFoundError:
        raise TransferError(url, "no such file", status=404) from None
    except OSError as exc:
        raise TransferError(url, exc.strerror or str(exc)) from None
    drop_partial(part)
    digest = hashlib.sha256()
    progress.start(label, size)
    ok = False
    try:
        with fin, open(part, "wb") as fout:
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                fout.write(chunk)
                progress.advance(len(chunk))
            fout.flush()
            os.fsync(fout.fileno())
        ok = True
    except KeyboardInterrupt:
        drop_partial(part)  # a local copy restarts from zero: keeping its first half helps no one
        raise Interrupted(f"{label}: nothing was kept") from None
    finally:
        progress.finish(ok)
    return digest.hexdigest(), part.stat().st_size


def _describe(exc: BaseException, policy: FetchPolicy) -> tuple[str, bool]:
    """(reason, unreachable) for an exception raised while connecting or reading."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return f"more than {policy.max_redirects} redirects (a redirect loop?)", False
    if isinstance(exc, (requests.exceptions.ConnectTimeout, u3.ConnectTimeoutError)):
        return f"no connection within {policy.connect_timeout:g}s (connect timeout)", True
    if isinstance(exc, (requests.exceptions.ReadTimeout, u3.ReadTimeoutError)) or "Read timed out" in text:
        return f"no data for {policy.read_timeout:g}s (read timeout)", False
    if "NameResolutionError" in text or "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "cannot resolve the host name (no DNS / no network)", True
    if "Connection refused" in text:
        return "connection refused", True
    if "Network is unreachable" in text or "No route to host" in text:
        return "network is unreachable", True
    if "IncompleteRead" in text or "incomplete" in text.lower():
        m = re.search(r"(\d+) bytes read, (\d+) more expected", text)
        detail = f" ({m.group(1)} bytes read, {m.group(2)} more expected)" if m else ""
        return f"connection closed before the end of the body{detail}", False
    if "reset" in text.lower() or isinstance(exc, ConnectionResetError):
        return "connection reset by the server", False
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error: {text}", False
    return text.splitlines()[0] if text else type(exc).__name__, False


def _load_sync_file_range():
    try:
        libc = ctypes.CDLL(None, use_errno=True)   # the running process's own libc: no ldconfig subprocess
        fn = libc.sync_file_range
        fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
        return fn
    except (OSError, AttributeError):
        return None


_SYNC_FILE_RANGE = _load_sync_file_range() if hasattr(os, "fdatasync") else None


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing dirty pages now (Linux sync_file_range WRITE, no wait),
    so the final fsync finds little left to do; a no-op where that call does not exist."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, 0, 0, 2)  # SYNC_FILE_RANGE_WRITE over the whole file


class _Sink:
    """Write chunks on a worker thread while the caller reads (and hashes) the next one from the
    socket (recv, hashlib and file writes all release the GIL), starting writeback every SYNC_EVERY
    bytes so the final fsync has little left to flush. Every chunk handed to put() is on disk
    (fsynced) when the context exits, even on an error or Ctrl-C, so a later run can resume from it."""

    SYNC_EVERY = 64 * CHUNK

    def __init__(self, path: Path, mode: str) -> None:
        self.fh = open(path, mode)
        self.queue: queue.Queue = queue.Queue(maxsize=16)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="tflite-forge-sink", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        unsynced = 0
        while (chunk := self.queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                self.fh.write(chunk)
                unsynced += len(chunk)
                if unsynced >= self.SYNC_EVERY:
                    self.fh.flush()
                    _start_writeback(self.fh.fileno())
                    unsynced = 0
            except BaseException as exc:  # reported to the caller by put()/__exit__
                self.error = exc

    def put(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(chunk)

    def __enter__(self) -> "_Sink":
        return self

    def __exit__(self, *exc_info) -> None:
        self.queue.put(None)
        self.thread.join()
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
        finally:
            self.fh.close()
        if self.error is not None and exc_info[0] is None:
            raise self.error


def human_size(n: int) -> str:
    if n < 1 << 10:
        return f"{n} bytes"
    if n < 1 << 20:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


def _body_reader(raw):
    """One call per chunk the socket has ready (urllib3's read1: no re-buffering, no copy, and a
    reset loses nothing already returned); stream() on an urllib3 without read1 (< 2.3)."""
    if hasattr(raw, "read1"):
        return iter(lambda: raw.read1(CHUNK, decode_content=False), b"")
    return raw.stream(CHUNK, decode_content=False)  # pragma: no cover - urllib3 < 2.3


def _size_of(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


def _kept_or_dropped(part: Path, resumable: bool) -> str:
    """What a cut-short download leaves behind, truthfully: bytes a later run can resume from
    (a server validator to send in If-Range), or nothing (without one a resume would be unsafe)."""
    kept = _size_of(part)
    if resumable and kept:
        return f"the partial file is kept ({human_size(kept)} in {part}); the next run resumes from there"
    drop_partial(part)
    if kept:
        return (f"the {human_size(kept)} received were not kept: the server sends no strong ETag or "
                f"Last-Modified, so a later download cannot safely resume")
    return "nothing was received"


def http_download(session, url: str, part: Path, policy: FetchPolicy, progress: Progress,
                  label: str) -> tuple[str, int]:
    """Download url into part (resuming what is there when safe); return (sha256, size).

    Every byte read from the socket is written to part before an error propagates (A3): a
    reset or stall after N bytes leaves N bytes to resume from, in this run or the next."""
    failures = 0
    while True:
        meta = _read_meta(part)
        offset = _size_of(part)
        headers = {"Accept-Encoding": "identity"}
        resumable = offset > 0 and meta.get("url") == url and meta.get("validator")
        if resumable:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = meta["validator"]
        elif offset or meta:
            drop_partial(part)
            offset = 0
        try:
            resp = session.get(url, headers=headers, stream=True, allow_redirects=True,
                               timeout=(policy.connect_timeout, policy.read_timeout))
        except (requests.exceptions.RequestException, u3.HTTPError, OSError) as exc:
            reason, unreachable = _describe(exc, policy)
            raise TransferError(url, reason, unreachable=unreachable) from None
        with resp:
            if resp.status_code == 416 and resumable:
                drop_partial(part)  # our partial is longer than the file: start over
                failures += 1
                if failures > policy.resume_attempts:
                    raise TransferError(url, "server refuses every byte range (HTTP 416)", status=416)
                continue
            if resp.status_code == 206 and resumable:
                m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:
                    drop_partial(part)
                    failures += 1
                    if failures > policy.resume_attempts:
                        raise TransferError(url, "server answered a range request with the wrong range")
                    continue
                total = None if m.group(3) == "*" else int(m.group(3))
                digest, mode = _hash_prefix(part), "ab"
            elif resp.status_code == 200:
                offset, digest, mode = 0, hashlib.sha256(), "wb"
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                validator = _validator(resp.headers)
                _write_meta(part, {"url": url, "validator": validator})
                resumable = bool(validator)
            else:
                reason = f"HTTP {resp.status_code} {resp.reason or ''}".rstrip()
                if resp.status_code in RETRY_STATUSES and policy.retries:
                    reason += f" (still, after {policy.retries} retries)"
                raise TransferError(url, reason, status=resp.status_code)

            if total is not None:
                try:
                    ensure_free_space(part.parent, total - offset, what=f"{label} ({total} bytes)")
                except DiskSpaceError:
                    if mode == "wb":
                        drop_partial(part)
                    raise
            progress.start(label, total, resumed_at=offset)
            ok = False
            try:
                with _Sink(part, mode) as sink:
                    for chunk in _body_reader(resp.raw):
                        digest.update(chunk)
                        sink.put(chunk)
                        progress.advance(len(chunk))
                ok = True
            except KeyboardInterrupt:
                raise Interrupted(f"{label}: {_kept_or_dropped(part, resumable)}") from None
            except (requests.exceptions.RequestException, u3.HTTPError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    drop_partial(part)  # a partial that filled the disk helps no one: free the space
                    raise DiskSpaceError(f"{label}: no space left in {part.parent} while downloading {url}; "
                                         f"nothing was cached: free space there or point --cache-dir / "
                                         f"TFLITE_FORGE_CACHE at a larger disk") from None
                reason, _ = _describe(exc, policy)
                failures += 1
                if failures > policy.resume_attempts:
                    raise TransferError(url, f"{reason}; gave up after {failures} tries "
                                             f"({_kept_or_dropped(part, resumable)})") from None
                kept = _size_of(part)
                progress.note(f"{label}: {reason}; " + (
                    f"{human_size(kept)} kept, resuming" if resumable and kept else "starting again"))
                continue
            finally:
                progress.finish(ok)
            return digest.hexdigest(), part.stat().st_size


def ensure_free_space(folder: Path, needed: int, *, what: str,
                      fix: str = "point --cache-dir / TFLITE_FORGE_CACHE at a larger disk") -> None:
    """DiskSpaceError, before writing, when `folder`'s file system cannot hold `needed` more bytes."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise DiskSpaceError(f"{what} needs {needed / 2**20:.1f} MiB but only {free / 2**20:.1f} MiB are free in "
                             f"{folder}; nothing was written: free space there or {fix}")


def copy_atomic(src: Path, dest: Path, *, link: bool = True) -> None:
    """Place src at dest atomically: hardlink when allowed and possible, else copy; then rename."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        if link:
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
        else:
            shutil.copyfile(src, tmp)
        if not link or os.stat(tmp).st_nlink == 1:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
