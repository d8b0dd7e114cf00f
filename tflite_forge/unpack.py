"""Safe unpacking of verified archives into `<cache>/trees/<archive-sha256>/`.

Two layers of defence for tar archives:
  1. our own checks over every member BEFORE anything is written: no absolute path, no `..`,
     every member under `strip_prefix/`, no device nodes or FIFOs, and every path and link
     resolved the way the kernel will resolve it once the tree exists (`_Tree`): a symlink or
     hard link, however chained (a link to a link, through a link extracted earlier), must land
     inside the tree (the stripped root, not merely the cache), and so must every member written;
  2. tarfile's `data` filter (PEP 706) on extraction, which re-checks paths and links against the
     destination and clears setuid/setgid/sticky and group/other write bits; we clear setuid and
     setgid again ourselves so the guarantee does not depend on the Python version.
Zip archives (GitHub's `archive/<ref>.zip`, used by XNNPACK's Download*.cmake) get the same checks
and are written by our code member by member (zipfile's own extract is not used), each file
opened with O_EXCL | O_NOFOLLOW below a parent whose real path is checked to be in the tree.

An archive that cannot be read (truncated, corrupt, not an archive) is one UnpackError naming its
URL and cache path; a cache entry found unreadable is removed from the cache (its sha256 matched,
so the pin itself names broken bytes). `check_archive` reads an archive through (every member's
data) before a download with no pin is cached; `remove_unreadable` does it for the whole cache
(`invoke clean --downloads`).

The tree is written into a temporary folder beside the destination and renamed into place, so
`trees/<hex>` either holds a complete tree or does not exist. An existing tree is reused.
"""

from __future__ import annotations

import contextlib
import errno
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterator

from .cache import HEX_RE, Cache, unique_suffix
from .errors import UnpackError

SPECIAL = "device node or FIFO"
MAX_LINK_HOPS = 40   # as the kernel's symlink limit: deeper chains are refused as loops
# What tarfile, zipfile and the decompressors raise on a truncated or corrupt archive. An OSError
# with an errno comes from the file system (writing the tree) and is not the archive's fault.
READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError,
               NotImplementedError, RuntimeError, UnicodeDecodeError, OSError)


class _Archive:
    """An archive as messages name it: the URL it came from (when known) and its path."""

    def __init__(self, path: Path, origin: str | None = None, cache: Cache | None = None) -> None:
        self.path = Path(path)
        cache = cache or Cache.of_blob(self.path)
        # Only a file that IS the cache's entry for its name may be removed (never a mirror's file).
        self.cache = cache if cache is not None and HEX_RE.match(self.path.name) and \
            os.path.realpath(cache.blob(self.path.name)) == os.path.realpath(self.path) else None
        self.origin = origin or (self.cache.origin(self.path.name) if self.cache else None)

    def __str__(self) -> str:
        return f"{self.origin} ({self.path})" if self.origin else str(self.path)

    def refuse(self, what: str) -> UnpackError:
        return UnpackError(f"archive {self}: {what}; refusing this archive, nothing was unpacked. It is hostile "
                           f"or broken: check its URL and sha256 pin (recipe or lock) and report it to its upstream")

    def unreadable(self, exc: BaseException) -> UnpackError:
        """The error for bytes that cannot be read; a cache entry is removed first (nothing unreadable stays)."""
        detail = str(exc).strip() or type(exc).__name__
        if self.cache is not None:
            self.cache.discard(self.path.name)
            return UnpackError(
                f"archive {self}: not a readable tar or zip archive (truncated or corrupt: {detail}); removed it "
                f"from the cache. Its sha256 matched the pin, so the pin names broken bytes: fix the URL and "
                f"sha256 in the recipe or rerun `invoke lock`, then fetch again")
        return UnpackError(f"archive {self}: not a readable tar or zip archive (truncated or corrupt: {detail}); "
                           f"download it again, or check that the URL serves a .tar.gz/.tar.xz/.zip")


@contextlib.contextmanager
def _reading(archive: _Archive) -> Iterator[None]:
    """Turn an archive-read failure into one UnpackError; file-system errors pass through."""
    try:
        yield
    except UnpackError:
        raise
    except READ_ERRORS as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise UnpackError(f"archive {archive}: cannot write the unpacked tree ({exc.strerror or exc}: "
                              f"{exc.filename}); check the cache folder's permissions and free space") from None
        raise archive.unreadable(exc) from None


