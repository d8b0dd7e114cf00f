"""container.py and engine.py without an engine: option rendering, names, versions, engine resolution errors."""

import os
import stat

import pytest

from tflite_forge import container as ct
from tflite_forge import engine as eng
from tflite_forge.errors import EngineError

DOCKER = eng.EngineConfig(name="docker", binary="/usr/bin/docker", version="20.10.24")
PODMAN = eng.EngineConfig(name="podman", binary="/usr/bin/podman", version="4.3.1")


def spec(**kw):
    base = dict(image="img:1", purpose="build-aarch64", user="1000:1000",
                mounts=(ct.Mount(source="/host/src", target="/src", read_only=True),
                        ct.Mount(source="vol-a", target="/build", volume=True)),
                env=(("A", "1"),), labels=(("io.tflite-forge.arch", "aarch64"),))
    base.update(kw)
    return ct.ContainerSpec(**base)


def test_hermetic_flags_are_always_there():
    flags = ct.run_flags(DOCKER, spec(), "tflite-forge-build-aarch64-0001")
    assert "--rm" in flags
    assert "--network=none" in flags
    assert "--cap-drop=ALL" in flags
    assert flags[flags.index("--security-opt") + 1] == "no-new-privileges"
    assert flags[flags.index("--user") + 1] == "1000:1000"
    assert flags[flags.index("--name") + 1] == "tflite-forge-build-aarch64-0001"


def test_labels_mark_ours_and_the_cell():
    flags = ct.run_flags(DOCKER, spec(), "n")
    labels = [flags[i + 1] for i, f in enumerate(flags) if f == "--label"]
    assert "io.tflite-forge=1" in labels
    assert "io.tflite-forge.arch=aarch64" in labels
    assert "io.tflite-forge.purpose=build-aarch64" in labels


def test_mounts_read_only_and_volumes():
    flags = ct.run_flags(DOCKER, spec(), "n")
    mounts = [flags[i + 1] for i, f in enumerate(flags) if f == "--mount"]
    assert mounts == ["type=bind,source=/host/src,target=/src,ro", "type=volume,source=vol-a,target=/build"]


def test_podman_never_pulls_and_default_network_is_opt_in():
    flags = ct.run_flags(PODMAN, spec(network=None, userns="keep-id"), "n")
    assert "--pull=never" in flags
    assert not any(f.startswith("--network") for f in flags)
    assert "--userns=keep-id" in flags
    assert "--pull=never" not in ct.run_flags(DOCKER, spec(), "n")


def test_container_names_are_unique_and_say_what_for():
    a, b = ct.container_name("build aarch64"), ct.container_name("build aarch64")
    assert a != b
    assert a.startswith("tflite-forge-build-aarch64-")


@pytest.mark.parametrize("name,version", [("docker", "19.03.2"), ("podman", "3.0.1")])
def test_old_engines_are_refused_with_the_fix(name, version):
    with pytest.raises(EngineError) as err:
        eng.check_version(name, version)
    assert "too old" in str(err.value) and "\n" not in str(err.value)


def test_current_engines_pass_version_check():
    eng.check_version("docker", "20.10.24+dfsg1")
    eng.check_version("docker", "28.2.2")
    eng.check_version("podman", "4.3.1")


def test_parse_version():
    assert eng.parse_version("20.10.24+dfsg1") == (20, 10, 24)
    assert eng.parse_version("v4.3") == (4, 3)
    assert eng.parse_version("garbage") == ()


def test_missing_engine_binary_is_one_line_naming_the_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError) as err:
        eng.resolve_engine("podman")
    text = str(err.value)
    assert "podman not found" in text and "ci/setup-host.sh" in text and "--engine" in text
    assert "\n" not in text


def test_engine_path_to_missing_binary(tmp_path):
    with pytest.raises(EngineError) as err:
        eng.resolve_engine(str(tmp_path / "bin" / "docker"))
    assert "docker not found" in str(err.value) and str(tmp_path) in str(err.value)


def test_unknown_engine_name():
    with pytest.raises(EngineError) as err:
        eng.resolve_engine("containerd")
    assert "expected docker or podman" in str(err.value)


def test_autodetect_without_any_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError) as err:
        eng.resolve_engine(None)
    assert "no usable container engine" in str(err.value)


def test_autodetect_falls_back_to_podman_when_docker_daemon_is_down(tmp_path, monkeypatch):
    # Real executables standing in for the CLIs: docker's daemon does not answer, podman does.
    for name, script in {
        "docker": "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n",
        "podman": "#!/bin/sh\necho 4.3.1\n",
    }.items():
        path = tmp_path / name
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + "/usr/bin:/bin")
    engine = eng.resolve_engine(None)
    assert engine.name == "podman" and engine.binary == str(tmp_path / "podman")
    with pytest.raises(EngineError) as err:
        eng.resolve_engine("docker")
    assert "does not answer" in str(err.value) and "Cannot connect" in str(err.value)
