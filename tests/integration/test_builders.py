"""--builder with real engines on this machine: the second dockerd ci/setup-host.sh starts (its own
socket, data root and exec root), this host's dockerd addressed as a builder, and a throw-away dockerd
a test kills in the middle of a cell."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.ci import unavailable
from tflite_forge import container as ct
from tflite_forge import engine as eng
from tflite_forge import image_io
from tflite_forge import remote
from tflite_forge.build_plan import work_id
from tflite_forge.builders import parse_builder
from tflite_forge.errors import EngineError

SECOND = "unix:///run/tflite-forge-docker2.sock"
HOME = "unix:///var/run/docker.sock"
PODMAN = "podman+unix:///run/tflite-forge-podman.sock"


def _builder(text: str) -> eng.EngineConfig:
    try:
        return eng.resolve_builder(parse_builder(text))
    except EngineError as err:
        unavailable(f"builder {text} is not usable ({err}); run ci/setup-host.sh (it starts the second dockerd)")


@pytest.fixture(scope="module")
def second(docker_engine) -> eng.EngineConfig:
    return _builder(SECOND)


def _ours(engine: eng.EngineConfig, work: Path) -> list[str]:
    """This test's containers (the daemons are shared with whatever else runs here)."""
    return ct.list_containers(engine, (("io.tflite-forge.work", work_id(work)),))


def _out_volumes(engine: eng.EngineConfig, work: Path) -> list[str]:
    return ct.list_volumes(engine, (remote.OUT_KIND, ("io.tflite-forge.work", work_id(work))))


def _lib_sha(tarball: Path) -> str:
    with tarfile.open(tarball) as tar:
        member = next(m for m in tar.getmembers() if m.isfile() and re.search(r"libtensorflowlite_c\.so\.\d", m.name))
        return hashlib.sha256(tar.extractfile(member).read()).hexdigest()


def _matrix_env(miniature, tmp_path: Path, name: str) -> dict:
    return {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / f"work-{name}"),
            "TFLITE_FORGE_DIST_DIR": str(tmp_path / f"dist-{name}")}


def test_a_matrix_spreads_over_two_builders_and_gives_this_host_s_bytes(miniature, base_image_docker, docker_engine,
                                                                        second, forge, tmp_path):
    env = _matrix_env(miniature, tmp_path, "two")
    proc = forge("fetch", "build", "package", "--arch=x86_64,aarch64", f"--builder={SECOND}", f"--builder={HOME}",
                 *miniature.args, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    # Each builder ran one cell (one cell at a time each, two cells): the board says which.
    ran = {cell: builder for cell, builder in re.findall(r"matrix: 2\.16\.1/(\w+): ok \(package\) on (\S+)", out)}
    assert sorted(ran) == ["aarch64", "x86_64"] and sorted(ran.values()) == sorted([SECOND, HOME]), out
    dist = Path(env["TFLITE_FORGE_DIST_DIR"])
    for arch in ("x86_64", "aarch64"):
        tarball = dist / f"libtensorflowlite_c-2.16.1-linux-{arch}.tar.gz"
        forge("verify", str(tarball), f"--arch={arch}", check=True)
    # The same cell built by this host's engine the usual way (bind mounts): the same library bytes.
    local = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / "work-local"),
             "TFLITE_FORGE_DIST_DIR": str(tmp_path / "dist-local")}
    forge("package", "--arch=x86_64", "--engine=docker", *miniature.args, env=local, check=True, timeout=1800)
    name = "libtensorflowlite_c-2.16.1-linux-x86_64.tar.gz"
    assert _lib_sha(dist / name) == _lib_sha(tmp_path / "dist-local" / name)
    assert (dist / name).read_bytes() == (tmp_path / "dist-local" / name).read_bytes(), "the same release tarball"
    # Every builder got the builder image with this host's image ID, and nothing is left running or half-made.
    tag = json.loads((Path(env["TFLITE_FORGE_WORK_DIR"]) / "out" / "tensorflow-2.16.1-x86_64" /
                      "build-info.json").read_text())["builder_image"]
    assert image_io.image_id(second, tag["tag"]) == image_io.image_id(docker_engine, tag["tag"]) == tag["id"]
    for engine in (docker_engine, second):
        work = Path(env["TFLITE_FORGE_WORK_DIR"])
        assert not _ours(engine, work) and not _out_volumes(engine, work)
    assert not list((Path(env["TFLITE_FORGE_WORK_DIR"]) / "out").glob(".staging-*"))


