"""The shared compile cache: ccache's Redis remote storage behind one option, `--ccache-remote URL`.

The build container keeps `--network=none`, so the only way in is a unix socket: the URL must be
`redis+unix:///abs/path.sock`, a path on the engine's host, bind-mounted (that one file, read-only)
at SOCKET in the container. A Redis on another machine is reached through a socket proxy the team
runs on each docker host (`socat UNIX-LISTEN:...,fork TCP:redis:6379`) or Redis' own `unixsocket`.
TCP (`redis://`) and HTTP URLs are refused in one line saying so: either would need a network in the
container.

One job per function:

- `parse(url)` -> RemoteCache: the accepted form, or a one-line ConfigError naming the value;
- `container_access(remote, engine)` -> Access: the mount and the environment a build container on
  that engine needs (the socket path is resolved by the engine, on its own host);
- `probe(access, engine, ...)`: PING through that very mount, as the build user, in a throwaway
  container on the same engine (a missing socket would otherwise fail the build container's start);
  `ping(path)` does the same from this host (`invoke doctor`);
- `parse_stats_log(text)` -> CcacheStats: what ccache's stats log (CCACHE_STATSLOG) says one build
  did: local hits, remote hits, misses, remote errors and timeouts;
- `run_record(...)`: the JSON beside the build log; build-info.json cannot carry these counts (it is
  packaged into the reproducible tarball, and hits differ run by run).

A cache that is down or slow never fails a build: ccache's own connect and operation timeouts bound
every request, a failed probe drops the remote for that build (one warning line), and errors or
timeouts seen during the build give one warning line afterwards.
"""

from __future__ import annotations

import os
import socket
import stat
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, replace

from . import container as ct
from . import engine as eng
from .errors import ConfigError

SOCKET = "/run/tflite-forge/ccache.sock"         # where the build container sees the cache
STATS_LOG = "/tmp/tflite-forge-ccache-stats.log"  # in the container's own /tmp: this build's counters only
# ccache's Redis timeouts, in ms. Connecting to a unix socket is answered by the local kernel at once (or
# refused), so 100 ms (ccache's default) only matters for an overloaded host. An operation is a GET or
# SET of one object (a few KB to a few MB): through a local Redis or a socat hop on a LAN it takes
# milliseconds; 500 ms leaves room for a large object on a slow link, and bounds what a cache that
# accepts but stalls costs: at most that per compile (ccache's default, 10 s, would stall a build).
CONNECT_TIMEOUT_MS = 100
OPERATION_TIMEOUT_MS = 500
PROBE_TIMEOUT_S = 2                              # the PING before a build, and doctor's
ACCEPTED = "redis+unix:///abs/path.sock (a Redis unix socket on the engine's host)"
TCP_FIX = ("the build container has no network (--network=none), so it reaches a cache through a unix socket "
           "only: give the Redis a `unixsocket`, or run on each docker host "
           "`socat UNIX-LISTEN:/run/tflite-forge-cache.sock,fork,mode=666 TCP:{host}:{port}`, and pass "
           "--ccache-remote redis+unix:///run/tflite-forge-cache.sock")
# Perl is in every Debian image (perl-base is essential); the probe needs nothing else.
PROBE_SCRIPT = (
    'use IO::Socket::UNIX; $SIG{ALRM} = sub { print "no answer within $ARGV[1] s\\n"; exit 3 }; alarm $ARGV[1]; '
    'my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or do { print "cannot connect: $!\\n"; exit 2 }; '
    'print $s "PING\\r\\n"; my $r = <$s>; defined $r or do { print "closed without an answer\\n"; exit 4 }; '
    '$r =~ s/\\s+$//; print "$r\\n"; exit($r eq "+PONG" ? 0 : 5)')


@dataclass(frozen=True, kw_only=True)
class RemoteCache:
    url: str                  # normalised: redis+unix:///abs/path.sock
    socket_path: str          # the path on the engine's host


@dataclass(frozen=True, kw_only=True)
class Access:
    """What a build container on one engine needs to reach the cache."""
    remote: RemoteCache
    mounts: tuple[ct.Mount, ...]
    env: tuple[tuple[str, str], ...]


