"""The version x arch matrix: `invoke fetch build package --arch all --version 2.16.1,2.17.0`.

Each cell runs the same task chain for one (version, arch) in its own `invoke` process
(isolation: one failing cell cannot take the others down; each has its own log), up to
`--parallel N` at once within the memory budget (jobs.py: about 2 GiB per compile job). A live
board (rich) shows each cell's stage and elapsed time; a summary table closes the run.
Cells report their stage through a status file (TFLITE_FORGE_STATUS_FILE), written by
`cli.forge_task` as each task starts.

With builders (`--builder`, repeatable) each builder runs one cell at a time: a cell goes to the
next free builder, its process gets that one builder. When a cell fails and its builder no longer
answers (a dead daemon, a lost host), the builder is dropped and the cell runs again on another; a
cell that failed on a healthy builder failed for its own reasons and is not retried. Nothing of a
cell lands in dist/ unless its package step verified it (package.py writes only verified tarballs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from rich.live import Live

from . import __version__
from . import engine as eng
from .arches import host_arch, resolve_arches
from .builders import parse_builder
from .errors import ConfigError
from .jobs import default_jobs, host_memory_bytes
from .recipe import select_recipes
from .resources import CHECKOUT as PROJECT_ROOT
from .settings import Settings
from .tables import Styled, console_for, print_table, rich_table
from .workspace import Cell, Workspace


def _many(value: str | None) -> bool:
    return value is not None and (value == "all" or "," in value)


def is_matrix(settings: Settings, *, per_arch: bool = True) -> bool:
    """Do the settings name more than one cell ('all' or a comma list of versions, or of arches when
    the work depends on the arch)? Settings are resolved, so a flag, a variable and an invoke.yaml
    key that say the same thing make the same matrix."""
    return _many(settings.version) or (per_arch and _many(settings.arch))


def cells(settings: Settings, *, per_arch: bool = True) -> list[Cell]:
    """The cells the settings select: every selected recipe on every selected arch.
    `per_arch=False` (a chain whose work is the same for every arch: fetch, lock): one cell per
    recipe, with no arch. A version matrix of per-arch work needs an arch: it is not guessed."""
    recipes = select_recipes(version=settings.version, recipe=settings.recipe)
    arches: list[Any]
    if not per_arch:
        arches = [None]
    elif settings.arch:
        arches = list(resolve_arches(settings.arch))
    elif is_matrix(settings, per_arch=per_arch):
        raise ConfigError("a version matrix needs --arch (a name, a comma list, or 'all')")
    else:
        arches = [host_arch()]
    return [Cell(recipe=r, arch=a) for r in recipes for a in arches]


@dataclass
class CellState:
    cell: Cell
    log: Path
    status: str = "queued"   # queued | running | ok | failed | skipped
    stage: str = "-"
    started: float | None = None
    ended: float | None = None
    returncode: int | None = None
    last_line: str = ""
    builder: str = ""        # the builder it runs (or ran) on; "" = this host's engine
    note: str = ""           # e.g. why it was retried

    def elapsed(self, now: float | None = None) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or now or time.monotonic()) - self.started


def plan_parallelism(cells: int, requested: int | None, cpus: int | None = None,
                     mem: int | None = None) -> tuple[int, int]:
    """(cells at once, compile jobs per cell): never more jobs in total than memory allows."""
    cpus = cpus or os.cpu_count() or 1
    job_budget = default_jobs(cpus, mem if mem is not None else host_memory_bytes())
    parallel = max(1, min(requested or 1, cells, job_budget))
    return parallel, max(1, job_budget // parallel)


def inputs_digest(cell: Cell, chain_argv: Sequence[str]) -> str:
    """What a packaged cell was made from: recipe, lock, patch sets, toolchains, tool version, chain."""
    recipe = cell.recipe
    h = hashlib.sha256()
    # The shared compile cache never changes what is built: another cache URL is the same inputs.
    chain = [a for a in chain_argv if not a.startswith("--ccache-remote")]
    h.update(f"tflite-forge {__version__}\n{cell.arch_name}\n{' '.join(chain)}\n".encode())
    paths = [recipe.path, recipe.lock_path]
    # The tool's own code counts too: a fix in packaging must not be skipped by --resume.
    for folder in ("patches", "toolchains", "tflite_forge"):
        base = PROJECT_ROOT / folder
        if base.is_dir():
            paths += sorted(p for p in base.rglob("*")
                            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for p in paths:
        h.update(str(p.name).encode())
        h.update(p.read_bytes() if p.is_file() else b"<absent>")
    return h.hexdigest()


def marker_path(ws: Workspace, cell: Cell) -> Path:
    return ws.cell_marker(cell.slug)


def already_done(ws: Workspace, cell: Cell, digest: str) -> bool:
    marker = marker_path(ws, cell)
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return data.get("inputs") == digest and all(ws.release(f).is_file() for f in data.get("files", []))


def record_done(ws: Workspace, cell: Cell, digest: str) -> None:
    marker = marker_path(ws, cell)
    marker.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p.name for p in ws.dist_dir.glob(f"*-{cell.recipe.version}-linux-{cell.arch_name}*.tar.gz"))
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"inputs": digest, "files": files}, indent=1))
    os.replace(tmp, marker)


def run_cell(state: CellState, argv: list[str], env: dict[str, str], cwd: Path) -> None:
    status_file = state.log.with_suffix(".stage")
    env = dict(env, TFLITE_FORGE_STATUS_FILE=str(status_file))
    state.status, state.started = "running", time.monotonic()
    state.log.parent.mkdir(parents=True, exist_ok=True)
    with open(state.log, "wb") as log:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        while proc.poll() is None:
            try:
                state.stage = status_file.read_text().strip() or state.stage
            except OSError:
                pass
            time.sleep(0.3)
    try:
        state.stage = status_file.read_text().strip() or state.stage  # the last stage, however brief
    except OSError:
        pass
    state.returncode = proc.returncode
    state.ended = time.monotonic()
    state.status = "ok" if proc.returncode == 0 else "failed"
    try:
        lines = [line for line in state.log.read_text(errors="replace").splitlines() if line.strip()]
        state.last_line = lines[-1][:160] if lines else ""
    except OSError:
        pass


class Board:
    """A rich Live table on a TTY; one plain line per state change otherwise."""

    def __init__(self, states: list[CellState], stream=None) -> None:
        self.states = states
        self.console = console_for(stream or sys.stderr)
        self._seen: dict[Cell, tuple[str, str, str, str]] = {}

    def table(self):
        builders = any(s.builder for s in self.states)
        colour = {"ok": "green", "failed": "red", "running": "cyan", "skipped": "dim", "queued": "dim"}
        rows = [(s.cell.label, s.stage, Styled(s.status, colour[s.status]), f"{s.elapsed():6.1f}s",
                 *((s.builder + (f" ({s.note})" if s.note else ""),) if builders else ())) for s in self.states]
        return rich_table("tflite-forge matrix", ("cell", "stage", "status", "elapsed") + (("builder",) if builders else ()),
                          rows)

    def plain_updates(self) -> None:
        for s in self.states:
            key = (s.status, s.stage, s.builder, s.note)
            if self._seen.get(s.cell) != key:
                self._seen[s.cell] = key
                where = f" on {s.builder}" if s.builder else ""
                note = f" [{s.note}]" if s.note else ""
                self.console.print(f"matrix: {s.cell.label}: {s.status} ({s.stage}){where} {s.elapsed():.1f}s{note}",
                                   highlight=False, markup=False, soft_wrap=True)   # one line per change, as written

    def run(self, work: Callable[[], None]) -> None:
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        if self.console.is_terminal:
            with Live(self.table(), console=self.console, refresh_per_second=4) as live:
                while worker.is_alive():
                    live.update(self.table())
                    worker.join(0.25)
                live.update(self.table())
        else:
            while worker.is_alive():
                self.plain_updates()
                worker.join(0.5)
            self.plain_updates()

    def summary(self) -> None:
        builders = any(s.builder for s in self.states)
        rows = []
        for s in self.states:
            detail = str(s.log) if s.status != "failed" else f"{s.log}: {s.last_line}"
            where = (s.builder + (f" ({s.note})" if s.note else ""),) if builders else ()
            rows.append((s.cell.label, s.status, f"{s.elapsed():.1f}s", *where, detail))
        print_table(self.console, "matrix summary",
                    ("cell", "result", "time") + (("builder",) if builders else ()) + ("log / last line",), rows)


def run_matrix(cells: list[Cell], chain_argv: Callable[..., list[str]], *, parallel: int | None,
               resume: bool, jobs: int | None, workspace: Workspace,
               packages: bool, stream=None, env: dict[str, str] | None = None,
               cwd: Path | None = None, builders: Sequence[str] = ()) -> list[CellState]:
    """Run every cell; returns their final states (the caller turns failures into an exit code).
    `chain_argv(cell)` is a cell's command; with builders, `chain_argv(cell, builder=B)` runs it on B."""
    if not cells:
        raise ConfigError("the matrix is empty: give --version and --arch values")
    at_once, jobs_per_cell = plan_parallelism(len(cells), parallel)
    if jobs:
        jobs_per_cell = jobs
    log_dir = workspace.matrix_logs
    states = [CellState(cell=c, log=log_dir / f"{c.slug}.log") for c in cells]
    digests: dict[Cell, str] = {}
    for s in states:
        digests[s.cell] = inputs_digest(s.cell, chain_argv(s.cell))
        if resume and packages and already_done(workspace, s.cell, digests[s.cell]):
            s.status, s.stage = "skipped", "packaged from identical inputs"
    env = dict(os.environ if env is None else env, TFLITE_FORGE_JOBS=str(jobs_per_cell))
    env.pop("TFLITE_FORGE_STATUS_FILE", None)
    if builders:
        env.pop("TFLITE_FORGE_BUILDERS", None)   # each cell gets its one builder as a flag
        if not jobs:
            env.pop("TFLITE_FORGE_JOBS")          # ... and its jobs from that builder's cores and memory
        board = Board(states, stream=stream)
        board.run(lambda: _run_on_builders(states, builders, chain_argv, env, Path(cwd or os.getcwd()),
                                           lambda s: record_done(workspace, s.cell, digests[s.cell]) if packages else None))
        board.summary()
        return states

    def work() -> None:
        pending = [s for s in states if s.status == "queued"]
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    s = pending.pop(0)
                run_cell(s, chain_argv(s.cell), env, Path(cwd or os.getcwd()))
                if s.status == "ok" and packages:
                    record_done(workspace, s.cell, digests[s.cell])

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(at_once)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    board = Board(states, stream=stream)
    board.run(work)
    board.summary()
    return states


