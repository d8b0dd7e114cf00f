"""`invoke doctor`: is this host ready? One row per check, and a fix for every failing row.

Checks: container engine (present, version, rights), every --builder (answers, jobs, arch), disk space
(work dir by the build's own floor, cache, the engine's data root),
memory, qemu + binfmt_misc, cross compilers, the cache dir, reachability of upstream and mirrors
(after rewrites, so a site that reaches GitHub through a proxy is checked through that proxy), and
the shared compile cache (--ccache-remote) when one is configured.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import requests

from . import engine as eng
from .arches import all_arches, host_arch
from .build_plan import builder_user
from .builders import parse_builders
from .ccache_remote import connect_problem, parse, ping
from .cache import Cache
from .engine import engine_data_root, resolve_engine
from .errors import EngineError
from .fetch import rewrite_url
from .jobs import MEMORY_PER_JOB, default_jobs, host_memory_bytes, jobs_by_memory
from .settings import Settings
from .tables import Styled, print_table

OK, WARN, FAIL = "ok", "warn", "FAIL"
ENGINE_FREE_GIB = 10   # the engine's data root holds the build trees and ccache: a real 2.14 cell needs several GiB
MIN_MEM_GIB = 4        # two compile jobs
UPSTREAM_PROBE = "https://github.com/tensorflow/tensorflow"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
SETUP = "run ci/setup-host.sh as root"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def _free_gib(path: Path) -> float:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free / 1024 ** 3


def check_engine(settings: Settings) -> Iterable[Check]:
    try:
        engine = resolve_engine(settings.engine)
    except EngineError as err:
        yield Check("container engine", FAIL, str(err).split("; ")[0],
                    f"{SETUP} (installs docker.io and podman, starts dockerd), or pick one with --engine")
        return
    yield Check("container engine", OK, f"{engine.name} {engine.version} at {engine.binary} (daemon answers)")


def check_builders(settings: Settings) -> Iterable[Check]:
    """Every --builder: it answers, how many compile jobs it takes, and it runs this host's images."""
    home_arch = None
    try:
        home_arch = eng.engine_arch(eng.resolve_engine(settings.engine))
    except EngineError:
        pass            # the engine row says so
    for spec in parse_builders(settings.builders):
        name = f"builder {spec.text}"
        try:
            engine = eng.resolve_builder(spec)
        except EngineError as err:
            yield Check(name, FAIL, str(err).split("; ")[0].removeprefix(f"builder {spec.text} "),
                        "start its daemon, check the address and your access (ssh keys, socket rights), "
                        "or leave it out of --builder / TFLITE_FORGE_BUILDERS")
            continue
        res = eng.host_resources(engine)
        arch = eng.engine_arch(engine)
        detail = (f"{engine.name} {engine.version}, {arch}, {res.cpus} CPUs, {res.memory_bytes / 2**30:.1f} GiB: "
                  f"up to {default_jobs(res.cpus, res.memory_bytes)} compile jobs")
        if home_arch and arch != home_arch:
            yield Check(name, FAIL, detail + f"; this host's engine is {home_arch}",
                        "builder images are made here and loaded there: use builders of this host's architecture")
        else:
            yield Check(name, OK, detail)


def check_disk(settings: Settings) -> Iterable[Check]:
    """Free space where each kind of file lives, against the rule that uses it: the work dir by the
    build's own floor (it refuses to start below it), the cache by what a real release downloads,
    and the engine's data root, where the build trees and the compiler cache are."""
    floor = settings.min_free_bytes / 2**30
    rows = [("disk (work dir)", Path(settings.work_dir), floor,
             "free space there, point TFLITE_FORGE_WORK_DIR elsewhere, or lower TFLITE_FORGE_MIN_FREE_GIB"),
            ("disk (cache)", Path(settings.cache_dir), 1.0,
             "free space there or point --cache-dir / TFLITE_FORGE_CACHE at a larger disk")]
    try:
        root = engine_data_root(resolve_engine(settings.engine))
    except EngineError:
        root = None          # the engine row says why
    if root is not None:
        rows.append(("disk (engine data root)", root, ENGINE_FREE_GIB,
                     "free space there, or move the engine's data root (dockerd --data-root, podman graphroot)"))
    for label, path, need, fix in rows:
        free = _free_gib(path.resolve())
        status = OK if free >= need else FAIL
        yield Check(label, status, f"{free:.1f} GiB free at {path} (needs {need:g} GiB)",
                    "" if status == OK else f"free at least {need:g} GiB: {fix}")


def check_memory(_settings: Settings) -> Iterable[Check]:
    mem_bytes = host_memory_bytes()
    mem = mem_bytes / 2**30
    jobs = jobs_by_memory(mem_bytes)
    status = OK if mem >= MIN_MEM_GIB else WARN
    yield Check("memory", status, f"{mem:.1f} GiB: up to {jobs} compile jobs at ~{MEMORY_PER_JOB / 2**30:.0f} GiB each",
                "" if status == OK else "expect slow builds; pass --jobs 1 to stay clear of the OOM killer")


