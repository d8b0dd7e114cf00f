"""Each toolchains/<triplet>.cmake cross-compiles a small C++ shared library with Debian's
cross compilers; the result is checked with pyelftools and run under qemu-user through
CMAKE_CROSSCOMPILING_EMULATOR (ctest) and directly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from tflite_forge.arches import EF_ARM_ABI_FLOAT_HARD, all_arches, resolve_arch

pytestmark = pytest.mark.integration

PROJECT = {
    "CMakeLists.txt": """\
cmake_minimum_required(VERSION 3.16)
project(forge_probe CXX C)
option(PROBE_FP16 "compile a source that needs -mfp16-format=ieee" OFF)
option(PROBE_NEON "compile NEON intrinsics (32-bit ARM needs -mfpu=neon*)" OFF)
set(extra)
if(PROBE_FP16)
  list(APPEND extra half.c)
endif()
if(PROBE_NEON)
  list(APPEND extra neon.c)
endif()
add_library(probe SHARED probe.cc ${extra})
set_target_properties(probe PROPERTIES VERSION 1.2.3 SOVERSION 1)
add_executable(probe_main main.cc)
target_link_libraries(probe_main PRIVATE probe)
enable_testing()
add_test(NAME probe_runs COMMAND probe_main 7)
set_tests_properties(probe_runs PROPERTIES PASS_REGULAR_EXPRESSION "triple=21")
""",
    "probe.cc": """\
#include <string>
#include <vector>
extern "C" int probe_triple(int x) {
  std::vector<int> v(3, x);
  int s = 0;
  for (int i : v) s += i;
  return s;
}
std::string probe_name() { return std::string("probe"); }
""",
    "main.cc": """\
#include <cstdio>
#include <cstdlib>
extern "C" int probe_triple(int x);
int main(int argc, char** argv) {
  int x = argc > 1 ? std::atoi(argv[1]) : 1;
  std::printf("triple=%d\\n", probe_triple(x));
  return 0;
}
""",
    "half.c": "__fp16 probe_half(float f) { return (__fp16)f; }\n",
    "neon.c": """\
