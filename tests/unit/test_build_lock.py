"""Two `invoke build` runs of one cell do not overlap, and a killed build's leftovers are cleared.

Real processes and real file locks; no engine: the engine binary is one that does not exist, so
any attempt to build (instead of waiting and finding the result up to date) fails the test.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from filelock import FileLock

from tflite_forge import build_plan as b
from tflite_forge import build_run
from tflite_forge import engine as eng
from tflite_forge.arches import resolve_arch
from tflite_forge.workspace import Cell, Workspace

ROOT = Path(__file__).resolve().parents[2]
NO_ENGINE = eng.EngineConfig(name="docker", binary="/nonexistent/tflite-forge-test/docker")


def request(tmp: Path) -> b.BuildRequest:
    return b.BuildRequest(cell=Cell(recipe=SimpleNamespace(label="tensorflow-2.16.1", version="2.16.1"),
                                    arch=resolve_arch("aarch64")),
                          workspace=Workspace(work_dir=tmp / "work", dist_dir=tmp / "dist", cache_dir=tmp / "cache"),
                          image="tflite-forge/builder:x-1", gcc_version="12.2.0", tensorflow=tmp / "src" / "tensorflow",
                          dependencies=(b.Dependency(name="flatbuffers", cmake_variable="FETCHCONTENT_SOURCE_DIR_FLATBUFFERS",
                                                     path=tmp / "src" / "deps" / "flatbuffers"),),
                          cmake_options=(("TFLITE_ENABLE_XNNPACK", "ON"),),
                          source_date_epoch=1709856000, jobs=1)


def finished_build(plan: b.BuildPlan, req: b.BuildRequest) -> None:
    """What a completed build leaves: out_dir with a library and build-info.json, and its stamp."""
    (plan.out_dir / "lib").mkdir(parents=True)
    (plan.out_dir / "lib" / "libtensorflowlite_c.so.2").write_bytes(b"\x7fELF")
    info = json.dumps({"libraries": [{"name": "libtensorflowlite_c.so.2", "sha256": "x"}]})
    (plan.out_dir / "build-info.json").write_text(info)
    plan.stamp_path.parent.mkdir(parents=True, exist_ok=True)
    plan.stamp_path.write_text(json.dumps({"inputs": b.plan_inputs(plan, req, "sha256:1"),
                                           "build_info_sha256": hashlib.sha256(info.encode()).hexdigest()}))


RUN = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.unit.test_build_lock import NO_ENGINE, request
from tflite_forge import build_plan, build_run
req = request(Path(sys.argv[1]))
out, built = build_run.run_build(build_plan.plan_build(req), NO_ENGINE, req=req, image_id="sha256:1", info={})
print(f"built={built}")
"""


def test_second_build_of_a_cell_waits_for_the_first_then_finds_it_up_to_date(tmp_path):
    req = request(tmp_path)
    Path(req.tensorflow).mkdir(parents=True)
    (Path(req.tensorflow) / "a.cc").write_text("int a;\n")
    Path(req.dependencies[0].path).mkdir(parents=True)
    plan = b.plan_build(req)
    first = FileLock(str(plan.lock_path))
    plan.lock_path.parent.mkdir(parents=True)
    first.acquire()                       # "the first build" is running
    second = subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path), str(ROOT)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = second.stderr.readline()   # blocks until the second run says it waits
        assert "another build of tensorflow-2.16.1 for aarch64 is running" in line, line + second.stderr.read()
        assert second.poll() is None
        finished_build(plan, req)         # the first build completes ...
    finally:
        first.release()                   # ... and lets go
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert out.strip() == "built=False"


def test_stale_leftovers_of_this_cell_are_removed_under_the_lock(tmp_path):
    req = request(tmp_path)
    Path(req.tensorflow).mkdir(parents=True)
    plan = b.plan_build(req)
    finished_build(plan, req)
    out_root = plan.out_dir.parent
    stale = [out_root / f".old-{plan.out_dir.name}-4242",            # killed between finish()'s renames
             out_root / f".staging-{plan.out_dir.name}-0123456789",  # killed mid-build, other options
             plan.staging_dir]
    for path in stale:
        (path / "lib").mkdir(parents=True)
        (path / "lib" / "junk.so").write_bytes(b"junk")
    stamp_temp = plan.stamp_path.with_name(f".{plan.stamp_path.name}.k1ll3d")
    stamp_temp.write_text("{")
    other_cell = out_root / ".staging-tensorflow-2.16.1-armhf-0123456789"
    other_cell.mkdir()
    out, built = build_run.run_build(plan, NO_ENGINE, req=req, image_id="sha256:1", info={})
    assert (out, built) == (plan.out_dir, False)
    assert [p for p in (*stale, stamp_temp) if p.exists()] == []
    assert other_cell.is_dir(), "another cell's staging folder may belong to a build that is running"
