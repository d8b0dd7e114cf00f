"""Download progress: a rich bar on a terminal, periodic plain lines otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, TaskID, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.progress import Progress as Bar


class Progress(Protocol):
    def note(self, message: str) -> None: ...
    def start(self, label: str, total: int | None, resumed_at: int = 0) -> None: ...
    def advance(self, n: int) -> None: ...
    def finish(self, ok: bool) -> None: ...


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


class PlainProgress:
    """Plain lines for logs, never a carriage return: one when a download starts, one per tenth of
    it (or per `min_step` bytes, whichever is more; per `min_step` when the size is unknown), one at
    the end. Small files get the first and the last line only."""

    MIN_STEP = 16 * 1024 * 1024

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, min_step: int = MIN_STEP) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.min_step = min_step
        self._label = ""
        self._total: int | None = None
        self._done = 0
        self._step = min_step
        self._next = 0
        self._t0 = 0.0

    def note(self, message: str) -> None:
        if not self.quiet:
            print(f"fetch: {message}", file=self.stream, flush=True)

    def start(self, label: str, total: int | None, resumed_at: int = 0) -> None:
        self._label, self._total, self._done, self._t0 = label, total, resumed_at, time.monotonic()
        self._step = max(total // 10, self.min_step) if total else self.min_step
        self._next = (resumed_at // self._step + 1) * self._step
        size = f" ({_size(total)})" if total else ""
        resumed = f", resuming at {_size(resumed_at)}" if resumed_at else ""
        self.note(f"downloading {label}{size}{resumed}")

    def advance(self, n: int) -> None:
        self._done += n
        if self._done < self._next or (self._total and self._done >= self._total):
            return   # the end has its own line
        self._next = (self._done // self._step + 1) * self._step
        of = f" of {_size(self._total)} ({100 * self._done // self._total}%)" if self._total else ""
        self.note(f"{self._label}: {_size(self._done)}{of}")

    def finish(self, ok: bool) -> None:
        if ok:
            secs = max(time.monotonic() - self._t0, 1e-6)
            self.note(f"{self._label}: {_size(self._done)} in {secs:.1f}s")


class RichProgress:
    """rich's transfer bar, drawn on stderr so stdout stays clean."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                       TransferSpeedColumn(), TimeRemainingColumn(), console=self.console, transient=True)
        self._task: TaskID | None = None
        self._label = ""

    def note(self, message: str) -> None:
        self.console.print(f"fetch: {message}", highlight=False)

    def start(self, label: str, total: int | None, resumed_at: int = 0) -> None:
        self._label = label
        self.bar.start()
        self._task = self.bar.add_task(label, total=total, completed=resumed_at)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self.bar.update(self._task, advance=n)

    def finish(self, ok: bool) -> None:
        if self._task is not None:
            self.bar.remove_task(self._task)
            self._task = None
        self.bar.stop()
        if ok:
            self.console.print(f"fetch: {self._label}: done", highlight=False)


def default_progress() -> Progress:
    return RichProgress() if sys.stderr.isatty() else PlainProgress()
