"""A small but real build output for packaging tests, made with the real (cross) compilers.

`make_fake_build(root, arch)` lays out what `invoke build` leaves behind, in the shared layout:

    root/recipes/tensorflow-<v>.toml (+ .lock)        recipe and dependency lock
    root/work/src/<label>-<arch>/tensorflow/          working copy: C API headers + LICENSE
    root/work/src/<label>-<arch>/deps/<name>/LICENSE  dependency trees (licenses only)
    root/work/out/<label>-<arch>/lib/libtensorflowlite_c.so.<v> (+ SONAME and dev links)
    root/work/out/<label>-<arch>/build-info.json

The library implements the few C API calls the smoke program uses (model from file checking
the TFL3 identifier, interpreter create/resize/allocate/invoke, tensor copy in/out) and
computes output = 3 * input — the add model's result — in C++ so it needs libstdc++ like the
real one. It is written for these tests, from the C API's documented signatures.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

VERSION = "2.16.1"
EPOCH = 1709856000
TF_SHA = "c729e56efc945c6df08efe5c9f5b8b89329c7c91b8f40ad2bb3e13900bd4876d"
DEPS = (
    ("xnnpack", "https://github.com/google/XNNPACK/archive/6b83f69d4938da4dc9ad63c00bd13e9695659a51.tar.gz",
     "1" * 64, "XNNPACK-6b83f69d4938da4dc9ad63c00bd13e9695659a51", "BSD"),
    ("flatbuffers", "https://github.com/google/flatbuffers/archive/v23.5.26.tar.gz",
     "2" * 64, "flatbuffers-23.5.26", "APACHE"),
)

APACHE = """
                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/
   TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION
"""
BSD = """BSD License

Copyright (c) The Example Fixture Authors.
Redistribution and use in source and binary forms, with or without modification,
are permitted provided that the following conditions are met:
 * Neither the name of the copyright holder nor the names of its contributors may be used to
   endorse or promote products derived from this software without specific prior
   written permission.
