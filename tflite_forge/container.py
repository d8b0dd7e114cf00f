"""Containers on an engine (engine.py): run one command, or hold one open for many; their names and
labels; their removal on SIGINT/SIGTERM/SIGHUP; and the labelled volumes builds keep their trees in.

- `Container(engine, spec)` is a context manager: enter starts a named, labelled container
  (`--rm`, kept alive by a pipe on its stdin) and waits until it answers; `call`, `copy_into`,
  `copy_out` work inside it; exit removes it. If this process dies, the pipe closes, the
  container's main process ends and `--rm` removes it; SIGINT/SIGTERM remove it at once.
- `run_container(engine, spec, argv)` runs one command in a fresh container and removes it.
- volumes and containers carrying our labels: ensure, list, remove.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

from .engine import INSTALL_HINT, LABEL, EngineConfig, last_line, refused, run_cli
from .errors import EngineError


@dataclass(frozen=True, kw_only=True)
class Mount:
    """A bind mount (source is a host path) or a named volume (source is a volume name)."""
    source: str
    target: str
    read_only: bool = False
    volume: bool = False
    engine_host: bool = False   # source is a path on the engine's own host (e.g. a socket it provides):
                                # bound there as it is, not shipped to a builder like our trees

    def flag(self) -> str:
        kind = "volume" if self.volume else "bind"
        text = f"type={kind},source={self.source},target={self.target}"
        return text + (",ro" if self.read_only else "")   # "ro": docker and podman take it for volumes too


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    image: str
    purpose: str                                   # goes into the name: tflite-forge-<purpose>-<random>
    mounts: tuple[Mount, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    user: str | None = None                        # "uid:gid"
    network: str | None = "none"                   # None: the engine's default network
    cap_drop_all: bool = True
    no_new_privileges: bool = True
    labels: tuple[tuple[str, str], ...] = ()       # cell labels, e.g. (("io.tflite-forge.arch", "aarch64"),)
    platform: str | None = None
    userns: str | None = None                      # e.g. "keep-id" for rootless podman



# ---------------------------------------------------------------- names, labels, cleanup on signals

def container_name(purpose: str) -> str:
    clean = re.sub(r"[^a-zA-Z0-9_.-]+", "-", purpose).strip("-") or "run"
    return f"tflite-forge-{clean}-{secrets.token_hex(4)}"


def label_flags(labels: Sequence[tuple[str, str]]) -> list[str]:
    flags = ["--label", f"{LABEL}=1"]
    for key, value in labels:
        flags += ["--label", f"{key}={value}"]
    return flags


_LIVE: dict[str, EngineConfig] = {}
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _remove_now(name: str, engine: EngineConfig) -> None:
    with contextlib.suppress(Exception):
        subprocess.run(engine.argv("rm", "-f", name), capture_output=True, timeout=60)


def _on_terminate(signum: int, _frame: object) -> None:
    # Remove every live container first (the unwinding below would do it too, but a second
    # signal during unwinding must not leave one behind), then unwind like Ctrl-C does.
    with _LIVE_LOCK:
        live = list(_LIVE.items())
    for name, engine in live:
        _remove_now(name, engine)
    raise KeyboardInterrupt(f"signal {signum}")


def _install_handlers() -> None:
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED or threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _on_terminate)
    signal.signal(signal.SIGHUP, _on_terminate)
    _HANDLERS_INSTALLED = True


def _register(name: str, engine: EngineConfig) -> None:
    _install_handlers()
    with _LIVE_LOCK:
        _LIVE[name] = engine


def _unregister(name: str) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(name, None)


def register_container(name: str, engine: EngineConfig) -> None:
    """A container started outside this module's helpers: removed on SIGTERM/SIGHUP like ours."""
    _register(name, engine)


def forget_container(name: str, engine: EngineConfig) -> None:
    """Remove it if it is still there, and stop watching it."""
    _remove_now(name, engine)
    _unregister(name)




