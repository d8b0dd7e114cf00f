"""A build's output depends on its inputs only (issue: build state), on the miniature with real docker.

- TFLite's CMake writes into dependency source trees at configure time: the build works on its own
  copies, and neither the download cache nor the working copies change by a byte.
- S1: a changed flatbuffers tree gets a new host flatc (not ninja's "no work to do").
- S2: a patch set switched off and on leaves exactly one library in the result each time.
- S3: a release chain refuses a recipe without a versioned SONAME before it compiles anything.
- A fresh volume, an incremental rebuild and a rerun after SIGKILL at any step give the same tarball.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tflite_forge import container as ct

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ARCH = "aarch64"          # a cross build: host tools, toolchain file, every step


def snapshot(root: Path) -> dict[str, str]:
    """Every file, link and folder below root with its content digest, mode and link target."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if path.is_symlink():
            out[rel] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            out[rel] = f"dir {oct(st.st_mode)}"
        else:
            out[rel] = f"{oct(st.st_mode)} {st.st_mtime_ns} {hashlib.sha256(path.read_bytes()).hexdigest()}"
    return out


def recipe_with(miniature, tmp_path: Path, name: str, patch_sets: list[str] | None, extra_patches: dict | None = None) -> Path:
    """A copy of the miniature's recipe (same label, same lock) with other patch sets."""
    folder = tmp_path / name
    folder.mkdir()
    text = miniature.recipe.read_text()
    if patch_sets is not None:
        listed = ", ".join(f'"{s}"' for s in patch_sets)
        text, n = re.subn(r"^patch_sets = \[[^\]]*\]", f"patch_sets = [{listed}]", text, flags=re.M)
        assert n == 1
    path = folder / miniature.recipe.name
    path.write_text(text)
    Path(f"{path}.lock").write_text(Path(f"{miniature.recipe}.lock").read_text())
    if extra_patches:
        (folder / "patches").mkdir()
        for file, body in extra_patches.items():
            (folder / "patches" / file).write_text(body)
    return path


def run(forge, miniature, work: Path, *args: str, recipe: Path | None = None, dist: Path | None = None, check=True):
    env = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(work)}
    if dist:
        env["TFLITE_FORGE_DIST_DIR"] = str(dist)
    argv = [*args, f"--arch={ARCH}", "--engine=docker", f"--recipe={recipe or miniature.recipe}",
            f"--rewrite=https://={miniature.base_url}"]
    return forge(*argv, env=env, check=check)


def lib_names(work: Path) -> list[str]:
    out = next((work / "out").glob(f"*-{ARCH}"))
    return sorted(p.name for p in (out / "lib").iterdir())


def tarball(dist: Path) -> bytes:
    (found,) = [p for p in dist.glob(f"libtensorflowlite_c-*-linux-{ARCH}.tar.gz") if "-dbg" not in p.name]
    return found.read_bytes()


def cell(work: Path) -> tuple[tuple[str, str], ...]:
    """The labels of this test's cell (its key is the stamp's name, and its work dir's id): other
    builds, of this very cell too, may share the engine."""
    from tflite_forge.build_plan import work_id
    (stamp,) = (work / "stamps").glob("*.json")
    return (("io.tflite-forge.key", stamp.stem), ("io.tflite-forge.work", work_id(work)))


def ours(engine, work: Path) -> list[str]:
    return ct.list_containers(engine, cell(work))


def miniature_version(miniature) -> str:
    from tflite_forge.recipe import load_recipe
    return load_recipe(miniature.recipe).version