def _run_on_builders(states: list[CellState], builders: Sequence[str], chain_argv: Callable[..., list[str]],
                     env: dict[str, str], cwd: Path, done: Callable[[CellState], None]) -> None:
    """One worker per builder, one cell at a time each; a cell whose builder died goes back in the queue."""
    queue = [s for s in states if s.status == "queued"]
    alive = list(builders)
    running = 0
    cond = threading.Condition()

    def worker(builder: str) -> None:
        nonlocal running
        while True:
            with cond:
                while not queue and running and builder in alive:
                    cond.wait()      # a running cell may yet come back if its builder dies
                if not queue or builder not in alive:
                    return
                s = queue.pop(0)
                running += 1
                s.builder, s.stage = builder, "-"
            run_cell(s, chain_argv(s.cell, builder=builder), env, cwd)
            lost = s.status == "failed" and not builder_answers(builder)
            with cond:
                running -= 1
                if lost:
                    alive.remove(builder)
                    if alive:
                        with contextlib.suppress(OSError):   # the lost attempt's log stays beside the retry's
                            os.replace(s.log, s.log.with_name(f"{s.log.stem}.lost-on-builder-{len(builders) - len(alive)}.log"))
                        s.note = f"retried: {builder} stopped answering"
                        s.status, s.started, s.ended, s.returncode = "queued", None, None, None
                        queue.append(s)
                    else:
                        s.last_line = f"builder {builder} stopped answering, and no other builder is left"
                elif s.status == "ok":
                    done(s)
                cond.notify_all()

    threads = [threading.Thread(target=worker, args=(b,), daemon=True) for b in builders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in states:
        if s.status == "queued":        # every builder died before it
            s.status, s.last_line = "failed", "no builder answers any more"


def builder_answers(builder: str) -> bool:
    """Whether the daemon behind a --builder endpoint still answers."""
    return eng.builder_answers(eng.builder_config(parse_builder(builder)))

