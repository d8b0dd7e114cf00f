"""`invoke bench`: run every bench/bench_*.py and print one table of ratios.

Each benchmark module has `main() -> list[dict]`: one row per measurement, each with at least
`benchmark` and `ratio` (ours vs a reference measured in the same run, medians of several
runs) and usually `ours`, `reference`, `target`. Speed targets live here, never in timed tests.
A benchmark that crashes becomes a row with ratio "error" (the others still run), and then
`main` / `invoke bench` fail with one line naming it.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:   # `python bench/run_all.py` from anywhere
    sys.path.insert(0, str(BENCH_DIR.parent))

from tflite_forge.errors import ForgeError  # noqa: E402  (needs the path above)
from tflite_forge.tables import console_for, print_table  # noqa: E402


def discover(only: list[str] | None = None, bench_dir: Path = BENCH_DIR) -> list[Path]:
    scripts = sorted(Path(bench_dir).glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if any(o in s.stem for o in only)]
    return scripts


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"tflite_forge_bench.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def run(only: list[str] | None = None, stream=None, bench_dir: Path = BENCH_DIR) -> list[dict]:
    """Run the benchmarks, print the table, return its rows (errored ones included)."""
    console = console_for(stream)
    rows: list[dict] = []
    for script in discover(only, bench_dir):
        started = time.monotonic()
        console.print(f"bench: running {script.name} ...", highlight=False, markup=False, soft_wrap=True)
        try:
            produced = load(script).main()
        except Exception as err:  # one broken benchmark must not hide the others
            produced = [{"benchmark": script.stem, "ratio": "error", "note": f"{type(err).__name__}: {err}"}]
        for row in produced:
            rows.append({"script": script.stem, **row})
        console.print(f"bench: {script.name} done in {time.monotonic() - started:.1f}s", highlight=False, markup=False,
                      soft_wrap=True)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    title = "tflite-forge benchmarks (ratios against a reference measured in the same run)"
    print_table(console, title, columns, [[_fmt(row.get(col, "")) for col in columns] for row in rows])
    return rows


def errored(rows: list[dict]) -> list[dict]:
    return [row for row in rows if row.get("ratio") == "error"]


def check(rows: list[dict]) -> None:
    """Fail (ForgeError, one line) when any benchmark crashed: its row alone must not pass."""
    bad = errored(rows)
    if bad:
        names = "; ".join(f"{row.get('script', row.get('benchmark'))} ({row.get('note', 'no message')})" for row in bad)
        raise ForgeError(f"{len(bad)} benchmark(s) crashed: {names}; fix them (run `python bench/<name>.py` for "
                         "the traceback) before reading the table")


def main(only: list[str] | None = None, stream=None, bench_dir: Path = BENCH_DIR) -> list[dict]:
    """`invoke bench`: run, print, and fail when a benchmark crashed."""
    rows = run(only, stream=stream, bench_dir=bench_dir)
    check(rows)
    return rows


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


if __name__ == "__main__":
    try:
        main(sys.argv[1:] or None)
    except ForgeError as err:
        print(f"tflite-forge: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
