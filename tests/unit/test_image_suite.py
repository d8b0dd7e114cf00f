"""Base images of other Debian suites (the glibc floor) and mirrors: names, checks, one-line errors."""

from __future__ import annotations

import json

import pytest

from tflite_forge import container as ct
from tflite_forge import engine as eng
from tflite_forge import image_io
from tflite_forge import image
from tflite_forge.arches import resolve_arch
from tflite_forge.errors import ConfigError, EngineError
from tflite_forge.workspace import Workspace

ENGINE = eng.EngineConfig(name="docker", binary="/usr/bin/docker")


@pytest.fixture(autouse=True)
def amd64_host(monkeypatch):
    monkeypatch.setattr(image, "host_debian_arch", lambda: "amd64")


def test_suite_names_the_image_and_the_cached_tarball(tmp_path):
    arm64 = resolve_arch("aarch64")
    assert image.base_image_ref(None, "bullseye") == "tflite-forge/debian-base:bullseye"
    assert image.base_image_ref(arm64, "bullseye") == "tflite-forge/debian-base:bullseye-arm64"
    assert image.base_image_ref(None) == image.DEFAULT_BASE_IMAGE == "tflite-forge/debian-base:bookworm"
    assert image.parse_base_ref("tflite-forge/debian-base:bullseye-arm64") == ("bullseye", "arm64")
    assert image.parse_base_ref("tflite-forge/debian-base:bullseye") == ("bullseye", None)
    assert image.parse_base_ref("debian:bullseye") is None
    assert image.base_tarball(tmp_path, "bullseye").name == "debian-bullseye-minbase.tar"
    # another mirror gets its own tarball: the tree's apt sources name the mirror
    other = image.base_tarball(tmp_path, "bullseye", mirror="http://10.0.0.5/debian/")
    assert other.name.startswith("debian-bullseye-minbase-") and other != image.base_tarball(tmp_path, "bullseye")
    assert other == image.base_tarball(tmp_path, "bullseye", mirror="http://10.0.0.5/debian")


def test_bootstrap_command_names_suite_and_arch():
    assert image.bootstrap_command("tflite-forge/debian-base:bullseye") == \
        "sudo invoke image --bootstrap --debian-suite bullseye"
    assert image.bootstrap_command("tflite-forge/debian-base:bullseye-arm64") == \
        "sudo invoke image --bootstrap --debian-suite bullseye --arch arm64"
    assert image.bootstrap_command(image.DEFAULT_BASE_IMAGE) == "sudo invoke image --bootstrap"


@pytest.mark.parametrize("suite", ["", "Bullseye", "bullseye;rm", "../x"])
def test_bad_suite_is_one_line(suite):
    with pytest.raises(ConfigError, match="not a Debian suite name") as err:
        image.check_suite(suite)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("mirror", ["", "deb.debian.org/debian", "ftp://x/debian", "http://a b/"])
def test_bad_mirror_is_one_line(mirror):
    with pytest.raises(ConfigError, match="not a URL"):
        image.check_mirror(mirror)


def test_unknown_suite_stops_before_debootstrap(tmp_path, monkeypatch):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in ("bookworm", "bullseye", "sid"):
        (scripts / name).write_text("")
    monkeypatch.setattr(image, "DEBOOTSTRAP_SCRIPTS", scripts)
    monkeypatch.setattr(image.shutil, "which", lambda name: "/usr/sbin/debootstrap")
    with pytest.raises(ConfigError, match="does not know the suite 'trixy'") as err:
        image.debootstrap_tarball(tmp_path / "out" / "x.tar", suite="trixy")
    assert str(scripts / "trixy") in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_missing_non_default_base_names_the_command_and_never_pulls(monkeypatch, tmp_path):
    monkeypatch.setattr(image_io, "image_id", lambda engine, ref: None)
    monkeypatch.setattr(image_io, "pull_image", lambda *a, **k: pytest.fail("pulled a tflite-forge image from a registry"))
    monkeypatch.setattr(image, "bootstrap_base_image", lambda *a, **k: pytest.fail("bootstrapped a non-default base"))
    with pytest.raises(EngineError) as err:
        image.resolve_base_image(ENGINE, "tflite-forge/debian-base:bullseye", cache_dir=tmp_path)
    assert "`sudo invoke image --bootstrap --debian-suite bullseye`" in str(err.value)
    assert "\n" not in str(err.value)


