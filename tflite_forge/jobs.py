"""How many compile jobs a build may run: cores, capped by memory.

A TensorFlow Lite translation unit can take close to 2 GiB in cc1plus; too high a `-j`
gets cc1plus OOM-killed (facts §5). So jobs = min(cores, memory // 2 GiB), at least 1.
`--jobs N` (Settings.jobs) overrides.
"""

from __future__ import annotations

GIB = 1024 ** 3
MEMORY_PER_JOB = 2 * GIB


def default_jobs(cpus: int, memory_bytes: int, *, per_job: int = MEMORY_PER_JOB) -> int:
    by_memory = memory_bytes // per_job
    return max(1, min(max(cpus, 1), by_memory))


def choose_jobs(requested: int | None, cpus: int, memory_bytes: int) -> int:
    """--jobs wins; otherwise default_jobs."""
    if requested:
        return requested
    return default_jobs(cpus, memory_bytes)

