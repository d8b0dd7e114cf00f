"""The build: plan it as data, then run it in a container.

`plan_build(request) -> BuildPlan` is pure (no engine, no filesystem writes): frozen steps with
argv lists and environments, the mounts, the volumes and where results go. `run_build(plan, engine)`
executes it in one hermetic container:

    /src/tensorflow   patched working copy (read-only)
    /deps/<name>      every locked dependency's working copy (read-only)
    /toolchains       toolchains/*.cmake (read-only)
    /build, /ccache   named volumes keyed by (version, arch, options)
    /out              a staging folder on the host, renamed into <work_dir>/out/<label>-<arch> on success

with `--network=none --cap-drop=ALL --security-opt no-new-privileges --user uid:gid`.
Cross builds first build the host `flatc` natively and hand it over with -DTFLITE_HOST_TOOLS_DIR.
A stamp of every input's digest makes a second build with nothing changed a check only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

from filelock import FileLock, Timeout

from . import container as ct
from .cache import sha256_file
from .download import ensure_free_space
from .arches import Arch
from .errors import BuildError, ConfigError
from .fsutil import write_json_atomic

SRC = "/src/tensorflow"
DEPS = "/deps"
BUILD = "/build"
CCACHE = "/ccache"
OUT = "/out"
TOOLCHAINS = "/toolchains"
HOST_TOOLS = f"{BUILD}/host-tools"
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
    sha256: str = ""


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


@dataclass(frozen=True, kw_only=True)
class Step:
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    progress: bool = False       # ninja prints [n/N]


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


def compiler_flags(req: BuildRequest, options: Mapping[str, str]) -> dict[str, str]:
    """CFLAGS/CXXFLAGS/LDFLAGS for configure: reproducible paths and build ids only.

    Given through the environment, CMake combines them with the toolchain file's *_INIT flags.
    Arch flags (e.g. armhf's -mfp16-format=ieee when XNNPACK is on) belong to the toolchain
    files, which see -DTFLITE_ENABLE_XNNPACK themselves, so a CMake user gets them too.
    """
    common = [f"-ffile-prefix-map={SRC}=.", f"-ffile-prefix-map={DEPS}=deps", f"-ffile-prefix-map={BUILD}=build"]
    flags = " ".join(common)
    return {"CFLAGS": flags, "CXXFLAGS": flags, "LDFLAGS": "-Wl,--build-id=sha1"}


def options_digest(req: BuildRequest) -> str:
    data = {"label": req.label, "arch": req.arch.name, "options": sorted(merged_options(req).items()),
            "cxx_shared": req.cxx_shared, "source_dir": req.cmake_source_dir}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def _fetchcontent_defines(req: BuildRequest) -> list[str]:
    defines = [f"-D{dep.cmake_variable}={DEPS}/{dep.name}" for dep in sorted(req.dependencies, key=lambda d: d.name)]
    return defines + ["-DFETCHCONTENT_FULLY_DISCONNECTED=ON"]


def plan_build(req: BuildRequest) -> BuildPlan:
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
    flags_env = tuple(sorted(compiler_flags(req, options).items()))
    steps: list[Step] = []
    if cross:
        host_flags = " ".join(f for f in dict(flags_env)["CFLAGS"].split() if f.startswith("-ffile-prefix-map="))
        steps.append(Step(name="host-configure", env=(("CFLAGS", host_flags), ("CXXFLAGS", host_flags)), argv=(
            "cmake", "-S", source, "-B", f"{BUILD}/host", "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
            *launcher, *_fetchcontent_defines(req))))
        steps.append(Step(name="host-flatc", progress=True, argv=(
            "cmake", "--build", f"{BUILD}/host", "--target", req.host_tools_target, "--", "-j", jobs)))
        steps.append(Step(name="host-tools", argv=(
            "sh", "-ec",
            f'f=$(find {BUILD}/host -type f -name flatc -perm -u+x | head -n1); '
            f'[ -n "$f" ] || {{ echo "no flatc under {BUILD}/host after building {req.host_tools_target}" >&2; exit 1; }}; '
            f'mkdir -p {HOST_TOOLS}; cp -p "$f" {HOST_TOOLS}/flatc; {HOST_TOOLS}/flatc --version')))
    defines = [f"-D{k}={v}" for k, v in sorted(options.items())]
    configure = ["cmake", "-S", source, "-B", f"{BUILD}/target", "-G", "Ninja",
                 f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAINS}/{arch.toolchain_file.name}",
                 "-DCMAKE_BUILD_TYPE=Release", *launcher, *_fetchcontent_defines(req), *defines]
    if cross:
        configure.append(f"-DTFLITE_HOST_TOOLS_DIR={HOST_TOOLS}")
    steps.append(Step(name="configure", argv=tuple(configure), env=flags_env))
    targets = (C_TARGET, CXX_TARGET) if req.cxx_shared else (C_TARGET,)
    build = ["cmake", "--build", f"{BUILD}/target"]
    for target in targets:
        build += ["--target", target]
    steps.append(Step(name="build", progress=True, argv=(*build, "--", "-j", jobs)))
    patterns = LIB_PATTERNS + (CXX_LIB_PATTERNS if req.cxx_shared else ())
    names = " -o ".join(f"-name '{p}'" for p in patterns)
    steps.append(Step(name="collect", argv=(
        "sh", "-ec",
        f"mkdir -p {OUT}/lib; find {BUILD}/target -path '*/_deps' -prune -o \\( {names} \\) -print "
        f"| while read -r f; do cp -P \"$f\" {OUT}/lib/; done; ls -l {OUT}/lib; "
        f"ls {OUT}/lib | grep -q . || {{ echo 'the build made no library' >&2; exit 1; }}")))

    work = Path(req.work_dir)
    cell_labels = (("io.tflite-forge.version", req.version), ("io.tflite-forge.arch", arch.name),
                   ("io.tflite-forge.key", key))
    # The build tree belongs to one builder image: another base (bullseye vs bookworm) or toolchain
    # must never link objects left by the other. ccache may be shared: it hashes the compiler itself.
    image_key = hashlib.sha256(req.image.encode()).hexdigest()[:8]
    build_volume = f"tflite-forge-build-{key}-{image_key}"
    ccache_volume = f"tflite-forge-ccache-{key}"
    staging = work / "out" / f".staging-{key}"
    mounts = [ct.Mount(source=str(Path(req.tensorflow).resolve()), target=SRC, read_only=True)]
    for dep in sorted(req.dependencies, key=lambda d: d.name):
        mounts.append(ct.Mount(source=str(Path(dep.path).resolve()), target=f"{DEPS}/{dep.name}", read_only=True))
    mounts += [
        ct.Mount(source=str(arch.toolchain_file.parent.resolve()), target=TOOLCHAINS, read_only=True),
        ct.Mount(source=build_volume, target=BUILD, volume=True),
        ct.Mount(source=ccache_volume, target=CCACHE, volume=True),
        ct.Mount(source=str(staging.resolve()), target=OUT),
    ]
    spec = ct.ContainerSpec(image=req.image, purpose=f"build-{arch.name}", mounts=tuple(mounts), env=base_env,
                            workdir=BUILD, user=req.user, userns=req.userns, network="none", labels=cell_labels)
    return BuildPlan(
        key=key, label=req.label, arch=arch.name, image=req.image, spec=spec, steps=tuple(steps),
        volumes=((build_volume, cell_labels + (("io.tflite-forge.kind", "build"),)),
                 (ccache_volume, cell_labels + (("io.tflite-forge.kind", "ccache"),))),
        cmake_options=tuple(sorted(options.items())), targets=targets, lib_patterns=patterns,
        out_dir=work / "out" / f"{req.label}-{arch.name}", staging_dir=staging,
        log_path=work / "logs" / f"build-{req.label}-{arch.name}.log",
        stamp_path=work / "stamps" / f"{key}.json",
        source_date_epoch=req.source_date_epoch, jobs=int(jobs), cross=cross)


# ---------------------------------------------------------------- incremental check

def tree_digest(root: Path) -> str:
    """Cheap digest of a tree: every entry's path, size, mode and mtime (patching keeps these
    stable when it reuses a working copy, and any edit changes them)."""
    h = hashlib.sha256()
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            h.update(f"{os.path.relpath(path, root)}\0{st.st_size}\0{st.st_mode}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def plan_inputs(plan: BuildPlan, req: BuildRequest, image_id: str) -> dict:
    """What the stamp compares: the plan, the image, every mounted tree and the toolchain file."""
    toolchain = req.arch.toolchain_file
    return {
        "plan": hashlib.sha256(repr((plan.steps, plan.spec)).encode()).hexdigest(),
        "image_id": image_id,
        "toolchain": hashlib.sha256(toolchain.read_bytes()).hexdigest() if toolchain.exists() else "",
        "trees": {m.target: tree_digest(Path(m.source)) for m in plan.spec.mounts if m.read_only},
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
    """ninja's [n/N] as a rich progress bar on a TTY; step names otherwise."""

    def __init__(self, title: str) -> None:
        self.tty = sys.stderr.isatty()
        self.title = title
        self._progress = None
        self._task = None

    def __enter__(self) -> "_Progress":
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def step(self, name: str) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(f"{self.title} {name}", total=None)
        else:
            print(f"tflite-forge: {self.title}: {name}", file=sys.stderr, flush=True)

    def line(self, text: str) -> None:
        if self._progress is None or self._task is None:
            return
        match = NINJA_PROGRESS.match(text)
        if match:
            self._progress.update(self._task, completed=int(match.group(1)), total=int(match.group(2)))

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