def _norm(archive: _Archive, member: str, name: str, what: str = "") -> str:
    """Validated member path (posix, no trailing slash). `what` says which part of `member` it is."""
    label = f"member {member!r}" + (f" ({what} {name!r})" if what else "")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("\\"):
        raise archive.refuse(f"{label} has an absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise archive.refuse(f"{label} contains '..'")
    return "/".join(parts)


def _strip(archive: _Archive, member: str, name: str, prefix: str, what: str = "") -> str:
    """Member path relative to the tree root; '' for the prefix folder itself."""
    if not prefix or name == prefix:
        return "" if prefix else name
    if not name.startswith(prefix + "/"):
        label = f"member {member!r}" + (f" ({what} {name!r})" if what else "")
        raise UnpackError(f"archive {archive}: {label} is not under strip_prefix {prefix!r}; fix strip_prefix "
                          f"in the recipe or lock (the archive's top folder), or check the archive")
    return name[len(prefix) + 1:]


class _Tree:
    """The tree the archive builds, as far as links go: every path is resolved component by
    component, following the symlinks added so far (their targets relative to their folder,
    `..` applied after a link is followed, as the kernel does), so a chain such as
    `sub/b -> ..`, `sub/c -> b/../..` is seen to leave the tree although each text looks harmless."""

    def __init__(self, archive: _Archive) -> None:
        self.archive = archive
        self.links: dict[str, tuple[str, str]] = {}   # tree path -> (link text, member name)
        self.kinds: dict[str, str] = {}               # tree path -> "dir" | "file" | "link"
        self._folders: dict[str, str | None] = {}     # resolved parent folders; cleared when a link is added

    def resolve(self, path: str, member: str) -> str | None:
        """The tree path `path` ends at (every link on the way followed), or None when it leaves the tree."""
        todo = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                if not done:
                    return None
                done.pop()
                continue
            here = "/".join([*done, part])
            link = self.links.get(here)
            if link is not None:
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise self.archive.refuse(f"member {member!r}: more than {MAX_LINK_HOPS} links in a chain (a loop)")
                if link[0].startswith("/"):
                    return None
                todo = [p for p in link[0].split("/") if p not in ("", ".")] + todo
                continue
            done.append(part)
        return "/".join(done)

    def add(self, member: str, rel: str, kind: str, target: str | None = None) -> None:
        """Record one member (kind: dir, file, symlink, hardlink), refusing it if it writes or links
        outside the tree. For a hard link, target is its tree path; for a symlink, its text."""
        if not rel:
            if kind != "dir":
                raise self.archive.refuse(f"member {member!r} is the top folder itself but not a folder")
            return
        folder = posixpath.dirname(rel)
        if folder not in self._folders:   # tens of thousands of members share a few thousand folders
            self._folders[folder] = self.resolve(folder, member)
        parent = self._folders[folder]
        if parent is None:
            raise self.archive.refuse(f"member {member!r} would be written through a link that leads outside the tree")
        where = posixpath.join(parent, posixpath.basename(rel))   # where it lands, its last part not followed
        earlier = self.kinds.get(where)
        if earlier is not None and (earlier == "link" or kind == "symlink"):
            raise self.archive.refuse(f"member {member!r} lands where another member already is, one of them a "
                                      f"symbolic link, so what that path becomes depends on extraction order")
        if kind == "symlink":
            assert target is not None
            if not target or target.startswith("/"):
                raise self.archive.refuse(f"member {member!r} links to absolute path {target!r}")
            self.links[where] = (target, member)
            self.kinds[where] = "link"
            self._folders.clear()
            self._check_symlink(where)
            return
        if kind == "hardlink":
            assert target is not None
            resolved = self.resolve(target, member)
            if resolved is None:
                raise self.archive.refuse(f"member {member!r} is a hard link whose target {target!r} "
                                          f"resolves outside the tree (links outside the tree)")
            if self.kinds.get(resolved) != "file":
                raise self.archive.refuse(f"member {member!r} is a hard link to {target!r}, which is not a file "
                                          f"earlier in the archive")
            kind = "file"
        self.kinds[where] = kind

    def _check_symlink(self, rel: str) -> None:
        target, member = self.links[rel]
        if self.resolve(posixpath.join(posixpath.dirname(rel), target), member) is None:  # rel: where it is
            raise self.archive.refuse(f"member {member!r} is a symbolic link to {target!r}, which resolves "
                                      f"outside the tree (links outside the tree)")

    def check_all_links(self) -> None:
        """Once every link is known: a later link can change where an earlier one ends (`a -> b/..`,
        then `b -> .`), so each is resolved again against the final set."""
        for rel in self.links:
            self._check_symlink(rel)


def top_folder(archive: Path, *, origin: str | None = None) -> str | None:
    """The single top-level folder of an archive, or None when there is not exactly one.
    An unreadable archive is an UnpackError (and leaves the cache if it was a cache entry)."""
    arc = _Archive(archive, origin)
    with _reading(arc):
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
        else:
            with _open_tar(arc) as tf:
                names = tf.getnames()
    return _single_top(arc, names)


def _single_top(archive: _Archive, names: list[str]) -> str | None:
    normed = [_norm(archive, n, n) for n in names]
    tops = {n.split("/", 1)[0] for n in normed if n}
    if len(tops) != 1:
        return None
    top = tops.pop()
    return top if any("/" in n for n in normed) or len(names) > 1 else None


def check_archive(archive: Path, *, origin: str | None = None) -> str:
    """Read an archive through in one pass, every member's data included (truncation or a bad CRC
    anywhere is found), and check its members as unpacking would; return its single top folder.
    For a download with no pin yet, before it is cached: UnpackError naming `origin` when it is
    not a readable source archive."""
    arc = _Archive(archive, origin)
    with _reading(arc):
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise zipfile.BadZipFile(f"bad CRC-32 for member {bad!r}")
                top = _single_top(arc, zf.namelist())
                _zip_plan(arc, zf, top or "")
        else:
            with tarfile.open(archive, "r|*") as tf:
                for member in tf:
                    if member.isfile():
                        fh = tf.extractfile(member)
                        assert fh is not None
                        while fh.read(1 << 20):
                            pass
                members = tf.getmembers()
            top = _single_top(arc, [m.name for m in members])
            _tar_plan(arc, members, top or "")
    if top is None:
        raise UnpackError(f"archive {arc}: has no single top folder (so no strip_prefix); tflite-forge expects a "
                          f"source archive such as GitHub's archive/<ref>.tar.gz; check the URL")
    return top


def _open_tar(archive: _Archive) -> tarfile.TarFile:
    return tarfile.open(archive.path, "r:*")


# ---------------------------------------------------------------- tar

def _tar_plan(archive: _Archive, members: list[tarfile.TarInfo], prefix: str) -> list[tuple[tarfile.TarInfo, str]]:
    plan = []
    tree = _Tree(archive)
    for m in members:
        name = _norm(archive, m.name, m.name)
        rel = _strip(archive, m.name, name, prefix)
        if m.ischr() or m.isblk() or m.isfifo():
            raise archive.refuse(f"member {m.name!r} is a {SPECIAL}")
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise archive.refuse(f"member {m.name!r} has unsupported type {m.type!r}")
        if m.issym():
            tree.add(m.name, rel, "symlink", m.linkname)
        elif m.islnk():
            target = _strip(archive, m.name, _norm(archive, m.name, m.linkname, "hard link target"), prefix,
                            "hard link target")
            tree.add(m.name, rel, "hardlink", target)
        else:
            tree.add(m.name, rel, "dir" if m.isdir() else "file")
        if rel:
            plan.append((m, rel))
    tree.check_all_links()
    return plan


def _extract_tar(archive: _Archive, prefix: str, dest: Path) -> None:
    if not hasattr(tarfile, "data_filter"):  # pragma: no cover - Python < 3.10.12
        raise UnpackError("this Python lacks tarfile's data filter (PEP 706); use Python 3.10.12+ or 3.11.4+")
    with _open_tar(archive) as tf:
        plan = {id(member): rel for member, rel in _tar_plan(archive, tf.getmembers(), prefix)}

        def strip_then_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
            changes: dict = {"name": plan[id(member)]}
            if member.mode is not None:
                changes["mode"] = member.mode & ~(stat.S_ISUID | stat.S_ISGID)
            if member.islnk():
                changes["linkname"] = _strip(archive, member.name, _norm(archive, member.name, member.linkname),
                                             prefix)
            return tarfile.data_filter(member.replace(**changes, deep=False), path)

        members = [m for m in tf.getmembers() if id(m) in plan]
        try:
            tf.extractall(dest, members=members, filter=strip_then_filter)
        except tarfile.FilterError as exc:
            member = getattr(exc, "tarinfo", None)
            what = member.name if member is not None else "?"
            raise archive.refuse(f"member {what!r} refused by the tar data filter ({exc})") from None


# ---------------------------------------------------------------- zip

def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


def _zip_plan(archive: _Archive, zf: zipfile.ZipFile, prefix: str) -> list[tuple[zipfile.ZipInfo, str, int, str | None]]:
    plan = []
    tree = _Tree(archive)
    for info in zf.infolist():
        name = _norm(archive, info.filename, info.filename)
        rel = _strip(archive, info.filename, name, prefix)
        mode = _zip_mode(info)
        kind = stat.S_IFMT(mode)
        if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
            raise archive.refuse(f"member {info.filename!r} is a {SPECIAL}")
        target = None
        if kind == stat.S_IFLNK:
            target = zf.read(info).decode("utf-8", "surrogateescape")
            tree.add(info.filename, rel, "symlink", target)
        else:
            tree.add(info.filename, rel, "dir" if info.is_dir() else "file")
        if rel:
            plan.append((info, rel, mode, target))
    tree.check_all_links()
    return plan


def _inside(root: Path, path: Path) -> bool:
    real = Path(os.path.realpath(path))
    return real == root or root in real.parents


def _extract_zip(archive: _Archive, prefix: str, dest: Path) -> None:
    with zipfile.ZipFile(archive.path) as zf:
        plan = _zip_plan(archive, zf, prefix)
        root = Path(os.path.realpath(dest))
        for info, rel, mode, target in plan:
            path = dest / rel
            if not _inside(root, path.parent):
                raise archive.refuse(f"member {info.filename!r} would be written through a link outside the tree")
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if not _inside(root, path.parent):   # mkdir followed a link made meanwhile: never write there
                raise archive.refuse(f"member {info.filename!r} would be written through a link outside the tree")
            if target is not None:
                os.symlink(target, path)
                continue
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with zf.open(info) as src, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            perms = mode & 0o777 & ~0o022 if mode else 0o644
            os.chmod(path, perms | 0o600)


# ---------------------------------------------------------------- entry point

def unpack_archive(archive: Path, cache: Cache, sha256: str, strip_prefix: str, *, origin: str | None = None) -> Path:
    """Unpack a verified archive to cache.trees/<sha256> (skipped when that tree exists)."""
    dest = cache.tree(sha256)
    if dest.is_dir():
        return dest
    cache.ensure_dirs()
    arc = _Archive(archive, origin or cache.origin(sha256), cache)
    with cache.locked(f"tree-{sha256}"):
        if dest.is_dir():
            return dest
        remove_stale_temps(cache, sha256)   # a killed unpack of this archive (we hold its lock)
        tmp = cache.trees / f".tmp-{sha256[:16]}-{unique_suffix()}"
        tmp.mkdir()
        try:
            with _reading(arc):
                if zipfile.is_zipfile(archive):
                    _extract_zip(arc, strip_prefix, tmp)
                else:
                    _extract_tar(arc, strip_prefix, tmp)
            if not any(tmp.iterdir()):
                raise UnpackError(f"archive {arc}: nothing under strip_prefix {strip_prefix!r}; "
                                  f"fix strip_prefix (the archive's top folder)")
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def remove_stale_temps(cache: Cache, sha256: str | None = None) -> None:
    """Remove temp folders left by a killed unpack (they are never used as trees).

    With sha256, only that archive's (call it holding the archive's tree lock: another process may
    be unpacking a different archive right now); without, every one (only when nothing else runs)."""
    if cache.trees.is_dir():
        for p in cache.trees.glob(f".tmp-{sha256[:16]}-*" if sha256 else ".tmp-*"):
            with contextlib.suppress(OSError):
                shutil.rmtree(p)


def remove_unreadable(cache: Cache, say: Callable[[str], None] = print) -> list[str]:
    """`invoke clean --downloads`: read every cached file through as an archive; remove those that
    are not readable archives (truncated, corrupt, an HTML error page). Returns the removed sha256s."""
    removed = []
    entries = cache.entries()
    for blob in entries:
        with cache.locked(blob.name):
            if not blob.is_file():
                continue
            try:
                check_archive(blob)
            except UnpackError as exc:
                if blob.exists():   # readable but not a source archive (no single top folder): keep it
                    continue
                removed.append(blob.name)
                say(f"clean: removed {blob.name[:12]}...: {exc}")
    say(f"clean: {len(entries)} cached download(s) read through, {len(removed)} unreadable removed "
        f"from {cache.blobs}")
    return removed


def clean_downloads(cache_dir: Path) -> list[str]:
    """`invoke clean --downloads`: remove_unreadable over the cache at cache_dir."""
    cache = Cache(Path(cache_dir))
    if not cache.blobs.is_dir():
        print(f"clean: no downloads cached in {cache.root}; nothing to check")
        return []
    return remove_unreadable(cache)
