"""`invoke selftest`: the whole pipeline on the bundled miniature TensorFlow, before a real build.

The miniature release (tflite_forge.miniature) is written to a scratch folder and served from a
loopback HTTP server; `invoke lock` reads its configure-time downloads through a rewrite to that
server, then the usual chain — fetch, build, package, test — runs for the host arch and aarch64 as
a matrix (live board, one process per cell). Nothing touches the network beyond 127.0.0.1, and
the user's own cache and dist/ are left alone: everything lives under <work_dir>/selftest/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .arches import host_arch, resolve_arch
from .errors import SelftestError
from .loopback import serve_directory
from .matrix import run_matrix
from .miniature import write_release
from .recipe import load_recipe
from .settings import Settings
from .workspace import Cell, Workspace


def selftest_arches() -> list[str]:
    host = host_arch().name
    return [host] if host == "aarch64" else [host, "aarch64"]


def run_selftest(settings: Settings, *, keep: bool = False) -> None:
    root = (Path(settings.work_dir) / "selftest").resolve()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    release = write_release(root / "release")
    scratch = Workspace(work_dir=root / "work", dist_dir=root / "dist", cache_dir=root / "cache")
    env_overrides = {
        "TFLITE_FORGE_CACHE": str(scratch.cache_dir),
        "TFLITE_FORGE_WORK_DIR": str(scratch.work_dir),
        "TFLITE_FORGE_DIST_DIR": str(scratch.dist_dir),
    }
    with serve_directory(release.www_root) as base:
        rewrite = f"--rewrite=https://={base}"
        common_env = dict(os.environ, **env_overrides)
        for name in ("TFLITE_FORGE_MIRRORS", "TFLITE_FORGE_REWRITES", "TFLITE_FORGE_OFFLINE", "TFLITE_FORGE_VERSION",
                     "TFLITE_FORGE_RECIPE", "TFLITE_FORGE_ARCH"):
            common_env.pop(name, None)
        lock = subprocess.run([sys.executable, "-m", "invoke", "lock", f"--recipe={release.recipe_path}", rewrite],
                              env=common_env, capture_output=True, text=True)
        if lock.returncode != 0:
            last = ((lock.stderr or lock.stdout).strip().splitlines() or ["no output"])[-1]
            raise SelftestError(f"selftest: invoke lock of the miniature failed: {last}")

        engine = [f"--engine={settings.engine}"] if settings.engine else []

        def cell_argv(cell: Cell) -> list[str]:
            # Shared flags reach the whole chain (cli.ChainExecutor) wherever they stand.
            return [sys.executable, "-m", "invoke", "fetch", f"--recipe={release.recipe_path}", rewrite,
                    "build", *engine, "package", "test", f"--arch={cell.arch_name}"]

        recipe = load_recipe(release.recipe_path)
        cells = [Cell(recipe=recipe, arch=resolve_arch(a)) for a in selftest_arches()]
        states = run_matrix(cells, cell_argv, parallel=1, resume=False, jobs=settings.jobs,
                            workspace=scratch, packages=True, env=common_env)
    failed = [s for s in states if s.status != "ok"]
    if failed:
        raise SelftestError(f"selftest failed for {', '.join(s.cell.label for s in failed)}; "
                            f"see {failed[0].log} (run `invoke doctor` for host problems)")
    print(f"selftest: ok — the miniature TensorFlow was fetched, built, packaged and smoke-tested for "
          f"{', '.join(s.cell.arch_name for s in states)}; artifacts in {scratch.dist_dir}")
    if not keep:
        shutil.rmtree(root / "release", ignore_errors=True)
