"""What the benchmarks share: the repository root and a timed `invoke` run (not a benchmark itself:
run_all.py runs bench_*.py only)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed_invoke(args: list[str], env: dict) -> float:
    """Wall seconds of `python -m invoke ARGS` from the repository; a failure is one RuntimeError."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"invoke {' '.join(args)} failed: {(proc.stdout + proc.stderr).strip()[-600:]}")
    return time.monotonic() - started
