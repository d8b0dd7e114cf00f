"""Safe unpacking of verified archives into `<cache>/trees/<archive-sha256>/`.

Two layers of defence for tar archives:
  1. our own checks over every member BEFORE anything is written: no absolute path, no `..`,
     every member under `strip_prefix/`, no symlink or hardlink whose target leaves the tree
     (the stripped root, not merely the cache), no device nodes or FIFOs;
  2. tarfile's `data` filter (PEP 706) on extraction, which re-checks paths and links against the
     destination and clears setuid/setgid/sticky and group/other write bits; we clear setuid and
     setgid again ourselves so the guarantee does not depend on the Python version.
Zip archives (GitHub's `archive/<ref>.zip`, used by XNNPACK's Download*.cmake) get the same checks
and are written by our code member by member (zipfile's own extract is not used).

The tree is written into a temporary folder beside the destination and renamed into place, so
`trees/<hex>` either holds a complete tree or does not exist. An existing tree is reused.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

from .cache import Cache, unique_suffix
from .errors import UnpackError

SPECIAL = "device node or FIFO"


def _norm(archive: Path, name: str) -> str:
    """Validated member path (posix, no trailing slash)."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("\\"):
        raise UnpackError(f"{archive.name}: member {name!r} has an absolute path; refusing this archive")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"{archive.name}: member {name!r} contains '..'; refusing this archive")
    return "/".join(parts)


def _strip(archive: Path, name: str, prefix: str) -> str:
    """Member path relative to the tree root; '' for the prefix folder itself."""
    if not prefix:
        return name
    if name == prefix:
        return ""
    if not name.startswith(prefix + "/"):
        raise UnpackError(f"{archive.name}: member {name!r} is not under strip_prefix {prefix!r}; "
                          f"fix strip_prefix in the recipe or lock (the archive's top folder)")
    return name[len(prefix) + 1:]


def _check_link(archive: Path, member: str, rel: str, target: str, *, hard: bool) -> None:
    """A link must resolve inside the tree. Hardlink targets are tree paths, symlinks are relative."""
    if target.startswith("/") or not target:
        raise UnpackError(f"{archive.name}: member {member!r} links to absolute path {target!r}; refusing this archive")
    base = "" if hard else posixpath.dirname(rel)
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
        raise UnpackError(f"{archive.name}: member {member!r} links outside the tree ({target!r}); refusing this archive")


def top_folder(archive: Path) -> str | None:
    """The single top-level folder of an archive, or None when there is not exactly one."""
    names = _tar_names(archive) if not zipfile.is_zipfile(archive) else _zip_names(archive)
    tops = {n.split("/", 1)[0] for n in (_norm(archive, n) for n in names) if n}
    if len(tops) != 1:
        return None
    top = tops.pop()
    return top if any("/" in _norm(archive, n) for n in names) or len(names) > 1 else None


def _tar_names(archive: Path) -> list[str]:
    with _open_tar(archive) as tf:
        return tf.getnames()


def _zip_names(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        return zf.namelist()


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise UnpackError(f"{archive.name}: not a readable tar or zip archive ({exc}); "
                          f"remove it from the cache and fetch again") from None


# ---------------------------------------------------------------- tar

def _tar_plan(archive: Path, tf: tarfile.TarFile, prefix: str) -> list[tuple[tarfile.TarInfo, str]]:
    plan = []
    for m in tf.getmembers():
        name = _norm(archive, m.name)
        rel = _strip(archive, name, prefix)
        if m.ischr() or m.isblk() or m.isfifo():
            raise UnpackError(f"{archive.name}: member {m.name!r} is a {SPECIAL}; refusing this archive")
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise UnpackError(f"{archive.name}: member {m.name!r} has unsupported type {m.type!r}; refusing this archive")
        if m.issym():
            _check_link(archive, m.name, rel, m.linkname, hard=False)
        if m.islnk():
            target = _strip(archive, _norm(archive, m.linkname), prefix)
            _check_link(archive, m.name, rel, target, hard=True)
        if rel:
            plan.append((m, rel))
    return plan


def _extract_tar(archive: Path, prefix: str, dest: Path) -> None:
    if not hasattr(tarfile, "data_filter"):  # pragma: no cover - Python < 3.10.12
        raise UnpackError("this Python lacks tarfile's data filter (PEP 706); use Python 3.10.12+ or 3.11.4+")
    with _open_tar(archive) as tf:
        plan = {id(member): rel for member, rel in _tar_plan(archive, tf, prefix)}

        def strip_then_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
            changes: dict = {"name": plan[id(member)]}
            if member.mode is not None:
                changes["mode"] = member.mode & ~(stat.S_ISUID | stat.S_ISGID)
            if member.islnk():
                changes["linkname"] = _strip(archive, _norm(archive, member.linkname), prefix)
            return tarfile.data_filter(member.replace(**changes, deep=False), path)

        members = [m for m in tf.getmembers() if id(m) in plan]
        try:
            tf.extractall(dest, members=members, filter=strip_then_filter)
        except tarfile.FilterError as exc:
            member = getattr(exc, "tarinfo", None)
            what = member.name if member is not None else "?"
            raise UnpackError(f"{archive.name}: member {what!r} refused by the tar data filter ({exc}); "
                              f"refusing this archive") from None


# ---------------------------------------------------------------- zip

def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


def _extract_zip(archive: Path, prefix: str, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        plan = []
        for info in zf.infolist():
            name = _norm(archive, info.filename)
            rel = _strip(archive, name, prefix)
            mode = _zip_mode(info)
            kind = stat.S_IFMT(mode)
            if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                raise UnpackError(f"{archive.name}: member {info.filename!r} is a {SPECIAL}; refusing this archive")
            target = None
            if kind == stat.S_IFLNK:
                target = zf.read(info).decode("utf-8", "surrogateescape")
                _check_link(archive, info.filename, rel, target, hard=False)
            if rel:
                plan.append((info, rel, mode, target))
        root = dest.resolve()
        for info, rel, mode, target in plan:
            path = dest / rel
            parent = path.parent.resolve()
            if parent != root and root not in parent.parents:
                raise UnpackError(f"{archive.name}: member {info.filename!r} would be written through a link "
                                  f"outside the tree; refusing this archive")
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
            elif target is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(path, "xb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                perms = mode & 0o777 & ~0o022 if mode else 0o644
                os.chmod(path, perms | 0o600)


# ---------------------------------------------------------------- entry point

def unpack_archive(archive: Path, cache: Cache, sha256: str, strip_prefix: str) -> Path:
    """Unpack a verified archive to cache.trees/<sha256> (skipped when that tree exists)."""
    dest = cache.tree(sha256)
    if dest.is_dir():
        return dest
    cache.ensure_dirs()
    with cache.locked(f"tree-{sha256}"):
        if dest.is_dir():
            return dest
        remove_stale_temps(cache, sha256)   # a killed unpack of this archive (we hold its lock)
        tmp = cache.trees / f".tmp-{sha256[:16]}-{unique_suffix()}"
        tmp.mkdir()
        try:
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, strip_prefix, tmp)
            else:
                _extract_tar(archive, strip_prefix, tmp)
            if not any(tmp.iterdir()):
                raise UnpackError(f"{archive.name}: nothing under strip_prefix {strip_prefix!r}; "
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
