"""The shared compile cache (--ccache-remote) with real docker, a real redis-server on a unix socket and
the miniature TensorFlow.

- an empty local ccache and a warm remote one: the build hits remotely, and gives the same library;
  a no-op build stays a no-op whatever the cache URL;
- a cache that is gone before the build, stopped mid-build, or up but stalling every request: the
  build succeeds, with one warning line, and the run record says what happened;
- from inside the build container nothing but the one socket is reachable.

Each test's recipe carries its own unused CMake option, so its cell has its own key and its own local
ccache volume (removed afterwards); other builds on the shared engine are never touched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.redis_server import Staller, redis_server, short_dir
from tflite_forge.workspace import Cell
from tflite_forge import build_plan, pipeline
from tflite_forge import ccache_remote as cr
from tflite_forge import container as ct
from tflite_forge import engine as eng
from tflite_forge.arches import resolve_arch

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ARCH = "x86_64"           # native: sources, configure, build, collect (every compile in the build step)
WARNING = "warning: compile cache"


@dataclasses.dataclass
class CacheCell:
    recipe: Path
    miniature: object
    engine: eng.EngineConfig
    root: Path

    def env(self, work: Path) -> dict:
        return {**self.miniature.env, "TFLITE_FORGE_WORK_DIR": str(work)}

    def argv(self, *extra: str) -> list[str]:
        return ["build", f"--arch={ARCH}", "--engine=docker", f"--recipe={self.recipe}",
                f"--rewrite=https://={self.miniature.base_url}", *extra]

    def build(self, forge, work: Path, *extra: str):
        return forge(*self.argv(*extra), env=self.env(work))

    def record(self, work: Path) -> dict:
        (path,) = (work / "logs").glob(f"build-*-{ARCH}.run.json")
        return json.loads(path.read_text())

    def library(self, work: Path) -> bytes:
        lib = next((work / "out").glob(f"*-{ARCH}")) / "lib"
        (real,) = [p for p in lib.iterdir() if p.is_file() and not p.is_symlink()]
        return real.read_bytes()

    def ccache_volumes(self) -> list[str]:
        key = self.key()
        return ct.list_volumes(self.engine, (("io.tflite-forge.kind", "ccache"), ("io.tflite-forge.key", key))) if key else []

    def key(self) -> str | None:
        stamps = sorted(self.root.glob("*/stamps/*.json"))
        return stamps[0].stem if stamps else None


@pytest.fixture
def cell(miniature, base_image_docker, docker_engine, tmp_path, forge):
    """A copy of the miniature's recipe with a nonce option: a cell (and local ccache volume) of its own."""
    folder = tmp_path / "recipe"
    folder.mkdir()
    text = miniature.recipe.read_text()
    marker = "[build.cmake_options]"
    nonce = f'TFLITE_FORGE_TEST_NONCE = "{secrets.token_hex(4)}"'
    text = text.replace(marker, f"{marker}\n{nonce}") if marker in text else text + f"\n{marker}\n{nonce}\n"
    recipe = folder / miniature.recipe.name
    recipe.write_text(text)
    Path(f"{recipe}.lock").write_text(Path(f"{miniature.recipe}.lock").read_text())
    patches = miniature.recipe.parent / "patches"
    if patches.exists():
        (folder / "patches").symlink_to(patches)
    made = CacheCell(recipe=recipe, miniature=miniature, engine=docker_engine, root=tmp_path)
    yield made
    volumes = made.ccache_volumes()          # found through the stamps, which clean removes
    for work in sorted(p.parent for p in tmp_path.glob("*/stamps")):
        forge("clean", "--build", "--engine=docker", env=made.env(work))
    ct.remove_volumes(docker_engine, volumes, keep_in_use=True)


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if WARNING in line]