def test_configure_writes_into_dependency_trees_touch_neither_cache_nor_working_copies(
        miniature, base_image_docker, docker_engine, tmp_path, forge):
    work = tmp_path / "work"
    run(forge, miniature, work, "fetch", "patch")
    cache_trees = miniature.cache_dir / "trees"
    before = (snapshot(cache_trees), snapshot(work / "src"))
    proc = run(forge, miniature, work, "build", "--force")
    log = next((work / "logs").glob(f"build-*-{ARCH}.log")).read_text()
    # The miniature's xnnpack.cmake and flatbuffers.cmake wrote into /deps/... (configure includes the
    # written file); a read-only or root-owned tree would have failed right there.
    assert "-- Configuring done" in log, proc.stderr
    assert (snapshot(cache_trees), snapshot(work / "src")) == before
    assert not any("tflite-configure.cmake" in k for k in snapshot(work / "src")), "written into the working copy"


FLATC_MARK = '''[set]
kind = "tuning"
description = "Mark the host flatc's --version line (test fixture)"
upstream = "N/A test"

[[edit]]
id = "flatc-version-mark"
description = "a new flatc source, as a new flatbuffers archive would bring"
upstream = "N/A test"
tree = "flatbuffers"
files = ["src/flatc.c"]
pattern = 'version %s \\(tflite-forge miniature\\)'
replacement = 'version %s (tflite-forge miniature, marked)'
count = 1
'''


def test_s1_a_changed_flatbuffers_tree_gets_a_new_host_flatc(miniature, base_image_docker, docker_engine, tmp_path, forge):
    work = tmp_path / "work"
    run(forge, miniature, work, "build")
    log = next((work / "logs").glob(f"build-*-{ARCH}.log"))
    assert "(tflite-forge miniature)" in log.read_text()
    marked = recipe_with(miniature, tmp_path, "marked", ["o3", "drop-mfpu-neon", "soname", "flatc-mark"],
                         {"flatc-mark.toml": FLATC_MARK})
    run(forge, miniature, work, "build", recipe=marked)
    text = log.read_text()
    assert "flatc version" in text and "(tflite-forge miniature, marked)" in text, text[-3000:]
    # ... and back: the unmarked tree's host tools are still there, shared, not rebuilt.
    run(forge, miniature, work, "build", "--force")
    text = log.read_text()
    assert "(tflite-forge miniature)" in text and "marked" not in text


def test_s2_switching_the_soname_set_off_and_on_keeps_one_library(miniature, base_image_docker, docker_engine,
                                                                   tmp_path, forge):
    work = tmp_path / "work"
    run(forge, miniature, work, "build")
    versioned = lib_names(work)
    assert len([n for n in versioned if re.fullmatch(r"libtensorflowlite_c\.so\.\d+\.\d+\.\d+", n)]) == 1, versioned
    plain = recipe_with(miniature, tmp_path, "plain", ["o3", "drop-mfpu-neon"])
    proc = run(forge, miniature, work, "build", recipe=plain)
    assert "no versioned SONAME" in proc.stderr and "warning" in proc.stderr   # build alone: said, not refused
    assert lib_names(work) == ["libtensorflowlite_c.so"]
    run(forge, miniature, work, "build")
    assert lib_names(work) == versioned
    run(forge, miniature, work, "package", dist=tmp_path / "dist")
    assert tarball(tmp_path / "dist")
    # Superseded trees are dropped: one build and one deps volume per key, whatever was built before.
    assert len(ct.list_volumes(docker_engine, (("io.tflite-forge.kind", "build"), *cell(work)))) == 2


def test_s3_a_release_chain_refuses_an_unversioned_soname_before_compiling(miniature, base_image_docker, docker_engine,
                                                                            tmp_path, forge):
    work = tmp_path / "work"
    plain = recipe_with(miniature, tmp_path, "plain", [])
    proc = run(forge, miniature, work, "fetch", "build", "package", recipe=plain, dist=tmp_path / "dist", check=False)
    assert proc.returncode == 12, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("tflite-forge:")]
    assert lines and "no versioned SONAME" in lines[-1] and '"soname"' in lines[-1]
    assert "Traceback" not in proc.stderr
    assert not list(work.glob("logs/build-*")), "nothing was compiled"
    assert not list(tmp_path.glob("dist/*.tar.gz"))


