"""The miniature TensorFlow really builds: natively with the host cmake + ninja, and cross for
aarch64/armhf with the Debian cross compilers, fully disconnected from the network.

Checks the contract the rest of tflite-forge relies on: libtensorflowlite_c.so exports only the
C API and computes {3, 9} from {1, 3} on the project's add model; the host flatc really runs;
a cross configure without TFLITE_HOST_TOOLS_DIR stops; a tree without a license stops; a missing
source dir in a disconnected build stops; the network probe tells a hermetic build from a
networked one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.ci import need_tools
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from tflite_forge.loopback import serve_directory
from tflite_forge.tflite_model import write_add_model

pytestmark = pytest.mark.integration


SMOKE_C = r"""
#include <stdio.h>
#include "tensorflow/lite/c/c_api.h"

int main(int argc, char** argv) {
  if (argc != 2) return 64;
  printf("version %s\n", TfLiteVersion());
  TfLiteModel* model = TfLiteModelCreateFromFile(argv[1]);
  if (model == NULL) return 1;
  TfLiteInterpreterOptions* options = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreterOptionsSetNumThreads(options, 2);
  TfLiteInterpreter* interpreter = TfLiteInterpreterCreate(model, options);
  TfLiteInterpreterOptionsDelete(options);
  TfLiteModelDelete(model);
  if (interpreter == NULL) return 2;
  if (TfLiteInterpreterGetInputTensorCount(interpreter) != 1) return 3;
  if (TfLiteInterpreterGetOutputTensorCount(interpreter) != 1) return 3;
  const int dims[1] = {2};
  if (TfLiteInterpreterResizeInputTensor(interpreter, 0, dims, 1) != kTfLiteOk) return 4;
  if (TfLiteInterpreterAllocateTensors(interpreter) != kTfLiteOk) return 5;
  TfLiteTensor* input = TfLiteInterpreterGetInputTensor(interpreter, 0);
  const float in[2] = {1.0f, 3.0f};
  if (TfLiteTensorType(input) != kTfLiteFloat32 || TfLiteTensorByteSize(input) != sizeof in) return 6;
  if (TfLiteTensorCopyFromBuffer(input, in, sizeof in) != kTfLiteOk) return 7;
  if (TfLiteInterpreterInvoke(interpreter) != kTfLiteOk) return 8;
  const TfLiteTensor* output = TfLiteInterpreterGetOutputTensor(interpreter, 0);
  float out[2] = {0.0f, 0.0f};
  if (TfLiteTensorCopyToBuffer(output, out, sizeof out) != kTfLiteOk) return 9;
  printf("%s[%d] -> %s[%d]: %g %g\n", TfLiteTensorName(input), TfLiteTensorDim(input, 0),
         TfLiteTensorName(output), TfLiteTensorDim(output, 0), out[0], out[1]);
  TfLiteInterpreterDelete(interpreter);
  return 0;
}
"""

AARCH64 = {"CMAKE_SYSTEM_NAME": "Linux", "CMAKE_SYSTEM_PROCESSOR": "aarch64",
           "CMAKE_C_COMPILER": "aarch64-linux-gnu-gcc", "CMAKE_CXX_COMPILER": "aarch64-linux-gnu-g++"}
ARMHF = {"CMAKE_SYSTEM_NAME": "Linux", "CMAKE_SYSTEM_PROCESSOR": "armv7",
         "CMAKE_C_COMPILER": "arm-linux-gnueabihf-gcc", "CMAKE_CXX_COMPILER": "arm-linux-gnueabihf-g++",
         "CMAKE_C_FLAGS": "-march=armv7-a -mfpu=neon-vfpv4", "CMAKE_CXX_FLAGS": "-march=armv7-a -mfpu=neon-vfpv4"}


def need(*tools: str) -> None:
    need_tools(*tools)


class Sources:
    """The release unpacked once: the TensorFlow root and each dependency's root."""

    def __init__(self, release, root: Path) -> None:
        self.release = release
        self.root = root
        self.tensorflow = self._unpack(release.tensorflow_archive, "tensorflow") / release.strip_prefix
        self.deps = {d.name: self._unpack(d.archive, d.name) / d.strip_prefix for d in release.dependencies}
        self.variables = {d.cmake_variable: self.deps[d.name] for d in release.dependencies}

    def _unpack(self, archive: Path, name: str) -> Path:
        dest = self.root / "src" / name
        dest.mkdir(parents=True)
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")
        return dest

    def configure(self, build: Path, *, drop: tuple[str, ...] = (), **extra) -> subprocess.CompletedProcess:
        options = {name: str(path) for name, path in self.variables.items() if name not in drop}
        options.update(FETCHCONTENT_FULLY_DISCONNECTED="ON", CMAKE_EXPORT_COMPILE_COMMANDS="ON")
        options.update({k: str(v) for k, v in extra.items()})
        cmd = ["cmake", "-G", "Ninja", "-Wno-dev", "-S", str(self.tensorflow / "tensorflow/lite/c"), "-B", str(build)]
        cmd += [f"-D{k}={v}" for k, v in sorted(options.items())]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    def build(self, build: Path, *targets: str) -> None:
        cmd = ["cmake", "--build", str(build)]
        for target in targets:
            cmd += ["--target", target]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"

    def configure_ok(self, build: Path, **extra) -> None:
        proc = self.configure(build, **extra)
        assert proc.returncode == 0, f"configure failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module")
