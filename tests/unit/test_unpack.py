"""Safe unpack: hostile archives are refused with a message naming archive and member, and
nothing is written outside the destination (nor is a half-made tree left behind)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from tflite_forge.cache import Cache
from tflite_forge.errors import UnpackError
from tflite_forge.unpack import top_folder, unpack_archive

HEX = "ab" * 32


def _info(name: str, **kw) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def regular(name: str, data: bytes = b"data\n", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    return _info(name, mode=mode), data


def folder(name: str) -> tuple[tarfile.TarInfo, None]:
    return _info(name, type=tarfile.DIRTYPE, mode=0o755), None


def good_members() -> list:
    return [folder("proj-1.0"), folder("proj-1.0/src"), regular("proj-1.0/LICENSE"),
            regular("proj-1.0/src/a.c", b"int a;\n"), regular("proj-1.0/run.sh", b"#!/bin/sh\n", 0o755),
            (_info("proj-1.0/src/link.c", type=tarfile.SYMTYPE, linkname="a.c"), None),
            (_info("proj-1.0/hard.c", type=tarfile.LNKTYPE, linkname="proj-1.0/src/a.c"), None)]


@pytest.fixture
def sandbox(tmp_path):
    """A cache inside a folder whose other contents must never change."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched")
    return Cache(tmp_path / "cache"), tmp_path


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "cache" not in p.relative_to(root).parts}


def test_good_tar_is_unpacked_with_prefix_stripped(sandbox):
    cache, root = sandbox
    archive = make_tar(root / "good.tar.gz", good_members())
    tree = unpack_archive(archive, cache, HEX, "proj-1.0")
    assert tree == cache.trees / HEX
    assert (tree / "src/a.c").read_text() == "int a;\n"
    assert os.readlink(tree / "src/link.c") == "a.c"
    assert (tree / "hard.c").stat().st_ino == (tree / "src/a.c").stat().st_ino
    assert (tree / "run.sh").stat().st_mode & 0o111
    assert [p.name for p in cache.trees.iterdir()] == [HEX]  # no temp folder left


def test_second_unpack_is_skipped(sandbox):
    cache, root = sandbox
    archive = make_tar(root / "good.tar.gz", good_members())
    tree = unpack_archive(archive, cache, HEX, "proj-1.0")
    (tree / "marker").write_text("kept")
    archive.unlink()  # not even read the second time
    assert unpack_archive(archive, cache, HEX, "proj-1.0") == tree
    assert (tree / "marker").exists()


def test_killed_unpack_leftovers_of_this_archive_are_removed_under_its_lock(sandbox):
    cache, root = sandbox
    cache.ensure_dirs()
    killed = cache.trees / f".tmp-{HEX[:16]}-999-1"          # what a killed unpack of HEX leaves
    (killed / "src").mkdir(parents=True)
    (killed / "src" / "half.c").write_text("int")
    running = cache.trees / f".tmp-{'cd' * 8}-1000-2"         # another archive, maybe being unpacked now
    running.mkdir()
    tree = unpack_archive(make_tar(root / "good.tar.gz", good_members()), cache, HEX, "proj-1.0")
    assert not killed.exists()
    assert running.is_dir()
    assert sorted(p.name for p in cache.trees.iterdir()) == sorted([HEX, running.name]) and tree.is_dir()


def test_top_folder_of_tar_and_zip(sandbox):
    cache, root = sandbox
    assert top_folder(make_tar(root / "g.tar.gz", good_members())) == "proj-1.0"
    z = root / "g.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("FP16-abc/", "")
        zf.writestr("FP16-abc/LICENSE", "x")
    assert top_folder(z) == "FP16-abc"
    two = make_tar(root / "two.tar.gz", [regular("a/x"), regular("b/y")])
    assert top_folder(two) is None