def test_empty_local_ccache_hits_the_warm_remote_and_builds_the_same_library(cell, forge, tmp_path):
    with redis_server() as redis:
        first = cell.build(forge, tmp_path / "a", f"--ccache-remote={redis.url}")
        assert first.returncode == 0, first.stdout + first.stderr
        assert not warnings(first.stderr), first.stderr
        a = cell.record(tmp_path / "a")
        assert a["remote"] == {**a["remote"], "configured": redis.url, "used": True, "problem": None}
        assert a["ccache"]["misses"] > 0 and a["ccache"]["remote_misses"] > 0 and a["ccache"]["remote_hits"] == 0
        assert redis.keys() > 0, "the build wrote its objects to the remote cache"
        # An empty local ccache (this cell's own volume) and a fresh work dir: only the remote is warm.
        (volume,) = cell.ccache_volumes()
        assert volume == f"tflite-forge-ccache-{a['key']}"
        ct.remove_volumes(cell.engine, [volume])
        second = cell.build(forge, tmp_path / "b", f"--ccache-remote={redis.url}")
        assert second.returncode == 0, second.stdout + second.stderr
        b = cell.record(tmp_path / "b")
        assert b["key"] == a["key"] and b["remote"]["used"] is True
        assert b["ccache"]["remote_hits"] > 0 and b["ccache"]["local_hits"] == 0
        assert b["ccache"]["misses"] == 0, b["ccache"]
        assert cell.library(tmp_path / "b") == cell.library(tmp_path / "a")
        info = (next((tmp_path / "b" / "out").glob(f"*-{ARCH}")) / "build-info.json").read_text()
        assert "remote" not in info and "hits" not in info, "build-info.json (packaged) carries no run counts"
    # The cache never changes what is built: another URL, a dead one, or none is still a no-op.
    for extra in ([f"--ccache-remote=redis+unix://{tmp_path}/elsewhere.sock"], []):
        again = cell.build(forge, tmp_path / "b", *extra)
        assert again.returncode == 0 and f"{ARCH}: up to date" in again.stdout, again.stdout + again.stderr
        assert not warnings(again.stderr)


