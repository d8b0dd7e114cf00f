"""--builder: the endpoint forms, the option's spellings, and how a matrix cell is told its builder."""

import pytest
from invoke import Collection, Program, task

from tflite_forge.builders import parse_builder, parse_builders
from tflite_forge.cli import ChainExecutor
from tflite_forge.engine import EngineConfig
from tflite_forge.errors import ConfigError
from tflite_forge.remote import localize
from tflite_forge import container as ct
from tflite_forge.settings import resolve


@pytest.mark.parametrize("text, engine, flags", [
    ("unix:///run/other.sock", "docker", ("--host", "unix:///run/other.sock")),
    ("ssh://builder@10.0.0.7", "docker", ("--host", "ssh://builder@10.0.0.7")),
    ("ssh://builder@10.0.0.7:2222", "docker", ("--host", "ssh://builder@10.0.0.7:2222")),
    ("tcp://10.0.0.7:2376", "docker", ("--host", "tcp://10.0.0.7:2376")),
    ("podman+unix:///run/podman/podman.sock", "podman", ("--remote", "--url", "unix:///run/podman/podman.sock")),
    ("podman+ssh://me@host/run/user/1000/podman/podman.sock", "podman",
     ("--remote", "--url", "ssh://me@host/run/user/1000/podman/podman.sock")),
    ("farm-1", "docker", ("--context", "farm-1")),
])
def test_every_endpoint_form_names_its_cli_and_flags(text, engine, flags):
    spec = parse_builder(text)
    assert (spec.text, spec.engine, spec.flags) == (text, engine, flags)


@pytest.mark.parametrize("text, says", [
    ("unix://run/x.sock", "absolute path"),
    ("ssh://", "no host"),
    ("tcp://10.0.0.7", "needs a port"),
    ("tcp://10.0.0.7:99999", "port"),
    ("http://10.0.0.7:2375", "unknown scheme"),
    ("podman+tcp://h:1", "podman"),
    ("not a context", "not a builder"),
])
def test_a_bad_builder_is_one_line_naming_it_and_the_forms(text, says):
    with pytest.raises(ConfigError) as err:
        parse_builder(text)
    assert says in str(err.value) and repr(text) in str(err.value) and "\n" not in str(err.value)
    assert "unix:///path/to/docker.sock" in str(err.value)


def test_the_same_builder_twice_is_refused():
    with pytest.raises(ConfigError, match="given twice"):
        parse_builders(["unix:///run/a.sock", "unix:///run/a.sock"])


def test_flag_beats_environment_beats_invoke_yaml_and_each_is_named_in_errors():
    assert resolve({"builder": ["farm-1"]}, {"builders": ["farm-2"]},
                   environ={"TFLITE_FORGE_BUILDERS": "farm-3"}).builders == ("farm-1",)
    assert resolve({}, {"builders": ["farm-2"]}, environ={"TFLITE_FORGE_BUILDERS": "farm-3, unix:///s"}).builders \
        == ("farm-3", "unix:///s")
    assert resolve({}, {"builders": ["farm-2"]}, environ={}).builders == ("farm-2",)
    with pytest.raises(ConfigError, match="^TFLITE_FORGE_BUILDERS 'ssh://'"):
        resolve({}, environ={"TFLITE_FORGE_BUILDERS": "ssh://"})
    with pytest.raises(ConfigError, match="^invoke.yaml tflite_forge.builders"):
        resolve({}, {"builders": ["tcp://h"]}, environ={})


def test_engine_argv_puts_the_endpoint_before_the_command():
    engine = EngineConfig(name="docker", binary="/usr/bin/docker", flags=("--host", "ssh://b@h"), endpoint="ssh://b@h")
    assert engine.argv("volume", "ls") == ["/usr/bin/docker", "--host", "ssh://b@h", "volume", "ls"]
    assert engine.remote and engine.title == "ssh://b@h"
    local = EngineConfig(name="docker", binary="/usr/bin/docker")
    assert local.argv("ps") == ["/usr/bin/docker", "ps"] and not local.remote


def test_this_host_s_engine_keeps_its_bind_mounts():
    spec = ct.ContainerSpec(image="i", purpose="p", mounts=(ct.Mount(source="/src", target="/src", read_only=True),
                                                            ct.Mount(source="/tmp/out", target="/out")))
    local = localize(EngineConfig(name="docker", binary="/usr/bin/docker"), spec)
    assert local.spec is spec and local.out_volume is None and local.shipped == ()


def test_a_matrix_cell_gets_exactly_its_one_builder_on_a_task_that_takes_it(monkeypatch):
    """The cell's argv carries --builder=<its builder> once; the others given to the matrix are not passed on."""
    seen = {}

    def fake_run_matrix(cells, chain_argv, **kw):
        seen["builders"] = kw["builders"]
        seen["argv"] = chain_argv(cells[0], builder="unix:///run/b.sock")
        seen["plain"] = chain_argv(cells[0])
        return []

    monkeypatch.setattr("tflite_forge.matrix.run_matrix", fake_run_matrix)

    @task(help={"version": "v", "arch": "a", "builder": "b"}, iterable=["builder"])
    def build(c, version=None, arch=None, builder=None):
        """b"""

    @task(help={"version": "v", "arch": "a", "builder": "b"}, iterable=["builder"])
    def package(c, version=None, arch=None, builder=None):
        """p"""

    prog = Program(namespace=Collection(build, package), executor_class=ChainExecutor, name="t", binary="t")
    prog.run(["t", "build", "package", "--version", "2.16.1", "--arch", "x86_64,aarch64",
              "--builder", "unix:///run/a.sock", "--builder", "unix:///run/b.sock"], exit=False)
    assert seen["builders"] == ("unix:///run/a.sock", "unix:///run/b.sock")
    assert [a for a in seen["argv"] if a.startswith("--builder")] == ["--builder=unix:///run/b.sock"]
    assert not [a for a in seen["plain"] if a.startswith("--builder")]
