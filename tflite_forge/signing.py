"""SHA256SUMS over dist/'s release files, and its detached gpg signature SHA256SUMS.asc."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from filelock import FileLock

from .cache import sha256_file
from .errors import PackageError
from .fsutil import write_atomic

SUMS = "SHA256SUMS"


def write_sha256sums(dist: Path) -> Path:
    """SHA256SUMS over every release file in dist/ (sha256sum -c format), sorted by name."""
    files = sorted(p for p in dist.iterdir() if p.is_file() and p.name.endswith((".tar.gz", ".tar.xz")))
    text = "".join(f"{sha256_file(p)}  {p.name}\n" for p in files)
    sums = dist / SUMS
    write_atomic(sums, text.encode())
    return sums


def sign_file(path: Path, key_id: str, *, gnupg_home: str | None = None) -> Path:
    """Detached, ASCII-armoured signature `<path>.asc` made by gpg with key KEYID."""
    if not shutil.which("gpg"):
        raise PackageError("gpg not found: --sign needs it; apt-get install gnupg (ci/setup-host.sh does)")
    asc = path.with_name(path.name + ".asc")
    tmp = asc.with_name(f".{asc.name}.tmp")
    env = dict(os.environ)
    if gnupg_home:
        env["GNUPGHOME"] = gnupg_home
    argv = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--local-user", key_id,
            "--armor", "--detach-sign", "--output", str(tmp), str(path)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        msg = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise PackageError(f"gpg could not sign {path.name} with key {key_id!r} ({msg}); check `gpg --list-secret-keys` "
                           "or GNUPGHOME")
    os.replace(tmp, asc)
    return asc


def publish_sums(dist: Path, *, sign: str | None = None, log: Callable[[str], None] = print) -> Path:
    """SHA256SUMS over dist/ as it is now (and SHA256SUMS.asc with `sign`, a gpg key id)."""
    # Matrix cells package in parallel processes: list and write under one lock, so the
    # last writer's SHA256SUMS covers every tarball already in dist/.
    with FileLock(str(dist / f".{SUMS}.lock")):
        # The old signature goes before the new sums are written: if gpg then fails (or we are
        # killed), dist/ holds unsigned sums, never sums beside a signature that does not verify.
        asc = dist / f"{SUMS}.asc"
        asc.unlink(missing_ok=True)
        sums = write_sha256sums(dist)
        if sign:
            sign_file(sums, sign)
            log(f"package: {sums} (signed: {asc.name})")
        else:
            log(f"package: {sums}")
    return sums