def test_a_second_run_on_the_builder_is_a_check_and_clean_empties_the_builder(miniature, base_image_docker, second,
                                                                             forge, tmp_path):
    env = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / "work")}
    forge("build", "--arch=x86_64", f"--builder={SECOND}", *miniature.args, env=env, check=True)
    again = forge("build", "--arch=x86_64", f"--builder={SECOND}", *miniature.args, env=env, check=True)
    assert "up to date" in again.stdout and "copying" not in again.stderr
    # A changed tree (a new mtime on one file) is shipped again, as a new volume; the old one is not reused.
    shipped_before = set(ct.list_volumes(second, (remote.SOURCE_KIND,)))
    forge("build", "--arch=x86_64", f"--builder={SECOND}", "--force", *miniature.args, env=env, check=True)
    assert set(ct.list_volumes(second, (remote.SOURCE_KIND,))) == shipped_before, "same trees, same volumes"
    proc = forge("clean", "--build", f"--builder={SECOND}", env=env, check=True)
    assert f"on builder {SECOND}:" in proc.stdout
    mine = work_id(Path(env["TFLITE_FORGE_WORK_DIR"]))
    assert not ct.list_volumes(second, (("io.tflite-forge.kind", "build"), ("io.tflite-forge.work", mine)))


def test_a_podman_service_builds_the_same_library(miniature, base_image_docker, docker_engine, forge, tmp_path):
    """podman+unix://: the podman CLI against `podman system service` (started by ci/setup-host.sh);
    the image is docker's, loaded with its ID, and the library has the bytes of a local docker build."""
    podman = _builder(PODMAN)
    builds = {}
    for name, flags in (("podman", [f"--builder={PODMAN}"]), ("local", ["--engine=docker"])):
        env = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / f"work-{name}")}
        forge("build", "--arch=x86_64", *flags, *miniature.args, env=env, check=True)
        out = tmp_path / f"work-{name}" / "out" / "tensorflow-2.16.1-x86_64"
        builds[name] = (json.loads((out / "build-info.json").read_text()),
                        hashlib.sha256((out / "lib" / "libtensorflowlite_c.so.2.16.1").read_bytes()).hexdigest())
    assert builds["podman"][1] == builds["local"][1]
    assert builds["podman"][0]["builder_image"] == builds["local"][0]["builder_image"]
    work = tmp_path / "work-podman"
    assert not _ours(podman, work) and not _out_volumes(podman, work)


SSH = "ssh://root@tflite-forge-ssh-builder"   # this host's dockerd through docker's ssh transport (setup-host)


@pytest.fixture
def context(second):
    """A docker context naming the second dockerd, removed afterwards."""
    name = f"tflite-forge-test-{secrets.token_hex(3)}"
    subprocess.run(["docker", "context", "create", name, "--docker", f"host={SECOND}"], check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "context", "rm", "-f", name], capture_output=True)


@pytest.mark.parametrize("form", ["ssh", "context"])
def test_the_ssh_and_context_forms_build_the_same_library(form, miniature, base_image_docker, docker_engine, forge,
                                                        tmp_path, request):
    builder = SSH if form == "ssh" else request.getfixturevalue("context")
    engine = _builder(builder)
    builds = {}
    for name, flags in ((form, [f"--builder={builder}"]), ("local", ["--engine=docker"])):
        env = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / f"work-{name}")}
        proc = forge("build", "--arch=x86_64", *flags, *miniature.args, env=env, check=True)
        lib = tmp_path / f"work-{name}" / "out" / "tensorflow-2.16.1-x86_64" / "lib" / "libtensorflowlite_c.so.2.16.1"
        builds[name] = hashlib.sha256(lib.read_bytes()).hexdigest()
        if name == form:
            assert "copying" in proc.stderr, "a builder gets the trees as volumes, even one on this host"
    assert builds[form] == builds["local"]
    work = tmp_path / f"work-{form}"
    assert not _ours(engine, work) and not _out_volumes(engine, work)


