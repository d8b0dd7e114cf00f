"""Two builds and packagings of the same inputs under changed conditions give byte-identical tarballs.

Changed between the two: the build path (root folder), the input files' mtimes and modes,
TZ, umask and locale of the packaging process. The library is compiled twice, once per root,
with the build's path mapping (-ffile-prefix-map), so the binaries must match too.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fake_build import VERSION, make_fake_build

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from tests.fake_build import FakeBuild, settings_for
    from tflite_forge.pipeline import run_package
    root = Path({root!r})
    fake = FakeBuild(root=root, work_dir=root / "work", recipe_path=root / "recipes" / "tensorflow-{version}.toml",
                     arch={arch!r}, lib=Path())
    run_package(settings_for(fake, root / "dist"), log=lambda _: None)
""")


def _package(root: Path, arch: str, env_changes: dict[str, str], umask: int) -> None:
    env = dict(os.environ, **env_changes)
    code = SCRIPT.format(repo=str(REPO), root=str(root), version=VERSION, arch=arch)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root,
                   preexec_fn=lambda: os.umask(umask))


def _disturb(root: Path) -> None:
    """Different mtimes and modes on every input file (what a different checkout/clock gives)."""
    for i, path in enumerate(sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())):
        os.utime(path, (1_000_000_000 + i * 7919, 1_000_000_000 + i * 7919))
        path.chmod(0o600 if i % 2 else 0o664)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("arch", ["aarch64", "x86_64"])
def test_two_packagings_are_byte_identical(tmp_path, arch):
    first = make_fake_build(tmp_path / "a", arch)
    second = make_fake_build(tmp_path / "somewhere" / "else" / "b", arch)
    _disturb(second.root)
    _package(first.root, arch, {"TZ": "UTC", "LC_ALL": "C", "LANG": "C"}, 0o022)
    _package(second.root, arch, {"TZ": "Pacific/Kiritimati", "LC_ALL": "C.UTF-8", "LANG": "de_DE.UTF-8",
                                 "SOURCE_DATE_EPOCH": "1"}, 0o077)
    stem = f"libtensorflowlite_c-{VERSION}-linux-{arch}"
    for name in (f"{stem}.tar.gz", f"{stem}-dbg.tar.gz", "SHA256SUMS"):
        assert _sha(first.root / "dist" / name) == _sha(second.root / "dist" / name), name
