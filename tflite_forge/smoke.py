"""`invoke test`: prove the packaged artifact works on its target arch before it leaves.

For each (recipe, arch) tarball in dist/:
1. unpack it (tarfile data filter) into a scratch folder;
2. write the add model (tflite_model.py);
3. build `smoke/smoke.c` with SCons (`smoke/SConstruct`) against the packaged headers, .pc
   file and library, with the arch's Debian cross compiler, and run it natively or under
   qemu-user (`qemu-<arch>-static -L /usr/<triplet>`): {1, 3} -> {3, 9};
4. build the same program as a CMake consumer (`smoke/cmake/`, `find_package(tensorflowlite_c)`,
   target `tensorflowlite::c`; cross builds use the arch's toolchain file) and run it too.

`invoke test --model FILE` (model_run.py) uses the same pieces for a user's model: `unpack`,
`build_with_scons(..., main="run_model.c")` and `run_on_target`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .resources import SMOKE_DIR
from .errors import PackageError

OK_LINE = "smoke: ok: {1, 3} -> {3, 9}"


@dataclass(frozen=True)
class SmokeResult:
    consumer: str          # "scons" or "cmake"
    arch: str
    program: Path
    output: str


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack a release tarball safely; return its top folder."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            tops = {m.name.split("/", 1)[0] for m in tar.getmembers()}
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise PackageError(f"{tarball}: cannot unpack ({err}); re-run `invoke package`") from None
    if len(tops) != 1:
        raise PackageError(f"{tarball}: expected one top folder, found {sorted(tops)}; re-run `invoke package`")
    return dest / tops.pop()


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if not found:
        raise PackageError(f"{name} not found; {hint}")
    return found


def compiler(arch: Any) -> str:
    name = f"{arch.triplet}-gcc"
    if shutil.which(name):
        return name
    if arch.runs_natively() and shutil.which("cc"):
        return "cc"
    packages = " ".join(arch.toolchain_packages())
    raise PackageError(f"{name} not found: the smoke test cross-compiles for {arch.name}; apt-get install {packages} "
                       "(ci/setup-host.sh does)")


def _last(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def build_with_scons(prefix: Path, arch: Any, build_dir: Path, *, main: str = "smoke.c",
                     program: str = "tflite-smoke") -> Path:
    """Build `smoke/<main>` against the unpacked artifact with SCons and the arch's C compiler."""
    scons = _tool("scons", "pip install scons (or apt-get install scons)")
    build_dir.mkdir(parents=True, exist_ok=True)
    argv = [scons, "-Q", "-f", str(SMOKE_DIR / "SConstruct"), f"PREFIX={prefix}", f"CC={compiler(arch)}",
            f"MAIN={main}", f"PROGRAM={program}"]
    proc = subprocess.run(argv, cwd=build_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PackageError(f"{main} build with SCons for {arch.name} failed: {_last(proc.stderr or proc.stdout)}; "
                           f"check the packaged headers and .pc file under {prefix}")
    return build_dir / program


def build_with_cmake(prefix: Path, arch: Any, build_dir: Path) -> Path:
    cmake = _tool("cmake", "apt-get install cmake")
    argv = [cmake, "-S", str(SMOKE_DIR / "cmake"), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"]
    if arch.runs_natively():
        argv.append(f"-DCMAKE_PREFIX_PATH={prefix}")           # discovery through the prefix
    else:
        toolchain = Path(arch.toolchain_file)
        if not toolchain.is_file():
            raise PackageError(f"{toolchain}: missing toolchain file for {arch.name}; restore toolchains/ from git")
        # The toolchain limits package search to the target root: name the package folder directly.
        argv += [f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", f"-Dtensorflowlite_c_DIR={prefix}/lib/cmake/tensorflowlite_c"]
    for step in (argv, [cmake, "--build", str(build_dir)]):
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            raise PackageError(f"CMake consumer for {arch.name} failed at `{' '.join(Path(a).name for a in step[:2])}`: "
                               f"{_last(proc.stderr or proc.stdout)}; check lib/cmake/tensorflowlite_c in the artifact")
    return build_dir / "tflite-smoke-cmake"


def run_on_target(program: Path, args: list[str], prefix: Path, arch: Any, *,
                  timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a program built against the artifact natively or under qemu-user, with the artifact's lib/."""
    argv = [*arch.qemu_command(), str(program), *args]
    if argv[0] != str(program):
        _tool(argv[0], "apt-get install qemu-user-static (ci/setup-host.sh does)")
    env = dict(os.environ, LD_LIBRARY_PATH=str(prefix / "lib"))
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PackageError(f"{program.name} on {arch.name} did not finish within {timeout:.0f} s; "
                           "the library may hang on this target") from None


def how_it_runs(arch: Any) -> str:
    return "natively" if arch.runs_natively() else f"under {arch.qemu_binary}"


def run_program(program: Path, prefix: Path, arch: Any, model: Path, *, timeout: float = 120) -> str:
    """Run the smoke program natively or under qemu-user; return its output or raise."""
    proc = run_on_target(program, [str(model)], prefix, arch, timeout=timeout)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or OK_LINE not in proc.stdout:
        raise PackageError(f"{program.name} failed {how_it_runs(arch)} for {arch.name} (exit {proc.returncode}): "
                           f"{_last(output)}")
    return output


def smoke_test_tarball(tarball: Path, arch: Any, scratch: Path, *, cmake: bool = True) -> list[SmokeResult]:
    from .tflite_model import write_add_model

    prefix = unpack(tarball, scratch / "artifact")
    model = write_add_model(scratch / "add.tflite")
    results = []
    program = build_with_scons(prefix, arch, scratch / "scons")
    results.append(SmokeResult("scons", arch.name, program, run_program(program, prefix, arch, model)))
    if cmake:
        program = build_with_cmake(prefix, arch, scratch / "cmake")
        results.append(SmokeResult("cmake", arch.name, program, run_program(program, prefix, arch, model)))
    return results


def run_test(settings: Any, *, cmake: bool = True, log=print) -> list[SmokeResult]:
    """`invoke test`: smoke-test every (recipe, arch) tarball that `invoke package` wrote."""
    from .arches import resolve_arches_or_host
    from .variants import artifact_stem
    from .pipeline import ensure_packaged
    from .recipe import select_recipes

    dist = Path(settings.dist_dir)
    results: list[SmokeResult] = []
    for recipe in select_recipes(version=settings.version, recipe=settings.recipe):
        for arch in resolve_arches_or_host(settings.arch):
            tarball = dist / f"{artifact_stem(recipe.version, arch.name)}.tar.gz"
            ensure_packaged(settings, recipe, arch, tarball, log=log)
            with tempfile.TemporaryDirectory(prefix=f"tflite-forge-smoke-{arch.name}-") as tmp:
                for result in smoke_test_tarball(tarball, arch, Path(tmp), cmake=cmake):
                    how = "native" if arch.runs_natively() else f"qemu ({arch.qemu_binary})"
                    log(f"test: {tarball.name}: {result.consumer} consumer, {how}: {result.output.splitlines()[-1]}")
                    results.append(result)
    return results