HOSTILE = {
    "dotdot": ([folder("proj-1.0"), regular("proj-1.0/../../outside/pwned")], r"contains '\.\.'"),
    "absolute": ([folder("proj-1.0"), regular("/tmp/outside-pwned")], r"absolute path"),
    "symlink-escape": ([folder("proj-1.0"), (_info("proj-1.0/esc", type=tarfile.SYMTYPE, linkname="../../outside"), None),
                        regular("proj-1.0/esc/pwned")], r"links outside the tree"),
    "symlink-absolute": ([folder("proj-1.0"), (_info("proj-1.0/esc", type=tarfile.SYMTYPE, linkname="/etc"), None)],
                         r"links to absolute path"),
    "hardlink-escape": ([folder("proj-1.0"), (_info("proj-1.0/h", type=tarfile.LNKTYPE, linkname="outside/victim"), None)],
                        r"not under strip_prefix"),
    "hardlink-dotdot": ([folder("proj-1.0"), (_info("proj-1.0/h", type=tarfile.LNKTYPE, linkname="proj-1.0/../../outside/victim"), None)],
                        r"contains '\.\.'"),
    "device": ([folder("proj-1.0"), (_info("proj-1.0/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3), None)],
               r"device node or FIFO"),
    "fifo": ([folder("proj-1.0"), (_info("proj-1.0/pipe", type=tarfile.FIFOTYPE), None)], r"device node or FIFO"),
    "outside-prefix": ([folder("proj-1.0"), regular("other/file")], r"not under strip_prefix 'proj-1.0'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar_is_refused_and_writes_nothing(sandbox, case):
    cache, root = sandbox
    members, message = HOSTILE[case]
    archive = make_tar(root / f"{case}.tar.gz", members)
    before = snapshot(root)
    with pytest.raises(UnpackError, match=message) as err:
        unpack_archive(archive, cache, HEX, "proj-1.0")
    assert f"{case}.tar.gz" in str(err.value)  # names the archive
    assert snapshot(root) == before
    assert (root / "outside" / "victim").read_text() == "untouched"
    assert not Path("/tmp/outside-pwned").exists()
    assert not cache.tree(HEX).exists()
    assert not list(cache.trees.glob(".tmp-*"))


def test_setuid_and_setgid_are_cleared(sandbox):
    cache, root = sandbox
    archive = make_tar(root / "suid.tar.gz", [folder("proj-1.0"), regular("proj-1.0/tool", b"x", 0o6755)])
    tree = unpack_archive(archive, cache, HEX, "proj-1.0")
    mode = (tree / "tool").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID)
    assert mode & 0o100


def test_symlink_then_write_through_it_is_refused(sandbox):
    # A link that stays inside the tree is fine; writing through it to escape is not possible
    # because the link's own target is checked; here the link points at the tree root's parent.
    cache, root = sandbox
    members = [folder("proj-1.0"), (_info("proj-1.0/up", type=tarfile.SYMTYPE, linkname=".."), None),
               regular("proj-1.0/up/pwned")]
    archive = make_tar(root / "through.tar.gz", members)
    with pytest.raises(UnpackError, match="links outside the tree"):
        unpack_archive(archive, cache, HEX, "proj-1.0")
    assert not (cache.trees / "pwned").exists()


def test_not_an_archive(sandbox):
    cache, root = sandbox
    junk = root / "junk.tar.gz"
    junk.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(UnpackError, match=r"junk.tar.gz: not a readable tar or zip archive"):
        unpack_archive(junk, cache, HEX, "proj-1.0")


# ---------------------------------------------------------------- zip (GitHub archive/<ref>.zip)

def _zip_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def make_zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


def test_good_zip(sandbox):
    cache, root = sandbox
    archive = make_zip(root / "fp16.zip", [
        ("FP16-abc/", b""), ("FP16-abc/include/fp16.h", b"#pragma once\n"),
        (_zip_entry("FP16-abc/configure.py", stat.S_IFREG | 0o6755), b"print()\n"),
        (_zip_entry("FP16-abc/include/alias.h", stat.S_IFLNK | 0o777), b"fp16.h"),
    ])
    tree = unpack_archive(archive, cache, HEX, "FP16-abc")
    assert (tree / "include/fp16.h").read_text() == "#pragma once\n"
    assert os.readlink(tree / "include/alias.h") == "fp16.h"
    mode = (tree / "configure.py").stat().st_mode
    assert mode & 0o100 and not mode & (stat.S_ISUID | stat.S_ISGID)


ZIP_HOSTILE = {
    "zip-dotdot": ([("p/", b""), ("p/../../outside/pwned", b"x")], r"contains '\.\.'"),
    "zip-absolute": ([("p/", b""), ("/tmp/outside-pwned-zip", b"x")], r"absolute path"),
    "zip-symlink": ([("p/", b""), (_zip_entry("p/esc", stat.S_IFLNK | 0o777), b"../../outside")], r"links outside the tree"),
    "zip-device": ([("p/", b""), (_zip_entry("p/dev", stat.S_IFCHR | 0o644), b"")], r"device node or FIFO"),
}


@pytest.mark.parametrize("case", sorted(ZIP_HOSTILE))
def test_hostile_zip_is_refused_and_writes_nothing(sandbox, case):
    cache, root = sandbox
    entries, message = ZIP_HOSTILE[case]
    archive = make_zip(root / f"{case}.zip", entries)
    before = snapshot(root)
    with pytest.raises(UnpackError, match=message) as err:
        unpack_archive(archive, cache, HEX, "p")
    assert f"{case}.zip" in str(err.value)
    assert snapshot(root) == before
    assert not Path("/tmp/outside-pwned-zip").exists()
    assert not cache.tree(HEX).exists() and not list(cache.trees.glob(".tmp-*"))