def test_an_interrupted_fill_is_redone_not_used(second, base_image_docker, docker_engine, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a\n")
    (tree / "sub" / "b.sh").write_text("#!/bin/sh\n")
    (tree / "sub" / "b.sh").chmod(0o755)
    os.symlink("a.txt", tree / "link")
    name = remote.source_volume(tree)
    image = next(ref for ref in image_io.list_images(second) if ref.startswith("tflite-forge/builder:"))
    ct.remove_volumes(second, [name, f"{name}-ok"])
    # What a fill killed half-way leaves: the volume with something in it, no -ok companion.
    ct.ensure_volume(second, name, (remote.SOURCE_KIND,))
    junk = ct.ContainerSpec(image=image, purpose="junk", mounts=(ct.Mount(source=name, target="/deps", volume=True),))
    ct.run_container(second, junk, ["sh", "-c", "echo half > /deps/a.txt; touch /deps/junk"])
    try:
        assert remote.ship_tree(second, image, tree, user="1000:1000") == name
        look = ct.ContainerSpec(image=image, purpose="look",
                                mounts=(ct.Mount(source=name, target="/t", volume=True, read_only=True),))
        listing = ct.run_container(second, look, ["sh", "-c", "cd /t && find . | sort && cat a.txt && "
                                                  "stat -c '%a %n' sub/b.sh && readlink link"]).stdout
        assert listing.split() == [".", "./a.txt", "./link", "./sub", "./sub/b.sh", "a", "755", "sub/b.sh", "a.txt"]
        assert ct.list_volumes(second, (remote.SOURCE_KIND,)).count(f"{name}-ok") == 1
    finally:
        ct.remove_volumes(second, [name, f"{name}-ok"])


def test_a_builder_that_does_not_answer_is_one_line(miniature, forge, tmp_path):
    env = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / "work")}
    proc = forge("build", "--arch=x86_64", f"--builder=unix://{tmp_path}/nothing.sock", *miniature.args, env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("tflite-forge: ") and "builder" in line]
    assert len(lines) == 1 and "does not answer" in lines[0] and "nothing.sock" in lines[0], proc.stderr
    bad = forge("build", "--arch=x86_64", "--builder=tcp://host-without-port", *miniature.args, env=env)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "needs a port" in bad.stderr


# ---------------------------------------------------------------- a builder that dies mid-cell

