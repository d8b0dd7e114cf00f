"""A program built against an unpacked release tarball and run on its target: what the smoke test
(smoke.py), a user's model run (model_run.py) and the minimal runtime image (runtime_image.py) share.

`unpack` a tarball safely, `build_with_scons` one of smoke/'s C programs against it with the
arch's C compiler, and `run_on_target` natively or under qemu-user with the tarball's lib/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from .errors import PackageError
from .resources import SMOKE_DIR


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack a release tarball safely (tarfile's data filter); return its top folder."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            tops = {m.name.split("/", 1)[0] for m in tar.getmembers()}
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise PackageError(f"{tarball}: cannot unpack ({err}); re-run `invoke package`") from None
    if len(tops) != 1:
        raise PackageError(f"{tarball}: expected one top folder, found {sorted(tops)}; re-run `invoke package`")
    return dest / tops.pop()


def tool(name: str, hint: str) -> str:
    """The host tool's path, or an error that says how to install it."""
    found = shutil.which(name)
    if not found:
        raise PackageError(f"{name} not found; {hint}")
    return found


def compiler(arch: Any) -> str:
    name = f"{arch.triplet}-gcc"
    if shutil.which(name):
        return name
    if arch.runs_natively() and shutil.which("cc"):
        return "cc"
    packages = " ".join(arch.toolchain_packages())
    raise PackageError(f"{name} not found: the smoke test cross-compiles for {arch.name}; apt-get install {packages} "
                       "(ci/setup-host.sh does)")


def last_line(text: str) -> str:
    """A tool's last non-blank output line: what an error message quotes."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def build_with_scons(prefix: Path, arch: Any, build_dir: Path, *, main: str = "smoke.c",
                     program: str = "tflite-smoke") -> Path:
    """Build `smoke/<main>` against the unpacked artifact with SCons and the arch's C compiler."""
    scons = tool("scons", "pip install scons (or apt-get install scons)")
    build_dir.mkdir(parents=True, exist_ok=True)
    argv = [scons, "-Q", "-f", str(SMOKE_DIR / "SConstruct"), f"PREFIX={prefix}", f"CC={compiler(arch)}",
            f"MAIN={main}", f"PROGRAM={program}"]
    proc = subprocess.run(argv, cwd=build_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PackageError(f"{main} build with SCons for {arch.name} failed: {last_line(proc.stderr or proc.stdout)}; "
                           f"check the packaged headers and .pc file under {prefix}")
    return build_dir / program


def run_on_target(program: Path, args: list[str], prefix: Path, arch: Any, *,
                  timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a program built against the artifact natively or under qemu-user, with the artifact's lib/."""
    argv = [*arch.qemu_command(), str(program), *args]
    if argv[0] != str(program):
        tool(argv[0], "apt-get install qemu-user-static (ci/setup-host.sh does)")
    env = dict(os.environ, LD_LIBRARY_PATH=str(prefix / "lib"))
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PackageError(f"{program.name} on {arch.name} did not finish within {timeout:.0f} s; "
                           "the library may hang on this target") from None


def how_it_runs(arch: Any) -> str:
    return "natively" if arch.runs_natively() else f"under {arch.qemu_binary}"