"""

TYPES_H = """#ifndef TFLITE_FORGE_FAKE_CORE_C_API_TYPES_H_
#define TFLITE_FORGE_FAKE_CORE_C_API_TYPES_H_
#ifdef __cplusplus
extern "C" {
#endif
typedef enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1 } TfLiteType;
typedef struct TfLiteTensor TfLiteTensor;
#ifdef __cplusplus
}
#endif
#endif
"""

CORE_C_API_H = """#ifndef TFLITE_FORGE_FAKE_CORE_C_API_H_
#define TFLITE_FORGE_FAKE_CORE_C_API_H_
#include <stddef.h>
#include <stdint.h>
#include "tensorflow/lite/builtin_ops.h"
#include "tensorflow/lite/core/c/c_api_types.h"
#ifdef __cplusplus
extern "C" {
#endif
typedef struct TfLiteModel TfLiteModel;
typedef struct TfLiteInterpreterOptions TfLiteInterpreterOptions;
typedef struct TfLiteInterpreter TfLiteInterpreter;
const char* TfLiteVersion(void);
TfLiteModel* TfLiteModelCreateFromFile(const char* model_path);
void TfLiteModelDelete(TfLiteModel* model);
TfLiteInterpreterOptions* TfLiteInterpreterOptionsCreate(void);
void TfLiteInterpreterOptionsSetNumThreads(TfLiteInterpreterOptions* options, int32_t num_threads);
void TfLiteInterpreterOptionsDelete(TfLiteInterpreterOptions* options);
TfLiteInterpreter* TfLiteInterpreterCreate(const TfLiteModel* model, const TfLiteInterpreterOptions* optional_options);
void TfLiteInterpreterDelete(TfLiteInterpreter* interpreter);
int32_t TfLiteInterpreterGetInputTensorCount(const TfLiteInterpreter* interpreter);
TfLiteTensor* TfLiteInterpreterGetInputTensor(const TfLiteInterpreter* interpreter, int32_t input_index);
TfLiteStatus TfLiteInterpreterResizeInputTensor(TfLiteInterpreter* interpreter, int32_t input_index,
                                                const int* input_dims, int32_t input_dims_size);
TfLiteStatus TfLiteInterpreterAllocateTensors(TfLiteInterpreter* interpreter);
TfLiteStatus TfLiteInterpreterInvoke(TfLiteInterpreter* interpreter);
int32_t TfLiteInterpreterGetOutputTensorCount(const TfLiteInterpreter* interpreter);
const TfLiteTensor* TfLiteInterpreterGetOutputTensor(const TfLiteInterpreter* interpreter, int32_t output_index);
TfLiteType TfLiteTensorType(const TfLiteTensor* tensor);
int32_t TfLiteTensorNumDims(const TfLiteTensor* tensor);
int32_t TfLiteTensorDim(const TfLiteTensor* tensor, int32_t dim_index);
size_t TfLiteTensorByteSize(const TfLiteTensor* tensor);
const char* TfLiteTensorName(const TfLiteTensor* tensor);
TfLiteStatus TfLiteTensorCopyFromBuffer(TfLiteTensor* tensor, const void* input_data, size_t input_data_size);
TfLiteStatus TfLiteTensorCopyToBuffer(const TfLiteTensor* output_tensor, void* output_data, size_t output_data_size);
#ifdef __cplusplus
}
#endif
#endif
"""

FORWARD_H = """#ifndef TFLITE_FORGE_FAKE_C_API_H_
#define TFLITE_FORGE_FAKE_C_API_H_
#include "tensorflow/lite/core/c/c_api.h"
#endif
"""

BUILTIN_OPS_H = "#ifndef TFLITE_FORGE_FAKE_BUILTIN_OPS_H_\n#define TFLITE_FORGE_FAKE_BUILTIN_OPS_H_\n" \
                "typedef enum { kTfLiteBuiltinAdd = 0 } TfLiteBuiltinOperator;\n#endif\n"

IMPL_CC = r"""
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include "tensorflow/lite/c/c_api.h"

struct TfLiteModel { std::vector<char> bytes; };
struct TfLiteInterpreterOptions { int threads = 1; };
struct TfLiteTensor { std::string name; std::vector<int> dims; std::vector<float> data; };
struct TfLiteInterpreter { TfLiteTensor in{"input", {1}, {0.f}}; TfLiteTensor out{"output", {1}, {0.f}}; };

static size_t Elements(const std::vector<int>& dims) {
  size_t n = 1;
  for (int d : dims) n *= static_cast<size_t>(d);
  return n;
}