def test_fresh_volume_and_incremental_rebuild_give_byte_identical_tarballs(miniature, base_image_docker, docker_engine,
                                                                           tmp_path, forge):
    work = tmp_path / "work"
    run(forge, miniature, work, "build", "package", dist=tmp_path / "first")
    run(forge, miniature, work, "build", "--force")                       # incremental, same volume
    run(forge, miniature, work, "package", dist=tmp_path / "incremental")
    # This cell's build and deps volumes only (`invoke clean --build` would take every cell's on this engine).
    ct.remove_volumes(docker_engine, ct.list_volumes(docker_engine, (("io.tflite-forge.kind", "build"), *cell(work))))
    run(forge, miniature, work, "build", "--force")                       # fresh volumes, warm ccache
    run(forge, miniature, work, "package", dist=tmp_path / "fresh")
    first = tarball(tmp_path / "first")
    assert tarball(tmp_path / "incremental") == first
    assert tarball(tmp_path / "fresh") == first


@pytest.mark.parametrize("step", ["sources", "host-tools", "configure", "build", "collect"])
def test_a_build_killed_at_any_step_reruns_to_the_same_tarball(miniature, base_image_docker, docker_engine,
                                                               tmp_path, forge, step):
    work = tmp_path / "work"
    run(forge, miniature, work, "build", "package", dist=tmp_path / "reference")
    log = next((work / "logs").glob(f"build-*-{ARCH}.log"))
    env = {**os.environ, **miniature.env, "TFLITE_FORGE_WORK_DIR": str(work)}
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "build", "--force", f"--arch={ARCH}", "--engine=docker",
                             f"--recipe={miniature.recipe}", f"--rewrite=https://={miniature.base_url}"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while f"# step {step}:" not in (log.read_text(errors="replace") if log.exists() else ""):
            assert proc.poll() is None, f"the build ended before step {step}"
            assert time.monotonic() < deadline, f"step {step} never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    rerun = run(forge, miniature, work, "build", "package", dist=tmp_path / "after-kill")
    assert tarball(tmp_path / "after-kill") == tarball(tmp_path / "reference"), rerun.stderr
    assert not ours(docker_engine, work), "the killed build's container was left running"


UNRAISED = '''[set]
kind = "tuning"
description = "Promises XNNPACK at -O3 but edits a comment only (test fixture: a sed that never reaches the compiler)"
upstream = "N/A test"

[[edit]]
id = "comment-only"
description = "touches the file, not the flags"
upstream = "N/A test"
tree = "xnnpack"
files = ["CMakeLists.txt"]
pattern = '^# Miniature XNNPACK'
replacement = '# Miniature XNNPACK (edited)'
count = 1

[[compile_check]]
id = "xnnpack-no-o2"
description = "No compile of an XNNPACK file carries -O2"
tree = "xnnpack"
forbid = ["-O2"]
'''


def test_a_compile_check_that_fails_fails_the_build_in_one_line_naming_the_command(
        miniature, base_image_docker, docker_engine, tmp_path, forge):
    work = tmp_path / "work"
    recipe = recipe_with(miniature, tmp_path, "unraised", ["unraised", "drop-mfpu-neon", "soname"],
                         {"unraised.toml": UNRAISED})
    proc = run(forge, miniature, work, "build", recipe=recipe, check=False)
    assert proc.returncode == 11, proc.stdout + proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("tflite-forge: ") and "compile check xnnpack-no-o2 failed: /deps/xnnpack/src/" in line, line
    assert "has -O2: " in line and "-gcc" in line and "patch set unraised" in line
    assert not list(work.glob("out/*-aarch64/build-info.json")), "a failed check leaves no result"
    assert not list(work.glob("stamps/*.json"))
    assert not ct.list_containers(docker_engine, (("io.tflite-forge.arch", "aarch64"),
                                                  ("io.tflite-forge.version", miniature_version(miniature))))
