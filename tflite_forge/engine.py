"""The container engine: docker or podman, driven through its CLI, chosen and checked here.

The engine is a value, not a subclass: `EngineConfig(name="docker"|"podman", binary=...)`.
`resolve_engine(requested)` picks and checks it (`--engine` / TFLITE_FORGE_ENGINE, else a reachable
docker daemon, else podman) and refuses too-old versions with one line; `resolve_builder` does the
same for a --builder endpoint. `run_cli` runs one engine command and turns "not installed" and "does
not answer" into an EngineError. What runs in containers is container.py; images are image_io.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from .builders import BuilderSpec
from .errors import EngineError
from .jobs import host_memory_bytes

Engine = Literal["docker", "podman"]
ENGINES: tuple[Engine, ...] = ("docker", "podman")
LABEL = "io.tflite-forge"            # every container, volume and image we make carries LABEL=1
MIN_VERSION = {"docker": (20, 10), "podman": (3, 4)}
INSTALL_HINT = ("run ci/setup-host.sh (or apt-get install docker.io / podman), "
                "or pick another engine with --engine docker|podman")


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    name: Engine
    binary: str                 # absolute path of the CLI
    version: str = ""
    flags: tuple[str, ...] = ()  # global flags selecting a builder's endpoint (--host URL, --context NAME, --url URL)
    endpoint: str = ""          # the builder as the user named it ("" = this host's engine)

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *self.flags, *args]

    @property
    def remote(self) -> bool:
        """A builder: it shares no filesystem with this host (no bind mounts; trees go as volumes)."""
        return bool(self.flags)

    @property
    def title(self) -> str:
        return self.endpoint or f"local {self.name}"



def run_cli(argv: Sequence[str], *, timeout: float = 60, check: bool = False,
         input: str | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    except FileNotFoundError:
        raise EngineError(f"{argv[0]} not found; {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"`{' '.join(argv[:3])}` did not answer within {timeout:.0f} s; "
                          "is the engine's daemon healthy? (restart it, or run ci/setup-host.sh)") from None
    if check and proc.returncode != 0:
        raise EngineError(f"`{' '.join(argv[:4])} ...` failed: {last_line(proc.stderr)}")
    return proc


def last_line(text: str) -> str:
    """The line of an engine's stderr that says what went wrong (not its "see --help" footer)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Run '")] or lines
    errors = [line for line in lines if "rror" in line]
    return (errors or lines)[-1] if lines else "(no message)"


def _engine_name(binary: str) -> Engine | None:
    base = os.path.basename(binary)
    for name in ENGINES:
        if name in base:
            return name
    return None


def parse_version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return ()
    return tuple(int(g) for g in match.groups() if g is not None)


def check_version(name: Engine, version: str) -> None:
    """Refuse engines older than MIN_VERSION with one line saying what to install."""
    found = parse_version(version)
    need = MIN_VERSION[name]
    if not found:
        raise EngineError(f"{name}: could not read its version from {version!r}; is it a working {name} CLI? ({INSTALL_HINT})")
    if found[:2] < need:
        raise EngineError(f"{name} {version} is too old: tflite-forge needs {name} >= {'.'.join(map(str, need))}; "
                          f"upgrade it (ci/setup-host.sh installs a recent one) or use --engine "
                          f"{'podman' if name == 'docker' else 'docker'}")


def _which(name_or_path: str) -> str | None:
    if os.sep in name_or_path:
        return name_or_path if os.access(name_or_path, os.X_OK) and os.path.isfile(name_or_path) else None
    return shutil.which(name_or_path)