def execute(plan: BuildPlan, engine: ct.EngineConfig, *, log_line: Callable[[str], None] | None = None) -> None:
    """Run the plan's steps in one container; the staging folder holds the libraries afterwards."""
    for name, labels in plan.volumes:
        ct.ensure_volume(engine, name, labels)
    _prepare_staging(plan, plan.spec.user or "")
    plan.log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: list[str] = []
    with open(plan.log_path, "w") as log, _Progress(f"{plan.label} {plan.arch}") as progress, \
            ct.Container(engine, plan.spec) as box:
        log.write(f"# {plan.describe()}\n# engine {engine.name} {engine.version}, container {box.name}\n")
        for step in plan.steps:
            progress.step(step.name)
            log.write(f"\n# step {step.name}: {' '.join(step.argv)}\n")
            log.flush()

            def on_line(text: str) -> None:
                nonlocal tail
                log.write(text + "\n")
                tail.append(text)
                if len(tail) > 4 * TAIL_LINES:
                    tail = tail[-TAIL_LINES:]
                progress.line(text)
                if log_line:
                    log_line(text)

            started = time.monotonic()
            result = box.call(list(step.argv), env=dict(step.env), on_line=on_line)
            log.write(f"# step {step.name} took {time.monotonic() - started:.2f}s (exit {result.returncode})\n")
            log.flush()
            if result.returncode != 0:
                sys.stderr.write("\n".join(tail[-TAIL_LINES:]) + "\n")
                raise BuildError(f"{plan.label} for {plan.arch}: step {step.name} failed (exit {result.returncode}); "
                                 f"the last {TAIL_LINES} lines are above, the full log is {plan.log_path}")
            progress.done()
    _own(plan.staging_dir)