def check_qemu(_settings: Settings) -> Iterable[Check]:
    host = host_arch().name
    if not (BINFMT / "register").exists():
        yield Check("binfmt_misc", FAIL, "not mounted: foreign-arch binaries and containers cannot run",
                    f"mount -t binfmt_misc binfmt_misc {BINFMT} (or {SETUP})")
        return
    yield Check("binfmt_misc", OK, f"mounted at {BINFMT}")
    for arch in all_arches():
        if arch.name == host or not arch.qemu_binary:
            continue
        binary = shutil.which(arch.qemu_binary)
        entry = BINFMT / arch.qemu_binary.replace("-static", "")
        if not binary:
            yield Check(f"qemu ({arch.name})", FAIL, f"{arch.qemu_binary} not found", f"apt-get install qemu-user-static (or {SETUP})")
        elif not entry.exists() or "enabled" not in entry.read_text():
            yield Check(f"qemu ({arch.name})", FAIL, f"{entry.name} not registered with binfmt_misc",
                        f"register /usr/lib/binfmt.d/{entry.name}.conf (or {SETUP})")
        else:
            yield Check(f"qemu ({arch.name})", OK, f"{binary}, binfmt entry enabled")


def check_cross_compilers(_settings: Settings) -> Iterable[Check]:
    for arch in all_arches():
        cc = f"{arch.triplet}-gcc"
        found = shutil.which(cc)
        if found:
            yield Check(f"compiler ({arch.name})", OK, found)
        else:
            pkgs = " ".join(arch.toolchain_packages()) or cc
            yield Check(f"compiler ({arch.name})", WARN, f"{cc} not on the host (needed for `invoke test` smoke builds)",
                        f"apt-get install {pkgs}")


def check_cache(settings: Settings) -> Iterable[Check]:
    cache = Path(settings.cache_dir)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache, prefix=".doctor-"):
            pass
    except OSError as err:
        yield Check("cache dir", FAIL, f"{cache}: {err.strerror}", "pass a writable --cache-dir or set TFLITE_FORGE_CACHE")
        return
    blobs = Cache(cache).blobs
    entries = len(list(blobs.glob("*"))) if blobs.is_dir() else 0
    yield Check("cache dir", OK, f"{cache} (writable, {entries} verified files)")


def _reachable(url: str, timeout: float) -> str | None:
    """None when the URL answers (any HTTP status), else the reason."""
    if url.startswith("file://"):
        path = Path(url[len("file://"):])
        return None if path.is_dir() else f"{path} is not a folder"
    try:
        requests.head(url, timeout=timeout, allow_redirects=False)
        return None
    except requests.RequestException as err:
        return type(err).__name__


def check_network(settings: Settings, timeout: float = 5.0) -> Iterable[Check]:
    if settings.offline:
        yield Check("upstream", OK, "--offline: upstream is not used")
    else:
        url = rewrite_url(UPSTREAM_PROBE, settings.rewrites)
        reason = _reachable(url, timeout)
        if reason is None:
            yield Check("upstream", OK, f"{url} answers")
        else:
            yield Check("upstream", WARN if settings.mirrors else FAIL, f"{url} unreachable ({reason})",
                        "use a mirror (--mirror URL / TFLITE_FORGE_MIRRORS; make one with `invoke mirror --dest DIR` "
                        "on a connected machine) or a proxy rewrite (--rewrite https://github.com/=https://proxy/github/)")
    for mirror in settings.mirrors:
        if settings.offline and not mirror.startswith("file://"):
            yield Check(f"mirror {mirror}", WARN, "not checked: --offline never opens a socket, so only "
                        "file:// mirrors are used", "use a file:// mirror with --offline, or drop --offline")
            continue
        reason = _reachable(mirror, timeout)
        yield Check(f"mirror {mirror}", OK if reason is None else FAIL,
                    "answers" if reason is None else f"unreachable ({reason})",
                    "" if reason is None else "check the URL, or drop it from --mirror / TFLITE_FORGE_MIRRORS")


def check_ccache_remote(settings: Settings) -> Iterable[Check]:
    """The shared compile cache, from this host: the socket answers PING, and the build user may connect.
    (The path is the engine's host's: for an engine on another machine, a build's own probe decides.)"""
    if not settings.ccache_remote:
        yield Check("compile cache (remote)", OK, "not configured: local ccache only (--ccache-remote to share one)")
        return
    remote = parse(settings.ccache_remote)
    problem, took = ping(remote.socket_path)
    if problem is None:
        uid, _, gid = builder_user().partition(":")
        problem = connect_problem(remote.socket_path, int(uid), int(gid))
    if problem:
        yield Check("compile cache (remote)", FAIL, f"{remote.url}: {problem}",
                    "start the team's Redis with `unixsocket` (or socat UNIX-LISTEN:<path>,fork,mode=666 TCP:redis:6379) "
                    "on this host; builds go on with the local ccache meanwhile")
    else:
        yield Check("compile cache (remote)", OK, f"{remote.url} answers PING in {took * 1000:.1f} ms")


CHECKS: tuple[Callable[[Settings], Iterable[Check]], ...] = (
    check_engine, check_builders, check_disk, check_memory, check_qemu, check_cross_compilers, check_cache,
    check_network, check_ccache_remote,
)


def run_checks(settings: Settings, checks=CHECKS) -> list[Check]:
    rows: list[Check] = []
    for check in checks:
        try:
            rows.extend(check(settings))
        except Exception as err:  # a broken check is a failing row, not a crash
            rows.append(Check(check.__name__.removeprefix("check_"), FAIL, f"check crashed: {err}", "report this as a bug"))
    return rows


def run_doctor(settings: Settings, stream=None) -> int:
    """Print the table; return the number of failing rows."""
    rows = run_checks(settings)
    colour = {OK: "green", WARN: "yellow", FAIL: "red"}
    print_table(stream, "tflite-forge doctor", ("check", "status", "detail", "fix"),
                [(r.name, Styled(r.status, colour[r.status]), r.detail, r.fix) for r in rows])
    return sum(r.status == FAIL for r in rows)
