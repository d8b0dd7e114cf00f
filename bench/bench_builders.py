"""The miniature matrix on one builder against the same matrix on two, as a ratio of one run.

Cells: the miniature for x86_64, aarch64, armhf and riscv64 (`invoke fetch build package`), each
run in a fresh work dir so every cell really builds (the ccache volumes of each builder are warm,
as they are on a team's builders after the first day). Builders: the second dockerd ci/setup-host.sh
starts and this host's dockerd, both addressed as builders (so both ship trees the same way).
ratio = wall time on one builder / wall time on two (target >= 1.3 here; on two machines with their
own cores it approaches 2 for a matrix of slow cells — on this host both daemons share the same two
cores, so what is measured is mostly the overlap of shipping, image checks and packaging).

Medians of RUNS alternating pairs. Needs both daemons (BENCH_BUILDERS="A B" to name others).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, timed_invoke  # noqa: E402  (bench/ is not a package)

RUNS = int(os.environ.get("BENCH_BUILDERS_RUNS", "3"))
BUILDERS = os.environ.get("BENCH_BUILDERS", "unix:///run/tflite-forge-docker2.sock unix:///var/run/docker.sock").split()
ARCHES = "x86_64,aarch64,armhf,riscv64"


def _matrix(args: list[str], env: dict) -> float:
    return timed_invoke(["fetch", "build", "package", f"--arch={ARCHES}", *args], env)


def main() -> list[dict]:
    sys.path.insert(0, str(REPO))
    from tflite_forge import engine as eng
    from tflite_forge.builders import parse_builder
    from tflite_forge.loopback import serve_directory
    from tflite_forge.miniature import write_release

    for text in BUILDERS:
        eng.resolve_builder(parse_builder(text))   # one line if a builder is not there
    with tempfile.TemporaryDirectory(prefix="bench-builders-") as tmp:
        root = Path(tmp)
        release = write_release(root / "release")
        with serve_directory(root / "release" / "www") as base:
            common = [f"--recipe={release.recipe_path}", f"--rewrite=https://={base}"]
            env = {"TFLITE_FORGE_CACHE": str(root / "cache")}
            subprocess.run([sys.executable, "-m", "invoke", "lock", *common], cwd=REPO, env={**os.environ, **env},
                           check=True, capture_output=True)
            one, two = [], []

            def run(times: list[float], builders: list[str], n: int) -> None:
                tag = f"{len(builders)}-{n}"
                times.append(_matrix([*common, *(f"--builder={b}" for b in builders)],
                                     {**env, "TFLITE_FORGE_WORK_DIR": str(root / f"work-{tag}"),
                                      "TFLITE_FORGE_DIST_DIR": str(root / f"dist-{tag}")}))

            run([], BUILDERS, -1)      # warm-up: images loaded, trees of the cache unpacked, ccache warm
            run([], BUILDERS[:1], -1)
            for n in range(RUNS):
                for times, builders in ((one, BUILDERS[:1]), (two, BUILDERS))[:: 1 if n % 2 == 0 else -1]:
                    run(times, builders, n)
    ours, ref = statistics.median(two), statistics.median(one)
    return [{"benchmark": f"miniature matrix ({ARCHES}) on 2 builders vs 1 (fetch build package)",
             "ours": ours, "reference": ref, "ratio": ref / ours, "target": ">= 1.3", "ok": ref / ours >= 1.3}]


if __name__ == "__main__":
    for row in main():
        print(f"{row['benchmark']}: 2 builders {row['ours']:.1f}s, 1 builder {row['reference']:.1f}s, "
              f"speed-up {row['ratio']:.2f} (target {row['target']}){'' if row['ok'] else '  <-- MISSED'}")