def test_a_cache_gone_before_the_build_is_one_warning_and_a_local_build(cell, forge, tmp_path):
    missing = f"redis+unix://{tmp_path}/no-redis-here.sock"
    proc = cell.build(forge, tmp_path / "w", f"--ccache-remote={missing}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = warnings(proc.stderr)
    assert missing in line and "building with the local ccache only" in line
    record = cell.record(tmp_path / "w")
    assert record["remote"]["used"] is False and "could not mount" in record["remote"]["problem"]
    assert record["ccache"]["misses"] > 0 and record["ccache"]["remote_errors"] == 0


def test_redis_stopped_mid_build_the_build_succeeds_with_one_warning(cell, forge, tmp_path):
    work = tmp_path / "w"
    with redis_server() as redis:
        proc = subprocess.Popen([sys.executable, "-m", "invoke", *cell.argv(f"--ccache-remote={redis.url}")],
                                cwd=REPO, env={**os.environ, **cell.env(work)}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 600
            # Configure starts after the probe answered, and before the first compile: stop Redis there.
            while not any("# step configure:" in p.read_text(errors="replace")
                          for p in (work / "logs").glob(f"build-*-{ARCH}.log")):
                assert proc.poll() is None, f"the build ended before configure: {proc.communicate()}"
                assert time.monotonic() < deadline, "the build never reached configure"
                time.sleep(0.05)
            redis.stop()
            stdout, stderr = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stdout + stderr
    (line,) = warnings(stderr)
    assert "error(s)" in line and redis.url in line
    record = cell.record(work)
    assert record["remote"]["used"] is True
    assert record["ccache"]["remote_errors"] + record["ccache"]["remote_timeouts"] > 0
    assert record["ccache"]["misses"] > 0 and record["ccache"]["remote_hits"] == 0


def test_a_cache_that_stalls_every_request_does_not_stall_the_build(cell, forge, tmp_path):
    """The staller answers the probe's PING, then never answers ccache: each request ends at ccache's
    operation timeout, and the build finishes (no wall time asserted: bench/ measures speed)."""
    with short_dir() as folder, Staller(folder / "stall.sock") as staller:
        proc = cell.build(forge, tmp_path / "w", f"--ccache-remote={staller.url}")
        requests = staller.requests
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = warnings(proc.stderr)
    assert staller.url in line
    assert requests > 0, "ccache did ask the stalled cache"
    record = cell.record(tmp_path / "w")
    assert record["remote"]["used"] is True
    assert record["ccache"]["remote_errors"] + record["ccache"]["remote_timeouts"] > 0
    assert record["ccache"]["remote_hits"] == 0 and record["ccache"]["misses"] > 0


def _host_addresses() -> list[str]:
    """This host's IPv4 addresses: loopback and every global one (the engine's bridge gateway among them)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    return ["127.0.0.1"] + [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]


TCP_PROBE = ('use IO::Socket::INET; my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], '
             'Timeout => 3); print($s ? "connected\\n" : "refused: $!\\n")')


def test_from_inside_the_build_container_only_the_socket_is_reachable(cell, docker_engine, tmp_path):
    from tflite_forge.recipe import load_recipe
    from tflite_forge.settings import resolve

    mini = cell.miniature
    with redis_server() as redis, socket.socket() as listener:
        settings = resolve({"recipe": str(cell.recipe), "engine": "docker", "rewrite": [f"https://={mini.base_url}"],
                            "cache_dir": str(mini.cache_dir), "ccache_remote": redis.url},
                           {"work_dir": str(tmp_path / "w")}, environ={})
        result = pipeline.build_cell(settings, Cell(load_recipe(cell.recipe), resolve_arch(ARCH)), docker_engine)
        assert cell.record(tmp_path / "w")["remote"]["used"] is True
        # The build container exactly as execute() starts it: the plan's spec plus the cache's access
        # (its staging folder, renamed into the result by now, replaced by an empty one).
        staging = tmp_path / "staging"
        staging.mkdir()
        planned = dataclasses.replace(result.plan.spec, mounts=tuple(
            dataclasses.replace(m, source=str(staging)) if m.target == build_plan.OUT else m
            for m in result.plan.spec.mounts))
        spec = cr.with_access(planned, cr.container_access(cr.parse(redis.url), docker_engine))
        listener.bind(("0.0.0.0", 0))
        listener.listen(8)
        addresses, port = _host_addresses(), str(listener.getsockname()[1])
        with ct.Container(docker_engine, spec) as box:
            def run(*argv: str) -> str:
                done = box.call(list(argv), capture=True)
                assert done.returncode == 0, done
                return done.stdout

            assert run("ls", "/sys/class/net").split() == ["lo"]
            # stat every path (find's -type trusts readdir's d_type, and the mount point under the socket
            # is a plain file), following links: a link to a socket elsewhere would be reachable too.
            found = run("sh", "-c", "find / \\( -path /proc -o -path /sys \\) -prune -o -print0 2>/dev/null "
                                    "| xargs -0 stat -L -c '%F %n' 2>/dev/null | grep '^socket '; true")
            assert found.split() == ["socket", cr.SOCKET]
            assert run("perl", "-e", cr.PROBE_SCRIPT, cr.SOCKET, "2").strip() == "+PONG"
            for address in addresses:   # the host's listener, on any of its addresses: not from in here
                assert run("perl", "-e", TCP_PROBE, address, port).startswith("refused: "), address
            targets = {line.split()[4] for line in run("cat", "/proc/self/mountinfo").splitlines()}
        outside = {t for t in targets if not t.startswith(("/proc", "/sys", "/dev"))}
        expected = {m.target for m in spec.mounts} | {"/", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
        assert outside == expected
        assert [m for m in spec.mounts if m.target == cr.SOCKET] == [
            ct.Mount(source=str(redis.socket), target=cr.SOCKET, read_only=True, engine_host=True)]
        # Control: the same probe in the host's network namespace reaches the listener on every address.
        control = dataclasses.replace(spec, network="host", mounts=())
        for address in addresses:
            done = ct.run_container(docker_engine, control, ["perl", "-e", TCP_PROBE, address, port], timeout=120)
            assert done.stdout.strip() == "connected", (address, done)
