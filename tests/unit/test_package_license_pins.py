"""A license file the lock pinned (license_sha256) must be the file packaged: a tree whose license
changed since `invoke lock` stops the package with one line, and nothing is written to dist/."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from tests.fake_build import VERSION, make_fake_build, settings_for
from tflite_forge.errors import PackageError
from tflite_forge.lockfile import dump_lock, load_lock
from tflite_forge.pipeline import run_package

DEP = "xnnpack"


def _pin(root: Path, tf_license: str, dep_license: str) -> Path:
    """Rewrite the fake build's lock with license pins; return the xnnpack working copy."""
    lock_path = next((root / "recipes").glob("*.lock"))
    lock = load_lock(lock_path)
    deps = tuple(dataclasses.replace(d, license_file="LICENSE", license_sha256=dep_license) if d.name == DEP else d
                 for d in lock.dependencies)
    lock_path.write_text(dump_lock(dataclasses.replace(lock, dependencies=deps, license_sha256=tf_license)))
    return root / "work" / "src" / f"tensorflow-{VERSION}-x86_64" / "deps" / DEP


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_matching_pins_package_as_before(tmp_path):
    fake = make_fake_build(tmp_path, "x86_64")
    tf_license = tmp_path / "work" / "src" / f"tensorflow-{VERSION}-x86_64" / "tensorflow" / "LICENSE"
    dep_tree = tmp_path / "work" / "src" / f"tensorflow-{VERSION}-x86_64" / "deps" / DEP
    _pin(tmp_path, _sha(tf_license), _sha(dep_tree / "LICENSE"))
    run_package(settings_for(fake, tmp_path / "dist"), log=lambda _line: None)
    assert (tmp_path / "dist" / f"libtensorflowlite_c-{VERSION}-linux-x86_64.tar.gz").is_file()


@pytest.mark.parametrize("which", ["tensorflow", DEP])
def test_a_license_changed_since_the_lock_stops_the_package(tmp_path, which):
    fake = make_fake_build(tmp_path, "x86_64")
    tf_license = tmp_path / "work" / "src" / f"tensorflow-{VERSION}-x86_64" / "tensorflow" / "LICENSE"
    dep_tree = tmp_path / "work" / "src" / f"tensorflow-{VERSION}-x86_64" / "deps" / DEP
    _pin(tmp_path, _sha(tf_license), _sha(dep_tree / "LICENSE"))
    changed = tf_license if which == "tensorflow" else dep_tree / "LICENSE"
    changed.write_text(changed.read_text() + "\nan added clause\n")
    with pytest.raises(PackageError) as err:
        run_package(settings_for(fake, tmp_path / "dist"), log=lambda _line: None)
    message = str(err.value)
    assert "\n" not in message
    assert f"{which}'s license file has sha256 {_sha(changed)}, the lock pinned" in message
    assert "invoke lock" in message
    assert not list((tmp_path / "dist").glob("*.tar.gz"))
