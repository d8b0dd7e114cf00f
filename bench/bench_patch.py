"""Benchmark the patch step against GNU `sed -i`, in one run.

A generated TensorFlow-sized tree (about 30k files, the touched files with the real line
shapes) plus an XNNPACK tree with a CMakeLists the size of the real one (~200 kB).

- apply: the bundled sets (o3, drop-mfpu-neon, soname) for aarch64/cmake, applied in place
  with `patching.apply_in_place` (sets loaded from TOML, every edit staged, counts checked,
  atomic temp+rename writes) vs one `sed -i` per touched file doing the same edits.
  Ratio = ours / sed; target <= 1.5. Edits name their files, so neither walks the tree.
- prepare: `prepare_sources` (fresh working copies of both trees + patch + stamps) vs
  `cp -a` of both trees + the same sed commands. Informational: the copy dominates.

Medians of several runs; the touched files are restored between runs, outside the timing.
`main()` returns the rows for `invoke bench`; run this file directly to print them.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

N_FILES = 30_000
RUNS_APPLY = 9
RUNS_PREPARE = 3
VERSION = "2.16.1"

SED = {  # relpath in its tree -> sed script (what a shell recipe would run)
    ("tensorflow", "tensorflow/lite/kernels/internal/BUILD"): ['/^[ \t]*"-mfpu=neon",[ \t]*$/d'],
    ("tensorflow", "tensorflow/lite/build_def.bzl"): ['/^[ \t]*"-mfpu=neon",[ \t]*$/d'],
    ("xnnpack", "CMakeLists.txt"): [r's/\(\$<\$<NOT:\$<CONFIG:Debug>>:\)-O2>/\1-O3>/g'],
    ("tensorflow", "tensorflow/lite/c/CMakeLists.txt"): [
        r'/^add_library(tensorflowlite_c /,/^)/{/^)/a\set_target_properties(tensorflowlite_c PROPERTIES\n'
        r'  VERSION 2.16.1\n  SOVERSION 2\n)' '\n}'],
}


def _xnnpack_cmake() -> str:
    lines = ["# generated stand-in with the real size and -O2 line shapes"]
    for i in range(3000):
        lines.append(f"  src/generated/kernel-{i:05d}-neon-aarch64.c")
    for target in ("microkernels-all", "microkernels-prod", "hardware-config", "indirection", "microparams-init",
                   "packing", "microkernel-utils", "operator-run", "operator-utils"):
        lines.append(f'  TARGET_COMPILE_OPTIONS({target} PRIVATE "$<$<NOT:$<CONFIG:Debug>>:-O2>")')
    for target in ("jit", "normalization", "cache", "subgraph", "operators", "XNNPACK"):
        lines.append(f'  TARGET_COMPILE_OPTIONS({target} PRIVATE "$<$<NOT:$<CONFIG:Debug>>:-Os>")')
    for i in range(1500):
        lines.append(f"ADD_EXECUTABLE(bench-{i:05d} bench/b{i:05d}.cc)")
    return "\n".join(lines) + "\n"


C_CMAKE = ("set(TFLITE_C_LIBTYPE SHARED)\n\nadd_library(tensorflowlite_c ${TFLITE_C_LIBTYPE}\n"
           "  ${TFLITE_SOURCE_DIR}/core/c/c_api.cc\n  c_api.h\n)\n\ntarget_link_libraries(tensorflowlite_c\n"
           "  tensorflow-lite\n)\n")


def make_trees(root: Path) -> dict[str, Path]:
    from tflite_forge.miniature.bazel import bazel_files

    tf = root / "tensorflow"
    per_dir = 100
    for i in range(N_FILES):
        d = tf / "tensorflow" / f"pkg{i // (per_dir * 30):02d}" / f"sub{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i:05d}.cc").write_text(f"// generated {i}\nint f{i}(int x) {{ return x + {i}; }}\n")
    for rel, text in {**bazel_files(VERSION), "tensorflow/lite/c/CMakeLists.txt": C_CMAKE}.items():
        (tf / rel).parent.mkdir(parents=True, exist_ok=True)
        (tf / rel).write_text(text)
    xnn = root / "xnnpack"
    xnn.mkdir()
    (xnn / "CMakeLists.txt").write_text(_xnnpack_cmake())
    return {"tensorflow": tf, "xnnpack": xnn}


def _sed(trees: dict[str, Path]) -> None:
    for (tree, rel), scripts in SED.items():
        args = ["sed", "-i"]
        for s in scripts:
            args += ["-e", s]
        subprocess.run([*args, str(trees[tree] / rel)], check=True)


def _ours(trees: dict[str, Path]) -> None:
    from tflite_forge.patching import apply_in_place
    from tflite_forge.patchset import find_patch_set, load_patch_set

    sets = [load_patch_set(find_patch_set(n)) for n in ("o3", "drop-mfpu-neon", "soname")]
    apply_in_place(trees, sets, version=VERSION, arch="aarch64", backend="cmake")


def _timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def bench_apply(root: Path) -> dict:
    trees = make_trees(root / "apply")
    pristine = {k: (trees[k[0]] / k[1]).read_bytes() for k in SED}

    def restore():
        for (tree, rel), data in pristine.items():
            (trees[tree] / rel).write_bytes(data)

    # Same result first: the reference does what the sets do.
    _ours(trees)
    ours_out = {k: (trees[k[0]] / k[1]).read_bytes() for k in SED}
    restore()
    _sed(trees)
    sed_out = {k: (trees[k[0]] / k[1]).read_bytes() for k in SED}
    restore()
    same = ours_out == sed_out
    ours, ref = [], []
    for _ in range(RUNS_APPLY):
        ours.append(_timed(_ours, trees))
        restore()
        ref.append(_timed(_sed, trees))
        restore()
    o, r = statistics.median(ours), statistics.median(ref)
    return {"benchmark": f"apply o3+drop-mfpu-neon+soname ({len(SED)} files) in a {N_FILES}-file tree vs sed -i",
            "ours": o, "reference": r, "ratio": o / r, "target": "<= 1.5",
            "note": "identical output" if same else "OUTPUT DIFFERS from sed"}


def bench_prepare(root: Path) -> dict:
    from tflite_forge.patching import prepare_sources
    from tflite_forge.recipe import parse_recipe
    from tflite_forge.settings import Settings

    trees = make_trees(root / "cache")
    recipe = parse_recipe(root / "tensorflow-2.16.1.toml", {
        "source": {"name": "tensorflow", "version": VERSION, "urls": ["https://example.invalid/t.tar.gz"],
                   "sha256": "c" * 64, "strip_prefix": "tensorflow-2.16.1"},
        "build": {"patch_sets": ["o3", "drop-mfpu-neon", "soname"]}})
    sources = SimpleNamespace(recipe=recipe, tensorflow=trees["tensorflow"], dependencies={
        "xnnpack": SimpleNamespace(dependency=SimpleNamespace(name="xnnpack", sha256="d" * 64), tree=trees["xnnpack"])})
    ours, ref = [], []
    for i in range(RUNS_PREPARE):
        work = root / f"work{i}"
        ours.append(_timed(prepare_sources, Settings(cache_dir=root, work_dir=work), sources, "aarch64"))
        shutil.rmtree(work)
        dest = root / f"cp{i}"

        def cp_and_sed():
            dest.mkdir()
            copies = {}
            for name, src in trees.items():
                subprocess.run(["cp", "-a", str(src), str(dest / name)], check=True)
                copies[name] = dest / name
            _sed(copies)
        ref.append(_timed(cp_and_sed))
        shutil.rmtree(dest)
    o, r = statistics.median(ours), statistics.median(ref)
    return {"benchmark": f"prepare working copies ({N_FILES}-file tree + xnnpack) vs cp -a + sed -i",
            "ours": o, "reference": r, "ratio": o / r, "target": "info (copy-bound)"}


def main() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="tflite-forge-bench-patch-") as tmp:
        return [bench_apply(Path(tmp)), bench_prepare(Path(tmp))]


if __name__ == "__main__":
    for row in main():
        print(row)
