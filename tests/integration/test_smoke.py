"""invoke package + test on real cross builds: the smoke program runs natively or under qemu-user."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_build import VERSION, make_fake_build, settings_for
from tflite_forge.errors import PackageError
from tflite_forge.pipeline import run_package, run_test

from tests.ci import need_tools

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _need(tool: str) -> None:
    need_tools(tool)


@pytest.mark.parametrize("arch", ["aarch64", "armhf", "x86_64"])
def test_package_then_smoke_on_target(tmp_path, arch):
    from tflite_forge.arches import resolve_arch
    a = resolve_arch(arch)
    _need(f"{a.triplet}-g++")
    if not a.runs_natively():
        _need(a.qemu_binary)
    _need("scons")
    fake = make_fake_build(tmp_path, arch)
    settings = settings_for(fake, tmp_path / "dist")
    run_package(settings, log=lambda _: None)
    lines: list[str] = []
    results = run_test(settings, log=lines.append)
    assert [r.consumer for r in results] == ["scons", "cmake"]
    assert all("smoke: ok: {1, 3} -> {3, 9}" in r.output for r in results)
    assert all(f"TensorFlow Lite C API {VERSION}" in r.output for r in results)
    # Foreign targets ran under qemu-user, the host target natively.
    assert len(lines) == 2 and all((f"qemu ({a.qemu_binary})" in line) == (not a.runs_natively()) for line in lines)


def test_smoke_catches_a_library_that_computes_wrongly(tmp_path):
    _need("aarch64-linux-gnu-g++")
    import tests.fake_build as fb
    original = fb.IMPL_CC
    fb.IMPL_CC = original.replace("i->out.data[k] = doubled + i->in.data[k];", "i->out.data[k] = doubled;")
    try:
        fake = make_fake_build(tmp_path, "aarch64")
    finally:
        fb.IMPL_CC = original
    settings = settings_for(fake, tmp_path / "dist")
    run_package(settings, log=lambda _: None)
    with pytest.raises(PackageError, match=r"tflite-smoke failed under qemu-aarch64-static for aarch64.*expected \{3, 9\}, got \{2, 6\}"):
        run_test(settings, cmake=False, log=lambda _: None)


def test_missing_tarball_is_packaged_first(tmp_path):
    """invoke test pulls in what it lacks: the tarball is packaged from the build output, then tested."""
    fake = make_fake_build(tmp_path, "x86_64")
    lines: list[str] = []
    results = run_test(settings_for(fake, tmp_path / "dist"), log=lines.append)
    assert any("not packaged yet; packaging it first" in line for line in lines)
    assert (tmp_path / "dist" / "libtensorflowlite_c-2.16.1-linux-x86_64.tar.gz").is_file()
    assert results and all("{3, 9}" in r.output for r in results)


def test_invoke_chain_package_test_verify(tmp_path):
    """The tasks as users type them: invoke package test --arch aarch64, then invoke verify."""
    _need("aarch64-linux-gnu-g++")
    fake = make_fake_build(tmp_path, "aarch64")
    env = dict(os.environ, TFLITE_FORGE_WORK_DIR=str(fake.work_dir), TFLITE_FORGE_DIST_DIR=str(tmp_path / "dist"),
               TFLITE_FORGE_CACHE=str(tmp_path / "cache"))
    invoke = [sys.executable, "-m", "invoke"]
    proc = subprocess.run([*invoke, "package", f"--recipe={fake.recipe_path}", "--arch=aarch64", "test"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "scons consumer, qemu" in proc.stdout and "cmake consumer, qemu" in proc.stdout
    tarball = tmp_path / "dist" / f"libtensorflowlite_c-{VERSION}-linux-aarch64.tar.gz"
    ok = subprocess.run([*invoke, "verify", str(tarball)], cwd=REPO, env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "EM_AARCH64 64-bit" in ok.stdout
    bad = subprocess.run([*invoke, "verify", str(tarball), "--glibc-max=2.2"], cwd=REPO, env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 12
    assert bad.stderr.strip().splitlines() == [f"tflite-forge: {tarball.name}: 1 verification problem(s) listed above"]
    subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / "dist", check=True, capture_output=True)