STEP_TIME = re.compile(r"^# step (\S+) took ([0-9.]+)s")


def step_times(log_path: Path) -> dict[str, float]:
    """{step: seconds} from a build log (for bench/bench_build.py)."""
    times = {}
    for line in Path(log_path).read_text(errors="replace").splitlines():
        match = STEP_TIME.match(line)
        if match:
            times[match.group(1)] = float(match.group(2))
    return times


def _soname(path: Path) -> str | None:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_SONAME":
                        return tag.soname
    return None


def libraries(lib_dir: Path) -> list[dict]:
    out = []
    for path in sorted(lib_dir.iterdir()):
        if path.is_symlink():
            out.append({"name": path.name, "symlink": os.readlink(path)})
        else:
            out.append({"name": path.name, "sha256": sha256_file(path), "size": path.stat().st_size,
                        "soname": _soname(path)})
    return out


def finish(plan: BuildPlan, info: dict) -> Path:
    """Write build-info.json into staging and swap staging in place of the old result."""
    info = dict(info, libraries=libraries(plan.staging_dir / "lib"))
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    (plan.staging_dir / "build-info.json").write_text(text)
    old = None
    if plan.out_dir.exists():
        old = plan.out_dir.with_name(f".old-{plan.out_dir.name}-{os.getpid()}")
        os.replace(plan.out_dir, old)
    os.replace(plan.staging_dir, plan.out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
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
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0.5)
    except Timeout:
        (on_wait or (lambda: _say_waiting(plan)))()
        lock.acquire()
    try:
        remove_stale(plan)
        yield
    finally:
        lock.release()


