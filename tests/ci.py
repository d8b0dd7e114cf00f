"""One rule for missing test prerequisites: skip on a developer machine, FAIL under CI.

CI must never pass by skipping the real work (engines, qemu, cross compilers, tflite-runtime).
"""

from __future__ import annotations

import os
import shutil
import signal

import pytest

ON_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(message: str) -> None:
    """Fail under CI=true, skip elsewhere; `message` says what is missing and how to get it."""
    if ON_CI:
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        unavailable(f"missing {', '.join(missing)}: run ci/setup-host.sh")


def ctrl_c_default() -> None:
    """preexec_fn for a child a test sends SIGINT: a runner started in the background by a
    non-interactive shell ignores SIGINT, the child would inherit that and Python would then raise
    no KeyboardInterrupt. A user's Ctrl-C meets the default disposition, so the test sets it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
