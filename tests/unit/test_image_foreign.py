"""Foreign-arch base images: names, cache tarballs, import flags and the docker-archive config."""

from __future__ import annotations

import pytest

from tflite_forge import engine as eng
from tflite_forge import image_io
from tflite_forge import image
from tflite_forge.arches import resolve_arch
from tflite_forge.errors import EngineError
from tflite_forge.runtime_image import default_base_image, wheel_platforms


def _engine(name: str) -> eng.EngineConfig:
    return eng.EngineConfig(name=name, binary=f"/usr/bin/{name}")


def test_base_image_names_and_tarballs_per_arch(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "host_debian_arch", lambda: "amd64")
    arm64, amd64 = resolve_arch("aarch64"), resolve_arch("x86_64")
    assert image.base_image_ref(arm64) == "tflite-forge/debian-base:bookworm-arm64"
    assert image.base_image_ref(amd64) == image.base_image_ref(None) == image.DEFAULT_BASE_IMAGE
    # the runtime flavors look for the same name the bootstrap makes
    assert default_base_image(arm64) == image.base_image_ref(arm64)
    assert image.base_tarball(tmp_path, debian_arch="arm64").name == "debian-bookworm-minbase-arm64.tar"
    assert image.base_tarball(tmp_path, debian_arch="amd64").name == "debian-bookworm-minbase.tar"
    assert image.is_foreign(arm64) and not image.is_foreign(amd64) and not image.is_foreign(None)


def test_import_platform_flags_per_engine():
    assert image_io.import_platform_flags(_engine("docker"), "linux/arm64") == ["--platform", "linux/arm64"]
    assert image_io.import_platform_flags(_engine("podman"), "linux/arm/v7") == ["--os", "linux", "--arch", "arm",
                                                                           "--variant", "v7"]
    with pytest.raises(EngineError, match="os/arch"):
        image_io.import_platform_flags(_engine("podman"), "arm64")


def test_docker_archive_config_records_the_platform_and_changes():
    config = image_io.rootfs_image_config("ab" * 32, platform="linux/arm/v7",
                                    changes=["LABEL io.tflite-forge=1", 'CMD ["/bin/bash"]'])
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm", "v7")
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "ab" * 32]}
    assert config["config"]["Labels"] == {"io.tflite-forge": "1"} and config["config"]["Cmd"] == ["/bin/bash"]
    assert config["created"] == "1970-01-01T00:00:00Z"   # no clock: the same tarball gives the same image ID
    with pytest.raises(EngineError, match="internal"):
        image_io.rootfs_image_config("00" * 32, platform="linux/arm64", changes=["RUN true"])


def test_foreign_debootstrap_needs_binfmt(tmp_path, monkeypatch):
    """Without a registered qemu interpreter the bootstrap stops with one line naming the fix."""
    arch = resolve_arch("riscv64")
    monkeypatch.setattr(image, "host_debian_arch", lambda: "amd64")
    monkeypatch.setattr(image.os, "geteuid", lambda: 0)
    monkeypatch.setattr(image.shutil, "which", lambda name: "/usr/sbin/debootstrap")
    real_exists = image.Path.exists
    monkeypatch.setattr(image.Path, "exists",
                        lambda self: False if "binfmt_misc" in str(self) else real_exists(self))
    with pytest.raises(EngineError, match="qemu-riscv64 is not registered") as err:
        image.debootstrap_tarball(tmp_path / "x.tar", arch=arch)
    assert "\n" not in str(err.value) and not (tmp_path / "x.tar").exists()


def test_wheel_platforms_cover_every_manylinux_tag_the_base_runs():
    tags = wheel_platforms(resolve_arch("aarch64"))
    assert tags[0] == "manylinux_2_36_aarch64" and "manylinux_2_34_aarch64" in tags   # tflite-runtime 2.14.0
    assert tags[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]           # numpy 1.26


def test_on_an_arm64_host_the_runtime_flavors_look_for_the_base_the_bootstrap_makes(monkeypatch):
    """issue 12: runtime_image assumed an amd64 host; image.py asks the host. On an aarch64 host the
    bootstrap makes tflite-forge/debian-base:bookworm for aarch64 and ...-amd64 for x86_64."""
    monkeypatch.setattr(image, "host_debian_arch", lambda: "arm64")
    arm64, amd64 = resolve_arch("aarch64"), resolve_arch("x86_64")
    assert default_base_image(arm64) == image.base_image_ref(arm64) == image.DEFAULT_BASE_IMAGE
    assert default_base_image(amd64) == image.base_image_ref(amd64) == "tflite-forge/debian-base:bookworm-amd64"
