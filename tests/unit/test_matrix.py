"""The matrix: one process per cell, a failing cell does not stop the others, --resume skips done cells."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tflite_forge.matrix import plan_parallelism

ROOT = Path(__file__).resolve().parents[2]

TASKS = '''
import os
from tflite_forge.cli import forge_task
from tflite_forge.errors import BuildError

HELP = {"version": "v", "arch": "a", "parallel": "p", "resume": "r"}

@forge_task(help=HELP)
def build(c, version=None, arch=None, parallel=None, resume=False):
    """Pretend to build; armhf breaks."""
    if arch == "armhf":
        raise BuildError("armhf broke on purpose")
    print(f"built {version} {arch} with {os.environ.get('TFLITE_FORGE_JOBS')} jobs")

@forge_task(help={"version": "v"}, handles_matrix=True)
def report(c, version=None):
    """Takes version lists itself."""
    print(f"report over {version}")

@forge_task(help=HELP)
def package(c, version=None, arch=None, parallel=None, resume=False):
    """Pretend to package."""
    dist = os.environ["TFLITE_FORGE_DIST_DIR"]
    os.makedirs(dist, exist_ok=True)
    with open(f"{dist}/libtensorflowlite_c-{version}-linux-{arch}.tar.gz", "w") as fh:
        fh.write("x")
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "invoke.yaml").write_text("tasks:\n  executor_class: tflite_forge.cli.ChainExecutor\n")
    env = dict(os.environ, TFLITE_FORGE_WORK_DIR=str(tmp_path / "work"), TFLITE_FORGE_DIST_DIR=str(tmp_path / "dist"),
               PYTHONPATH=str(ROOT))
    return tmp_path, env


def invoke(project, *argv):
    path, env = project
    return subprocess.run([sys.executable, "-m", "invoke", *argv], cwd=path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_one_failing_cell_does_not_stop_the_others(project):
    path, _ = project
    proc = invoke(project, "build", "package", "--version", "2.16.1", "--arch", "aarch64,armhf,x86_64", "--parallel", "2")
    assert proc.returncode == 1
    assert "1 of 3 matrix cells failed (2.16.1/armhf)" in proc.stderr
    assert "Traceback" not in proc.stderr
    dist = path / "dist"
    assert sorted(p.name for p in dist.glob("*.tar.gz")) == [
        "libtensorflowlite_c-2.16.1-linux-aarch64.tar.gz", "libtensorflowlite_c-2.16.1-linux-x86_64.tar.gz"]
    logs = path / "work" / "logs" / "matrix"
    assert "armhf broke on purpose" in (logs / "tensorflow-2.16.1-armhf.log").read_text()
    assert "built 2.16.1 aarch64" in (logs / "tensorflow-2.16.1-aarch64.log").read_text()
    assert "matrix summary" in proc.stderr and "failed" in proc.stderr
    # stderr is a pipe: the summary is one line per cell, whatever the length of the log's path
    assert any(line.startswith("cell=2.16.1/armhf | result=failed | time=") and
               f"log / last line={logs / 'tensorflow-2.16.1-armhf.log'}: " in line for line in proc.stderr.splitlines())


def test_resume_skips_cells_packaged_from_identical_inputs(project):
    path, _ = project
    assert invoke(project, "build", "package", "--version", "2.16.1,2.17.0", "--arch", "aarch64").returncode == 0
    log = path / "work" / "logs" / "matrix" / "tensorflow-2.16.1-aarch64.log"
    log.write_text("untouched")
    proc = invoke(project, "build", "package", "--version", "2.16.1,2.17.0", "--arch", "aarch64", "--resume")
    assert proc.returncode == 0
    assert log.read_text() == "untouched"          # the cell did not run again
    assert "skipped" in proc.stderr
    (path / "dist" / "libtensorflowlite_c-2.17.0-linux-aarch64.tar.gz").unlink()
    proc = invoke(project, "build", "package", "--version", "2.16.1,2.17.0", "--arch", "aarch64", "--resume")
    assert (path / "dist" / "libtensorflowlite_c-2.17.0-linux-aarch64.tar.gz").exists()   # re-made


def test_a_single_cell_runs_in_process(project):
    proc = invoke(project, "build", "--version", "2.16.1", "--arch", "aarch64")
    assert proc.returncode == 0 and "built 2.16.1 aarch64" in proc.stdout and "matrix" not in proc.stderr


def test_unknown_arch_in_a_matrix_is_one_line(project):
    proc = invoke(project, "build", "--version", "2.16.1", "--arch", "aarch64,sparc")
    assert proc.returncode == 2
    assert [l for l in proc.stderr.splitlines() if l.strip()] == [
        next(l for l in proc.stderr.splitlines() if l.startswith("tflite-forge: --arch 'sparc'"))]


def test_parallelism_stays_within_memory():
    gib = 1024 ** 3
    assert plan_parallelism(cells=6, requested=4, cpus=2, mem=24 * gib) == (2, 1)
    assert plan_parallelism(cells=6, requested=4, cpus=16, mem=8 * gib) == (4, 1)
    assert plan_parallelism(cells=2, requested=None, cpus=16, mem=64 * gib) == (1, 16)
    assert plan_parallelism(cells=3, requested=8, cpus=8, mem=3 * gib) == (1, 1)


def test_a_task_that_takes_version_lists_itself_gets_no_matrix(project):
    proc = invoke(project, "report", "--version", "all")
    assert proc.returncode == 0 and "report over all" in proc.stdout and "matrix" not in proc.stderr