#include <arm_neon.h>
float probe_neon_sum(const float* p) {
  float32x4_t v = vld1q_f32(p);
  float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
  return vget_lane_f32(vpadd_f32(s, s), 0);
}
""",
}


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        # Not a skip: the suite's contract is that ci/setup-host.sh installed it.
        pytest.fail(f"{tool} not found; run ci/setup-host.sh (Debian cross compilers and qemu-user-static)")
    return path


def _build(tmp: Path, arch_name: str, *options: str) -> Path:
    arch = resolve_arch(arch_name)
    _need(f"{arch.triplet}-g++")
    if not arch.runs_natively():
        _need(arch.qemu_binary)
    src = tmp / "src"
    src.mkdir(exist_ok=True)
    for name, text in PROJECT.items():
        (src / name).write_text(text)
    build = tmp / f"build-{arch.name}-{len(list(tmp.iterdir()))}"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), *gen, f"-DCMAKE_TOOLCHAIN_FILE={arch.toolchain_file}",
                    "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", *options],
                   check=True, capture_output=True, text=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True, text=True)
    return build


def _elf(path: Path):
    fh = open(path, "rb")
    return fh, ELFFile(fh)


@pytest.mark.parametrize("arch_name", [a.name for a in all_arches()])
def test_toolchain_cross_compiles_and_runs(tmp_path, arch_name):
    arch = resolve_arch(arch_name)
    build = _build(tmp_path, arch_name)
    lib = build / "libprobe.so.1.2.3"
    assert lib.is_file(), sorted(p.name for p in build.iterdir())
    fh, elf = _elf(lib)
    with fh:
        assert elf.header["e_machine"] == arch.elf_machine
        assert elf.elfclass == arch.elf_class
        flags = elf.header["e_flags"]
        assert flags & arch.elf_flags_set == arch.elf_flags_set, hex(flags)
        dyn = next(s for s in elf.iter_sections() if isinstance(s, DynamicSection))
        sonames = [t.soname for t in dyn.iter_tags() if t.entry.d_tag == "DT_SONAME"]
        assert sonames == ["libprobe.so.1"]

    # ctest runs the test through CMAKE_CROSSCOMPILING_EMULATOR (qemu-user) for cross targets.
    ctest = subprocess.run(["ctest", "--output-on-failure"], cwd=build, capture_output=True, text=True)
    assert ctest.returncode == 0, ctest.stdout + ctest.stderr
    if not arch.runs_natively():
        run = subprocess.run([*arch.qemu_command(), str(build / "probe_main"), "5"],
                             capture_output=True, text=True, env={**os.environ, "LD_LIBRARY_PATH": str(build)})
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "triple=15"
    else:
        run = subprocess.run([str(build / "probe_main"), "5"], capture_output=True, text=True)
        assert run.stdout.strip() == "triple=15"


def test_armhf_is_hard_float_armv7_with_neon(tmp_path):
    build = _build(tmp_path, "armhf", "-DPROBE_NEON=ON")
    fh, elf = _elf(build / "libprobe.so.1.2.3")
    with fh:
        assert elf.header["e_flags"] & EF_ARM_ABI_FLOAT_HARD
        attrs = {a.tag: a.value for sec in elf.iter_sections() if sec.name == ".ARM.attributes"
                 for sub in sec.iter_subsections() for ss in sub.iter_subsubsections() for a in ss.iter_attributes()}
    assert attrs.get("TAG_CPU_ARCH") == 10          # v7
    assert attrs.get("TAG_ADVANCED_SIMD_ARCH") in (1, 2)  # NEON (neon-vfpv4: 2, NEONv1 with FMA)
    commands = json.loads((build / "compile_commands.json").read_text())
    neon_cmd = next(c["command"] for c in commands if c["file"].endswith("neon.c"))
    for flag in ("-march=armv7-a", "-mfpu=neon-vfpv4", "-funsafe-math-optimizations"):
        assert flag in neon_cmd


def test_armhf_fp16_format_follows_xnnpack_switch(tmp_path):
    # TFLite's default is XNNPACK ON: __fp16 must compile (it needs -mfp16-format=ieee on ARM).
    build = _build(tmp_path, "armhf", "-DPROBE_FP16=ON")
    commands = json.loads((build / "compile_commands.json").read_text())
    assert all("-mfp16-format=ieee" in c["command"] for c in commands)
    # With XNNPACK off the flag is not added, and the same source no longer compiles.
    with pytest.raises(subprocess.CalledProcessError) as err:
        _build(tmp_path, "armhf", "-DPROBE_FP16=ON", "-DTFLITE_ENABLE_XNNPACK=OFF")
    assert "__fp16" in err.value.stdout + err.value.stderr


def test_aarch64_toolchain_never_passes_mfpu(tmp_path):
    build = _build(tmp_path, "aarch64")
    commands = json.loads((build / "compile_commands.json").read_text())
    assert commands and all("-mfpu" not in c["command"] for c in commands)
    assert all("-funsafe-math-optimizations" in c["command"] for c in commands)
    assert all(Path(c["command"].split()[0]).name.startswith("aarch64-linux-gnu-") for c in commands)


def test_x86_64_toolchain_is_native_on_x86_64_hosts(tmp_path):
    if os.uname().machine != "x86_64":
        pytest.fail("this suite runs on x86_64 hosts (ci/setup-host.sh); the native check needs one")
    build = _build(tmp_path, "x86_64")
    commands = json.loads((build / "compile_commands.json").read_text())
    assert all(Path(c["command"].split()[0]).name.startswith("x86_64-linux-gnu-") for c in commands)
    # Native: CMake must not believe it is cross-compiling (TFLite would demand host tools).
    probe = tmp_path / "probe-cross"
    probe.mkdir()
    (probe / "CMakeLists.txt").write_text(
        'cmake_minimum_required(VERSION 3.16)\nproject(p C)\nmessage(STATUS "CROSS=[${CMAKE_CROSSCOMPILING}]")\n')
    out = subprocess.run(["cmake", "-S", str(probe), "-B", str(probe / "b"),
                          f"-DCMAKE_TOOLCHAIN_FILE={resolve_arch('x86_64').toolchain_file}"],
                         capture_output=True, text=True, check=True).stdout
    assert "CROSS=[]" in out or "CROSS=[FALSE]" in out
