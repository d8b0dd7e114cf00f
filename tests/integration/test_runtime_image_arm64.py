"""The python and wheel runtime flavors for aarch64, on an arm64 Debian base made here.

`invoke image --bootstrap --arch aarch64` debootstraps bookworm for arm64 (second stage under
binfmt/qemu; the tarball is cached in the default cache dir, so later runs only import it) and
imports it as linux/arm64. The images then build with --platform linux/arm64: apt, pip and the
smoke scripts all run emulated, and the final image runs (emulated) as 65532.
"""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from tests.fake_build import make_fake_build, settings_for
from tflite_forge import image_io
from tflite_forge.pipeline import run_package

pytestmark = pytest.mark.integration

ARM64_BASE = "tflite-forge/debian-base:bookworm-arm64"


@pytest.fixture(scope="module")
def arm64_base(docker_engine, forge) -> str:
    proc = forge("image", "--bootstrap", "--arch=aarch64", "--engine=docker", timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{ARM64_BASE}  " in proc.stdout and "  arm64  glibc 2.36" in proc.stdout, proc.stdout
    inspect = subprocess.run(docker_engine.argv("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", ARM64_BASE),
                             capture_output=True, text=True, check=True)
    assert inspect.stdout.strip() == "linux/arm64"
    # Importing the cached tarball again gives the same image (no clock in its config).
    first = image_io.image_id(docker_engine, ARM64_BASE)
    image_io.remove_images(docker_engine, [ARM64_BASE])
    proc = forge("image", "--bootstrap", "--arch=aarch64", "--engine=docker", timeout=600)
    assert proc.returncode == 0 and image_io.image_id(docker_engine, ARM64_BASE) == first, proc.stdout + proc.stderr
    return ARM64_BASE


@pytest.fixture(scope="module")
def arm64_release(tmp_path_factory, docker_engine):
    from tflite_forge.settings import resolve
    root = tmp_path_factory.mktemp("arm64-runtime")
    fake = make_fake_build(root, "aarch64")
    settings = settings_for(fake, root / "dist")
    # The default cache: the wheels (pip download on the host) are fetched once per machine.
    default_cache = resolve({}).cache_dir
    settings = dataclasses.replace(settings, version=None, engine="docker", cache_dir=default_cache)
    run_package(settings, log=lambda _: None)
    return settings


@pytest.mark.parametrize("flavor, expected", [
    ("python", "smoke-ctypes: ok: [1.0, 3.0] -> [3.0, 9.0]"),
    ("wheel", "smoke-wheel: ok: [1.0, 3.0] -> [3.0, 9.0]"),
])
def test_arm64_flavor_builds_and_runs_under_emulation(arm64_base, arm64_release, docker_engine, flavor, expected):
    from tflite_forge.pipeline import run_runtime_image
    from tflite_forge.runtime_image import image_tag

    tag = image_tag("2.16.1", "aarch64", flavor)
    lines: list[str] = []
    try:
        [image] = run_runtime_image(arm64_release, flavor=flavor, log=lines.append)
        assert image.tag == tag
        inspect = subprocess.run(docker_engine.argv("image", "inspect", "--format",
                                                    "{{.Architecture}} {{.Config.User}}", tag),
                                 capture_output=True, text=True, check=True)
        assert inspect.stdout.strip() == "arm64 65532:65532"
        assert any(line.endswith(f"ran: {expected}") for line in lines), lines
        # The interpreter inside really is an aarch64 program (run under qemu by binfmt).
        probe = subprocess.run(docker_engine.argv("run", "--rm", "--platform", "linux/arm64", "--label",
                                                  "io.tflite-forge=1", "--entrypoint", "python3", tag, "-c",
                                                  "import platform; print(platform.machine())"),
                               capture_output=True, text=True, timeout=300)
        assert probe.stdout.strip() == "aarch64", probe.stdout + probe.stderr
    finally:
        image_io.remove_images(docker_engine, [tag])
