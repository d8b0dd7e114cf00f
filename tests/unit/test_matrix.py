"""The matrix: one process per cell, a failing cell does not stop the others, --resume skips done cells."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cells import cell_of
from tests.tasks_module import load_tasks

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
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        next(line for line in proc.stderr.splitlines() if line.startswith("tflite-forge: --arch 'sparc'"))]


def test_parallelism_stays_within_memory():
    gib = 1024 ** 3
    assert plan_parallelism(cells=6, requested=4, cpus=2, mem=24 * gib) == (2, 1)
    assert plan_parallelism(cells=6, requested=4, cpus=16, mem=8 * gib) == (4, 1)
    assert plan_parallelism(cells=2, requested=None, cpus=16, mem=64 * gib) == (1, 16)
    assert plan_parallelism(cells=3, requested=8, cpus=8, mem=3 * gib) == (1, 1)


def test_a_task_that_takes_version_lists_itself_gets_no_matrix(project):
    proc = invoke(project, "report", "--version", "all")
    assert proc.returncode == 0 and "report over all" in proc.stdout and "matrix" not in proc.stderr


def _planned(monkeypatch, argv, environ=None, config=None):
    """What the executor runs for a command line: the cells handed to run_matrix, or None when the
    chain runs in this process."""
    from invoke import Config
    from invoke.parser import Parser

    from tflite_forge import options
    from tflite_forge.cli import ChainExecutor
    for var in options.ENV.values():
        monkeypatch.delenv(var, raising=False)
    for var, value in (environ or {}).items():
        monkeypatch.setenv(var, value)
    seen = {}

    def fake_run_matrix(cells, chain_argv, **_kw):
        seen["cells"] = cells
        seen["argv"] = [chain_argv(c) for c in cells]
        return []

    def in_process(self, *_tasks):
        seen["cells"] = None
        return {}

    monkeypatch.setattr("tflite_forge.matrix.run_matrix", fake_run_matrix)
    monkeypatch.setattr("invoke.Executor.execute", in_process)
    ns = load_tasks()
    executor = ChainExecutor(ns, config=Config(overrides={"tflite_forge": dict(config or {})}))
    executor.execute(*Parser(contexts=ns.to_contexts()).parse_argv(argv))
    return seen


@pytest.mark.parametrize("chain", [["fetch", "build", "package"], ["fetch", "lock"]], ids=["per-arch", "per-version"])
def test_flag_variable_and_invoke_yaml_make_the_same_matrix(monkeypatch, chain):
    """issue 12: `version: all` in invoke.yaml ran serially in one process while `--version all` ran a
    matrix; now every source goes through settings.resolve and matrix.cells."""
    by_flag = _planned(monkeypatch, [*chain, "--version", "all", "--arch", "x86_64,aarch64"])
    by_env = _planned(monkeypatch, chain, environ={"TFLITE_FORGE_VERSION": "all", "TFLITE_FORGE_ARCH": "x86_64,aarch64"})
    by_config = _planned(monkeypatch, chain, config={"version": "all", "arch": "x86_64,aarch64"})
    assert by_flag["cells"] and by_flag["cells"] == by_env["cells"] == by_config["cells"]
    assert by_flag["argv"] == by_env["argv"] == by_config["argv"]   # each cell names its own version (and arch)
    versions = sorted({c.recipe.version for c in by_flag["cells"]})
    assert len(versions) >= 2 and all(f"--version={c.recipe.version}" in argv
                                       for c, argv in zip(by_flag["cells"], by_flag["argv"]))
    arches = {c.arch_name for c in by_flag["cells"]}
    assert arches == ({"x86_64", "aarch64"} if chain[-1] == "package" else {""})


def test_a_single_version_from_any_source_runs_in_process(monkeypatch):
    assert _planned(monkeypatch, ["fetch", "build", "--version", "2.16.1"])["cells"] is None
    assert _planned(monkeypatch, ["fetch", "build"], config={"version": "2.16.1", "arch": "aarch64"})["cells"] is None
    assert _planned(monkeypatch, ["doctor"], config={"version": "all"})["cells"] is None   # doctor takes no version


def test_cells_expand_versions_times_arches():
    from tflite_forge.matrix import cells, is_matrix
    from tflite_forge.settings import resolve
    settings = resolve({"version": "2.15.0,2.16.1", "arch": "armhf,aarch64"}, {}, {})
    assert is_matrix(settings)
    assert cells(settings) == [cell_of("2.15.0", "armhf"), cell_of("2.15.0", "aarch64"),
                               cell_of("2.16.1", "armhf"), cell_of("2.16.1", "aarch64")]
    assert [c.label for c in cells(settings)] == ["2.15.0/armhf", "2.15.0/aarch64", "2.16.1/armhf", "2.16.1/aarch64"]
    assert cells(settings, per_arch=False) == [cell_of("2.15.0", None), cell_of("2.16.1", None)]
    assert [c.slug for c in cells(settings, per_arch=False)] == ["tensorflow-2.15.0", "tensorflow-2.16.1"]
    one_version = resolve({"version": "2.16.1", "arch": "all"}, {}, {})
    assert is_matrix(one_version) and not is_matrix(one_version, per_arch=False)
    from tflite_forge.errors import ConfigError
    with pytest.raises(ConfigError, match="a version matrix needs --arch"):
        cells(resolve({"version": "all"}, {}, {}))


def test_cells_of_a_matrix_from_a_config_file_read_that_file_too(monkeypatch, tmp_path):
    """`invoke -f my.yaml fetch lock` with `version: all` in my.yaml: each cell is run with -f my.yaml,
    or it would lose the file's other settings (mirrors, cache, work dir)."""
    from invoke import Program

    from tflite_forge import options
    from tflite_forge.cli import ChainExecutor
    for var in options.ENV.values():
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "my.yaml"
    config.write_text("tflite_forge:\n  version: all\n  work_dir: /tmp/elsewhere\n")
    seen = {}

    def fake_run_matrix(cells, chain_argv, **kw):
        seen["argv"] = chain_argv(cells[0])
        seen["work_dir"] = kw["workspace"].work_dir
        return []

    monkeypatch.setattr("tflite_forge.matrix.run_matrix", fake_run_matrix)
    prog = Program(namespace=load_tasks(), executor_class=ChainExecutor, name="t", binary="t")
    prog.run(["t", "-f", str(config), "fetch", "lock"], exit=False)
    assert seen["argv"][3:5] == ["-f", str(config)] and seen["work_dir"] == Path("/tmp/elsewhere")