def _server_version(name: Engine, binary: str, flags: Sequence[str] = ()) -> tuple[bool, str, str]:
    """(reachable, version, error line). For docker (and a podman service) this needs the daemon to answer."""
    fmt = "{{.Server.Version}}" if name == "docker" or flags else "{{.Client.Version}}"
    proc = run_cli([binary, *flags, "version", "--format", fmt], timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        return False, "", last_line(proc.stderr)
    return True, proc.stdout.strip(), ""


def resolve_engine(requested: str | None = None) -> EngineConfig:
    """--engine / TFLITE_FORGE_ENGINE (already merged into Settings.engine), else auto-detect.

    `requested` is "docker", "podman" or a path to either CLI (its basename names the engine).
    """
    if requested:
        name = _engine_name(requested)
        if name is None:
            raise EngineError(f"--engine {requested!r}: expected docker or podman (or a path to one of them)")
        binary = _which(requested)
        if binary is None:
            where = requested if os.sep in requested else f"{requested} on PATH"
            raise EngineError(f"container engine {name} not found ({where}); {INSTALL_HINT}")
        ok, version, err = _server_version(name, binary)
        if not ok:
            fix = ("start the daemon (ci/setup-host.sh starts dockerd) or use --engine podman"
                   if name == "docker" else "check `podman info`, or use --engine docker")
            raise EngineError(f"{name} does not answer ({err}); {fix}")
        check_version(name, version)
        return EngineConfig(name=name, binary=binary, version=version)
    errors = []
    for name in ENGINES:
        binary = _which(name)
        if binary is None:
            errors.append(f"{name}: not installed")
            continue
        ok, version, err = _server_version(name, binary)
        if ok:
            check_version(name, version)
            return EngineConfig(name=name, binary=binary, version=version)
        errors.append(f"{name}: {err}")
    raise EngineError(f"no usable container engine ({'; '.join(errors)}); {INSTALL_HINT}")


def builder_config(spec: BuilderSpec, version: str = "") -> EngineConfig:
    """The engine behind a --builder endpoint, as configuration only (nothing is asked of it)."""
    return EngineConfig(name=spec.engine, binary=_which(spec.engine) or spec.engine,  # type: ignore[arg-type]
                        version=version, flags=spec.flags, endpoint=spec.text)


def resolve_builder(spec: BuilderSpec) -> EngineConfig:
    """The engine behind a --builder endpoint, checked to answer (one line if it does not)."""
    binary = _which(spec.engine)
    if binary is None:
        raise EngineError(f"builder {spec.text}: the {spec.engine} CLI is not installed here; {INSTALL_HINT}")
    ok, version, err = _server_version(spec.engine, binary, spec.flags)  # type: ignore[arg-type]
    if not ok:
        raise EngineError(f"builder {spec.text} does not answer ({err}); start its daemon, check the address "
                          f"(`{spec.engine} {' '.join(spec.flags)} info`), or leave it out of --builder")
    check_version(spec.engine, version)  # type: ignore[arg-type]
    return builder_config(spec, version)


def builder_answers(engine: EngineConfig, timeout: float = 20) -> bool:
    """Whether a builder's daemon still answers (after a cell failed on it: retry elsewhere or not)."""
    try:
        proc = subprocess.run(engine.argv("version", "--format", "{{.Server.Version}}"), capture_output=True,
                              text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


@dataclass(frozen=True)
class HostResources:
    cpus: int
    memory_bytes: int


def host_resources(engine: EngineConfig) -> HostResources:
    """CPUs and memory the engine's containers get (the daemon's view, not the client's)."""
    if engine.name == "docker":
        proc = run_cli(engine.argv("info", "--format", "{{.NCPU}} {{.MemTotal}}"), timeout=30)
    else:
        proc = run_cli(engine.argv("info", "--format", "{{.Host.CPUs}} {{.Host.MemTotal}}"), timeout=30)
    parts = proc.stdout.split()
    if proc.returncode == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
        return HostResources(cpus=int(parts[0]), memory_bytes=int(parts[1]))
    return HostResources(cpus=os.cpu_count() or 1, memory_bytes=host_memory_bytes())   # the daemon would not say


def engine_data_root(engine: EngineConfig) -> Path | None:
    """Where this host's engine keeps images, containers and volumes, if that is a folder here (not
    for a builder: its disk is its own)."""
    if engine.remote:
        return None
    fmt = "{{.DockerRootDir}}" if engine.name == "docker" else "{{.Store.GraphRoot}}"
    proc = run_cli(engine.argv("info", "--format", fmt), timeout=30)
    path = Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None
    return path if path is not None and path.is_dir() else None


def engine_arch(engine: EngineConfig) -> str:
    """The engine host's machine as Debian names it (amd64, arm64, ...), from the daemon; "" if unknown."""
    fmt = "{{.Architecture}}" if engine.name == "docker" else "{{.Host.Arch}}"
    proc = run_cli(engine.argv("info", "--format", fmt), timeout=30)
    text = proc.stdout.strip() if proc.returncode == 0 else ""
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}.get(text, text)



def refused(engine: EngineConfig, what: str, proc: subprocess.CompletedProcess) -> EngineError:
    return EngineError(f"{engine.name} refused to {what}: {last_line(proc.stderr)}; check `{engine.name} info` "
                       f"(daemon running, permission to use it) and run again")

