"""`invoke fetch build` of the miniature TensorFlow with real engines, cross compilers and ELF checks."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from tests.ci import ctrl_c_default

from tflite_forge.workspace import Cell
from tflite_forge import build_plan, build_run, pipeline
from tflite_forge import container as ct
from tflite_forge import engine as eng
from tflite_forge.arches import resolve_arch
from tflite_forge.errors import BuildError
from tflite_forge.miniature import write_release

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

PROBE_URL = "http://deb.debian.org/debian/dists/bookworm/Release"


def elf_facts(path: Path) -> tuple[str, int, str | None]:
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        soname = None
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_SONAME":
                        soname = tag.soname
        return elf["e_machine"], elf.elfclass, soname


def label(miniature) -> str:
    from tflite_forge.recipe import load_recipe
    return load_recipe(miniature.recipe).label


def out_dir(miniature, arch: str) -> Path:
    return miniature.work_dir / "out" / f"{label(miniature)}-{arch}"


def real_library(lib_dir: Path, stem: str = "libtensorflowlite_c.so") -> Path:
    files = [p for p in lib_dir.glob(f"{stem}*") if p.is_file() and not p.is_symlink()]
    assert len(files) == 1, f"expected one {stem}* file in {lib_dir}: {sorted(p.name for p in lib_dir.iterdir())}"
    return files[0]


def ours(engine: eng.EngineConfig) -> list[str]:
    """Build containers of the miniature's version (named tflite-forge-*; image builds by other tests
    make unnamed intermediate containers that carry the label too; a developer's own builds of real
    versions may run on the same engine)."""
    version = inspect.signature(write_release).parameters["version"].default
    return [name for name in ct.list_containers(engine, (("io.tflite-forge.version", version),))
            if name.startswith("tflite-forge-")]


def check_result(miniature, arch_name: str, engine: eng.EngineConfig) -> dict:
    arch = resolve_arch(arch_name)
    out = out_dir(miniature, arch.name)
    lib = real_library(out / "lib")
    machine, elfclass, soname = elf_facts(lib)
    assert machine == arch.elf_machine and elfclass == arch.elf_class
    assert soname and soname.startswith("libtensorflowlite_c.so."), soname
    assert (out / "lib" / soname).exists(), "the SONAME link is collected with the library"
    info = json.loads((out / "build-info.json").read_text())
    assert info["engine"] == engine.name
    assert info["glibc_floor"] == "2.36"  # Debian bookworm's glibc: the floor of the result
    assert info["builder_image"]["tag"].startswith(f"tflite-forge/builder:{arch.name}-")
    assert info["base_image"]["ref"] == "tflite-forge/debian-base:bookworm"
    assert info["compilers"]["gcc"].startswith("12.")
    assert info["source_date_epoch"] > 0
    assert {d["name"] for d in info["dependencies"]}, "locked dependencies are recorded"
    assert any(lib_info.get("soname") == soname for lib_info in info["libraries"])
    log = miniature.work_dir / "logs" / f"build-{label(miniature)}-{arch.name}.log"
    text = log.read_text()
    assert "FETCHCONTENT_FULLY_DISCONNECTED=ON" in text
    if arch.name != "x86_64":
        assert "TFLITE_HOST_TOOLS_DIR=/host/bin" in text and "step host-tools" in text
    # The patch sets, proven on the compile commands (facts: the miniature's XNNPACK has nine -O2 targets).
    checks = {c["id"]: c for c in info["compile_checks"]}
    xnnpack_on = info["cmake_options"].get("TFLITE_ENABLE_XNNPACK", "ON") == "ON"   # TFLite default: ON
    assert (checks["xnnpack-no-o2"]["matched"] > 0) == xnnpack_on
    if xnnpack_on:
        assert checks["xnnpack-microkernels-o3"]["matched"] >= 2     # microkernels-all and -prod
    if arch.name == "aarch64":
        assert checks["aarch64-no-mfpu"]["matched"] == info["compile_commands"] > 0
    if arch.name == "armhf":
        assert checks["armhf-keeps-neon-vfpv4"]["matched"] > 0
    assert not ours(engine), "every container is removed after the build"
    return info


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "armhf"])
def test_fetch_build_with_docker(miniature, base_image_docker, docker_engine, arch, forge):
    proc = forge("fetch", "build", f"--arch={arch}", "--engine=docker", *miniature.args, env=miniature.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{arch}: built" in proc.stdout or f"{arch}: up to date" in proc.stdout
    check_result(miniature, arch, docker_engine)


def test_second_build_only_checks(miniature, base_image_docker, docker_engine, forge):
    forge("build", "--arch=aarch64", "--engine=docker", *miniature.args, env=miniature.env, check=True)
    lib = real_library(out_dir(miniature, "aarch64") / "lib")
    before = lib.stat().st_mtime_ns
    proc = forge("build", "--arch=aarch64", "--engine=docker", *miniature.args, env=miniature.env, check=True)
    assert "aarch64: up to date" in proc.stdout
    assert lib.stat().st_mtime_ns == before


def test_fetch_build_with_podman(miniature, base_image_podman, podman_engine, forge):
    proc = forge("fetch", "build", "--arch=aarch64", "--engine=podman", "--force", *miniature.args,
                     env=miniature.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_result(miniature, "aarch64", podman_engine)


def test_cxx_shared_library(miniature, base_image_docker, docker_engine, tmp_path, forge):
    env = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / "work")}
    proc = forge("build", "--arch=x86_64", "--engine=docker", "--cxx-shared", *miniature.args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lib_dir = next((tmp_path / "work" / "out").glob("*-x86_64")) / "lib"
    machine, _, _ = elf_facts(real_library(lib_dir, "libtensorflow-lite.so"))
    assert machine == "EM_X86_64"
    info = json.loads((lib_dir.parent / "build-info.json").read_text())
    assert info["cmake_options"]["BUILD_SHARED_LIBS"] == "ON"
    assert info["targets"] == ["tensorflowlite_c", "tensorflow-lite"]


def test_build_has_no_network_and_the_control_does(miniature, base_image_docker, docker_engine, tmp_path):
    """The miniature's configure FATAL_ERRORs if it can download PROBE_URL (a Debian archive URL)."""
    from tflite_forge.recipe import load_recipe
    from tflite_forge.settings import resolve

    recipe_path = tmp_path / miniature.recipe.name
    text = miniature.recipe.read_text()
    marker = "[build.cmake_options]"
    probe = f'TFLITE_MINIATURE_NETWORK_PROBE_URL = "{PROBE_URL}"'
    recipe_path.write_text(text.replace(marker, f"{marker}\n{probe}") if marker in text
                           else text + f"\n{marker}\n{probe}\n")
    Path(str(recipe_path) + ".lock").write_text(Path(str(miniature.recipe) + ".lock").read_text())
    patches = miniature.recipe.parent / "patches"
    if patches.exists():
        (tmp_path / "patches").symlink_to(patches)
    settings = resolve({"recipe": str(recipe_path), "engine": "docker", "rewrite": [f"https://={miniature.base_url}"],
                        "cache_dir": str(miniature.cache_dir)}, {"work_dir": str(tmp_path / "work")}, environ={})
    recipe = load_recipe(recipe_path)
    arch = resolve_arch("x86_64")

    hermetic = pipeline.build_cell(settings, Cell(recipe, arch), docker_engine, force=True)
    log = hermetic.plan.log_path.read_text()
    assert hermetic.plan.spec.network == "none"
    assert "is unreachable" in log and "network probe reached" not in log

    # Control: the very same plan in a container on the engine's default network reaches the URL.
    staging = tmp_path / "control-out"
    mounts = tuple(dataclasses.replace(m, source=str(staging)) if m.target == build_plan.OUT else m
                   for m in hermetic.plan.spec.mounts)
    control = dataclasses.replace(hermetic.plan, spec=dataclasses.replace(hermetic.plan.spec, network=None, mounts=mounts),
                                  log_path=tmp_path / "control.log", staging_dir=staging)
    with pytest.raises(BuildError) as err:
        build_run.execute(control, docker_engine)
    assert "step configure failed" in str(err.value)
    assert "network probe reached" in (tmp_path / "control.log").read_text()
    assert not ours(docker_engine)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_build_leaves_no_container(miniature, base_image_docker, docker_engine, sig):
    out = out_dir(miniature, "aarch64")
    info_before = (out / "build-info.json").read_bytes() if (out / "build-info.json").exists() else None
    log = miniature.work_dir / "logs" / f"build-{label(miniature)}-aarch64.log"
    log.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "build", "--arch=aarch64", "--engine=docker", "--force",
                             *miniature.args], cwd=REPO, env={**os.environ, **miniature.env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
    try:
        deadline = time.monotonic() + 300
        # Signal as soon as the first step runs inside the container (the log says so).
        while not (log.exists() and "# step sources:" in log.read_text(errors="replace")):
            assert proc.poll() is None, f"build ended before its first step: {proc.communicate()}"
            assert time.monotonic() < deadline, "the build never started its first step"
            time.sleep(0.05)
        assert any("-build-aarch64-" in name for name in ours(docker_engine))
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "interrupted" in stderr, stderr
    assert not ours(docker_engine), "the interrupted build left a container behind"
    assert not list((miniature.work_dir / "out").glob(".staging-*")), "no half-written output"
    if info_before is not None:
        assert (out / "build-info.json").read_bytes() == info_before, "the previous result is untouched"


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_missing_engine_on_path_is_one_clear_line(tmp_path, miniature, forge):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = forge("build", "--arch=aarch64", "--engine=podman", *miniature.args,
                     env={**miniature.env, "PATH": str(empty)})
    assert proc.returncode == 10
    line = _one_line_error(proc)
    assert line.startswith("tflite-forge: container engine podman not found")
    assert "ci/setup-host.sh" in line and "--engine" in line


def test_engine_variable_pointing_to_missing_binary(tmp_path, miniature, forge):
    missing = tmp_path / "nowhere" / "docker"
    proc = forge("build", "--arch=x86_64", *miniature.args,
                     env={**miniature.env, "TFLITE_FORGE_ENGINE": str(missing)})
    assert proc.returncode == 10
    line = _one_line_error(proc)
    assert str(missing) in line and "not found" in line


def test_clean_scopes_say_what_they_delete(miniature, base_image_docker, docker_engine, forge, tmp_path):
    other = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / "other-checkout")}
    forge("build", "--arch=x86_64", "--engine=docker", *miniature.args, env=other, check=True)
    forge("build", "--arch=x86_64", "--engine=docker", *miniature.args, env=miniature.env, check=True)
    mine = (("io.tflite-forge.kind", "build"), ("io.tflite-forge.work", build_plan.work_id(miniature.work_dir)))
    theirs = (("io.tflite-forge.kind", "build"), ("io.tflite-forge.work", build_plan.work_id(tmp_path / "other-checkout")))
    assert ct.list_volumes(docker_engine, mine) and ct.list_volumes(docker_engine, theirs)
    proc = forge("clean", "--build", "--cache", "--engine=docker", env=miniature.env, check=True)
    assert "removed build trees:" in proc.stdout and "removed compiler cache:" in proc.stdout
    assert not ct.list_volumes(docker_engine, mine)
    assert ct.list_volumes(docker_engine, theirs), "another work dir's build trees are not this clean's"
    # Only ccache volumes a running build uses are left, and the line names each (a developer's own
    # build may be running on this engine; in CI none is).
    for left in ct.list_volumes(docker_engine, (("io.tflite-forge.kind", "ccache"),)):
        assert "in use by a running build" in proc.stdout and left in proc.stdout, proc.stdout
    assert not (miniature.work_dir / "out").exists()
