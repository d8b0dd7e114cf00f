"""The one container-engine abstraction: docker or podman, driven through their CLIs.

The engine is a value, not a subclass: `EngineConfig(name="docker"|"podman", binary=...)`.
Everything that touches an engine goes through this module:

- `resolve_engine(requested)` picks and checks the engine (`--engine` / TFLITE_FORGE_ENGINE,
  else a reachable docker daemon, else podman) and refuses too-old versions with one line.
- `Container(engine, spec)` is a context manager: enter starts a named, labelled container
  (`--rm`, kept alive by a pipe on its stdin) and waits until it answers; `call`, `copy_into`,
  `copy_out` work inside it; exit removes it. If this process dies, the pipe closes, the
  container's main process ends and `--rm` removes it; SIGINT/SIGTERM remove it at once.
- `run_container(engine, spec, argv)` runs one command in a fresh container and removes it.
- `build_image`, `import_image`, `image_id`, volumes and labels helpers for image.py/build.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Literal, Mapping, Sequence

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


# ---------------------------------------------------------------- engine selection

def _run(argv: Sequence[str], *, timeout: float = 60, check: bool = False,
         input: str | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    except FileNotFoundError:
        raise EngineError(f"{argv[0]} not found; {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"`{' '.join(argv[:3])}` did not answer within {timeout:.0f} s; "
                          "is the engine's daemon healthy? (restart it, or run ci/setup-host.sh)") from None
    if check and proc.returncode != 0:
        raise EngineError(f"`{' '.join(argv[:4])} ...` failed: {_last_line(proc.stderr)}")
    return proc


def _last_line(text: str) -> str:
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
    proc = _run([binary, *flags, "version", "--format", fmt], timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        return False, "", _last_line(proc.stderr)
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
        proc = _run(engine.argv("info", "--format", "{{.NCPU}} {{.MemTotal}}"), timeout=30)
    else:
        proc = _run(engine.argv("info", "--format", "{{.Host.CPUs}} {{.Host.MemTotal}}"), timeout=30)
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
    proc = _run(engine.argv("info", "--format", fmt), timeout=30)
    path = Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None
    return path if path is not None and path.is_dir() else None


def engine_arch(engine: EngineConfig) -> str:
    """The engine host's machine as Debian names it (amd64, arm64, ...), from the daemon; "" if unknown."""
    fmt = "{{.Architecture}}" if engine.name == "docker" else "{{.Host.Arch}}"
    proc = _run(engine.argv("info", "--format", fmt), timeout=30)
    text = proc.stdout.strip() if proc.returncode == 0 else ""
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}.get(text, text)


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


def _on_terminate(signum: int, frame: object) -> None:
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


last_line = _last_line


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
                                  f"{_last_line(err)}")
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
        _run(self.engine.argv("cp", str(src), f"{self.name}:{dest}"), timeout=600, check=True)

    def copy_out(self, src: str, dest: Path) -> None:
        _run(self.engine.argv("cp", f"{self.name}:{src}", str(dest)), timeout=600, check=True)


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


# ---------------------------------------------------------------- images and volumes

def image_id(engine: EngineConfig, ref: str) -> str | None:
    """The local image's ID, or None when the engine does not have it (never pulls)."""
    proc = _run(engine.argv("image", "inspect", "--format", "{{.Id}}", ref), timeout=60)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def image_labels(engine: EngineConfig, ref: str) -> dict[str, str]:
    import json
    proc = _run(engine.argv("image", "inspect", "--format", "{{json .Config.Labels}}", ref), timeout=60)
    if proc.returncode != 0:
        return {}
    return json.loads(proc.stdout or "null") or {}


def build_image(engine: EngineConfig, *, context: Path, dockerfile: Path, tag: str,
                build_args: Mapping[str, str] = {}, labels: Mapping[str, str] = {},
                pull_never: bool = True, log: IO[str] | None = None,
                on_line: Callable[[str], None] | None = None) -> None:
    """`build` with a local base image and no registry; output streamed to log/on_line."""
    argv = engine.argv("build", "--tag", tag, "--file", str(dockerfile), "--force-rm")
    if engine.name == "podman":
        argv.append("--pull=never" if pull_never else "--pull=missing")
        argv.append("--layers")
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in {LABEL: "1", **labels}.items():
        argv += ["--label", f"{key}={value}"]
    argv.append(str(context))
    tail: list[str] = []
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", bufsize=1)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail = (tail + [line])[-40:]
            if log:
                log.write(line + "\n")
            if on_line:
                on_line(line)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
    if proc.wait() != 0:
        raise EngineError(f"{engine.name} build of {tag} failed: {_last_line(chr(10).join(tail))}")


