"""Runtime images from a release tarball: the minimal image for aarch64 is assembled on the host,
its test stage runs the smoke program under binfmt/qemu, and the final image runs as non-root."""

from __future__ import annotations

import subprocess

import pytest

from tests.fake_build import make_fake_build, settings_for
from tflite_forge.errors import ConfigError, EngineError
from tflite_forge.pipeline import run_package

from tests.ci import unavailable

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine():
    from tflite_forge import engine as eng
    try:
        return eng.resolve_engine(None)
    except EngineError as err:
        unavailable(f"no container engine: {err}")


def _inspect(engine, tag: str, fmt: str) -> str:
    return subprocess.run(engine.argv("image", "inspect", "--format", fmt, tag), capture_output=True, text=True,
                          check=True).stdout.strip()


def test_minimal_aarch64_image_runs_the_smoke_under_emulation(engine, tmp_path):
    from tflite_forge import image_io
    from tflite_forge.pipeline import run_runtime_image
    from tflite_forge.runtime_image import MINIMAL_LIMIT

    fake = make_fake_build(tmp_path, "aarch64")
    settings = settings_for(fake, tmp_path / "dist")
    settings = type(settings)(**{**settings.__dict__, "version": None})
    run_package(settings, log=lambda _: None)
    lines: list[str] = []
    [image] = run_runtime_image(settings, flavor="minimal", log=lines.append)
    try:
        assert image.size <= MINIMAL_LIMIT
        assert _inspect(engine, image.tag, "{{.Architecture}} {{.Config.User}}") == "arm64 65532:65532"
        assert any(line.endswith("ran: smoke: ok: {1, 3} -> {3, 9}") for line in lines)
        # Only the library, model, program, their runtime libraries (and licenses/manifest) are in it.
        listing = subprocess.run(engine.argv("create", image.tag), capture_output=True, text=True, check=True)
        cid = listing.stdout.strip()
        try:
            export = subprocess.run(engine.argv("export", cid), capture_output=True, check=True).stdout
        finally:
            subprocess.run(engine.argv("rm", "-f", cid), capture_output=True)
        import io
        import tarfile
        names = {n.rstrip("/") for n in tarfile.open(fileobj=io.BytesIO(export)).getnames()}
        libs = {n for n in names if n.startswith("lib/") and n.count("/") == 1}
        assert libs == {"lib/ld-linux-aarch64.so.1", "lib/libc.so.6", "lib/libgcc_s.so.1", "lib/libm.so.6",
                        "lib/libstdc++.so.6"}
        assert {"opt/tflite/bin/tflite-smoke", "opt/tflite/share/add.tflite", "opt/tflite/share/smoke.passed",
                "opt/tflite/lib/libtensorflowlite_c.so.2.16.1"} <= names
        assert not any(n.startswith(("bin/", "usr/", "etc/apt")) for n in names)
    finally:
        image_io.remove_images(engine, [image.tag])


def test_failing_smoke_stops_the_image_build(engine, tmp_path):
    import tests.fake_build as fb
    from tflite_forge import image_io
    from tflite_forge.pipeline import run_runtime_image
    from tflite_forge.runtime_image import image_tag

    original = fb.IMPL_CC
    fb.IMPL_CC = original.replace("i->out.data[k] = doubled + i->in.data[k];", "i->out.data[k] = doubled;")
    try:
        fake = make_fake_build(tmp_path, "x86_64")
    finally:
        fb.IMPL_CC = original
    settings = settings_for(fake, tmp_path / "dist")
    run_package(settings, log=lambda _: None)
    tag = image_tag("2.16.1", "x86_64", "minimal")
    image_io.remove_images(engine, [tag])
    with pytest.raises(EngineError, match="build of tflite-forge/runtime:2.16.1-x86_64-minimal failed"):
        run_runtime_image(settings, flavor="minimal", log=lambda _: None)
    assert image_io.image_id(engine, tag) is None


def test_wheel_flavor_refuses_arches_without_wheels():
    from tflite_forge.arches import resolve_arch
    from tflite_forge.runtime_image import wheel_platform
    assert wheel_platform(resolve_arch("arm64")) == "manylinux2014_aarch64"
    with pytest.raises(ConfigError, match="aarch64 and x86_64 only, not armhf"):
        wheel_platform(resolve_arch("armhf"))
