"""The build's plan: a `BuildRequest` (every input of one cell's build) becomes a `BuildPlan`, as data.

`plan_build(request) -> BuildPlan` is pure (no engine, no filesystem writes): frozen steps with
argv lists and environments, the mounts, the volumes and where results go (the Workspace's paths).
`build_run.run_build(plan, engine)` executes it in one hermetic container:

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
    /out              a staging folder on the host, renamed into <work_dir>/out/<cell> on success
    /run/tflite-forge/ccache.sock   with --ccache-remote only: the shared cache's socket, added at run
                      time by ccache_remote (not in the plan, so not in the stamp: it never changes the output)

with `--network=none --cap-drop=ALL --security-opt no-new-privileges --user uid:gid`.
Cross builds first build the host `flatc` natively from the flatbuffers tree and hand it over with
-DTFLITE_HOST_TOOLS_DIR. The libraries collected are exactly the artifacts CMake's file API names
for the targets built. Every compile command is checked against the patch sets' compile checks.
A stamp of every input's digest (`plan_inputs`) makes a second build with nothing changed a check
only. `build_info` is the build-info.json of a cell, from values only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__ as forge_version
from .arches import Arch, check_combination, default_cmake_options
from .cache import sha256_file
from .container import ContainerSpec, Mount
from .errors import ConfigError, PackageError
from .fsutil import tree_digest
from .patchset import load_recipe_sets
from .workspace import Cell, Workspace

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
    """Everything a plan depends on, gathered by `make_request` (or a test)."""
    cell: Cell                                   # the recipe (its label and version) on the arch
    workspace: Workspace                         # where the results, logs, stamps and the cell lock go
    image: str                                   # builder image tag
    gcc_version: str                             # the target compiler in that image
    tensorflow: Path                             # host path of the patched TF working copy
    dependencies: tuple[Dependency, ...]
    cmake_source_dir: str = "tensorflow/lite/c"
    host_tools_target: str = "flatbuffers-flatc"
    cmake_options: tuple[tuple[str, str], ...] = ()   # recipe options, already merged over arch defaults
    source_date_epoch: int = 0
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

    @property
    def label(self) -> str:
        """recipe.label, e.g. tensorflow-2.16.1."""
        return self.cell.recipe.label

    @property
    def version(self) -> str:
        return self.cell.recipe.version

    @property
    def arch(self) -> Arch:
        return self.cell.arch


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
    spec: ContainerSpec
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
    lock_path: Path                              # one build of the cell at a time (build_run.cell_lock)
    run_record_path: Path                        # what the last run did (ccache counts), beside the log
    compile_commands_path: Path                  # the build's compile commands, beside the log
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

    ws, cell = req.workspace, req.cell
    work = ws.work_dir
    # The cell lock lives in the work dir: two work dirs may build the same cell at once, so their
    # trees, and what counts as an orphan or a superseded volume, are kept apart by the work dir's id.
    cell_labels = (("io.tflite-forge.version", req.version), ("io.tflite-forge.arch", arch.name),
                   ("io.tflite-forge.key", key), ("io.tflite-forge.work", work_id(work)))
    build_volume = f"tflite-forge-build-{key}-{inputs_digest(req)}-{work_id(work)}"
    deps_volume = f"tflite-forge-deps-{key}-{inputs_digest(req)}-{work_id(work)}"
    ccache_volume = f"tflite-forge-ccache-{key}"
    staging = ws.staging(key)
    mounts = [Mount(source=str(Path(req.tensorflow).resolve()), target=SRC, read_only=True)]
    for dep in sorted(req.dependencies, key=lambda d: d.name):
        mounts.append(Mount(source=str(Path(dep.path).resolve()), target=f"{SRC_DEPS}/{dep.name}", read_only=True))
    mounts += [
        Mount(source=str(arch.toolchain_file.parent.resolve()), target=TOOLCHAINS, read_only=True),
        Mount(source=build_volume, target=BUILD, volume=True),
        Mount(source=deps_volume, target=DEPS, volume=True),
        Mount(source=ccache_volume, target=CCACHE, volume=True),
        Mount(source=str(staging.resolve()), target=OUT),
    ]
    volumes: list[tuple[str, tuple[tuple[str, str], ...]]] = [(build_volume, cell_labels + (("io.tflite-forge.kind", "build"),)),
               (deps_volume, cell_labels + (("io.tflite-forge.kind", "build"),)),
               (ccache_volume, cell_labels + (("io.tflite-forge.kind", "ccache"),))]
    if host_volume:
        mounts.append(Mount(source=host_volume, target=HOST, volume=True))
        volumes.append((host_volume, (("io.tflite-forge.kind", "build"), ("io.tflite-forge.host-tools", "1"))))
    spec = ContainerSpec(image=req.image, purpose=f"build-{arch.name}", mounts=tuple(mounts), env=base_env,
                            workdir=BUILD, user=req.user, userns=req.userns, network="none", labels=cell_labels)
    return BuildPlan(
        key=key, label=req.label, arch=arch.name, image=req.image, spec=spec, steps=tuple(steps),
        volumes=tuple(volumes),
        cmake_options=tuple(sorted(options.items())), targets=targets, lib_patterns=patterns,
        compile_checks=tuple(compile_checks), cell_labels=cell_labels,
        out_dir=ws.out(cell), staging_dir=staging, log_path=ws.build_log(cell), stamp_path=ws.stamp(key),
        lock_path=ws.cell_lock(cell), run_record_path=ws.run_record(cell),
        compile_commands_path=ws.build_compile_commands(cell),
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


def builder_user() -> str:
    """The build's --user: the caller's ids, or 1000:1000 when the caller is root."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return "1000:1000"
    return f"{uid}:{gid}"


