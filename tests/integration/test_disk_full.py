"""A real full disk: a 1 MiB tmpfs as the cache, and a download that does not say its size."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess

import pytest

from tflite_forge.cache import Cache
from tflite_forge.errors import DiskSpaceError
from tflite_forge.fetch import Fetcher
from tflite_forge.progress import PlainProgress

from tests.ci import unavailable

from ..unit.faultserver import FaultServer

pytestmark = pytest.mark.integration


@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_disk_full_mid_download_leaves_nothing_behind(tiny_disk):
    body = os.urandom(3 * 2**20)
    sha = hashlib.sha256(body).hexdigest()
    with FaultServer() as srv:
        srv.add("/big.tar.gz", body, mode="nolength", cut=len(body))   # no Content-Length: no early check
        fetcher = Fetcher(tiny_disk / "cache", progress=PlainProgress(stream=io.StringIO()))
        with pytest.raises(DiskSpaceError, match=r"no space left in .* while downloading .*big\.tar\.gz; nothing "
                                                 r"was cached: free space there or point --cache-dir"):
            fetcher.fetch(sha, [srv.url("/big.tar.gz")], name="big")
        assert len(srv.requests("/big.tar.gz")) == 1       # a full disk is not retried like a network fault
    assert Cache(tiny_disk / "cache").entries() == []
    leftovers = [p for p in (tiny_disk / "cache").rglob("*") if p.is_file() and "locks" not in p.parts]
    assert leftovers == []
