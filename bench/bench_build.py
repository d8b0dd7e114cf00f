"""Incremental builds on the miniature TensorFlow, as ratios measured in the same run.

- no-op: a second `invoke build` with nothing changed only checks the stamp.
  ratio = cold `invoke build` wall time / no-op wall time (the no-op's own seconds are
  reported too; the target is <= 10 s).
- ccache: after `invoke clean --build` the compile step hits the ccache volume.
  ratio = cold compile step / compile step after clean (target >= 5).
- switched patch set: the same cell with one patch set less (soname off) is a new input, so it
  gets a fresh build tree; ccache keeps that rebuild fast. ratio = cold build / switched build.

Every figure is the median of RUNS cycles of: drop this bench's ccache volume, clean, cold
build, no-op build, clean, rebuild. Needs an engine (docker by default; TFLITE_FORGE_ENGINE).
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, timed_invoke  # noqa: E402  (bench/ is not a package)

RUNS = int(os.environ.get("BENCH_BUILD_RUNS", "3"))
ARCH = os.environ.get("BENCH_BUILD_ARCH", "aarch64")




def main() -> list[dict]:
    sys.path.insert(0, str(REPO))
    from tflite_forge import build_run
    from tflite_forge import container as ct
    from tflite_forge import engine as eng
    from tflite_forge.loopback import serve_directory
    from tflite_forge.miniature import write_release
    from tflite_forge.recipe import load_recipe

    engine = eng.resolve_engine(os.environ.get("TFLITE_FORGE_ENGINE") or None)
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        root = Path(tmp)
        release = write_release(root / "release")
        recipe = Path(release.recipe_path)
        label = load_recipe(recipe).label
        env = {"TFLITE_FORGE_CACHE": str(root / "cache"), "TFLITE_FORGE_WORK_DIR": str(root / "work"),
               "TFLITE_FORGE_ENGINE": engine.name}
        log = root / "work" / "logs" / f"build-{label}-{ARCH}.log"
        with serve_directory(release.www_root) as base_url:
            common = [f"--recipe={recipe}", f"--rewrite=https://={base_url}"]
            timed_invoke(["lock", *common], env)
            timed_invoke(["fetch", *common], env)
            timed_invoke(["build", f"--arch={ARCH}", *common], env)  # builder image and working copies ready
            switched_recipe = root / "switched" / recipe.name
            switched_recipe.parent.mkdir()
            text, switched_sets = re.subn(r'^patch_sets = \[[^\]]*\]', 'patch_sets = ["o3", "drop-mfpu-neon"]',
                                          recipe.read_text(), flags=re.M)
            if switched_sets != 1:
                raise RuntimeError(f"{recipe}: no patch_sets line to switch")
            switched_recipe.write_text(text)
            Path(f"{switched_recipe}.lock").write_text(Path(f"{recipe}.lock").read_text())
            switched_args = [f"--recipe={switched_recipe}", f"--rewrite=https://={base_url}"]
            cold, noop, cold_compile, warm_compile, warm, switched = [], [], [], [], [], []
            for _ in range(RUNS):
                volumes = ct.list_volumes(engine, (("io.tflite-forge.kind", "ccache"), ("io.tflite-forge.arch", ARCH),
                                                   ("io.tflite-forge.version", release.version)))
                timed_invoke(["clean", "--build"], env)
                ct.remove_volumes(engine, volumes)
                cold.append(timed_invoke(["build", f"--arch={ARCH}", *common], env))
                cold_compile.append(build_run.step_times(log)["build"])
                noop.append(timed_invoke(["build", f"--arch={ARCH}", *common], env))
                timed_invoke(["clean", "--build"], env)
                warm.append(timed_invoke(["build", f"--arch={ARCH}", *common], env))
                warm_compile.append(build_run.step_times(log)["build"])
                switched.append(timed_invoke(["build", f"--arch={ARCH}", *switched_args], env))
                if "step build took" not in log.read_text():
                    raise RuntimeError("the switched patch set did not rebuild")
    med = statistics.median
    return [
        {"benchmark": f"build no-op ({ARCH}, {engine.name})", "ours": f"{med(noop):.2f}s",
         "reference": f"cold build {med(cold):.2f}s", "ratio": round(med(cold) / med(noop), 1),
         "target": "no-op <= 10 s"},
        {"benchmark": f"compile after clean, ccache ({ARCH}, {engine.name})", "ours": f"{med(warm_compile):.2f}s",
         "reference": f"cold compile {med(cold_compile):.2f}s", "ratio": round(med(cold_compile) / med(warm_compile), 1),
         "target": ">= 5x", "note": f"whole build after clean {med(warm):.2f}s vs cold {med(cold):.2f}s"},
        {"benchmark": f"rebuild after switching one patch set ({ARCH}, {engine.name})", "ours": f"{med(switched):.2f}s",
         "reference": f"cold build {med(cold):.2f}s", "ratio": round(med(cold) / med(switched), 1),
         "target": "> 1 (fresh tree, warm ccache)"},
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