extern "C" {
const char* TfLiteVersion(void) { return "@VERSION@"; }
TfLiteModel* TfLiteModelCreateFromFile(const char* path) {
  FILE* f = std::fopen(path, "rb");
  if (!f) { std::fprintf(stderr, "cannot open %s\n", path); return nullptr; }
  TfLiteModel* m = new TfLiteModel;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) m->bytes.insert(m->bytes.end(), buf, buf + n);
  std::fclose(f);
  if (m->bytes.size() < 8 || std::memcmp(m->bytes.data() + 4, "TFL3", 4) != 0) {
    std::fprintf(stderr, "%s: not a TFLite model (no TFL3 identifier) [%s]\n", path, __FILE__);
    delete m;
    return nullptr;
  }
  return m;
}
void TfLiteModelDelete(TfLiteModel* m) { delete m; }
TfLiteInterpreterOptions* TfLiteInterpreterOptionsCreate(void) { return new TfLiteInterpreterOptions; }
void TfLiteInterpreterOptionsSetNumThreads(TfLiteInterpreterOptions* o, int32_t n) { o->threads = n; }
void TfLiteInterpreterOptionsDelete(TfLiteInterpreterOptions* o) { delete o; }
TfLiteInterpreter* TfLiteInterpreterCreate(const TfLiteModel* m, const TfLiteInterpreterOptions*) {
  return m ? new TfLiteInterpreter : nullptr;
}
void TfLiteInterpreterDelete(TfLiteInterpreter* i) { delete i; }
int32_t TfLiteInterpreterGetInputTensorCount(const TfLiteInterpreter*) { return 1; }
int32_t TfLiteInterpreterGetOutputTensorCount(const TfLiteInterpreter*) { return 1; }
TfLiteTensor* TfLiteInterpreterGetInputTensor(const TfLiteInterpreter* i, int32_t index) {
  return index == 0 ? const_cast<TfLiteTensor*>(&i->in) : nullptr;
}
const TfLiteTensor* TfLiteInterpreterGetOutputTensor(const TfLiteInterpreter* i, int32_t index) {
  return index == 0 ? &i->out : nullptr;
}
TfLiteStatus TfLiteInterpreterResizeInputTensor(TfLiteInterpreter* i, int32_t index, const int* dims, int32_t n) {
  if (index != 0 || n < 0) return kTfLiteError;
  i->in.dims.assign(dims, dims + n);
  return kTfLiteOk;
}
TfLiteStatus TfLiteInterpreterAllocateTensors(TfLiteInterpreter* i) {
  i->in.data.assign(Elements(i->in.dims), 0.f);
  i->out.dims = i->in.dims;
  i->out.data.assign(Elements(i->out.dims), 0.f);
  return kTfLiteOk;
}
TfLiteStatus TfLiteInterpreterInvoke(TfLiteInterpreter* i) {
  for (size_t k = 0; k < i->in.data.size(); ++k) {
    float doubled = i->in.data[k] + i->in.data[k];
    i->out.data[k] = doubled + i->in.data[k];
  }
  return kTfLiteOk;
}
TfLiteType TfLiteTensorType(const TfLiteTensor*) { return kTfLiteFloat32; }
int32_t TfLiteTensorNumDims(const TfLiteTensor* t) { return static_cast<int32_t>(t->dims.size()); }
int32_t TfLiteTensorDim(const TfLiteTensor* t, int32_t d) { return t->dims[d]; }
size_t TfLiteTensorByteSize(const TfLiteTensor* t) { return t->data.size() * sizeof(float); }
const char* TfLiteTensorName(const TfLiteTensor* t) { return t->name.c_str(); }
TfLiteStatus TfLiteTensorCopyFromBuffer(TfLiteTensor* t, const void* p, size_t n) {
  if (n != t->data.size() * sizeof(float)) return kTfLiteError;
  std::memcpy(t->data.data(), p, n);
  return kTfLiteOk;
}
TfLiteStatus TfLiteTensorCopyToBuffer(const TfLiteTensor* t, void* p, size_t n) {
  if (n != t->data.size() * sizeof(float)) return kTfLiteError;
  std::memcpy(p, t->data.data(), n);
  return kTfLiteOk;
}
@EXTRA@
}
"""

CXX_RUNTIME_H = """#ifndef TFLITE_FORGE_FAKE_RUNTIME_H_
#define TFLITE_FORGE_FAKE_RUNTIME_H_
#include "tensorflow/lite/core/c/c_api_types.h"
namespace tflite { namespace fake {
float Triple(float x);
class Runtime { public: explicit Runtime(int threads); int threads() const; private: int threads_; };
} }
#endif
"""

CXX_RUNTIME_CC = r"""
#include "tensorflow/lite/core/fake_runtime.h"
namespace tflite { namespace fake {
float Triple(float x) { return x + x + x; }
Runtime::Runtime(int threads) : threads_(threads) {}
int Runtime::threads() const { return threads_; }
} }
"""

VERSION_SCRIPT = "VERS_1.0 {\n  global:\n    *TfLite*;\n  local:\n    *;\n};\n"


@dataclass
class FakeBuild:
    root: Path
    work_dir: Path
    recipe_path: Path
    arch: str
    lib: Path

    @property
    def label(self) -> str:
        return f"tensorflow-{VERSION}"


def _cxx(arch) -> str:
    return f"{arch.triplet}-g++"


def make_fake_build(root: Path, arch_name: str = "x86_64", *, map_paths: bool = True,
                    extra_export: bool = False, soname: bool = True, variant: str = "",
                    cxx_shared: bool = False, cxx_rpath: str = "$ORIGIN") -> FakeBuild:
    """cxx_shared: also libtensorflow-lite.so (C++ API exported, SONAME libtensorflow-lite.so as CMake
    makes it), with the C library linked against it and RUNPATH `cxx_rpath` — what
    `invoke build --cxx-shared` leaves behind."""
    from tflite_forge.arches import resolve_arch

    arch = resolve_arch(arch_name)
    root = Path(root)
    recipes = root / "recipes"
    recipes.mkdir(parents=True, exist_ok=True)
    recipe_path = recipes / f"tensorflow-{VERSION}.toml"
    recipe_path.write_text(
        "[source]\n"
        'name = "tensorflow"\n'
        f'version = "{VERSION}"\n'
        f'urls = ["https://github.com/tensorflow/tensorflow/archive/refs/tags/v{VERSION}.tar.gz"]\n'
        f'sha256 = "{TF_SHA}"\n'
        f'strip_prefix = "tensorflow-{VERSION}"\n'
        "[build]\n"
        f"source_date_epoch = {EPOCH}\n"
        'patch_sets = ["soname"]\n')
    lock = ["[lock]", f'archive_sha256 = "{TF_SHA}"', 'generated_by = "tflite-forge 0.1.0"']
    for name, url, sha, prefix, _ in DEPS:
        lock += ["", "[[dependency]]", f'name = "{name}"', f'url = "{url}"', f'sha256 = "{sha}"',
                 f'strip_prefix = "{prefix}"', f'cmake_variable = "FETCHCONTENT_SOURCE_DIR_{name.upper()}"',
                 'declared_in = "tensorflow/lite/tools/cmake/modules/x.cmake"', 'declared_by = "tensorflow"']
    (recipes / f"tensorflow-{VERSION}.toml.lock").write_text("\n".join(lock) + "\n")

    work = root / "work"
    cell = f"tensorflow-{VERSION}-{arch.name}"
    tf = work / "src" / cell / "tensorflow"
    headers = {
        "tensorflow/lite/c/c_api.h": FORWARD_H,
        "tensorflow/lite/c/c_api_internal.h": "/* private: must not be shipped */\n",
        "tensorflow/lite/core/c/c_api.h": CORE_C_API_H,
        "tensorflow/lite/core/c/c_api_types.h": TYPES_H,
        "tensorflow/lite/builtin_ops.h": BUILTIN_OPS_H,
        "tensorflow/lite/kernels/add.cc": "/* not a header */\n",
    }
    for rel, text in headers.items():
        (tf / rel).parent.mkdir(parents=True, exist_ok=True)
        (tf / rel).write_text(text)
    (tf / "LICENSE").write_text(APACHE)
    for name, _, _, _, kind in DEPS:
        d = work / "src" / cell / "deps" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "LICENSE").write_text(APACHE if kind == "APACHE" else BSD)

    out = work / "out" / cell
    lib_dir = out / "lib"
    lib_dir.mkdir(parents=True, exist_ok=True)
    obj = work / "obj" / cell
    obj.mkdir(parents=True, exist_ok=True)
    extra = "int helper_leaked_symbol(int x) { return x + 1; }" if extra_export else ""
    if cxx_shared:   # a C API call that needs the C++ library, so the C library NEEDs it
        extra += "\nfloat TfLiteFakeTriple(float x) { return tflite::fake::Triple(x); }"
    if variant:   # other code, same interface: a build with another build-id
        extra += f'\n__attribute__((used)) static const char kVariant[] = "{variant}";'
    impl = IMPL_CC.replace("@VERSION@", VERSION).replace("@EXTRA@", extra)
    link_cxx: list[str] = []
    if cxx_shared:
        impl = impl.replace('#include "tensorflow/lite/c/c_api.h"\n',
                            '#include "tensorflow/lite/c/c_api.h"\n#include "tensorflow/lite/core/fake_runtime.h"\n')
        header = tf / "tensorflow/lite/core/fake_runtime.h"
        header.write_text(CXX_RUNTIME_H)
        (tf / "tensorflow/lite/kernels").mkdir(parents=True, exist_ok=True)
        (tf / "tensorflow/lite/kernels/fake_kernel.h").write_text(
            '#pragma once\n#include "tensorflow/lite/core/fake_runtime.h"\n')
        (tf / "tensorflow/lite/kernels/fake_kernel_test.h").write_text("/* a test header: not shipped */\n")
        (obj / "runtime.cc").write_text(CXX_RUNTIME_CC)
        cxx_argv = [_cxx(arch), "-O2", "-g", "-fPIC", "-shared", "-std=c++17", f"-I{tf}", "-o",
                    str(lib_dir / "libtensorflow-lite.so"), str(obj / "runtime.cc"),
                    "-Wl,-soname,libtensorflow-lite.so", "-Wl,--build-id=sha1"]
        if map_paths:
            cxx_argv += [f"-ffile-prefix-map={obj}=.", f"-ffile-prefix-map={tf}=."]
        subprocess.run(cxx_argv, check=True, capture_output=True, text=True, cwd=obj)
        link_cxx = [f"-L{lib_dir}", "-ltensorflow-lite", f"-Wl,-rpath,{cxx_rpath}", "-Wl,--enable-new-dtags"]
    (obj / "c_api.cc").write_text(impl)
    script = obj / "version_script.lds"
    script.write_text(VERSION_SCRIPT if not extra_export else "VERS_1.0 {\n  global:\n    *;\n};\n")
    real = lib_dir / f"libtensorflowlite_c.so.{VERSION}"
    major = VERSION.split(".")[0]
    argv = [_cxx(arch), "-O2", "-g", "-fPIC", "-shared", "-std=c++17", f"-I{tf}", "-o", str(real),
            str(obj / "c_api.cc"), f"-Wl,--version-script,{script}", *link_cxx]
    if soname:
        argv.append(f"-Wl,-soname,libtensorflowlite_c.so.{major}")
    if map_paths:
        argv += [f"-ffile-prefix-map={obj}=.", f"-ffile-prefix-map={tf}=."]
    subprocess.run(argv, check=True, capture_output=True, text=True, cwd=obj)
    (lib_dir / f"libtensorflowlite_c.so.{major}").symlink_to(real.name)
    (lib_dir / "libtensorflowlite_c.so").symlink_to(f"libtensorflowlite_c.so.{major}")
    info = {
        "format": 1, "tflite_forge": "0.1.0",
        "recipe": {"label": f"tensorflow-{VERSION}", "version": VERSION, "archive_sha256": TF_SHA},
        "arch": {"name": arch.name, "triplet": arch.triplet},
        "engine": "docker",
        "builder_image": {"tag": "tflite-forge/builder:test", "id": "sha256:" + "a" * 64},
        "base_image": {"ref": "tflite-forge/debian-base:bookworm", "id": "sha256:" + "b" * 64},
        "glibc_floor": "2.36",
        "compilers": {"gcc": "12.2.0", "gxx": "12.2.0", "cmake": "3.25.1"},
        "cmake_options": {"TFLITE_ENABLE_XNNPACK": "ON", "CMAKE_BUILD_TYPE": "Release"},
        "source_date_epoch": EPOCH,
        "patch_sets": [{"name": "soname", "sha256": "c" * 64}],
    }
    (out / "build-info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return FakeBuild(root=root, work_dir=work, recipe_path=recipe_path, arch=arch.name, lib=real)


def settings_for(fake: FakeBuild, dist: Path, arch: str | None = None):
    from tflite_forge.settings import Settings
    return Settings(recipe=str(fake.recipe_path), arch=arch or fake.arch, cache_dir=fake.root / "cache",
                    work_dir=fake.work_dir, dist_dir=dist)
