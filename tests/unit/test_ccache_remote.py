"""The shared compile cache's option, decisions and statistics (no engine; a real redis-server on a
unix socket where a cache must answer)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cells import cell_of
from tests.redis_server import Staller, redis_server, short_dir
from tflite_forge import ccache_remote as cr
from tflite_forge import container as ct
from tflite_forge import engine as eng
from tflite_forge.doctor import FAIL, OK, check_ccache_remote
from tflite_forge.errors import ConfigError
from tflite_forge.matrix import inputs_digest
from tflite_forge.settings import resolve

ROOT = Path(__file__).resolve().parents[2]
ENGINE = eng.EngineConfig(name="docker", binary="/usr/bin/docker", version="20.10.24")


@pytest.mark.parametrize("given, socket_path", [
    ("redis+unix:///run/redis/cache.sock", "/run/redis/cache.sock"),
    ("redis+unix:/run/redis/cache.sock", "/run/redis/cache.sock"),          # ccache's own spelling
    ("redis+unix://localhost/run/redis/cache.sock", "/run/redis/cache.sock"),
    ("  redis+unix:///tmp/a%20b.sock ", "/tmp/a b.sock"),
])
def test_accepted_forms_are_normalised(given, socket_path):
    remote = cr.parse(given)
    assert remote.socket_path == socket_path
    assert remote.url == f"redis+unix://{socket_path}"
    assert cr.parse(remote.url) == remote


@pytest.mark.parametrize("given, says", [
    ("redis://cache.example:6380", "socat UNIX-LISTEN:/run/tflite-forge-cache.sock,fork,mode=666 TCP:cache.example:6380"),
    ("rediss://cache.example", "TCP:cache.example:6379"),
    ("http://cache.example:8080/ccache", "ccache's HTTP storage connects over TCP"),
    ("https://cache.example/ccache", "--network=none"),
    ("redis+unix://cache.example/run/x.sock", "only a socket path is accepted"),
    ("redis+unix:///run/x.sock?db=2", "only a socket path is accepted"),
    ("redis+unix://user:pw@/run/x.sock", "only a socket path is accepted"),
    ("redis+unix:relative.sock", "must be absolute"),
    ("redis+unix:///run/../etc/x.sock", "must be absolute and normalised"),
    ("redis+unix:///run/a,b.sock", "--mount option cannot carry"),
    ("file:///srv/ccache", "unsupported cache URL"),
    ("/run/redis.sock", "unsupported cache URL"),
])
def test_refused_forms_say_why_and_what_is_accepted_in_one_line(given, says):
    with pytest.raises(ConfigError) as err:
        cr.parse(given)
    text = str(err.value)
    assert says in text and given.strip() in text and "\n" not in text
    assert err.value.exit_code == 2


def test_option_precedence_and_the_spelling_in_errors():
    url = "redis+unix:///run/flag.sock"
    env = {"TFLITE_FORGE_CCACHE_REMOTE": "redis+unix:/run/env.sock"}
    cfg = {"ccache_remote": "redis+unix:///run/cfg.sock"}
    assert resolve({"ccache_remote": url}, cfg, env).ccache_remote == url
    assert resolve({}, cfg, env).ccache_remote == "redis+unix:///run/env.sock"      # normalised
    assert resolve({}, cfg, {}).ccache_remote == "redis+unix:///run/cfg.sock"
    assert resolve({}, {}, {}).ccache_remote is None
    with pytest.raises(ConfigError, match=r"^TFLITE_FORGE_CCACHE_REMOTE 'redis://h:1'"):
        resolve({}, {}, {"TFLITE_FORGE_CCACHE_REMOTE": "redis://h:1"})
    with pytest.raises(ConfigError, match=r"^invoke.yaml tflite_forge.ccache_remote 'http://h/'"):
        resolve({}, {"ccache_remote": "http://h/"}, {})
    with pytest.raises(ConfigError, match=r"^--ccache-remote 'redis\+unix:x'"):
        resolve({"ccache_remote": "redis+unix:x"}, {}, {})


def test_a_bad_url_on_the_command_line_is_one_line_exit_2_before_anything_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "invoke", "build", "--ccache-remote", "redis://cache:6379"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TFLITE_FORGE_WORK_DIR": str(tmp_path)})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("tflite-forge: --ccache-remote 'redis://cache:6379': a TCP Redis")
    assert not any(tmp_path.iterdir()), "nothing may be written"


def test_container_access_mounts_the_one_socket_read_only_with_short_timeouts():
    remote = cr.parse("redis+unix:///run/team/ccache.sock")
    access = cr.container_access(remote, ENGINE)
    # engine_host: on a builder the socket is that machine's own, bound there, not shipped like a tree.
    assert access.mounts == (ct.Mount(source="/run/team/ccache.sock", target=cr.SOCKET, read_only=True,
                                      engine_host=True),)
    env = dict(access.env)
    assert env == {"CCACHE_REMOTE_STORAGE": f"redis+unix://{cr.SOCKET}|connect-timeout=100|operation-timeout=500"}
    spec = ct.ContainerSpec(image="img", purpose="build-x86_64", env=(("CCACHE_DIR", "/ccache"),))
    with_cache = cr.with_access(spec, access)
    assert with_cache.network == "none" and with_cache.mounts == access.mounts
    assert dict(with_cache.env) == {"CCACHE_DIR": "/ccache", "CCACHE_STATSLOG": cr.STATS_LOG, **env}
    flags = ct.run_flags(ENGINE, with_cache, "n")
    assert f"type=bind,source=/run/team/ccache.sock,target={cr.SOCKET},ro" in flags
    # Without a remote cache only the stats log is added: the local ccache is still counted.
    assert cr.with_access(spec, None) == ct.ContainerSpec(
        image="img", purpose="build-x86_64", env=(("CCACHE_DIR", "/ccache"), ("CCACHE_STATSLOG", cr.STATS_LOG)))


STATS_LOG = """# /src/tensorflow/a.cc
cache_miss
direct_cache_miss
local_storage_miss
local_storage_read_miss
remote_storage_miss
remote_storage_read_miss
remote_storage_write
# /src/tensorflow/b.cc
# /src/tensorflow/c.cc
direct_cache_hit
direct_cache_hit
remote_storage_hit
local_storage_hit
remote_storage_read_hit
# /src/tensorflow/d.cc
cache_miss
remote_storage_error
# /src/tensorflow/e.cc
cache_miss
remote_storage_timeout
"""


def test_stats_log_counts_each_counter_line_even_when_blocks_interleave():
    stats = cr.parse_stats_log(STATS_LOG)
    assert stats == cr.CcacheStats(compilations=5, local_hits=1, remote_hits=1, misses=3, remote_misses=1,
                                   remote_errors=1, remote_timeouts=1)
    assert cr.parse_stats_log("") == cr.CcacheStats()


def test_run_record_and_warnings():
    remote = cr.parse("redis+unix:///run/c.sock")
    access = cr.container_access(remote, ENGINE)
    stats = cr.parse_stats_log(STATS_LOG)
    record = cr.run_record(stats, access, configured=remote, problem=None)
    assert record["ccache"]["remote_hits"] == 1 and record["remote"]["used"] is True
    assert record["remote"]["configured"] == "redis+unix:///run/c.sock"
    dropped = cr.run_record(stats, None, configured=remote, problem="cannot connect: Connection refused")
    assert dropped["remote"]["used"] is False and dropped["remote"]["problem"].startswith("cannot connect")
    warning = cr.after_build_warning(remote, stats)
    assert warning.startswith("tflite-forge: warning: compile cache redis+unix:///run/c.sock: 1 error(s) and 1 "
                              "timeout(s)") and "\n" not in warning
    assert cr.after_build_warning(remote, cr.CcacheStats(remote_hits=4)) is None
    assert "\n" not in cr.probe_warning(remote, "no answer within 2 s")


def test_ping_a_real_redis_then_a_stopped_one():
    with redis_server() as redis:
        problem, took = cr.ping(str(redis.socket))
        assert problem is None and took >= 0
        redis.stop()
        problem, _ = cr.ping(str(redis.socket))
        # redis-server removes its socket on a clean shutdown; a SIGKILLed one leaves it, refusing.
        assert problem is not None and ("No such file" in problem or "refused" in problem)


def test_ping_a_socket_that_never_answers_gives_up_after_the_timeout():
    with short_dir() as folder:
        path = folder / "stall.sock"
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(path))
            listener.listen(4)                      # accepted by the kernel, never answered
            problem, _ = cr.ping(str(path), timeout=0.3)
        assert problem == "no answer within 0.3 s"
        (folder / "file").write_text("x")
        assert cr.ping(str(folder / "file"))[0] == f"{folder / 'file'} is not a unix socket"


def test_a_staller_answers_the_probe_s_ping_only():
    with short_dir() as folder, Staller(folder / "s.sock") as staller:
        assert cr.ping(str(staller.path))[0] is None
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(0.3)
            sock.connect(str(staller.path))
            sock.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
            with pytest.raises(socket.timeout):
                sock.recv(16)


def test_the_build_user_must_be_able_to_connect():
    with short_dir() as folder:
        path = folder / "s.sock"
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(path))
            st = path.stat()
            path.chmod(0o700)
            assert cr.connect_problem(str(path), st.st_uid, st.st_gid) is None
            problem = cr.connect_problem(str(path), st.st_uid + 4242, st.st_gid + 4242)
            assert problem and "may not connect" in problem and "unixsocketperm 777" in problem
            path.chmod(0o777)
            assert cr.connect_problem(str(path), st.st_uid + 4242, st.st_gid + 4242) is None


def test_doctor_row_for_the_compile_cache():
    (row,) = check_ccache_remote(resolve({}, {}, {}))
    assert row.status == OK and "not configured" in row.detail
    with redis_server() as redis:
        (row,) = check_ccache_remote(resolve({"ccache_remote": redis.url}, {}, {}))
        assert row.status == OK and "answers PING" in row.detail
        redis.stop()
        (row,) = check_ccache_remote(resolve({"ccache_remote": redis.url}, {}, {}))
        assert row.status == FAIL and redis.url in row.detail and "unixsocket" in row.fix


def test_resume_digest_ignores_the_cache_url():
    """--resume: a cell packaged with one cache URL (or none) is the same inputs with another."""
    cell = cell_of("2.16.1", "aarch64")
    plain = ["invoke", "fetch", "build", "package", "--arch=aarch64"]
    assert inputs_digest(cell, plain) == inputs_digest(cell, plain + ["--ccache-remote=redis+unix:///run/a.sock"])
    assert inputs_digest(cell, plain) != inputs_digest(cell, plain + ["--jobs=1"])