def import_image(engine: EngineConfig, tarball: Path, ref: str, *, changes: Sequence[str] = (),
                 platform: str | None = None) -> str:
    """Import a root filesystem tarball; `platform` ("linux/arm64") records a foreign architecture
    (docker: --platform; podman: --os/--arch/--variant), so `--platform` builds and runs find it."""
    if platform and engine.name != "podman":
        return load_rootfs(engine, tarball, ref, changes=changes, platform=platform)
    argv = engine.argv("import")
    for change in changes:
        argv += ["--change", change]
    if platform:
        argv += import_platform_flags(engine, platform)
    argv += [str(tarball), ref]
    proc = _run(argv, timeout=900)
    if proc.returncode != 0:
        raise EngineError(f"{engine.name} import of {tarball} as {ref} failed: {_last_line(proc.stderr)}")
    found = image_id(engine, ref)
    if not found:
        raise EngineError(f"{engine.name} import reported success but {ref} is missing; check `{engine.name} images`")
    return found


def rootfs_image_config(layer_sha256: str, *, changes: Sequence[str], platform: str) -> dict:
    """An OCI/docker image config for one rootfs layer; `changes` as `import --change` takes them
    (LABEL k=v, CMD [json], ENV k=v)."""
    import json as _json

    os_name, arch, *variant = platform.split("/")
    config: dict = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Labels": {}}
    for change in changes:
        verb, _, rest = change.partition(" ")
        if verb == "LABEL":
            key, _, value = rest.partition("=")
            config["Labels"][key] = value
        elif verb == "CMD":
            config["Cmd"] = _json.loads(rest)
        elif verb == "ENV":
            config["Env"].append(rest)
        else:
            raise EngineError(f"internal: image change {change!r} is not LABEL, CMD or ENV")
    image = {"architecture": arch, "os": os_name, "created": "1970-01-01T00:00:00Z", "config": config,
             "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_sha256}"]},
             "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tflite-forge: debootstrap rootfs"}]}
    if variant:
        image["variant"] = variant[0]
    return image


