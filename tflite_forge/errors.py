"""User-facing errors.

Every failure a user can cause is a `ForgeError` subclass with its own exit
code. Inner code raises; only the task layer (`tflite_forge.cli`) turns an
error into one line on stderr and a non-zero exit, without a traceback.
Messages say what was wrong *and* how to fix it, in one line.
"""

from __future__ import annotations


class ForgeError(Exception):
    """Base class: a problem the user can fix. Never shown with a traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # one line, always
        return " ".join(self.message.split("\n"))


class ConfigError(ForgeError):
    """Bad option value: unknown arch, engine, backend, conflicting flags."""

    exit_code = 2


class RecipeError(ForgeError):
    """A recipe, lock or patch-set file is malformed or missing."""

    exit_code = 3


class FetchError(ForgeError):
    """A download failed after retries, or every source was exhausted."""

    exit_code = 4


class ChecksumError(FetchError):
    """Bytes arrived but their sha256 is not the pinned one."""

    exit_code = 5


class OfflineError(FetchError):
    """--offline was given and something is not in the cache."""

    exit_code = 6


class UnpackError(ForgeError):
    """An archive is hostile or does not have the layout the recipe promises."""

    exit_code = 7


class LockError(ForgeError):
    """Dependency lock generation or use failed."""

    exit_code = 8


class PatchError(ForgeError):
    """A patch set does not apply: drift, bad schema, missing file."""

    exit_code = 9


class EngineError(ForgeError):
    """No usable container engine, or the engine refused an operation."""

    exit_code = 10


class BuildError(ForgeError):
    """The build inside the container failed."""

    exit_code = 11


class PackageError(ForgeError):
    """Packaging, verification or smoke testing failed."""

    exit_code = 12


class DiskSpaceError(ForgeError):
    """Not enough free disk space for the next step."""

    exit_code = 13


class SelftestError(ForgeError):
    """`invoke selftest` found the host not ready for a real build."""

    exit_code = 14


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while something was being written: `note` says truthfully what was kept (a partial
    download that the next run resumes from) or that nothing was. Still a KeyboardInterrupt, so
    every cleanup that catches BaseException runs; the task layer prints the note."""

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note
