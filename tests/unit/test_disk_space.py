"""Running out of disk is a user-fixable failure: one line, non-zero exit, nothing half-written."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from tflite_forge.cache import Cache
from tflite_forge.download import ensure_free_space
from tflite_forge.errors import DiskSpaceError
from tflite_forge.fetch import Fetcher
from tflite_forge.progress import PlainProgress

from .faultserver import FaultServer

ROOT = Path(__file__).resolve().parents[2]


def test_free_space_check_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(DiskSpaceError, match=r"needs .* MiB but only .* MiB are free in .*; nothing was written: "
                                             r"free space there or point --cache-dir"):
        ensure_free_space(tmp_path, 10 ** 18, what="x")
    ensure_free_space(tmp_path / "not" / "yet", 1, what="x")  # checks the nearest existing parent


def test_a_download_larger_than_the_disk_is_refused_before_writing(tmp_path):
    body = b"tflite" * 1000
    sha = hashlib.sha256(body).hexdigest()
    with FaultServer() as srv:
        srv.add("/big.tar.gz", body, mode="short", extra=10 ** 18)   # Content-Length claims an exabyte
        fetcher = Fetcher(tmp_path / "cache", progress=PlainProgress(stream=io.StringIO()))
        with pytest.raises(DiskSpaceError, match="big.tar.gz|needs"):
            fetcher.fetch(sha, [srv.url("/big.tar.gz")], name="big")
    assert Cache(tmp_path / "cache").entries() == []
    partial = tmp_path / "cache" / "partial"
    assert not partial.exists() or list(partial.iterdir()) == []


def test_enospc_anywhere_in_a_task_is_one_line(tmp_path):
    tasks = tmp_path / "tasks.py"
    tasks.write_text(
        "import errno, os\n"
        "from tflite_forge.cli import forge_task\n"
        "@forge_task\n"
        "def fill(c):\n"
        "    '''Pretend the disk filled up.'''\n"
        "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), '/var/cache/x.part')\n")
    proc = subprocess.run([sys.executable, "-m", "invoke", "fill"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == DiskSpaceError.exit_code
    assert proc.stderr.strip().splitlines() == [
        "tflite-forge: no space left on device (/var/cache/x.part); free space there, or point --cache-dir / "
        "TFLITE_FORGE_WORK_DIR / TFLITE_FORGE_DIST_DIR at a larger disk"]