def run_build(plan: BuildPlan, engine: ct.EngineConfig, *, req: BuildRequest, image_id: str, info: dict,
              force: bool = False) -> tuple[Path, bool]:
    """Run the plan unless its stamp says nothing changed. Returns (out_dir, built).

    Two runs of the same cell would share the staging folder and the /build volume: the second
    waits for the first under the cell lock, then (usually) finds its result up to date."""
    with cell_lock(plan):
        inputs = plan_inputs(plan, req, image_id)
        if not force and is_up_to_date(plan, inputs):
            return plan.out_dir, False
        plan.stamp_path.unlink(missing_ok=True)
        try:
            execute(plan, engine)
            out = finish(plan, info)
        except BaseException:
            shutil.rmtree(plan.staging_dir, ignore_errors=True)
            raise
        stamp = {"key": plan.key, "inputs": inputs,
                 "build_info_sha256": sha256_file(out / "build-info.json")}
        write_json_atomic(plan.stamp_path, stamp)
        return out, True


# ---------------------------------------------------------------- the task

def builder_user() -> tuple[str, str | None]:
    """(--user, --userns): the caller's ids, or 1000:1000 when the caller is root."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return "1000:1000", None
    return f"{uid}:{gid}", None


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
    from . import __version__ as forge_version

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


def build_cell(settings, recipe, arch: Arch, engine: ct.EngineConfig, *, base_image: str | None = None,
               cxx_shared: bool = False, force: bool = False) -> CellResult:
    """Fetch and patch if needed, ensure the builder image, plan, run."""
    from . import fetch, image, patching
    from .arches import check_combination, default_cmake_options
    from .jobs import choose_jobs

    ensure_free_space(Path(settings.work_dir), min_build_free_bytes(),
                      what=f"building {recipe.label} for {arch.name} (working copies, outputs, logs)",
                      fix="point TFLITE_FORGE_WORK_DIR at a larger disk (or lower TFLITE_FORGE_MIN_FREE_GIB)")
    sources = fetch.ensure_sources(settings, recipe)
    prepared = patching.prepare_sources(settings, sources, arch.name)
    builder = image.ensure_builder_image(engine, arch, work_dir=settings.work_dir, cache_dir=settings.cache_dir,
                                         base_image=base_image or image.DEFAULT_BASE_IMAGE)
    options = default_cmake_options(arch, recipe.version, gcc_major=builder.gcc_major)
    options.update(dict(recipe.build.cmake_options))
    for bad in check_combination(arch, recipe.version, options, gcc_major=builder.gcc_major):
        # The recipe asked for it explicitly: say what is known to break, and go on.
        print(f"tflite-forge: warning: {recipe.path.name} sets a known-bad combination for {arch.name}: "
              f"{bad.describe()}", file=sys.stderr)
    deps = []
    for name, path in sorted(prepared.dependencies.items()):
        locked = sources.dependencies[name].dependency
        deps.append(Dependency(name=name, cmake_variable=locked.cmake_variable, path=Path(path), sha256=locked.sha256))
    resources = ct.host_resources(engine)
    user, userns = builder_user()
    if engine.name == "podman" and os.geteuid() != 0:
        user, userns = f"{os.getuid()}:{os.getgid()}", "keep-id"
    req = BuildRequest(
        label=recipe.label, version=recipe.version, arch=arch, image=builder.tag,
        gcc_version=builder.facts.get("gcc", ""), tensorflow=Path(prepared.tensorflow), dependencies=tuple(deps),
        cmake_source_dir=recipe.build.cmake_source_dir, host_tools_target=recipe.build.host_tools_target,
        cmake_options=tuple(sorted(options.items())),
        source_date_epoch=_source_date_epoch(recipe, Path(sources.tensorflow)),
        work_dir=Path(settings.work_dir), jobs=choose_jobs(settings.jobs, resources.cpus, resources.memory_bytes),
        cxx_shared=cxx_shared, user=user, userns=userns, engine=engine.name)
    plan = plan_build(req)
    info = build_info(recipe, arch, builder, plan, engine=engine.name,
                      patch_sets=prepared.stamp_summary()["sets"], deps=deps,
                      lock_sha256=sha256_file(recipe.lock_path) if recipe.lock_path.exists() else None)
    out, built = run_build(plan, engine, req=req, image_id=builder.id, info=info, force=force)
    return CellResult(out_dir=out, built=built, plan=plan, info=info)


def run_build_task(settings, *, base_image: str | None = None, cxx_shared: bool = False,
                   force: bool = False) -> list[CellResult]:
    """`invoke build`: every (recipe, arch) asked for, one container build at a time."""
    from .arches import resolve_arches_or_host
    from .recipe import select_recipes

    recipes = select_recipes(version=settings.version, recipe=settings.recipe)
    arches = resolve_arches_or_host(settings.arch)
    engine = ct.resolve_engine(settings.engine)
    results = []
    for recipe in recipes:
        for arch in arches:
            result = build_cell(settings, recipe, arch, engine, base_image=base_image, cxx_shared=cxx_shared,
                                force=force)
            libs = ", ".join(lib["name"] for lib in json.loads((result.out_dir / "build-info.json").read_text())
                             ["libraries"] if "sha256" in lib)
            state = "built" if result.built else "up to date"
            print(f"{recipe.label} {arch.name}: {state} -> {result.out_dir} ({libs})")
            results.append(result)
    return results


# ---------------------------------------------------------------- clean

def run_clean(settings, *, build: bool = False, images: bool = False, cache: bool = False) -> list[str]:
    """`invoke clean`: remove build trees (volumes, outputs, stamps), builder images, ccache volumes."""
    if not (build or images or cache):
        build = True
    engine = ct.resolve_engine(settings.engine)
    said: list[str] = []
    work = Path(settings.work_dir)
    if build:
        volumes = ct.list_volumes(engine, (("io.tflite-forge.kind", "build"),))
        ct.remove_volumes(engine, volumes)
        for path in (work / "out", work / "stamps"):
            if path.exists():
                shutil.rmtree(path)
        said.append(f"build trees: {len(volumes)} {engine.name} volume(s), {work / 'out'}, {work / 'stamps'}")
    if cache:
        volumes = ct.list_volumes(engine, (("io.tflite-forge.kind", "ccache"),))
        ct.remove_volumes(engine, volumes)
        said.append(f"compiler cache: {len(volumes)} ccache volume(s)")
    if images:
        from .image import builder_images
        refs = builder_images(engine)
        ct.remove_images(engine, refs)
        if (work / "images").exists():
            shutil.rmtree(work / "images")
        said.append(f"builder images: {len(refs)} ({', '.join(refs) or 'none'}); the base image is kept")
    for line in said:
        print(f"removed {line}")
    return said


__all__ = ["BuildRequest", "BuildPlan", "Step", "Dependency", "plan_build", "run_build", "build_cell",
           "run_build_task", "run_clean", "is_up_to_date", "plan_inputs", "merged_options", "compiler_flags"]
