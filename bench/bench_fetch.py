"""Benchmark `invoke fetch` against the tools a user would compare it with, in one run.

- warm: `invoke fetch` with everything cached (it re-hashes every file) vs `sha256sum` over the
  same files. Ratio = ours / sha256sum time; target <= 1.3.
- cold: `invoke fetch` into an empty cache from a loopback HTTP server vs `curl -o` of the same
  file from the same server. Ratio = our throughput / curl's; target >= 0.8. Ours also hashes,
  fsyncs and renames into the cache; curl only writes into the page cache, so on a slow disk the
  fsync alone can miss the target: an extra row compares with `curl` followed by `sync FILE`
  (target >= 0.9, issue 10), and another with the fetcher in-process (no interpreter and invoke
  start-up).

Both run the real CLI (`python -m invoke fetch`, process start-up included) on a recipe whose
"archive" and locked "dependencies" are generated files of a few hundred MB in a temp dir.
Medians of several runs; nothing is timed in the test suite. `main()` returns the rows for
`invoke bench`; run this file directly to print them.

Fairness: the generated files are synced before anything is timed (otherwise the first runs pay
for their writeback), the runs are interleaved and rotated (each tool goes first in turn), and the
CLI runs with Python's bytecode cache (in a temp folder) as an installed tool does, even where
PYTHONDONTWRITEBYTECODE is set (tasks.py undoes invoke's own switch-off, so the warm-up run fills it
for tflite_forge and requests too). The in-process row shares its process with the loopback server,
so it is information only: the CLI against `curl` + `sync` is the like-for-like comparison.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "unit"))

MIB = 1 << 20
WARM_FILES = (192, 96, 32)  # MiB each: one "archive" and two "dependencies"
COLD_MIB = 512
RUNS = 5


def _write_random(path: Path, mib: int, seed: int) -> str:
    """Incompressible file (sha256 in counter mode); returns its sha256."""
    digest = hashlib.sha256()
    block = b"".join(hashlib.sha256(f"{seed}-{i}".encode()).digest() for i in range(MIB // 32))
    with open(path, "wb") as fh:
        for i in range(mib):
            chunk = bytes([i % 251]) + block[1:]
            fh.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _recipe(root: Path, name: str, sha: str, deps: list[tuple[str, str]]) -> Path:
    from tflite_forge.lockfile import Lock, LockedDependency, write_lock
    recipe = root / f"{name}.toml"
    recipe.write_text(
        f'[source]\nname = "tensorflow"\nversion = "0.0.1"\n'
        f'urls = ["https://github.com/bench/tensorflow/archive/v0.0.1.tar.gz"]\n'
        f'sha256 = "{sha}"\nstrip_prefix = "tensorflow-0.0.1"\n')
    write_lock(Lock(path=root / f"{name}.toml.lock", archive_sha256=sha, generated_by="bench", dependencies=tuple(
        LockedDependency(name=f"dep{i}", url=f"https://github.com/bench/dep{i}/archive/x.tar.gz", sha256=d,
                         strip_prefix=f"dep{i}-x", cmake_variable=f"DEP{i}_SOURCE_DIR", declared_in="m.cmake",
                         declared_by="tensorflow") for i, (_, d) in enumerate(deps))))
    return recipe


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFLITE_FORGE_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["TFLITE_FORGE_CACHE"] = str(cache)
    env["PYTHONPYCACHEPREFIX"] = str(cache.parent / "pycache")   # the bytecode cache an install has; not in the repo
    return env


def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def _fetch_argv(recipe: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "invoke", "fetch", f"--recipe={recipe}", *extra]


def bench_warm(root: Path) -> dict:
    from tflite_forge.cache import Cache
    cache = Cache(root / "warm-cache")
    cache.ensure_dirs()
    files = []
    for i, mib in enumerate(WARM_FILES):
        tmp = cache.partials / f"gen{i}"
        files.append(cache.install(tmp, _write_random(tmp, mib, i)))
    shas = [f.name for f in files]
    recipe = _recipe(root, "warm", shas[0], [(f"dep{i}", s) for i, s in enumerate(shas[1:])])
    argv = _fetch_argv(recipe, "--offline")
    env = _env(cache.root)
    _timed(argv, env)  # warm the page cache and Python's bytecode cache
    ours = statistics.median(_timed(argv, env) for _ in range(RUNS))
    ref = statistics.median(_timed(["sha256sum", *map(str, files)]) for _ in range(RUNS))
    total = sum(WARM_FILES)
    return {"benchmark": f"warm fetch, {len(files)} cached files ({total} MiB), vs sha256sum",
            "ours": ours, "reference": ref, "ratio": ours / ref, "target": "<= 1.3",
            "ok": ours / ref <= 1.3}


def bench_cold(root: Path) -> list[dict]:
    from faultserver import FaultServer
    served = root / "cold.bin"
    sha = _write_random(served, COLD_MIB, 99)
    recipe = _recipe(root, "cold", sha, [])
    os.sync()   # the generated file's writeback must not land on the first timed runs
    from tflite_forge.fetch import Fetcher
    from tflite_forge.progress import PlainProgress
    cli_runs, lib_runs, curl_runs, synced_runs = [], [], [], []
    with FaultServer() as srv:
        path = "/github.com/bench/tensorflow/archive/v0.0.1.tar.gz"
        srv.add(path, served)
        url = srv.url(path)
        subprocess.run(_fetch_argv(recipe, "--offline"), cwd=REPO, env=_env(root / "cold-cache-warmup"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fills the bytecode cache; fails offline

        def cli(run: int) -> None:
            cache = root / f"cold-cache-{run}"
            cli_runs.append(_timed(_fetch_argv(recipe, f"--rewrite=https://={srv.base}"), _env(cache)))
            shutil.rmtree(cache)

        def lib(run: int) -> None:
            cache = root / f"cold-lib-{run}"
            started = time.perf_counter()
            Fetcher(cache, progress=PlainProgress(quiet=True)).fetch(sha, [url], name="bench")
            lib_runs.append(time.perf_counter() - started)
            shutil.rmtree(cache)

        def curl(run: int) -> None:
            out = root / f"curl-{run}.bin"
            curl_runs.append(_timed(["curl", "-sSf", "-o", str(out), url]))
            out.unlink()

        def curl_sync(run: int) -> None:
            out = root / f"curl-sync-{run}.bin"
            synced_runs.append(_timed(["sh", "-c", 'curl -sSf -o "$1" "$2" && sync "$1"', "sh", str(out), url]))
            out.unlink()

        order = [cli, lib, curl, curl_sync]
        for run in range(RUNS):  # interleaved and rotated, so load from elsewhere and ordering hit all alike
            for step in order[run % 4:] + order[:run % 4]:
                step(run)
                os.sync()   # a deleted file's pending writeback must not slow the next tool
    rows = []
    for what, runs, ref_name, ref_runs, target in (
            ("invoke fetch (CLI, process start-up included)", cli_runs, "curl", curl_runs, 0.8),
            ("Fetcher.fetch (in-process)", lib_runs, "curl", curl_runs, 0.8),
            ("invoke fetch (CLI)", cli_runs, "curl + sync FILE (durable like ours)", synced_runs, 0.9)):
        ours, ref = statistics.median(runs), statistics.median(ref_runs)
        ratio = ref / ours  # throughput ratio: (bytes/ours) / (bytes/reference)
        rows.append({"benchmark": f"cold {what}: {COLD_MIB} MiB from 127.0.0.1, throughput vs {ref_name}",
                     "ours": ours, "reference": ref, "ratio": ratio,
                     "target": f">= {target}" if target else "(information)",
                     "ok": ratio >= target if target else True})
    return rows


def main() -> list[dict]:
    missing = [tool for tool in ("sha256sum", "curl") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"bench_fetch needs {' and '.join(missing)} on PATH as the reference")
    with tempfile.TemporaryDirectory(prefix="tflite-forge-bench-fetch-") as tmp:
        root = Path(tmp)
        return [bench_warm(root), *bench_cold(root)]


if __name__ == "__main__":
    for row in main():
        print(f"{row['benchmark']}: ours {row['ours']:.3f}s, reference {row['reference']:.3f}s, "
              f"ratio {row['ratio']:.2f} (target {row['target']}){'' if row['ok'] else '  <-- MISSED'}")