def run_flags(engine: EngineConfig, spec: ContainerSpec, name: str) -> list[str]:
    """The `run` options a spec stands for (pure; unit-tested)."""
    flags = ["--rm", "--name", name, *label_flags((("io.tflite-forge.purpose", spec.purpose), *spec.labels))]
    if spec.network:
        flags.append(f"--network={spec.network}")
    if spec.cap_drop_all:
        flags.append("--cap-drop=ALL")
    if spec.no_new_privileges:
        flags += ["--security-opt", "no-new-privileges"]
    if spec.user:
        flags += ["--user", spec.user]
    if spec.workdir:
        flags += ["--workdir", spec.workdir]
    if spec.platform:
        flags += ["--platform", spec.platform]
    if spec.userns:
        flags.append(f"--userns={spec.userns}")
    if engine.name == "podman":
        flags.append("--pull=never")
    for mount in spec.mounts:
        flags += ["--mount", mount.flag()]
    for key, value in spec.env:
        flags += ["--env", f"{key}={value}"]
    return flags


# ---------------------------------------------------------------- containers

class Container:
    """A running container for a sequence of commands; removed on exit, whatever happens."""

    def __init__(self, engine: EngineConfig, spec: ContainerSpec, *, ready_timeout: float = 120) -> None:
        self.engine = engine
        self.spec = spec
        self.name = container_name(spec.purpose)
        self.ready_timeout = ready_timeout
        self._keeper: subprocess.Popen | None = None

    def __enter__(self) -> "Container":
        _register(self.name, self.engine)
        try:
            self._start()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _start(self) -> None:
        argv = self.engine.argv("run", "-i", *run_flags(self.engine, self.spec, self.name),
                                self.spec.image, "sh", "-c", "cat >/dev/null")
        # Own session: a Ctrl-C on the terminal reaches us, and we remove the container; the
        # keeper holds the container's stdin, so if we die without cleaning up, it ends too.
        self._keeper = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            # Each probe is bounded too: a hung engine must not hang us past ready_timeout (+ one probe).
            probe_timeout = min(30.0, max(1.0, deadline - time.monotonic()))
            try:
                probe = subprocess.run(self.engine.argv("exec", self.name, "true"), capture_output=True, text=True,
                                       timeout=probe_timeout)
            except FileNotFoundError:
                raise EngineError(f"{self.engine.binary} not found; {INSTALL_HINT}") from None
            except subprocess.TimeoutExpired:
                probe = None
            if probe is not None and probe.returncode == 0:
                return
            if self._keeper.poll() is not None:
                err = self._keeper.stderr.read().decode(errors="replace") if self._keeper.stderr else ""
                raise EngineError(f"{self.engine.name} could not start a container from {self.spec.image}: "
                                  f"{last_line(err)}")
            if time.monotonic() > deadline:
                raise EngineError(f"container {self.name} did not answer within {self.ready_timeout:.0f} s; "
                                  f"check `{self.engine.name} ps -a` and the engine's health")
            time.sleep(0.2)

    def _remove(self) -> None:
        _remove_now(self.name, self.engine)
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            with contextlib.suppress(Exception):
                if keeper.stdin:
                    keeper.stdin.close()
            try:
                keeper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                keeper.kill()
                keeper.wait()
            if keeper.stderr:
                keeper.stderr.close()
            _remove_now(self.name, self.engine)  # a create racing the first rm
        _unregister(self.name)

    def exec_argv(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> list[str]:
        flags = ["exec", "-i"]
        for key, value in (env or {}).items():
            flags += ["--env", f"{key}={value}"]
        if cwd:
            flags += ["--workdir", cwd]
        return self.engine.argv(*flags, self.name, *argv)

    def call(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None, *,
             capture: bool = False, on_line: Callable[[str], None] | None = None) -> subprocess.CompletedProcess:
        """Run argv inside; with on_line, stream merged stdout+stderr line by line to it."""
        full = self.exec_argv(argv, env, cwd)
        if on_line is None:
            return subprocess.run(full, stdin=subprocess.DEVNULL, capture_output=capture, text=True)
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                on_line(line.rstrip("\n"))
        except BaseException:
            proc.kill()  # interrupted: do not wait for the build; the container is removed next
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        return subprocess.CompletedProcess(full, proc.wait())

    def copy_into(self, src: Path, dest: str) -> None:
        run_cli(self.engine.argv("cp", str(src), f"{self.name}:{dest}"), timeout=600, check=True)

    def copy_out(self, src: str, dest: Path) -> None:
        run_cli(self.engine.argv("cp", f"{self.name}:{src}", str(dest)), timeout=600, check=True)


def run_container(engine: EngineConfig, spec: ContainerSpec, argv: Sequence[str], *,
                  timeout: float = 600, stdout: IO | None = None) -> subprocess.CompletedProcess:
    """One command in a fresh, named, labelled container (`--rm`); removed even when interrupted."""
    name = container_name(spec.purpose)
    full = engine.argv("run", *run_flags(engine, spec, name), spec.image, *argv)
    _register(name, engine)
    try:
        try:
            return subprocess.run(full, stdin=subprocess.DEVNULL, text=True, timeout=timeout,
                                  stdout=stdout if stdout is not None else subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise EngineError(f"{engine.binary} not found; {INSTALL_HINT}") from None
        except subprocess.TimeoutExpired:
            raise EngineError(f"container {name} ({spec.image}) ran longer than {timeout:.0f} s; removed it") from None
    finally:
        _remove_now(name, engine)
        _unregister(name)



def ensure_volume(engine: EngineConfig, name: str, labels: Sequence[tuple[str, str]] = ()) -> None:
    proc = run_cli(engine.argv("volume", "inspect", name), timeout=60)
    if proc.returncode == 0:
        return
    run_cli(engine.argv("volume", "create", *label_flags(labels), name), timeout=60, check=True)


def _carrying(engine: EngineConfig, inspect: Sequence[str], names: list[str],
              labels: Sequence[tuple[str, str]]) -> list[str]:
    """The names among `names` whose labels include every (key, value) of `labels`. Checked here, not
    with several --filter label=... flags: podman ORs those for volumes, docker ANDs them."""
    if not labels or not names:
        return names
    proc = run_cli(engine.argv(*inspect, "--format", "{{json .%s}}" % ("Labels" if inspect[0] == "volume"
                                                                    else "Config.Labels"), *names), timeout=60)
    if proc.returncode != 0:          # one went away meanwhile: ask one by one
        return [] if len(names) == 1 else [n for n in names if _carrying(engine, inspect, [n], labels)]
    chosen = []
    for name, line in zip(names, proc.stdout.splitlines()):
        have = json.loads(line or "null") or {}
        if all(have.get(key) == value for key, value in labels):
            chosen.append(name)
    return chosen


def list_volumes(engine: EngineConfig, labels: Sequence[tuple[str, str]] = ()) -> list[str]:
    proc = run_cli(engine.argv("volume", "ls", "-q", "--filter", f"label={LABEL}=1"), timeout=60)
    if proc.returncode != 0:
        raise refused(engine, "list volumes", proc)
    names = sorted(line.strip() for line in proc.stdout.splitlines() if line.strip())
    return _carrying(engine, ("volume", "inspect"), names, labels)


def remove_volumes(engine: EngineConfig, names: Sequence[str], *, keep_in_use: bool = False) -> list[str]:
    """Remove volumes. keep_in_use: a volume a running container uses (another build's) is left and
    returned instead of failing the whole call."""
    if not names:
        return []
    if not keep_in_use:
        run_cli(engine.argv("volume", "rm", "-f", *names), timeout=300, check=True)
        return []
    in_use = []
    for name in names:
        proc = run_cli(engine.argv("volume", "rm", "-f", name), timeout=300)
        if proc.returncode != 0:
            if "in use" not in proc.stderr:
                raise EngineError(f"`{engine.name} volume rm {name}` failed: {last_line(proc.stderr)}")
            in_use.append(name)
    return in_use


def list_containers(engine: EngineConfig, labels: Sequence[tuple[str, str]] = ()) -> list[str]:
    """Names of every container (running or not) carrying our label (and `labels`, if given)."""
    proc = run_cli(engine.argv("ps", "-a", "--filter", f"label={LABEL}=1", "--format", "{{.Names}}"), timeout=60)
    if proc.returncode != 0:
        raise refused(engine, "list containers", proc)
    names = sorted(line.strip() for line in proc.stdout.splitlines() if line.strip())
    return _carrying(engine, ("container", "inspect"), names, labels)


def remove_containers(engine: EngineConfig, names: Sequence[str]) -> None:
    """Stop and remove containers (e.g. one a SIGKILLed build left running)."""
    if names:
        proc = run_cli(engine.argv("rm", "-f", *names), timeout=300)
        if proc.returncode != 0:
            raise refused(engine, "remove containers", proc)