def sources(miniature_release, tmp_path_factory) -> Sources:
    need("cmake", "ninja", "cc", "c++")
    return Sources(miniature_release, tmp_path_factory.mktemp("miniature-build"))


@pytest.fixture(scope="module")
def native(sources) -> Path:
    build = sources.root / "native"
    sources.configure_ok(build)
    sources.build(build)
    return build


@pytest.fixture(scope="module")
def add_model(tmp_path_factory) -> Path:
    return write_add_model(tmp_path_factory.mktemp("model") / "add.tflite")


def compile_smoke(sources: Sources, build: Path, compiler: str) -> Path:
    src = build / "smoke.c"
    src.write_text(SMOKE_C)
    exe = build / "smoke"
    subprocess.run([compiler, str(src), "-I", str(sources.tensorflow), "-L", str(build), "-ltensorflowlite_c",
                    "-o", str(exe)], check=True, capture_output=True, text=True, timeout=120)
    return exe


def exported_symbols(library: Path) -> set[str]:
    with library.open("rb") as f:
        elf = ELFFile(f)
        dynsym = elf.get_section_by_name(".dynsym")
        return {s.name for s in dynsym.iter_symbols()
                if s.name and s["st_shndx"] not in ("SHN_UNDEF", "SHN_ABS")
                and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")}


def flat(text: str) -> str:
    """CMake wraps long messages across lines; compare with whitespace collapsed."""
    return " ".join(text.split())


def elf_machine(path: Path) -> str:
    with path.open("rb") as f:
        return ELFFile(f)["e_machine"]


def compile_command(build: Path, source_suffix: str) -> str:
    for entry in json.loads((build / "compile_commands.json").read_text()):
        if entry["file"].endswith(source_suffix):
            return entry["command"]
    raise AssertionError(f"{source_suffix} is not compiled in {build}")


def test_native_library_exports_only_the_c_api(native):
    library = native / "libtensorflowlite_c.so"
    assert library.is_file()
    symbols = exported_symbols(library)
    assert {"TfLiteVersion", "TfLiteModelCreateFromFile", "TfLiteInterpreterInvoke",
            "TfLiteTensorCopyToBuffer"} <= symbols
    assert all(s.startswith("TfLite") for s in symbols), sorted(s for s in symbols if not s.startswith("TfLite"))
    with library.open("rb") as f:
        dynamic = next(s for s in ELFFile(f).iter_sections() if isinstance(s, DynamicSection))
        sonames = [t.soname for t in dynamic.iter_tags() if t.entry.d_tag == "DT_SONAME"]
    assert sonames == ["libtensorflowlite_c.so"]  # no SOVERSION, like TensorFlow's


def test_native_smoke_computes_three_times_input(sources, native, add_model):
    exe = compile_smoke(sources, native, "cc")
    proc = subprocess.run([str(exe), str(add_model)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LD_LIBRARY_PATH": str(native)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["version 2.16.1", "input[2] -> output[2]: 3 9"]


def test_a_file_without_the_tfl3_identifier_is_rejected(sources, native, tmp_path):
    exe = compile_smoke(sources, native, "cc")
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"\x10\0\0\0XXXX" + bytes(64))
    proc = subprocess.run([str(exe), str(bogus)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LD_LIBRARY_PATH": str(native)})
    assert proc.returncode == 1
    assert "TFL3" in flat(proc.stderr)


def test_the_host_flatc_really_generates_the_schema_header(native):
    flatc = native / "flatbuffers-flatc/bin/flatc"
    assert flatc.is_file()
    assert "23.5.26" in subprocess.run([str(flatc), "--version"], capture_output=True, text=True, check=True).stdout
    header = native / "tensorflow-lite/generated/tensorflow/lite/schema/schema_generated.h"
    text = header.read_text()
    assert '#define TFLITE_FILE_IDENTIFIER "TFL3"' in text
    assert "#define TFLITE_SUBGRAPH_VT_OPERATORS 10" in text


def test_xnnpack_microkernels_get_O2_after_the_release_O3(native):
    kernel = compile_command(native, "src/f32-vmulc/scalar.c").split()
    assert "-O3" in kernel and "-O2" in kernel
    assert kernel.index("-O2") > kernel.index("-O3"), "the target's -O2 must come last, so it wins"
    operator = compile_command(native, "src/operator.c").split()
    assert "-Os" in operator and "-O2" not in operator
    assert all("-mfpu" not in compile_command(native, s) for s in ("scalar.c", "operator.c", "c_api.cc"))


def test_cross_configure_without_host_tools_dir_stops(sources):
    need("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++")
    proc = sources.configure(sources.root / "cross-no-host-tools", **AARCH64)
    assert proc.returncode != 0
    assert "-DTFLITE_HOST_TOOLS_DIR=<dir>" in flat(proc.stderr)
    assert "flatbuffers-flatc" in flat(proc.stderr)


def test_cross_configure_with_an_empty_host_tools_dir_stops(sources, tmp_path):
    need("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++")
    proc = sources.configure(sources.root / "cross-empty-host-tools", TFLITE_HOST_TOOLS_DIR=tmp_path, **AARCH64)
    assert proc.returncode != 0
    assert f"No flatc in TFLITE_HOST_TOOLS_DIR={tmp_path}" in flat(proc.stderr)


def test_aarch64_cross_build_with_the_native_flatc(sources, native, add_model):
    need("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++")
    build = sources.root / "cross-aarch64"
    # The documented hint layout: <dir>/flatbuffers-flatc/bin, with <dir> the native build.
    sources.configure_ok(build, TFLITE_HOST_TOOLS_DIR=native, **AARCH64)
    sources.build(build)
    library = build / "libtensorflowlite_c.so"
    assert elf_machine(library) == "EM_AARCH64"
    assert all(s.startswith("TfLite") for s in exported_symbols(library))
    assert "-mfpu" not in compile_command(build, "src/f32-vmulc/neon.c")
    need("qemu-aarch64-static")
    exe = compile_smoke(sources, build, "aarch64-linux-gnu-gcc")
    proc = subprocess.run(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", "-E", f"LD_LIBRARY_PATH={build}",
                           str(exe), str(add_model)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "input[2] -> output[2]: 3 9"


def test_armhf_cross_build_gives_the_neon_kernel_its_mfpu(sources, native):
    need("arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-g++")
    build = sources.root / "cross-armhf"
    sources.configure_ok(build, TFLITE_HOST_TOOLS_DIR=native / "flatbuffers-flatc", **ARMHF)
    sources.build(build)
    assert elf_machine(build / "libtensorflowlite_c.so") == "EM_ARM"
    assert "-march=armv7-a -mfpu=neon" in compile_command(build, "src/f32-vmulc/neon.c")
    assert "-mfpu=neon " not in compile_command(build, "src/f32-vmulc/scalar.c") + " "


def test_a_tree_without_a_license_stops_the_configure(sources, tmp_path):
    tree = tmp_path / "flatbuffers-unlicensed"
    shutil.copytree(sources.deps["flatbuffers"], tree)
    (tree / "LICENSE").unlink()
    proc = sources.configure(tmp_path / "build", FETCHCONTENT_SOURCE_DIR_FLATBUFFERS=tree)
    assert proc.returncode != 0
    assert f"the flatbuffers tree at {tree} has no license file" in flat(proc.stderr)
    # A COPYING or NOTICE file is as good as LICENSE.
    (tree / "NOTICE").write_text("notice\n")
    assert sources.configure(tmp_path / "build2", FETCHCONTENT_SOURCE_DIR_FLATBUFFERS=tree).returncode == 0


@pytest.mark.parametrize("variable", ["FETCHCONTENT_SOURCE_DIR_FFT2D", "PTHREADPOOL_SOURCE_DIR", "FP16_SOURCE_DIR"])
def test_a_missing_source_dir_in_a_disconnected_build_stops_clearly(sources, tmp_path, variable):
    proc = sources.configure(tmp_path / "build", drop=(variable,))
    assert proc.returncode != 0
    assert "FETCHCONTENT_FULLY_DISCONNECTED is ON" in flat(proc.stderr)
    assert f"-D{variable}=" in flat(proc.stderr)
    assert not (tmp_path / "build/pthreadpool-download").exists(), "a disconnected build must not try to download"


def test_network_probe_fails_a_networked_build_and_passes_a_hermetic_one(sources, tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www/probe").write_text("reachable\n")
    with serve_directory(tmp_path / "www") as base:
        proc = sources.configure(tmp_path / "networked", TFLITE_MINIATURE_NETWORK_PROBE_URL=base + "probe")
    assert proc.returncode != 0
    assert f"network probe reached {base}probe" in flat(proc.stderr)
    # A port nothing listens on stands for "no network".
    with serve_directory(tmp_path / "www") as base:
        closed = base  # the server is gone after this block
    proc = sources.configure(tmp_path / "hermetic", TFLITE_MINIATURE_NETWORK_PROBE_URL=closed + "probe")
    assert proc.returncode == 0, proc.stderr
    assert "is unreachable" in flat(proc.stdout)
