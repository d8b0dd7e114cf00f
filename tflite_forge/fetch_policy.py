"""How downloads wait and retry: `FetchPolicy`, its defaults and the checks of the knobs that change
it (connect_timeout, read_timeout, retries: rows of options.py). Apart from download.py so that
resolving settings does not load requests and urllib3.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Mapping

from .errors import ConfigError
from .options import OPTIONS, lookup

POLICY_KNOBS = ("connect_timeout", "read_timeout", "retries")   # FetchPolicy fields that are rows of options.py
MAX_TIMEOUT = 86400.0   # a day; longer does not fit some platforms' socket timeouts and never helps
MAX_RETRIES = 100


@dataclass(frozen=True, kw_only=True)
class FetchPolicy:
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    retries: int = 5                # urllib3 retries: connect, read-before-response, RETRY_STATUSES
    backoff_factor: float = 0.5     # sleeps 0, 1, 2, 4 ... seconds between retries
    backoff_max: float = 30.0
    max_retry_after: float = 120.0  # a server asking to wait longer than this is waited on this long
    max_redirects: int = 10
    resume_attempts: int = 3        # body cut short: resume (or restart) this many times per URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "FetchPolicy":
        """Defaults, overridden by TFLITE_FORGE_CONNECT_TIMEOUT / _READ_TIMEOUT / _RETRIES."""
        environ = os.environ if environ is None else environ
        return cls.from_values({field: (lookup(field, environ=environ)[0], OPTIONS[field].spelling("env"))
                                for field in POLICY_KNOBS})

    @classmethod
    def from_values(cls, values: Mapping[str, tuple[Any, str]]) -> "FetchPolicy":
        """Defaults, overridden by the knobs given: {field: (raw value, how the user spelled it)}.

        A timeout is a finite number of seconds above 0 and at most a day (0 would mean "never
        wait", inf/nan/1e400 cannot be given to a socket); retries a whole number 0..100."""
        changes: dict[str, float | int] = {}
        for field in POLICY_KNOBS:
            value, spelling = values.get(field, (None, field))
            raw = str(value if value is not None else "").strip()
            if raw:
                changes[field] = _retries(spelling, raw) if field == "retries" else _timeout(spelling, raw)
        return replace(cls(), **changes)  # type: ignore[arg-type]


def _timeout(var: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise ConfigError(f"{var}={raw!r}: expected a number of seconds above 0 and at most {MAX_TIMEOUT:g} "
                          f"(e.g. {var}=60); unset it for the default")
    return value


def _retries(var: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_RETRIES:
        raise ConfigError(f"{var}={raw!r}: expected a whole number of retries from 0 to {MAX_RETRIES} "
                          f"(e.g. {var}=5); unset it for the default")
    return value