def parse(url: str, where: str = "--ccache-remote") -> RemoteCache:
    """The accepted form, or one ConfigError line naming the value, why, and what is accepted."""
    text = str(url).strip()
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError as exc:
        raise ConfigError(f"{where} {text!r}: not a URL ({exc}); expected {ACCEPTED}") from None
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss", "tcp"):
        try:
            host, port = parts.hostname or "REDIS-HOST", parts.port or 6379
        except ValueError:
            host, port = "REDIS-HOST", 6379
        raise ConfigError(f"{where} {text!r}: a TCP Redis is not reachable from the build container; "
                          + TCP_FIX.format(host=host, port=port))
    if scheme in ("http", "https"):
        raise ConfigError(f"{where} {text!r}: ccache's HTTP storage connects over TCP, and the build container "
                          f"has no network (--network=none); serve the cache from a Redis and pass {ACCEPTED}")
    if scheme != "redis+unix":
        raise ConfigError(f"{where} {text!r}: unsupported cache URL; expected {ACCEPTED}")
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ConfigError(f"{where} {text!r}: only a socket path is accepted (no host, user, password, ?db= or "
                          f"#...); expected {ACCEPTED}")
    path = urllib.parse.unquote(parts.path)
    if not path.startswith("/") or path != os.path.normpath(path) or path == "/":
        raise ConfigError(f"{where} {text!r}: the socket path must be absolute and normalised; expected {ACCEPTED}")
    if any(c in path for c in ",\0\n|"):
        raise ConfigError(f"{where} {text!r}: the socket path contains ',', '|' or a control character, which the "
                          "engine's --mount option cannot carry; move the socket to a plain path")
    return RemoteCache(url=f"redis+unix://{path}", socket_path=path)


def container_access(remote: RemoteCache, engine: eng.EngineConfig) -> Access:
    """The mount and environment for a build container on `engine`. The mount's source is resolved by
    the engine on its own host (for a remote engine, that machine's socket): only that one file is
    bind-mounted, read-only (a socket is still connectable), so nothing else of the host is reachable
    and the container cannot replace it. docker and podman take the same mount."""
    del engine   # same for both engines; the parameter keeps the decision per engine (remote builders)
    storage = (f"redis+unix://{SOCKET}|connect-timeout={CONNECT_TIMEOUT_MS}"
               f"|operation-timeout={OPERATION_TIMEOUT_MS}")
    return Access(remote=remote, mounts=(ct.Mount(source=remote.socket_path, target=SOCKET, read_only=True,
                                                  engine_host=True),),
                  env=(("CCACHE_REMOTE_STORAGE", storage),))


def with_access(spec: ct.ContainerSpec, access: Access | None) -> ct.ContainerSpec:
    """The build container's spec with the cache's mount and environment (and the stats log either way)."""
    extra_mounts = access.mounts if access else ()
    extra_env = (("CCACHE_STATSLOG", STATS_LOG),) + (access.env if access else ())
    return replace(spec, mounts=spec.mounts + extra_mounts, env=spec.env + extra_env)


def probe(access: Access, engine: eng.EngineConfig, *, image: str, user: str | None = None,
          userns: str | None = None) -> str | None:
    """PING the cache through the build container's mount, as the build user, on the build's engine:
    None when it answers +PONG, else why not (one phrase). Never raises for a cache problem."""
    spec = ct.ContainerSpec(image=image, purpose="ccache-probe", mounts=access.mounts, user=user, userns=userns,
                            network="none")
    try:
        proc = ct.run_container(engine, spec, ["perl", "-e", PROBE_SCRIPT, SOCKET, str(PROBE_TIMEOUT_S)],
                                timeout=120)
    except Exception as err:    # an engine that cannot even start the probe: the build will say more
        return f"the probe container did not run ({err})"
    if proc.returncode == 0:
        return None
    said = (proc.stdout or "").strip().splitlines()
    if said and proc.returncode in (2, 3, 4, 5):
        return said[-1] if proc.returncode != 5 else f"answered {said[-1]!r} instead of +PONG"
    # The engine itself refused (exit 125/126/127), e.g. the socket path does not exist on its host.
    return f"{engine.name} could not mount {access.remote.socket_path}: {eng.last_line(proc.stderr)}"


