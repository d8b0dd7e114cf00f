"""bench/run_all.py: a crashing benchmark is a row with ratio "error" AND a failing run."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

from tflite_forge.errors import ForgeError

ROOT = Path(__file__).resolve().parents[2]


def runner():
    spec = importlib.util.spec_from_file_location("bench_run_all_under_test", ROOT / "bench" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_benches(folder: Path, crash: bool) -> Path:
    folder.mkdir()
    (folder / "bench_fine.py").write_text('def main():\n    return [{"benchmark": "fine", "ratio": 0.5}]\n')
    body = 'raise RuntimeError("disk on fire")' if crash else 'return [{"benchmark": "other", "ratio": 1.0}]'
    (folder / "bench_boom.py").write_text(f"def main():\n    {body}\n")
    return folder


def test_a_crashing_benchmark_fails_the_run_after_the_others_ran(tmp_path):
    run_all = runner()
    out = io.StringIO()
    with pytest.raises(ForgeError) as err:
        run_all.main(stream=out, bench_dir=write_benches(tmp_path / "b", crash=True))
    assert str(err.value).startswith("1 benchmark(s) crashed: bench_boom (RuntimeError: disk on fire)")
    assert type(err.value) is ForgeError and err.value.exit_code != 0
    assert "bench_fine.py done" in out.getvalue()      # the good one still ran and is in the table
    rows = run_all.run(stream=io.StringIO(), bench_dir=tmp_path / "b")
    assert [(r["script"], r["ratio"]) for r in rows] == [("bench_boom", "error"), ("bench_fine", 0.5)]


def test_all_benchmarks_fine_returns_the_rows(tmp_path):
    out = io.StringIO()
    rows = runner().main(stream=out, bench_dir=write_benches(tmp_path / "b", crash=False))
    assert [r["ratio"] for r in rows] == [1.0, 0.5]
    # Not a terminal: the title, then one `col=value | ...` line per row (the format every table shares).
    lines = out.getvalue().splitlines()
    assert lines[-3:] == ["tflite-forge benchmarks (ratios against a reference measured in the same run)",
                          "script=bench_boom | benchmark=other | ratio=1", "script=bench_fine | benchmark=fine | ratio=0.5"]