def load_rootfs(engine: EngineConfig, tarball: Path, ref: str, *, changes: Sequence[str] = (),
                platform: str, timeout: float = 900) -> str:
    """`docker import --platform` needs an experimental daemon (it is ignored otherwise, and the image
    claims the host's arch): write a docker-archive (manifest.json, config with the platform, the
    rootfs tar as its one layer) straight into `docker load` instead."""
    import hashlib
    import io
    import json as _json
    import tarfile

    digest = hashlib.sha256()
    with open(tarball, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    layer_sha = digest.hexdigest()
    config = _json.dumps(rootfs_image_config(layer_sha, changes=changes, platform=platform), sort_keys=True).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = _json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": [f"{layer_sha}/layer.tar"]}]).encode()
    try:
        proc = subprocess.Popen(engine.argv("load"), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise EngineError(f"{engine.argv('load')[0]} not found; {INSTALL_HINT}") from None
    assert proc.stdin is not None
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.USTAR_FORMAT) as out:
            for name, data in ((config_name, config), ("manifest.json", manifest)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                out.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(f"{layer_sha}/layer.tar")
            info.size = tarball.stat().st_size
            with open(tarball, "rb") as fh:
                out.addfile(info, fh)
        proc.stdin.close()
    except BrokenPipeError:
        pass   # the engine stopped reading: its message is on stderr
    finally:
        if not proc.stdin.closed:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
    assert proc.stderr is not None
    # stderr is read beside the wait, so an engine that never finishes cannot block us on the read.
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise EngineError(f"{engine.name} load of {tarball} as {ref} did not finish within {timeout:.0f} s; stopped it. "
                          f"Check the engine's health (`{engine.name} info`) and run again") from None
    finally:
        reader.join(timeout=10)
    err = b"".join(chunks)
    if proc.returncode != 0:
        raise EngineError(f"{engine.name} load of {tarball} as {ref} ({platform}) failed: "
                          f"{_last_line(err.decode(errors='replace'))}")
    found = image_id(engine, ref)
    if not found:
        raise EngineError(f"{engine.name} load reported success but {ref} is missing; check `{engine.name} images`")
    return found


def import_platform_flags(engine: EngineConfig, platform: str) -> list[str]:
    """docker import takes --platform os/arch[/variant]; podman import takes --os, --arch, --variant."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise EngineError(f"platform {platform!r} is not os/arch[/variant] (e.g. linux/arm64)")
    if engine.name != "podman":
        return ["--platform", platform]
    flags = ["--os", parts[0], "--arch", parts[1]]
    return flags + (["--variant", parts[2]] if len(parts) == 3 else [])


def pull_image(engine: EngineConfig, ref: str) -> None:
    proc = _run(engine.argv("pull", ref), timeout=1800)
    if proc.returncode != 0:
        raise EngineError(f"{engine.name} could not pull {ref} ({_last_line(proc.stderr)}); import it, or make the "
                          "default base image with `invoke image --bootstrap`")


GONE = re.compile(r"no such image|image not known|image not found", re.IGNORECASE)


def _refused(engine: EngineConfig, what: str, proc: subprocess.CompletedProcess) -> EngineError:
    return EngineError(f"{engine.name} refused to {what}: {_last_line(proc.stderr)}; check `{engine.name} info` "
                       f"(daemon running, permission to use it) and run again")


def remove_images(engine: EngineConfig, refs: Sequence[str]) -> None:
    """`rmi -f`; an image already gone is fine, anything else the engine refuses is an EngineError."""
    if not refs:
        return
    proc = _run(engine.argv("rmi", "-f", *refs), timeout=300)
    if proc.returncode != 0:
        problems = [line for line in proc.stderr.splitlines() if line.strip() and not GONE.search(line)]
        if problems or not proc.stderr.strip():
            raise _refused(engine, f"remove image(s) {', '.join(refs)}", proc)


def list_images(engine: EngineConfig, label: str = LABEL) -> list[str]:
    """repo:tag of every local image carrying `label` (those we made)."""
    proc = _run(engine.argv("images", "--filter", f"label={label}", "--format", "{{.Repository}}:{{.Tag}}"), timeout=60)
    if proc.returncode != 0:
        raise _refused(engine, "list images", proc)
    return sorted({line.strip() for line in proc.stdout.splitlines() if line.strip() and "<none>" not in line})


def ensure_volume(engine: EngineConfig, name: str, labels: Sequence[tuple[str, str]] = ()) -> None:
    proc = _run(engine.argv("volume", "inspect", name), timeout=60)
    if proc.returncode == 0:
        return
    _run(engine.argv("volume", "create", *label_flags(labels), name), timeout=60, check=True)


def _carrying(engine: EngineConfig, inspect: Sequence[str], names: list[str],
              labels: Sequence[tuple[str, str]]) -> list[str]:
    """The names among `names` whose labels include every (key, value) of `labels`. Checked here, not
    with several --filter label=... flags: podman ORs those for volumes, docker ANDs them."""
    if not labels or not names:
        return names
    proc = _run(engine.argv(*inspect, "--format", "{{json .%s}}" % ("Labels" if inspect[0] == "volume"
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
    proc = _run(engine.argv("volume", "ls", "-q", "--filter", f"label={LABEL}=1"), timeout=60)
    if proc.returncode != 0:
        raise _refused(engine, "list volumes", proc)
    names = sorted(line.strip() for line in proc.stdout.splitlines() if line.strip())
    return _carrying(engine, ("volume", "inspect"), names, labels)


def remove_volumes(engine: EngineConfig, names: Sequence[str], *, keep_in_use: bool = False) -> list[str]:
    """Remove volumes. keep_in_use: a volume a running container uses (another build's) is left and
    returned instead of failing the whole call."""
    if not names:
        return []
    if not keep_in_use:
        _run(engine.argv("volume", "rm", "-f", *names), timeout=300, check=True)
        return []
    in_use = []
    for name in names:
        proc = _run(engine.argv("volume", "rm", "-f", name), timeout=300)
        if proc.returncode != 0:
            if "in use" not in proc.stderr:
                raise EngineError(f"`{engine.name} volume rm {name}` failed: {_last_line(proc.stderr)}")
            in_use.append(name)
    return in_use


def list_containers(engine: EngineConfig, labels: Sequence[tuple[str, str]] = ()) -> list[str]:
    """Names of every container (running or not) carrying our label (and `labels`, if given)."""
    proc = _run(engine.argv("ps", "-a", "--filter", f"label={LABEL}=1", "--format", "{{.Names}}"), timeout=60)
    if proc.returncode != 0:
        raise _refused(engine, "list containers", proc)
    names = sorted(line.strip() for line in proc.stdout.splitlines() if line.strip())
    return _carrying(engine, ("container", "inspect"), names, labels)


def remove_containers(engine: EngineConfig, names: Sequence[str]) -> None:
    """Stop and remove containers (e.g. one a SIGKILLed build left running)."""
    if names:
        proc = _run(engine.argv("rm", "-f", *names), timeout=300)
        if proc.returncode != 0:
            raise _refused(engine, "remove containers", proc)


__all__ = [
    "Engine", "EngineConfig", "Mount", "ContainerSpec", "Container", "HostResources", "LABEL",
    "resolve_engine", "check_version", "parse_version", "host_resources", "container_name", "run_flags",
    "run_container", "image_id", "image_labels", "build_image", "pull_image", "import_image", "remove_images",
    "list_images", "ensure_volume", "list_volumes", "remove_volumes", "list_containers", "remove_containers",
]