class Dockerd:
    """A throw-away dockerd of this test: own socket, data root, exec root; SIGKILLed on demand."""

    BRIDGE = "tfforge-br3"   # its own: a dockerd with --bridge=none deletes the host's docker0

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "d.sock"
        self.url = f"unix://{self.sock}"
        for sub in ("data", "exec"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        if subprocess.run(["ip", "link", "show", self.BRIDGE], capture_output=True).returncode != 0:
            for cmd in (["link", "add", self.BRIDGE, "type", "bridge"], ["addr", "add", "172.31.3.1/24", "dev", self.BRIDGE],
                        ["link", "set", self.BRIDGE, "up"]):
                subprocess.run(["ip", *cmd], check=True, capture_output=True)
        self.proc = subprocess.Popen(
            ["dockerd", "--host", self.url, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
             "--pidfile", str(root / "d.pid"), f"--bridge={self.BRIDGE}", "--iptables=false", "--ip-masq=false"],
            stdout=open(root / "dockerd.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not eng.builder_answers(self.engine(), timeout=5):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"the throw-away dockerd did not start: {(root / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.5)

    def engine(self) -> eng.EngineConfig:
        return eng.EngineConfig(name="docker", binary=shutil.which("docker") or "docker",
                               flags=("--host", self.url), endpoint=self.url)

    def container_pids(self) -> list[int]:
        proc = subprocess.run(["docker", "--host", self.url, "ps", "-q"], capture_output=True, text=True, timeout=30)
        pids = []
        for cid in proc.stdout.split():
            pid = subprocess.run(["docker", "--host", self.url, "inspect", "--format", "{{.State.Pid}}", cid],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
            if pid.isdigit() and int(pid) > 0:
                pids.append(int(pid))
        return pids

    def kill(self) -> None:
        """As a host dying would: the daemon and its containerd at once, then what they ran."""
        pids = self.container_pids()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        # Shims that outlived the daemon (they name its exec root on their command line).
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if str(self.root / "exec").encode() in (entry / "cmdline").read_bytes():
                        os.kill(int(entry.name), signal.SIGKILL)

    def remove(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith(str(self.root))]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        subprocess.run(["ip", "link", "delete", self.BRIDGE], capture_output=True)


@pytest.fixture
def doomed(docker_engine):
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        unavailable("a throw-away dockerd needs root and dockerd: run the tests as root after ci/setup-host.sh")
    daemon = Dockerd(Path("/tmp") / f"tf-dd-{secrets.token_hex(3)}")
    yield daemon
    daemon.remove()


def test_the_extra_daemons_leave_this_host_s_default_network_alone(docker_engine, base_image_docker, doomed):
    """A dockerd started with --bridge=none deletes docker0: the builds still run, but every container
    on the host's default network (the runtime images' tests) would fail to start."""
    image = next(ref for ref in image_io.list_images(docker_engine) if ref.startswith("tflite-forge/builder:"))
    spec = ct.ContainerSpec(image=image, purpose="bridge-check", network=None)
    proc = ct.run_container(docker_engine, spec, ["cat", "/sys/class/net/eth0/operstate"])
    assert proc.returncode == 0 and proc.stdout.strip() == "up", proc.stderr


def test_a_builder_killed_mid_cell_has_its_cell_retried_on_another(miniature, base_image_docker, second, doomed,
                                                                  tmp_path):
    env = {**os.environ, **_matrix_env(miniature, tmp_path, "doomed")}
    work = Path(env["TFLITE_FORGE_WORK_DIR"])
    argv = ["python3", "-m", "invoke", "fetch", "build", "package", "--arch=x86_64,aarch64",
            f"--builder={doomed.url}", f"--builder={SECOND}", *miniature.args]
    proc = subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        # The doomed builder takes the first cell (x86_64); kill it once that cell compiles there.
        log = work / "logs" / "matrix" / "tensorflow-2.16.1-x86_64.log"
        deadline = time.monotonic() + 900
        while not (log.exists() and re.search(r"x86_64: (configure|build)\b", log.read_text(errors="replace"))):
            assert proc.poll() is None and time.monotonic() < deadline, "the doomed builder never started compiling"
            time.sleep(0.2)
        assert doomed.url in log.read_text(errors="replace") or doomed.container_pids(), "the cell runs on it"
        doomed.kill()
        out, _ = proc.communicate(timeout=1800)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert re.search(rf"2\.16\.1/x86_64: \w+ .*\[retried: {re.escape(doomed.url)} stopped answering\]", out), out
    assert re.search(rf"2\.16\.1/x86_64: ok \(package\) on {re.escape(SECOND)}", out), out
    lost = list((work / "logs" / "matrix").glob("tensorflow-2.16.1-x86_64.lost-on-builder-*.log"))
    assert len(lost) == 1, "the lost attempt's log is kept beside the retry's"
    dist = Path(env["TFLITE_FORGE_DIST_DIR"])
    for arch in ("x86_64", "aarch64"):
        subprocess.run(["python3", "-m", "invoke", "verify", str(dist / f"libtensorflowlite_c-2.16.1-linux-{arch}.tar.gz"),
                        f"--arch={arch}"], cwd=Path(__file__).resolve().parents[2], check=True, capture_output=True)
    assert sorted(p.name for p in dist.iterdir() if p.is_file() and p.name != ".SHA256SUMS.lock") == [
        "SHA256SUMS", "libtensorflowlite_c-2.16.1-linux-aarch64-dbg.tar.gz",
        "libtensorflowlite_c-2.16.1-linux-aarch64.tar.gz", "libtensorflowlite_c-2.16.1-linux-x86_64-dbg.tar.gz",
        "libtensorflowlite_c-2.16.1-linux-x86_64.tar.gz"], "nothing half-copied in dist/"
    assert not list((work / "out").glob(".staging-*"))
    assert not _ours(second, work) and not _out_volumes(second, work)