def container_user(engine_name: str, remote: bool) -> tuple[str, str | None]:
    """(--user, --userns) of the build container: rootless podman on this host maps the caller's ids
    in (keep-id); everything else runs as builder_user()."""
    if engine_name == "podman" and os.geteuid() != 0 and not remote:
        return f"{os.getuid()}:{os.getgid()}", "keep-id"
    return builder_user(), None


def _source_date_epoch(recipe: Any, tree: Path) -> int:
    if recipe.build.source_date_epoch is not None:
        return recipe.build.source_date_epoch
    newest = 0
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            newest = max(newest, int(os.lstat(os.path.join(dirpath, name)).st_mtime))
    return newest


def wanted_options(recipe: Any, arch: Arch) -> dict[str, str]:
    """The options that decide which locked trees a cell needs, before the builder's GCC is known:
    the GPU headers, kernel-test trees and, on armhf, XNNPACK's stay out; the compiler rules that
    need the builder's GCC do not gate any download."""
    wanted = default_cmake_options(arch, recipe.version)
    wanted.update(dict(recipe.build.cmake_options))
    return wanted


def cell_options(recipe: Any, arch: Arch, gcc_major: int | None) -> dict[str, str]:
    """The cell's CMake options: the arch's defaults for this compiler, the recipe's over them. A
    known-bad combination the recipe asked for explicitly is said once (a warning) and kept."""
    options = default_cmake_options(arch, recipe.version, gcc_major=gcc_major)
    options.update(dict(recipe.build.cmake_options))
    for bad in check_combination(arch, recipe.version, options, gcc_major=gcc_major):
        print(f"tflite-forge: warning: {recipe.path.name} sets a known-bad combination for {arch.name}: "
              f"{bad.describe()}", file=sys.stderr)
    return options


def make_request(cell: Cell, workspace: Workspace, sources: Any, prepared: Any, builder: Any, *,
                 options: dict[str, str], jobs: int, user: str, userns: str | None, engine: str,
                 cxx_shared: bool = False) -> BuildRequest:
    """The request of one cell from what the earlier stages made: `sources` (fetch), `prepared`
    (patching's working copies and the patch sets' digests) and `builder` (image.BuilderImage)."""
    recipe, arch = cell.recipe, cell.arch
    digests = dict(prepared.sets)
    deps = []
    for name, path in sorted(prepared.dependencies.items()):
        locked = sources.dependencies[name].dependency
        touched = sorted({r.set_name for r in prepared.results if r.tree == name and r.status == "applies"})
        deps.append(Dependency(name=name, cmake_variable=locked.cmake_variable, path=Path(path), sha256=locked.sha256,
                               patches=tuple(f"{n}:{digests[n]}" for n in touched)))
    lock_sha256 = sha256_file(recipe.lock_path) if recipe.lock_path.exists() else ""
    return BuildRequest(
        cell=cell, workspace=workspace, image=builder.tag,
        gcc_version=builder.facts.get("gcc", ""), tensorflow=Path(prepared.tensorflow), dependencies=tuple(deps),
        cmake_source_dir=recipe.build.cmake_source_dir, host_tools_target=recipe.build.host_tools_target,
        cmake_options=tuple(sorted(options.items())),
        source_date_epoch=_source_date_epoch(recipe, Path(sources.tensorflow)),
        jobs=jobs, cxx_shared=cxx_shared, user=user, userns=userns, engine=engine,
        source_sha256=recipe.source.sha256 or "", patch_sets=tuple(f"{name}:{digest}" for name, digest in prepared.sets),
        lock_sha256=lock_sha256, toolchain_sha256=sha256_file(arch.toolchain_file),
        host_compiler=" ".join(f"{k}={builder.facts.get(k, '')}" for k in ("host_gcc", "cmake", "ninja", "debian"))
        + f" base={builder.base_id}")


def cell_compile_checks(recipe: Any, arch: Arch) -> tuple:
    """The patch sets' compile checks that apply to this cell (patchset.CompileCheck rows)."""
    return tuple(c for ps in load_recipe_sets(recipe) for c in ps.checks
                 if c.applies.why_not(recipe.version, arch.name, "cmake") is None)


def build_info(recipe: Any, arch: Arch, builder: Any, plan: BuildPlan, *, engine: str, patch_sets: Any,
               deps: Any, lock_sha256: str | None) -> dict:
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


def soname_problem(recipe: Any, tensorflow: Path) -> str | None:
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


def check_soname(recipe: Any, tensorflow: Path, *, release: bool) -> None:
    """`release`: the library is to be packaged, so the package's SONAME rule is a planning error,
    not a surprise after the build; otherwise it is a warning."""
    problem = soname_problem(recipe, tensorflow)
    if problem and release:
        raise PackageError(problem)
    if problem:
        print(f"tflite-forge: warning: {problem}", file=sys.stderr)
