"""How many compile jobs a build may run: cores, capped by memory. The one place for this rule.

A TensorFlow Lite translation unit can take close to 2 GiB in cc1plus; too high a `-j`
gets cc1plus OOM-killed (TensorFlow Lite's larger kernels need up to ~2 GiB per g++). So jobs = min(cores, memory // 2 GiB), at least 1.
`--jobs N` (Settings.jobs) overrides. matrix (cells at once x jobs per cell) and doctor (the
memory row) use `jobs_by_memory` / `default_jobs` / `host_memory_bytes` from here.
"""

from __future__ import annotations

import os

GIB = 1024 ** 3
MEMORY_PER_JOB = 2 * GIB


def host_memory_bytes() -> int:
    """Physical memory of this machine (8 GiB when the OS will not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # pragma: no cover
        return 8 * GIB


def jobs_by_memory(memory_bytes: int, *, per_job: int = MEMORY_PER_JOB) -> int:
    """Compile jobs this much memory carries at MEMORY_PER_JOB each, at least 1."""
    return max(1, int(memory_bytes // per_job))


def default_jobs(cpus: int, memory_bytes: int, *, per_job: int = MEMORY_PER_JOB) -> int:
    """min(cores, jobs_by_memory), at least 1: the total compile jobs a host can run at once."""
    return max(1, min(max(cpus, 1), jobs_by_memory(memory_bytes, per_job=per_job)))


def choose_jobs(requested: int | None, cpus: int, memory_bytes: int) -> int:
    """--jobs wins; otherwise default_jobs."""
    if requested:
        return requested
    return default_jobs(cpus, memory_bytes)