def ping(path: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[str | None, float]:
    """PING a Redis unix socket from this host: (None or why not, seconds taken)."""
    started = time.monotonic()
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        return f"{path}: {err.strerror}", 0.0
    if not stat.S_ISSOCK(mode):
        return f"{path} is not a unix socket", 0.0
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except socket.timeout:
        return f"no answer within {timeout:g} s", time.monotonic() - started
    except OSError as err:
        return f"cannot connect: {err.strerror or err}", time.monotonic() - started
    took = time.monotonic() - started
    if not answer:
        return "closed without an answer", took
    if not answer.startswith(b"+PONG"):
        return f"answered {answer.strip()[:40]!r} instead of +PONG", took
    return None, took


def connect_problem(path: str, uid: int, gid: int) -> str | None:
    """Can uid:gid (the build user; no capabilities in the container) connect to the socket? A socket
    needs write permission; root on the host passes where the build user would not."""
    try:
        st = os.stat(path)
    except OSError:
        return None          # ping says so
    if uid == st.st_uid:
        ok = st.st_mode & stat.S_IWUSR
    elif gid == st.st_gid:
        ok = st.st_mode & stat.S_IWGRP
    else:
        ok = st.st_mode & stat.S_IWOTH
    if ok:
        return None
    return (f"the build user {uid}:{gid} may not connect to {path} (mode {stat.S_IMODE(st.st_mode):o}, owner "
            f"{st.st_uid}:{st.st_gid}); make it connectable (`unixsocketperm 777` in redis.conf, socat `mode=666`)")


# ---------------------------------------------------------------- statistics

@dataclass(frozen=True, kw_only=True)
class CcacheStats:
    compilations: int = 0     # results ccache logged (cacheable or not)
    local_hits: int = 0
    remote_hits: int = 0
    misses: int = 0           # compiled for real
    remote_misses: int = 0
    remote_errors: int = 0
    remote_timeouts: int = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("compilations", "local_hits", "remote_hits", "misses",
                                              "remote_misses", "remote_errors", "remote_timeouts")}


def parse_stats_log(text: str) -> CcacheStats:
    """ccache's stats log: per result a `# <source>` line, then one counter name per line (a counter
    counted once per line). Lines are counted, not blocks: parallel compiles may interleave blocks."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    counts = Counter(line for line in lines if not line.startswith("#"))
    return CcacheStats(compilations=sum(1 for line in lines if line.startswith("#")),
                       local_hits=counts["local_storage_hit"], remote_hits=counts["remote_storage_hit"],
                       misses=counts["cache_miss"], remote_misses=counts["remote_storage_miss"],
                       remote_errors=counts["remote_storage_error"], remote_timeouts=counts["remote_storage_timeout"])


def run_record(stats: CcacheStats, access: Access | None, *, configured: RemoteCache | None,
               problem: str | None) -> dict:
    """The per-run record written beside the build log (never packaged)."""
    return {"format": 1, "ccache": stats.as_dict(),
            "remote": {"configured": configured.url if configured else None, "used": access is not None,
                       "problem": problem,
                       "connect_timeout_ms": CONNECT_TIMEOUT_MS, "operation_timeout_ms": OPERATION_TIMEOUT_MS}}


def probe_warning(remote: RemoteCache, problem: str) -> str:
    return (f"tflite-forge: warning: compile cache {remote.url} is not usable from the build container ({problem}); "
            "building with the local ccache only (`invoke doctor` checks it)")


def after_build_warning(remote: RemoteCache, stats: CcacheStats) -> str | None:
    if not (stats.remote_errors or stats.remote_timeouts):
        return None
    return (f"tflite-forge: warning: compile cache {remote.url}: {stats.remote_errors} error(s) and "
            f"{stats.remote_timeouts} timeout(s) in this build (those compiles used the local ccache; "
            f"remote hits {stats.remote_hits}); `invoke doctor` checks it")


__all__ = ["RemoteCache", "Access", "CcacheStats", "parse", "container_access", "with_access", "probe", "ping",
           "connect_problem", "parse_stats_log", "run_record", "probe_warning", "after_build_warning",
           "SOCKET", "STATS_LOG", "CONNECT_TIMEOUT_MS", "OPERATION_TIMEOUT_MS"]
