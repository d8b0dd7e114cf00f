"""The package's habits, enforced by the suite: ruff, mypy and the layers contract (import-linter,
`[tool.importlinter]` in pyproject.toml). Each runs on the checkout as a developer would run it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_ruff_finds_nothing_in_the_package_tasks_tests_and_bench():
    res = run(sys.executable, "-m", "ruff", "check", "--no-cache", "tflite_forge", "tasks.py", "tests", "bench")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_finds_nothing_in_the_package_and_tasks():
    res = run(sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_import_layers_hold():
    res = run(sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
              "--no-cache")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout, res.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The contract bites: a utility that imports the pipeline (a new cycle) fails it."""
    shutil.copytree(ROOT / "tflite_forge", tmp_path / "tflite_forge", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    fsutil = tmp_path / "tflite_forge" / "fsutil.py"
    fsutil.write_text(fsutil.read_text() + "\nfrom . import pipeline  # noqa: E402,F401\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    res = run(sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
              "--no-cache", cwd=tmp_path, env=env)
    assert res.returncode != 0, res.stdout
    assert "tflite_forge.fsutil -> tflite_forge.pipeline" in res.stdout, res.stdout


def test_architecture_md_draws_the_layers_of_the_contract():
    """ARCHITECTURE.md's layer picture names every module of the contract, layer by layer, in order."""
    import re
    import tomllib

    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    text = (ROOT / "ARCHITECTURE.md").read_text()
    picture = text.split("## Layers", 1)[1].split("```", 2)[1].splitlines()
    where: dict[str, int] = {}
    for number, line in enumerate(picture):
        for word in re.findall(r"[a-z_]+", line):
            where.setdefault(word, number)
    previous_last = -1
    for layer in layers:
        modules = [m.strip() for m in re.split(r"[|:]", layer)]
        missing = [m for m in modules if m not in where]
        assert not missing, f"ARCHITECTURE.md's layer picture lacks {missing}"
        lines = [where[m] for m in modules]
        assert min(lines) > previous_last, f"{modules} are drawn above the layer over them"
        previous_last = max(lines)
    modules = {p.stem for p in (ROOT / "tflite_forge").glob("*.py") if p.stem != "__init__"} | {"miniature"}
    contract = {m.strip() for layer in layers for m in re.split(r"[|:]", layer)}
    assert contract == modules, f"modules outside the contract: {sorted(modules - contract)}"
