"""`invoke test`: prove the packaged artifact works on its target arch before it leaves.

For each (recipe, arch) tarball in dist/:
1. unpack it (tarfile data filter) into a scratch folder;
2. write the add model (tflite_model.py);
3. build `smoke/smoke.c` with SCons (`smoke/SConstruct`) against the packaged headers, .pc
   file and library, with the arch's Debian cross compiler, and run it natively or under
   qemu-user (`qemu-<arch>-static -L /usr/<triplet>`): {1, 3} -> {3, 9};
4. build the same program as a CMake consumer (`smoke/cmake/`, `find_package(tensorflowlite_c)`,
   target `tensorflowlite::c`; cross builds use the arch's toolchain file) and run it too.

Which tarballs (and packaging a missing one first) is pipeline.run_test's; building and running
against a tarball is consumer.py's, shared with `invoke test --model` (model_run.py).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .consumer import build_with_scons, how_it_runs, last_line, run_on_target, tool, unpack
from .errors import PackageError
from .resources import SMOKE_DIR
from .tflite_model import write_add_model

OK_LINE = "smoke: ok: {1, 3} -> {3, 9}"


@dataclass(frozen=True)
class SmokeResult:
    consumer: str          # "scons" or "cmake"
    arch: str
    program: Path
    output: str


def build_with_cmake(prefix: Path, arch: Any, build_dir: Path) -> Path:
    cmake = tool("cmake", "apt-get install cmake")
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
                               f"{last_line(proc.stderr or proc.stdout)}; check lib/cmake/tensorflowlite_c in the artifact")
    return build_dir / "tflite-smoke-cmake"


def run_program(program: Path, prefix: Path, arch: Any, model: Path, *, timeout: float = 120) -> str:
    """Run the smoke program natively or under qemu-user; return its output or raise."""
    proc = run_on_target(program, [str(model)], prefix, arch, timeout=timeout)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or OK_LINE not in proc.stdout:
        raise PackageError(f"{program.name} failed {how_it_runs(arch)} for {arch.name} (exit {proc.returncode}): "
                           f"{last_line(output)}")
    return output


def smoke_test_tarball(tarball: Path, arch: Any, scratch: Path, *, cmake: bool = True) -> list[SmokeResult]:
    prefix = unpack(tarball, scratch / "artifact")
    model = write_add_model(scratch / "add.tflite")
    results = []
    program = build_with_scons(prefix, arch, scratch / "scons")
    results.append(SmokeResult("scons", arch.name, program, run_program(program, prefix, arch, model)))
    if cmake:
        program = build_with_cmake(prefix, arch, scratch / "cmake")
        results.append(SmokeResult("cmake", arch.name, program, run_program(program, prefix, arch, model)))
    return results


def run_smoke(tarball: Path, arch: Any, *, cmake: bool = True,
                 log: Callable[[str], None] = print) -> list[SmokeResult]:
    """`invoke test` for one packaged tarball, in a scratch folder that goes away afterwards."""
    results = []
    with tempfile.TemporaryDirectory(prefix=f"tflite-forge-smoke-{arch.name}-") as tmp:
        for result in smoke_test_tarball(tarball, arch, Path(tmp), cmake=cmake):
            how = "native" if arch.runs_natively() else f"qemu ({arch.qemu_binary})"
            log(f"test: {tarball.name}: {result.consumer} consumer, {how}: {result.output.splitlines()[-1]}")
            results.append(result)
    return results