def test_default_base_is_still_bootstrapped_when_missing(monkeypatch, tmp_path):
    made = []
    monkeypatch.setattr(image_io, "image_id", lambda engine, ref: None)
    monkeypatch.setattr(image, "bootstrap_base_image", lambda engine, **kw: made.append(kw["ref"]) or "sha256:ab")
    assert image.resolve_base_image(ENGINE, image.DEFAULT_BASE_IMAGE, cache_dir=tmp_path) == "sha256:ab"
    assert made == [image.DEFAULT_BASE_IMAGE]


def test_suite_of_a_base_image_from_label_or_name(monkeypatch):
    labels = {"tflite-forge/debian-base:bullseye": {"io.tflite-forge.debian-suite": "bullseye"}}
    monkeypatch.setattr(image_io, "image_labels", lambda engine, ref: labels.get(ref, {}))
    assert image.base_suite(ENGINE, "tflite-forge/debian-base:bullseye") == "bullseye"
    assert image.base_suite(ENGINE, "tflite-forge/debian-base:buster-arm64") == "buster"   # no label: the name
    assert image.base_suite(ENGINE, "debian:bullseye-slim@sha256:" + "a" * 64) == "bullseye"
    assert image.base_suite(ENGINE, "docker.io/library/debian:bookworm") == "bookworm"
    assert image.base_suite(ENGINE, "ubuntu:20.04") is None


def test_apt_missing_package_in_the_build_log_becomes_one_line(monkeypatch, tmp_path):
    """A suite without one of the target's cross packages: apt's complaint becomes one line naming the suite."""
    ids = {"debian:buster": "sha256:" + "c" * 64}
    monkeypatch.setattr(image_io, "image_id", lambda engine, ref: ids.get(ref))
    monkeypatch.setattr(image_io, "image_labels", lambda engine, ref: {})

    def failing_build(engine, *, log, **kw):
        log.write("#7 0.9 Reading package lists...\n#7 1.0 E: Unable to locate package g++-riscv64-linux-gnu\n")
        raise EngineError("docker build of x failed: exit code 100")

    monkeypatch.setattr(image_io, "build_image", failing_build)
    with pytest.raises(EngineError) as err:
        image.ensure_builder_image(ENGINE, resolve_arch("riscv64"), Workspace(tmp_path, tmp_path, tmp_path),
                                   base_image="debian:buster")
    message = str(err.value)
    assert "debian:buster (Debian buster) has no package g++-riscv64-linux-gnu" in message
    assert "full log:" in message and "\n" not in message
    assert image.missing_package("E: Package 'gcc-9' has no installation candidate") == "gcc-9"
    assert image.missing_package("all fine") is None


def test_facts_carry_the_suite_and_old_caches_are_probed_again(monkeypatch, tmp_path):
    image_id = "sha256:" + "d" * 64
    cache = tmp_path / "images" / f"{image_id.replace(':', '-')}.json"
    cache.parent.mkdir()
    cache.write_text(json.dumps({"glibc": "2.31"}))        # written before the suite was recorded
    seen = []

    def probe(engine, spec, argv, timeout):
        seen.append(argv)
        import subprocess
        return subprocess.CompletedProcess(argv, 0, stdout="glibc=2.31\ngcc=10.2.1\ndebian_suite=bullseye\n",
                                           stderr="")

    monkeypatch.setattr(ct, "run_container", probe)
    facts = image.read_facts(ENGINE, "tflite-forge/builder:aarch64-x", image_id, Workspace(tmp_path, tmp_path, tmp_path))
    assert facts["debian_suite"] == "bullseye" and facts["glibc"] == "2.31"
    assert "VERSION_CODENAME" in seen[0][-1]
    assert image.read_facts(ENGINE, "tflite-forge/builder:aarch64-x", image_id, Workspace(tmp_path, tmp_path, tmp_path)) == facts
    assert len(seen) == 1                                   # the refreshed cache is used


def test_mirror_without_bootstrap_is_refused():
    with pytest.raises(ConfigError, match="--debian-mirror is used by debootstrap"):
        image.run_image(object(), builder=True, debian_mirror="http://10.0.0.5/debian")
