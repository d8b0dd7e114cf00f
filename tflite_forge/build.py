"""The build: plan it as data, then run it in a container.

`plan_build(request) -> BuildPlan` is pure (no engine, no filesystem writes): frozen steps with
argv lists and environments, the mounts, the volumes and where results go. `run_build(plan, engine)`
executes it in one hermetic container:

    /src/tensorflow   patched working copy of TensorFlow (read-only)
    /src/deps/<name>  every locked dependency's patched working copy (read-only)
    /deps/<name>      the build's own writable copies of those (TFLite's CMake writes into
                      dependency source trees at configure time: eigen.cmake, for one), made by
                      `rsync --delete` from /src/deps at the start of every run, owned by the
                      build user; a volume of the build key
    /toolchains       toolchains/*.cmake (read-only)
    /build            the build tree: a volume keyed by every input CMake cannot track itself
                      (archives, lock, patch sets, options, toolchain file, builder image)
    /host             host tools (flatc), a volume keyed by the flatbuffers tree and the host
                      compiler only, so every cross cell of the same flatbuffers shares one flatc
    /ccache           the compiler cache of the cell
    /out              a staging folder on the host, renamed into <work_dir>/out/<label>-<arch> on success
    /run/tflite-forge/ccache.sock   with --ccache-remote only: the shared cache's socket, added at run
                      time by ccache_remote (not in the plan, so not in the stamp: it never changes the output)

with `--network=none --cap-drop=ALL --security-opt no-new-privileges --user uid:gid`.
Cross builds first build the host `flatc` natively from the flatbuffers tree and hand it over with
-DTFLITE_HOST_TOOLS_DIR. The libraries collected are exactly the artifacts CMake's file API names
for the targets built. Every compile command is checked against the patch sets' compile checks.
A stamp of every input's digest makes a second build with nothing changed a check only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Mapping, Sequence, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__ as forge_version
from . import ccache_remote, compile_checks, elf
from . import container as ct
from . import engine as eng
from . import image_io
from . import remote
from .cache import sha256_file
from .download import ensure_free_space
from .arches import Arch
from .builders import parse_builders
from .errors import BuildError, ConfigError, EngineError, PackageError
from .fsutil import held_lock, swap_dir, tree_digest, write_json_atomic
from .patchset import load_recipe_sets

SRC = "/src/tensorflow"
SRC_DEPS = "/src/deps"
DEPS = "/deps"
BUILD = "/build"
HOST = "/host"
CCACHE = "/ccache"
OUT = "/out"
TOOLCHAINS = "/toolchains"
HOST_TOOLS = f"{HOST}/bin"
META = f"{OUT}/.meta"            # file-API reply and compile_commands.json, read on the host, never shipped
# TFLite's host-tool ExternalProject -> (the dependency tree it builds, that tree's own target, and the
# cache options TFLite's flatbuffers.cmake gives it). Built straight from the tree, it depends on that
# tree and the host compiler only, not on TensorFlow's configuration.
HOST_TOOL_PROJECTS = {
    "flatbuffers-flatc": ("flatbuffers", "flatc", ("-DFLATBUFFERS_BUILD_TESTS=OFF", "-DFLATBUFFERS_BUILD_FLATLIB=OFF",
                                                   "-DFLATBUFFERS_STATIC_FLATC=OFF", "-DFLATBUFFERS_BUILD_FLATHASH=OFF")),
}
C_TARGET = "tensorflowlite_c"
CXX_TARGET = "tensorflow-lite"
LIB_PATTERNS = ("libtensorflowlite_c.so*",)
CXX_LIB_PATTERNS = ("libtensorflow-lite.so*",)
TAIL_LINES = 40
NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")
BUILD_INFO_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class Dependency:
    name: str
    cmake_variable: str          # FETCHCONTENT_SOURCE_DIR_<NAME> or <NAME>_SOURCE_DIR
    path: Path                   # host path of the (patched) working copy
    sha256: str = ""             # of the locked archive
    patches: tuple[str, ...] = ()   # "<set>:<digest>" of every patch set with an entry applied to this tree


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    """Everything a plan depends on, gathered by `build_cell` (or a test)."""
    label: str                                   # recipe.label, e.g. tensorflow-2.16.1
    version: str
    arch: Arch
    image: str                                   # builder image tag
    gcc_version: str                             # the target compiler in that image
    tensorflow: Path                             # host path of the patched TF working copy
    dependencies: tuple[Dependency, ...]
    cmake_source_dir: str = "tensorflow/lite/c"
    host_tools_target: str = "flatbuffers-flatc"
    cmake_options: tuple[tuple[str, str], ...] = ()   # recipe options, already merged over arch defaults
    source_date_epoch: int = 0
    work_dir: Path = Path("build")
    jobs: int = 1
    cxx_shared: bool = False
    user: str = "1000:1000"
    userns: str | None = None
    engine: str = "docker"
    host_arch: str = ""                          # the builder's own arch; "" = this machine's (arches.host_arch)
    # Identities of inputs CMake cannot track (they key the build and host-tools volumes):
    source_sha256: str = ""                      # the TensorFlow archive
    patch_sets: tuple[str, ...] = ()             # "<set>:<digest>" in recipe order
    lock_sha256: str = ""
    toolchain_sha256: str = ""                   # content of the arch's toolchain file
    host_compiler: str = ""                      # what builds host tools: base image id, host gcc, cmake, ninja


@dataclass(frozen=True, kw_only=True)
class Step:
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    progress: bool = False       # ninja prints [n/N]
    collect: bool = False        # after argv: read the file-API reply and copy the targets' artifacts to /out/lib


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    key: str                                     # <label>-<arch>-<options digest>
    label: str
    arch: str
    image: str
    spec: ct.ContainerSpec
    steps: tuple[Step, ...]
    volumes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]   # (name, labels)
    cmake_options: tuple[tuple[str, str], ...]
    targets: tuple[str, ...]
    lib_patterns: tuple[str, ...]
    compile_checks: tuple = ()                   # patchset.CompileCheck rows that apply to this cell
    cell_labels: tuple[tuple[str, str], ...] = ()  # on the container and the cell's volumes
    out_dir: Path
    staging_dir: Path
    log_path: Path
    stamp_path: Path
    source_date_epoch: int
    jobs: int
    cross: bool

    def describe(self) -> str:
        lines = [f"build {self.label} for {self.arch} in {self.image} (key {self.key})"]
        lines += [f"  {s.name}: {' '.join(s.argv)}" for s in self.steps]
        return "\n".join(lines)


# ---------------------------------------------------------------- planning (pure)

def merged_options(req: BuildRequest) -> dict[str, str]:
    """The request's options (recipe over arches.default_cmake_options, which already holds the
    compiler rules such as "GCC < 10: XNNPACK bf16/i8mm OFF"), plus what --cxx-shared needs."""
    options = dict(req.cmake_options)
    if req.cxx_shared:
        options["BUILD_SHARED_LIBS"] = "ON"
        # The C library then NEEDs libtensorflow-lite.so: find it beside itself ($ORIGIN), not through
        # the build tree's RUNPATH (/build/target/..., a build-machine path verify rejects).
        options["CMAKE_BUILD_WITH_INSTALL_RPATH"] = "ON"
        options["CMAKE_INSTALL_RPATH"] = "$ORIGIN"
    return options


def compiler_flags() -> dict[str, str]:
    """CFLAGS/CXXFLAGS/LDFLAGS for configure: reproducible paths and build ids only.

    Given through the environment, CMake combines them with the toolchain file's *_INIT flags.
    Arch flags (e.g. armhf's -mfp16-format=ieee when XNNPACK is on) belong to the toolchain
    files, which see -DTFLITE_ENABLE_XNNPACK themselves, so a CMake user gets them too.
    """
    maps = [f"-ffile-prefix-map={SRC}=.", f"-ffile-prefix-map={DEPS}=deps", f"-ffile-prefix-map={BUILD}=build",
            f"-ffile-prefix-map={HOST}=host"]
    flags = " ".join(maps)
    return {"CFLAGS": flags, "CXXFLAGS": flags, "LDFLAGS": "-Wl,--build-id=sha1"}


def _digest(data: object, length: int = 12) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:length]


def options_digest(req: BuildRequest) -> str:
    data = {"label": req.label, "arch": req.arch.name, "options": sorted(merged_options(req).items()),
            "cxx_shared": req.cxx_shared, "source_dir": req.cmake_source_dir}
    return _digest(data, 10)


def inputs_digest(req: BuildRequest) -> str:
    """Every input of the target build that CMake and ninja cannot track themselves: a changed one gets
    a fresh build tree (ccache keeps that fast). A tree's files are tracked by ninja only while their
    mtimes move forward; a new archive or patch set can bring older files, and removed options stay in
    CMakeCache.txt, so these go into the volume's name rather than into ninja's hands."""
    return _digest({
        "options": options_digest(req), "image": req.image, "toolchain": req.toolchain_sha256,
        "source": req.source_sha256, "patch_sets": list(req.patch_sets), "lock": req.lock_sha256,
        "dependencies": sorted([d.name, d.cmake_variable, d.sha256, list(d.patches)] for d in req.dependencies),
    })


def host_tools_digest(req: BuildRequest, dependency: Dependency, target: str) -> str:
    """The host-tools tree's own inputs: the tree it builds (archive and patches) and the host compiler."""
    return _digest({"tree": [dependency.name, dependency.sha256, list(dependency.patches)], "target": target,
                    "compiler": req.host_compiler})


def work_id(work_dir: Path) -> str:
    """A short id of a work dir (its resolved path): labels and volume names of its builds."""
    return hashlib.sha256(str(Path(work_dir).resolve()).encode()).hexdigest()[:8]


def _fetchcontent_defines(req: BuildRequest) -> list[str]:
    defines = [f"-D{dep.cmake_variable}={DEPS}/{dep.name}" for dep in sorted(req.dependencies, key=lambda d: d.name)]
    return defines + ["-DFETCHCONTENT_FULLY_DISCONNECTED=ON"]


def _host_tools_step(req: BuildRequest, jobs: str, launcher: list[str], flags: str) -> tuple[Step, str, str]:
    """One step, under a lock on the shared /host volume: configure the host-tool tree natively, build its
    target, install the binary into /host/bin. Returns (step, the tree's dependency name, its target)."""
    if req.host_tools_target not in HOST_TOOL_PROJECTS:
        raise ConfigError(f"[build].host_tools_target = {req.host_tools_target!r}: tflite-forge builds "
                          f"{', '.join(sorted(HOST_TOOL_PROJECTS))} (flatc from the locked flatbuffers tree); "
                          "remove the key or use that value")
    tree, target, defines = HOST_TOOL_PROJECTS[req.host_tools_target]
    if not any(d.name == tree for d in req.dependencies):
        raise ConfigError(f"{req.label} for {req.arch.name}: a cross build needs the host {target} from the "
                          f"'{tree}' dependency, and the lock has none; run `invoke lock` again")
    configure = ["cmake", "-S", f"{DEPS}/{tree}", "-B", f"{HOST}/build", "-G", "Ninja",
                 "-DCMAKE_BUILD_TYPE=Release", *launcher, *defines]
    script = (f"{_sh(configure)} && {_sh(['cmake', '--build', f'{HOST}/build', '--target', target, '--', '-j', jobs])}"
              f" && mkdir -p {HOST_TOOLS} && cp -p {HOST}/build/{target} {HOST_TOOLS}/.{target}.tmp"
              f" && mv -f {HOST_TOOLS}/.{target}.tmp {HOST_TOOLS}/{target} && {HOST_TOOLS}/{target} --version")
    env = (("CFLAGS", flags), ("CXXFLAGS", flags))
    return Step(name="host-tools", env=env, progress=True,
                argv=("flock", f"{HOST}/.lock", "sh", "-ec", script)), tree, target


def _sh(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def plan_build(req: BuildRequest, compile_checks: tuple = ()) -> BuildPlan:
    """The whole build as data. Unit-tested without an engine."""
    arch = req.arch
    # Cross means "not the host's own arch" (an aarch64 runner builds aarch64 natively and x86_64
    # with host tools first), never "not x86_64".
    cross = not arch.runs_natively(req.host_arch or None)
    options = merged_options(req)
    key = f"{req.label}-{arch.name}-{options_digest(req)}"
    jobs = str(max(1, req.jobs))
    source = f"{SRC}/{req.cmake_source_dir}"
    launcher = ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
    base_env = (("SOURCE_DATE_EPOCH", str(req.source_date_epoch)), ("CCACHE_DIR", CCACHE),
                ("CCACHE_BASEDIR", "/"), ("HOME", "/tmp"), ("LC_ALL", "C.UTF-8"), ("TZ", "UTC"))
    flags_env = tuple(sorted(compiler_flags().items()))
    steps: list[Step] = []
    # The build's own writable copies of the dependency trees: exactly /src/deps, every run (files a
    # previous configure wrote are put back or removed), mtimes kept so ninja stays incremental.
    # No --perms and --omit-dir-times: /deps itself is the image's root-owned 1777 mount point; new files
    # get the source's mode (less the umask) plus u+rwX, so TFLite's CMake can rewrite them.
    rsync = ["rsync", "--recursive", "--links", "--times", "--omit-dir-times", "--chmod=u+rwX", "--delete", "--",
             f"{SRC_DEPS}/", f"{DEPS}/"]
    # A shared stateless file-API query: configure then writes the code model (every target's artifacts).
    query = f"{BUILD}/target/.cmake/api/v1/query"
    steps.append(Step(name="sources", argv=(
        "sh", "-ec", f"{_sh(rsync)} && mkdir -p {query} && touch {query}/codemodel-v2")))
    host_volume = None
    if cross:
        host_flags = " ".join(f for f in dict(flags_env)["CFLAGS"].split() if f.startswith("-ffile-prefix-map="))
        step, tree, target = _host_tools_step(req, jobs, launcher, host_flags)
        steps.append(step)
        dependency = next(d for d in req.dependencies if d.name == tree)
        host_volume = f"tflite-forge-host-{host_tools_digest(req, dependency, target)}"
    defines = [f"-D{k}={v}" for k, v in sorted(options.items())]
    configure = ["cmake", "-S", source, "-B", f"{BUILD}/target", "-G", "Ninja",
                 f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAINS}/{arch.toolchain_file.name}",
                 "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
                 *launcher, *_fetchcontent_defines(req), *defines]
    if cross:
        configure.append(f"-DTFLITE_HOST_TOOLS_DIR={HOST_TOOLS}")
    steps.append(Step(name="configure", argv=tuple(configure), env=flags_env))
    targets = (C_TARGET, CXX_TARGET) if req.cxx_shared else (C_TARGET,)
    build = ["cmake", "--build", f"{BUILD}/target"]
    for target in targets:
        build += ["--target", target]
    steps.append(Step(name="build", progress=True, argv=(*build, "--", "-j", jobs)))
    patterns = LIB_PATTERNS + (CXX_LIB_PATTERNS if req.cxx_shared else ())
    # The host reads the reply and compile_commands.json from /out/.meta, then copies the artifacts.
    steps.append(Step(name="collect", collect=True, argv=(
        "sh", "-ec", f"rm -rf {META} && mkdir -p {META} {OUT}/lib && cp -R {BUILD}/target/.cmake/api/v1/reply "
                     f"{META}/reply && cp {BUILD}/target/compile_commands.json {META}/")))

    work = Path(req.work_dir)
    # The cell lock lives in the work dir: two work dirs may build the same cell at once, so their
    # trees, and what counts as an orphan or a superseded volume, are kept apart by the work dir's id.
    cell_labels = (("io.tflite-forge.version", req.version), ("io.tflite-forge.arch", arch.name),
                   ("io.tflite-forge.key", key), ("io.tflite-forge.work", work_id(work)))
    build_volume = f"tflite-forge-build-{key}-{inputs_digest(req)}-{work_id(work)}"
    deps_volume = f"tflite-forge-deps-{key}-{inputs_digest(req)}-{work_id(work)}"
    ccache_volume = f"tflite-forge-ccache-{key}"
    staging = work / "out" / f".staging-{key}"
    mounts = [ct.Mount(source=str(Path(req.tensorflow).resolve()), target=SRC, read_only=True)]
    for dep in sorted(req.dependencies, key=lambda d: d.name):
        mounts.append(ct.Mount(source=str(Path(dep.path).resolve()), target=f"{SRC_DEPS}/{dep.name}", read_only=True))
    mounts += [
        ct.Mount(source=str(arch.toolchain_file.parent.resolve()), target=TOOLCHAINS, read_only=True),
        ct.Mount(source=build_volume, target=BUILD, volume=True),
        ct.Mount(source=deps_volume, target=DEPS, volume=True),
        ct.Mount(source=ccache_volume, target=CCACHE, volume=True),
        ct.Mount(source=str(staging.resolve()), target=OUT),
    ]
    volumes = [(build_volume, cell_labels + (("io.tflite-forge.kind", "build"),)),
               (deps_volume, cell_labels + (("io.tflite-forge.kind", "build"),)),
               (ccache_volume, cell_labels + (("io.tflite-forge.kind", "ccache"),))]
    if host_volume:
        mounts.append(ct.Mount(source=host_volume, target=HOST, volume=True))
        volumes.append((host_volume, (("io.tflite-forge.kind", "build"), ("io.tflite-forge.host-tools", "1"))))
    spec = ct.ContainerSpec(image=req.image, purpose=f"build-{arch.name}", mounts=tuple(mounts), env=base_env,
                            workdir=BUILD, user=req.user, userns=req.userns, network="none", labels=cell_labels)
    return BuildPlan(
        key=key, label=req.label, arch=arch.name, image=req.image, spec=spec, steps=tuple(steps),
        volumes=tuple(volumes),
        cmake_options=tuple(sorted(options.items())), targets=targets, lib_patterns=patterns,
        compile_checks=tuple(compile_checks), cell_labels=cell_labels,
        out_dir=work / "out" / f"{req.label}-{arch.name}", staging_dir=staging,
        log_path=work / "logs" / f"build-{req.label}-{arch.name}.log",
        stamp_path=work / "stamps" / f"{key}.json",
        source_date_epoch=req.source_date_epoch, jobs=int(jobs), cross=cross)


# ---------------------------------------------------------------- incremental check


def plan_inputs(plan: BuildPlan, req: BuildRequest, image_id: str) -> dict:
    """What the stamp compares: the plan (steps, mounts, volumes named by the inputs' digest, compile
    checks), the image, every mounted tree (TensorFlow, each dependency, the toolchains), the toolchain
    file, the patch sets and the lock."""
    toolchain = req.arch.toolchain_file
    return {
        "plan": hashlib.sha256(repr((plan.steps, plan.spec, plan.compile_checks)).encode()).hexdigest(),
        "image_id": image_id,
        "toolchain": hashlib.sha256(toolchain.read_bytes()).hexdigest() if toolchain.exists() else "",
        "trees": {m.target: tree_digest(Path(m.source)) for m in plan.spec.mounts if m.read_only},
        "patch_sets": list(req.patch_sets),
        "dependencies": [[d.name, d.sha256, list(d.patches)] for d in req.dependencies],
        "lock": req.lock_sha256,
        # What runs the steps and collects the result: another tflite-forge may collect differently.
        "tflite_forge": forge_version,
    }


def is_up_to_date(plan: BuildPlan, inputs: Mapping) -> bool:
    try:
        stamp = json.loads(plan.stamp_path.read_text())
        info = (plan.out_dir / "build-info.json").read_bytes()
    except (OSError, ValueError):
        return False
    if stamp.get("inputs") != inputs or stamp.get("build_info_sha256") != hashlib.sha256(info).hexdigest():
        return False
    libs = json.loads(info).get("libraries", [])
    return bool(libs) and all((plan.out_dir / "lib" / lib["name"]).exists() for lib in libs)


# ---------------------------------------------------------------- running

class _Progress:
    """ninja's [n/N] as a rich progress bar on a TTY; off one (logs), a line per step and a line at
    every tenth of ninja's edges, never a carriage return. A nested ninja (an ExternalProject's own
    build, e.g. the host flatc) prints its own small [n/N] in between: progress is the largest n
    and the largest N seen in the step, so it only moves forward."""

    def __init__(self, title: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.title = title
        self._progress = None
        self._task = None
        self._step = ""
        self._done = self._total = self._tenth = 0

    def __enter__(self) -> "_Progress":
        if self.tty:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=Console(file=self.stream), transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def step(self, name: str) -> None:
        self._step, self._done, self._total, self._tenth = name, 0, 0, 0
        if self._progress is not None:
            self._task = self._progress.add_task(f"{self.title} {name}", total=None)
        else:
            print(f"tflite-forge: {self.title}: {name}", file=self.stream, flush=True)

    def line(self, text: str) -> None:
        match = NINJA_PROGRESS.match(text)
        if not match:
            return
        self._done, self._total = max(self._done, int(match.group(1))), max(self._total, int(match.group(2)))
        done, total = min(self._done, self._total), self._total
        if self._progress is not None:
            if self._task is not None:
                self._progress.update(self._task, completed=done, total=total)
        elif total and done * 10 // total > self._tenth:
            self._tenth = done * 10 // total
            print(f"tflite-forge: {self.title}: {self._step} {done}/{total} ({100 * done // total}%)",
                  file=self.stream, flush=True)

    def done(self) -> None:
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(self._task, completed=task.total or 1, total=task.total or 1)


def _prepare_staging(plan: BuildPlan, user: str) -> None:
    if plan.staging_dir.exists():
        shutil.rmtree(plan.staging_dir)
    plan.staging_dir.mkdir(parents=True)
    uid, _, gid = user.partition(":")
    if os.geteuid() == 0 and uid.isdigit():
        os.chown(plan.staging_dir, int(uid), int(gid or uid))
    else:
        os.chmod(plan.staging_dir, 0o777)


def _own(path: Path) -> None:
    """Give the container's files back to whoever runs tflite-forge (when we are root)."""
    if os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, 0, 0)


def _remote_cache_access(plan: BuildPlan, engine: eng.EngineConfig,
                         cache: ccache_remote.RemoteCache | None) -> tuple[ccache_remote.Access | None, str | None]:
    """The shared compile cache for this build on this engine, if it answers (else one warning line and
    the local ccache only). Not part of the plan: the cache never changes what is built."""
    if cache is None:
        return None, None
    access = ccache_remote.container_access(cache, engine)
    problem = ccache_remote.probe(access, engine, image=plan.image, user=plan.spec.user, userns=plan.spec.userns)
    if problem:
        print(ccache_remote.probe_warning(cache, problem), file=sys.stderr, flush=True)
        return None, problem
    return access, None


def run_record_path(plan: BuildPlan) -> Path:
    """<work_dir>/logs/build-<label>-<arch>.run.json: what the last run of the cell did (ccache hits),
    beside its log; never packaged."""
    return plan.log_path.with_suffix(".run.json")


def _write_run_record(plan: BuildPlan, stats_log: str, access: ccache_remote.Access | None,
                      cache: ccache_remote.RemoteCache | None, problem: str | None) -> None:
    stats = ccache_remote.parse_stats_log(stats_log)
    write_json_atomic(run_record_path(plan), {"key": plan.key, **ccache_remote.run_record(
        stats, access, configured=cache, problem=problem)})
    warning = ccache_remote.after_build_warning(cache, stats) if access is not None else None
    if warning:
        print(warning, file=sys.stderr, flush=True)


def execute(plan: BuildPlan, engine: eng.EngineConfig, *, log_line: Callable[[str], None] | None = None,
            remote_cache: ccache_remote.RemoteCache | None = None) -> dict:
    """Run the plan's steps in one container; the staging folder holds the libraries afterwards.
    Returns what the build proved about itself (the compile checks) for build-info.json.
    `remote_cache`: the shared ccache (ccache_remote), reached on this engine through its socket."""
    for name, labels in plan.volumes:
        ct.ensure_volume(engine, name, labels)
    _prepare_staging(plan, plan.spec.user or "")
    plan.log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: list[str] = []
    proven: dict = {}
    access, problem = _remote_cache_access(plan, engine, remote_cache)
    # On a builder (--builder) the trees go over as volumes and /out comes back by copy (remote.py);
    # the cache socket is the builder host's own and stays a bind mount.
    local = remote.localize(engine, ccache_remote.with_access(plan.spec, access), run_labels=plan.cell_labels)
    with contextlib.ExitStack() as stack:
        stack.callback(remote.release, engine, local)
        log = stack.enter_context(open(plan.log_path, "w"))
        progress = stack.enter_context(_Progress(f"{plan.label} {plan.arch}"))
        box = stack.enter_context(ct.Container(engine, local.spec))
        log.write(f"# {plan.describe()}\n# engine {engine.name} {engine.version} ({engine.title}), container {box.name}\n")
        log.write(f"# compile cache: local {CCACHE}"
                  + (f" + remote {access.remote.url} at {ccache_remote.SOCKET}\n" if access else
                     f" only (remote {remote_cache.url}: {problem})\n" if remote_cache else " only\n"))

        def on_line(text: str) -> None:
            nonlocal tail
            log.write(text + "\n")
            tail.append(text)
            if len(tail) > 4 * TAIL_LINES:
                tail = tail[-TAIL_LINES:]
            progress.line(text)
            if log_line:
                log_line(text)

        def run(name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
            log.write(f"\n# step {name}: {' '.join(argv)}\n")
            log.flush()
            started = time.monotonic()
            result = box.call(list(argv), env=dict(env), on_line=on_line)
            log.write(f"# step {name} took {time.monotonic() - started:.2f}s (exit {result.returncode})\n")
            log.flush()
            if result.returncode != 0:
                sys.stderr.write("\n".join(tail[-TAIL_LINES:]) + "\n")
                raise BuildError(f"{plan.label} for {plan.arch}: step {name} failed (exit {result.returncode}); "
                                 f"the last {TAIL_LINES} lines are above, the full log is {plan.log_path}")

        for step in plan.steps:
            progress.step(step.name)
            run(step.name, step.argv, dict(step.env))
            if step.collect:
                proven = _collect(plan, lambda argv: run("collect-artifacts", argv, {}),
                                  lambda sub: remote.fetch_out(engine, box, local, sub))
            progress.done()
        stats_log = box.call(["sh", "-c", f"cat {ccache_remote.STATS_LOG} 2>/dev/null || true"], capture=True).stdout
    _own(plan.staging_dir)
    _write_run_record(plan, stats_log or "", access, remote_cache, problem)
    return proven


def _collect(plan: BuildPlan, run: Callable[[Sequence[str]], None], fetch: Callable[[str], None]) -> dict:
    """Copy exactly the built targets' artifacts (CMake's file API) into /out/lib, add the SONAME and
    development links a shared library's users expect, and check every compile command. `fetch(sub)`
    brings /out/<sub> to the staging folder (a builder's; on this host it is there already)."""
    meta = plan.staging_dir / ".meta"
    fetch(".meta")
    try:
        artifacts = target_artifacts(meta / "reply", plan.targets)
        commands = json.loads((meta / "compile_commands.json").read_text())
    except (OSError, ValueError, KeyError, IndexError, TypeError, StopIteration) as exc:
        raise BuildError(f"{plan.label} for {plan.arch}: CMake's file-API reply or compile_commands.json is "
                         f"unreadable ({exc}); run `invoke clean --build` and build again") from None
    # The file API names the link a consumer links against (lib<name>.so); the file behind it is the
    # versioned one: copy that, and make the links here.
    run(["sh", "-ec", f'for a; do f=$(readlink -f "$a"); cp -- "$f" {OUT}/lib/; echo "${{f##*/}}"; done', "collect",
         *(f"{BUILD}/target/{a}" for a in artifacts)])
    fetch("lib")
    lib = plan.staging_dir / "lib"
    for real in sorted(p for p in lib.iterdir() if not p.is_symlink()):
        _library_links(real)
    plan.log_path.with_suffix(".compile_commands.json").write_text(json.dumps(commands, indent=1) + "\n")
    shutil.rmtree(meta, ignore_errors=True)
    report = compile_checks.run(commands, plan.compile_checks, trees={"tensorflow": SRC}, deps_root=DEPS)
    failed = next((r for r in report if r["failed"]), None)
    if failed:
        raise BuildError(f"{plan.label} for {plan.arch}: compile check {failed['id']} failed: {failed['failed']}; "
                         f"the patch set {failed['set']} did not reach the compiler (all commands: "
                         f"{plan.log_path.with_suffix('.compile_commands.json')})")
    return {"compile_checks": [{k: v for k, v in r.items() if k != "failed"} for r in report],
            "compile_commands": len(commands)}


def target_artifacts(reply: Path, targets: Sequence[str]) -> list[str]:
    """The artifact paths (relative to the build tree) of `targets`, from a file-API codemodel-v2 reply."""
    index = json.loads(sorted(reply.glob("index-*.json"))[-1].read_text())
    model = next(o["jsonFile"] for o in index["objects"] if o["kind"] == "codemodel")
    config = json.loads((reply / model).read_text())["configurations"][0]
    by_name = {t["name"]: t["jsonFile"] for t in config["targets"]}
    found = []
    for name in targets:
        if name not in by_name:
            raise BuildError(f"the build tree has no CMake target {name}; is [build].cmake_source_dir the C API project?")
        target = json.loads((reply / by_name[name]).read_text())
        found += [a["path"] for a in target.get("artifacts", []) if ".so" in PurePosixPath(a["path"]).name]
    return found


def _library_links(real: Path) -> None:
    """lib<name>.so.<major> (its SONAME) and lib<name>.so beside a versioned shared library."""
    soname = elf.soname(real)
    dev = real.name.split(".so", 1)[0] + ".so"
    if soname and soname != real.name:
        (real.parent / soname).symlink_to(real.name)
    if dev not in (real.name, soname):
        (real.parent / dev).symlink_to(soname or real.name)


STEP_TIME = re.compile(r"^# step (\S+) took ([0-9.]+)s")


def step_times(log_path: Path) -> dict[str, float]:
    """{step: seconds} from a build log (for bench/bench_build.py)."""
    times = {}
    for line in Path(log_path).read_text(errors="replace").splitlines():
        match = STEP_TIME.match(line)
        if match:
            times[match.group(1)] = float(match.group(2))
    return times


def libraries(lib_dir: Path) -> list[dict]:
    out = []
    for path in sorted(lib_dir.iterdir()):
        if path.is_symlink():
            out.append({"name": path.name, "symlink": os.readlink(path)})
        else:
            out.append({"name": path.name, "sha256": sha256_file(path), "size": path.stat().st_size,
                        "soname": elf.soname(path)})
    return out


def finish(plan: BuildPlan, info: dict) -> Path:
    """Write build-info.json into staging and swap staging in place of the old result."""
    info = dict(info, libraries=libraries(plan.staging_dir / "lib"))
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    (plan.staging_dir / "build-info.json").write_text(text)
    swap_dir(plan.staging_dir, plan.out_dir)
    return plan.out_dir


def cell_lock_path(plan: BuildPlan) -> Path:
    """One lock per (version, arch) cell: work/out/.<label>-<arch>.lock. Not per key: builds of the
    same cell with other options have their own volumes and staging, but share out_dir (and the
    .old-* folder finish() parks it in), so they must not overlap either."""
    return plan.out_dir.with_name(f".{plan.out_dir.name}.lock")


def remove_stale(plan: BuildPlan) -> list[Path]:
    """Folders and temp files a killed build of this cell left behind (call under the cell lock):
    staging folders (any options), an out_dir parked as .old-* by finish() between its two renames,
    and stamp temps. Other cells' leftovers are not ours to judge and are left alone."""
    cell = re.escape(plan.out_dir.name)
    patterns = ((plan.out_dir.parent, re.compile(rf"^\.staging-{cell}-[0-9a-f]+$")),
                (plan.out_dir.parent, re.compile(rf"^\.old-{cell}-\d+$")),
                (plan.stamp_path.parent, re.compile(rf"^\.{cell}-[0-9a-f]+\.json\..+")))
    removed = []
    for folder, pattern in patterns:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not pattern.match(path.name):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _say_waiting(plan: BuildPlan) -> None:
    print(f"tflite-forge: another build of {plan.label} for {plan.arch} is running (lock {cell_lock_path(plan)}); "
          "waiting for it to finish", file=sys.stderr, flush=True)


@contextlib.contextmanager
def cell_lock(plan: BuildPlan, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the cell's lock (waiting, and saying so, if another process has it); clear stale leftovers."""
    path = cell_lock_path(plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    with held_lock(path, on_wait or (lambda: _say_waiting(plan))):
        remove_stale(plan)
        yield


def run_build(plan: BuildPlan, engine: eng.EngineConfig, *, req: BuildRequest, image_id: str, info: dict,
              force: bool = False, remote_cache: ccache_remote.RemoteCache | None = None) -> tuple[Path, bool]:
    """Run the plan unless its stamp says nothing changed. Returns (out_dir, built).

    Two runs of the same cell would share the staging folder and the /build volume: the second
    waits for the first under the cell lock, then (usually) finds its result up to date."""
    with cell_lock(plan):
        inputs = plan_inputs(plan, req, image_id)
        if not force and is_up_to_date(plan, inputs):
            return plan.out_dir, False
        # Under the cell lock a container of this cell is an orphan: a SIGKILLed build's, still
        # writing into the volumes this run is about to use.
        orphans = ct.list_containers(engine, plan.cell_labels)
        if orphans:
            print(f"tflite-forge: removing {len(orphans)} container(s) a killed build of {plan.label} for "
                  f"{plan.arch} left running: {', '.join(orphans)}", file=sys.stderr)
            ct.remove_containers(engine, orphans)
        # ... and so is a builder's /out volume a killed run of this cell left (remote.py).
        ct.remove_volumes(engine, ct.list_volumes(engine, (remote.OUT_KIND, *plan.cell_labels)))
        plan.stamp_path.unlink(missing_ok=True)
        try:
            proven = execute(plan, engine, remote_cache=remote_cache)
            out = finish(plan, {**info, **proven})
        except BaseException:
            shutil.rmtree(plan.staging_dir, ignore_errors=True)
            raise
        stamp = {"key": plan.key, "inputs": inputs,
                 "build_info_sha256": sha256_file(out / "build-info.json")}
        write_json_atomic(plan.stamp_path, stamp)
        _drop_superseded_volumes(plan, engine)
        return out, True


def _drop_superseded_volumes(plan: BuildPlan, engine: eng.EngineConfig) -> None:
    """Build and deps volumes of this key made for other inputs are never used again as they are (a
    later build with those inputs starts afresh, from ccache): remove them so disk use stays bounded."""
    current = {name for name, _ in plan.volumes}
    stale = [v for v in ct.list_volumes(engine, (("io.tflite-forge.kind", "build"), *plan.cell_labels))
             if v not in current]
    if stale:
        ct.remove_volumes(engine, stale)


# ---------------------------------------------------------------- the task

def builder_user() -> str:
    """The build's --user: the caller's ids, or 1000:1000 when the caller is root."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return "1000:1000"
    return f"{uid}:{gid}"


def _source_date_epoch(recipe, tree: Path) -> int:
    if recipe.build.source_date_epoch is not None:
        return recipe.build.source_date_epoch
    newest = 0
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            newest = max(newest, int(os.lstat(os.path.join(dirpath, name)).st_mtime))
    return newest


@dataclass(frozen=True, kw_only=True)
class CellResult:
    out_dir: Path
    built: bool
    plan: BuildPlan
    info: Mapping = field(default_factory=dict)


def min_build_free_bytes() -> int:
    """Free space a build wants in the work dir before it starts: TFLITE_FORGE_MIN_FREE_GIB, default 2 GiB
    (a real TensorFlow tree's working copies and logs; build trees and ccache live in engine volumes)."""
    raw = os.environ.get("TFLITE_FORGE_MIN_FREE_GIB", "2")
    try:
        return int(float(raw) * 2**30)
    except ValueError:
        raise ConfigError(f"TFLITE_FORGE_MIN_FREE_GIB={raw!r}: expected a number of GiB, e.g. 2") from None


def build_info(recipe, arch: Arch, builder, plan: BuildPlan, *, engine: str, patch_sets, deps,
               lock_sha256: str | None) -> dict:
    """The build-info.json of a cell, from values only (no clock, no filesystem): it is embedded in the
    reproducible tarball, so the same inputs give the same bytes."""
    return {
        "format": BUILD_INFO_FORMAT, "tflite_forge": forge_version,
        "recipe": {"label": recipe.label, "version": recipe.version, "archive_sha256": recipe.source.sha256,
                   "cmake_source_dir": recipe.build.cmake_source_dir},
        "arch": {"name": arch.name, "triplet": arch.triplet, "toolchain_file": f"toolchains/{arch.toolchain_file.name}"},
        "engine": engine,
        "builder_image": {"tag": builder.tag, "id": builder.id, "debian_suite": builder.facts.get("debian_suite")},
        "base_image": {"ref": builder.base_image, "id": builder.base_id},
        "glibc_floor": builder.glibc_floor,
        "compilers": {k: builder.facts.get(k, "") for k in ("gcc", "gxx", "host_gcc", "cmake", "ninja", "ccache")},
        "cmake_options": dict(plan.cmake_options),
        "targets": list(plan.targets),
        "source_date_epoch": plan.source_date_epoch,
        "patch_sets": list(patch_sets),
        "dependencies": [{"name": d.name, "sha256": d.sha256, "cmake_variable": d.cmake_variable} for d in deps],
        "lock_sha256": lock_sha256,
        # Container paths that must not leak into the binaries (-ffile-prefix-map removes them).
        "build_paths": [SRC, f"{BUILD}/target", f"{BUILD}/host"],
        "jobs": plan.jobs,
    }


C_API_CMAKELISTS = "tensorflow/lite/c/CMakeLists.txt"
VERSIONED_C_API = re.compile(r"set_target_properties\(\s*tensorflowlite_c\b[^)]*\bSOVERSION\b", re.S)


def soname_problem(recipe, tensorflow: Path) -> str | None:
    """The release rule `invoke package` applies to the library (a versioned SONAME), decided from the
    patched C API CMakeLists before anything is compiled: None, or what is wrong and how to fix it."""
    try:
        text = (Path(tensorflow) / C_API_CMAKELISTS).read_text(errors="replace")
    except OSError:
        return None          # not the C API project: nothing to predict
    if VERSIONED_C_API.search(text):
        return None
    sets = ", ".join(recipe.build.patch_sets) or "none"
    return (f"{recipe.path.name}: the library would have no versioned SONAME ({C_API_CMAKELISTS} sets no "
            f"SOVERSION on tensorflowlite_c; patch sets: {sets}), and `invoke package` refuses such a library; "
            "add \"soname\" to [build].patch_sets (or drop patch_sets to get the standard sets)")


def build_cell(settings, recipe, arch: Arch, engine: eng.EngineConfig, *, base_image: str | None = None,
               cxx_shared: bool = False, force: bool = False, release: bool = False,
               home: eng.EngineConfig | None = None) -> CellResult:
    """Fetch and patch if needed, ensure the builder image, plan, run. `release`: the library is to be
    packaged, so the package's SONAME rule is a planning error, not a surprise after the build.
    `engine` may be a builder (--builder): the image is then made on `home` (this host's engine) and
    loaded there with the same ID, so every builder compiles with the same bits."""
    from . import fetch, image, patching
    from .arches import check_combination, default_cmake_options
    from .jobs import choose_jobs

    ensure_free_space(Path(settings.work_dir), min_build_free_bytes(),
                      what=f"building {recipe.label} for {arch.name} (working copies, outputs, logs)",
                      fix="point TFLITE_FORGE_WORK_DIR at a larger disk (or lower TFLITE_FORGE_MIN_FREE_GIB)")
    # Only the locked trees these options bring in (the GPU headers, kernel-test trees and, on armhf,
    # XNNPACK's stay out); the compiler rules that need the builder's GCC do not gate any download.
    wanted = default_cmake_options(arch, recipe.version)
    wanted.update(dict(recipe.build.cmake_options))
    sources = fetch.ensure_sources(settings, recipe, options=wanted, processors=(arch.cmake_system_processor,))
    prepared = patching.prepare_sources(settings, sources, arch.name)
    problem = soname_problem(recipe, Path(prepared.tensorflow))
    if problem and release:
        raise PackageError(problem)
    if problem:
        print(f"tflite-forge: warning: {problem}", file=sys.stderr)
    maker = home if engine.remote and home is not None else engine
    builder = image.ensure_builder_image(maker, arch, work_dir=settings.work_dir, cache_dir=settings.cache_dir,
                                         base_image=base_image or image.DEFAULT_BASE_IMAGE)
    image_io.copy_to_builder(maker, engine, builder.tag, builder.id)
    options = default_cmake_options(arch, recipe.version, gcc_major=builder.gcc_major)
    options.update(dict(recipe.build.cmake_options))
    for bad in check_combination(arch, recipe.version, options, gcc_major=builder.gcc_major):
        # The recipe asked for it explicitly: say what is known to break, and go on.
        print(f"tflite-forge: warning: {recipe.path.name} sets a known-bad combination for {arch.name}: "
              f"{bad.describe()}", file=sys.stderr)
    set_ids = [f"{name}:{digest}" for name, digest in prepared.sets]
    digests = dict(prepared.sets)
    deps = []
    for name, path in sorted(prepared.dependencies.items()):
        locked = sources.dependencies[name].dependency
        touched = sorted({r.set_name for r in prepared.results if r.tree == name and r.status == "applies"})
        deps.append(Dependency(name=name, cmake_variable=locked.cmake_variable, path=Path(path), sha256=locked.sha256,
                               patches=tuple(f"{n}:{digests[n]}" for n in touched)))
    resources = eng.host_resources(engine)
    user, userns = builder_user(), None
    if engine.name == "podman" and os.geteuid() != 0 and not engine.remote:
        user, userns = f"{os.getuid()}:{os.getgid()}", "keep-id"
    lock_sha256 = sha256_file(recipe.lock_path) if recipe.lock_path.exists() else None
    req = BuildRequest(
        label=recipe.label, version=recipe.version, arch=arch, image=builder.tag,
        gcc_version=builder.facts.get("gcc", ""), tensorflow=Path(prepared.tensorflow), dependencies=tuple(deps),
        cmake_source_dir=recipe.build.cmake_source_dir, host_tools_target=recipe.build.host_tools_target,
        cmake_options=tuple(sorted(options.items())),
        source_date_epoch=_source_date_epoch(recipe, Path(sources.tensorflow)),
        work_dir=Path(settings.work_dir), jobs=choose_jobs(settings.jobs, resources.cpus, resources.memory_bytes),
        cxx_shared=cxx_shared, user=user, userns=userns, engine=engine.name,
        source_sha256=recipe.source.sha256 or "", patch_sets=tuple(set_ids), lock_sha256=lock_sha256 or "",
        toolchain_sha256=sha256_file(arch.toolchain_file),
        host_compiler=" ".join(f"{k}={builder.facts.get(k, '')}" for k in ("host_gcc", "cmake", "ninja", "debian"))
        + f" base={builder.base_id}")
    checks = [c for ps in load_recipe_sets(recipe) for c in ps.checks
              if c.applies.why_not(recipe.version, arch.name, "cmake") is None]
    plan = plan_build(req, compile_checks=tuple(checks))
    info = build_info(recipe, arch, builder, plan, engine=engine.name,
                      patch_sets=prepared.stamp_summary()["sets"], deps=deps, lock_sha256=lock_sha256)
    cache = ccache_remote.parse(settings.ccache_remote) if settings.ccache_remote else None
    out, built = run_build(plan, engine, req=req, image_id=builder.id, info=info, force=force, remote_cache=cache)
    return CellResult(out_dir=out, built=built, plan=plan, info=info)


def run_build_task(settings, *, base_image: str | None = None, cxx_shared: bool = False,
                   force: bool = False, release: bool = False) -> list[CellResult]:
    """`invoke build`: every (recipe, arch) asked for, one container build at a time. `release`: a later
    task of the chain packages the result (see build_cell)."""
    from .arches import resolve_arches_or_host
    from .recipe import select_recipes

    recipes = select_recipes(version=settings.version, recipe=settings.recipe)
    arches = resolve_arches_or_host(settings.arch)
    home, engine = build_engines(settings)
    results = []
    for recipe in recipes:
        for arch in arches:
            result = build_cell(settings, recipe, arch, engine, base_image=base_image, cxx_shared=cxx_shared,
                                force=force, release=release, home=home)
            libs = ", ".join(lib["name"] for lib in json.loads((result.out_dir / "build-info.json").read_text())
                             ["libraries"] if "sha256" in lib)
            state = "built" if result.built else "up to date"
            print(f"{recipe.label} {arch.name}: {state} -> {result.out_dir} ({libs})")
            results.append(result)
    return results


def build_engines(settings) -> tuple[eng.EngineConfig, eng.EngineConfig]:
    """(this host's engine, the engine builds run on): the first --builder that answers, if any were given
    (a matrix hands each cell process one builder), else this host's engine."""
    home = eng.resolve_engine(settings.engine)
    if not settings.builders:
        return home, home
    problems = []
    for spec in parse_builders(settings.builders):
        try:
            engine = eng.resolve_builder(spec)
        except EngineError as err:
            problems.append(str(err))
            continue
        if len(settings.builders) > 1 or problems:
            print(f"tflite-forge: building on {engine.title}", file=sys.stderr)
        return home, engine
    raise EngineError("no builder answers: " + "; ".join(problems))


# ---------------------------------------------------------------- clean

def _kept_note(kept: Sequence[str]) -> str:
    return f"; kept {len(kept)} in use by a running build ({', '.join(kept)})" if kept else ""


def _build_tree_volumes(engine: eng.EngineConfig, work: Path) -> list[str]:
    """What `invoke clean --build` removes on an engine: this work dir's build and deps trees (another
    checkout's are not ours to remove), and the shared host-tools trees, shipped trees and /out
    volumes (caches or leftovers: the next build remakes them); the caller keeps those in use."""
    return (ct.list_volumes(engine, (("io.tflite-forge.kind", "build"), ("io.tflite-forge.work", work_id(work))))
            + ct.list_volumes(engine, (("io.tflite-forge.kind", "build"), ("io.tflite-forge.host-tools", "1")))
            + ct.list_volumes(engine, (remote.SOURCE_KIND,)) + ct.list_volumes(engine, (remote.OUT_KIND,)))


def _remove_unused(engine: eng.EngineConfig, volumes: list[str]) -> tuple[int, list[str]]:
    """(volumes removed, volumes kept because a running build uses them)."""
    kept = ct.remove_volumes(engine, volumes, keep_in_use=True)
    return len(volumes) - len(kept), kept


def _ccache_volumes(engine: eng.EngineConfig) -> list[str]:
    return ct.list_volumes(engine, (("io.tflite-forge.kind", "ccache"),))


def run_clean(settings, *, build: bool = False, images: bool = False, cache: bool = False) -> list[str]:
    """`invoke clean`: remove build trees (this work dir's volumes, outputs, stamps), builder images, ccache
    volumes (shared by every work dir: the compiler cache)."""
    if not (build or images or cache):
        build = True
    engine = eng.resolve_engine(settings.engine)
    said: list[str] = []
    work = Path(settings.work_dir)
    for spec in parse_builders(settings.builders):
        # A builder holds this work dir's build trees, the trees shipped to it and its compiler cache.
        far = eng.resolve_builder(spec)
        removed, kept = _remove_unused(far, (_build_tree_volumes(far, work) if build else [])
                                       + (_ccache_volumes(far) if cache else []))
        said.append(f"on builder {far.title}: {removed} volume(s)" + _kept_note(kept))
    if build:
        removed, kept = _remove_unused(engine, _build_tree_volumes(engine, work))
        for path in (work / "out", work / "stamps"):
            if path.exists():
                shutil.rmtree(path)
        said.append(f"build trees: {removed} {engine.name} volume(s), {work / 'out'}, {work / 'stamps'}"
                    + _kept_note(kept))
    if cache:
        removed, kept = _remove_unused(engine, _ccache_volumes(engine))
        said.append(f"compiler cache: {removed} ccache volume(s)" + _kept_note(kept))
    if images:
        from .image import builder_images
        refs = builder_images(engine)
        image_io.remove_images(engine, refs)
        if (work / "images").exists():
            shutil.rmtree(work / "images")
        said.append(f"builder images: {len(refs)} ({', '.join(refs) or 'none'}); the base image is kept")
    for line in said:
        print(f"removed {line}")
    return said


__all__ = ["BuildRequest", "BuildPlan", "Step", "Dependency", "plan_build", "run_build", "build_cell",
           "run_build_task", "run_clean", "is_up_to_date", "plan_inputs", "merged_options", "compiler_flags"]
