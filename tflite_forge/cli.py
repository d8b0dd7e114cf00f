"""The seam between invoke and the package.

- `forge_task`: invoke's @task, plus the error contract: a `ForgeError` becomes one
  line `tflite-forge: <message>` on stderr and its exit code, never a traceback.
- `ChainExecutor`: invoke hands a flag only to the task it follows, so
  `invoke fetch build package --arch aarch64` would give `fetch` and `build` no arch.
  This executor copies every shared option given anywhere in the chain to each task
  of the chain that takes it and was not given it. Two tasks given different values
  for one option is an error, not a silent pick. Enabled by `tasks.executor_class`
  in the project's invoke.yaml.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from typing import Any, Callable

from invoke import Executor, task
from invoke.exceptions import Exit
from invoke.parser import ParserContext

from .arches import resolve_arches
from .errors import ConfigError, DiskSpaceError, ForgeError, Interrupted
from .settings import SHARED_OPTIONS

MATRIX_ONLY = ("parallel", "resume")  # options of the matrix itself, not passed to cells


def _is_matrix(value: Any) -> bool:
    return isinstance(value, str) and (value == "all" or "," in value)


def _render_args(ctx: ParserContext, skip: tuple[str, ...]) -> list[str]:
    """A task's explicitly given flags, back as argv (to re-run it in a matrix cell)."""
    argv = [ctx.name]
    for name, arg in sorted(ctx.args.items()):
        if name in skip or not arg.got_value:
            continue
        flag = "--" + name.replace("_", "-")
        if arg.kind is list:
            argv += [f"{flag}={v}" for v in arg.value]
        elif arg.kind is bool:
            argv.append(flag if arg.value else f"--no-{name.replace('_', '-')}")
        else:
            argv.append(f"{flag}={arg.value}")
    return argv


def _arg(ctx: ParserContext, name: str):
    """A task's parser argument by its Python name: invoke keys `cache_dir` as `cache-dir`."""
    return ctx.args.get(name) or ctx.args.get(name.replace("_", "-"))


def report(err: ForgeError) -> Exit:
    return Exit(message=f"tflite-forge: {err}", code=err.exit_code)


def _report_stage(name: str) -> None:
    """Tell a matrix board which stage this cell is in (no-op outside a matrix)."""
    path = os.environ.get("TFLITE_FORGE_STATUS_FILE")
    if path:
        try:
            with open(path, "w") as fh:
                fh.write(name.replace("_", "-"))
        except OSError:
            pass


def forge_task(*args: Any, handles_matrix: bool = False, per_arch: bool = True, **kwargs: Any) -> Callable:
    """invoke's @task with the error contract. `handles_matrix=True`: the task takes
    `--version all` / lists itself (a report over versions), so no matrix of processes is made.
    `per_arch=False`: the task accepts --arch (so a chain can carry it) but its work does not
    depend on it, so a matrix does not multiply it by arch (fetch, lock)."""
    def decorate(fn: Callable) -> Any:
        @functools.wraps(fn)
        def run(*a: Any, **kw: Any) -> Any:
            _report_stage(fn.__name__)
            try:
                return fn(*a, **kw)
            except ForgeError as err:
                raise report(err) from None
            except OSError as err:
                if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                where = f" ({err.filename})" if err.filename else ""
                raise report(DiskSpaceError(
                    f"no space left on device{where}; free space there, or point --cache-dir / "
                    f"TFLITE_FORGE_WORK_DIR / TFLITE_FORGE_DIST_DIR at a larger disk")) from None
            except KeyboardInterrupt as exc:
                # A download says what it kept (a partial the next run resumes from); elsewhere every
                # step writes beside its target and renames, so nothing half-written is left.
                kept = exc.note if isinstance(exc, Interrupted) else "nothing half-written was kept"
                raise Exit(message=f"tflite-forge: interrupted; {kept}", code=130) from None
        run.handles_matrix = handles_matrix  # type: ignore[attr-defined]
        run.per_arch = per_arch  # type: ignore[attr-defined]
        return task(**kwargs)(run)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


# The task names of the running command line (set by ChainExecutor): `build` in a chain that packages
# checks the package's rules before compiling.
CHAIN: list[str] = []
RELEASE_TASKS = ("package", "test", "image")


def chain_releases() -> bool:
    """Does a task of this command line package what `build` makes?"""
    return any(name in RELEASE_TASKS for name in CHAIN)


class ChainExecutor(Executor):
    """Executor that shares SHARED_OPTIONS across every task in one invocation."""

    def normalize(self, tasks):  # type: ignore[override]
        contexts = [t for t in tasks if isinstance(t, ParserContext)]
        given: dict[str, tuple[str, Any]] = {}
        try:
            for ctx in contexts:
                for name in SHARED_OPTIONS:
                    arg = _arg(ctx, name)
                    if arg is None or not arg.got_value:
                        continue
                    value = arg.value
                    if name in given and given[name][1] != value:
                        other_task, other_value = given[name]
                        flag = "--" + name.replace("_", "-")
                        raise ConfigError(
                            f"{flag} given twice with different values ({other_value!r} to {other_task}, "
                            f"{value!r} to {ctx.name}); give it once, anywhere in the chain")
                    given[name] = (ctx.name, value)
        except ForgeError as err:
            print(f"tflite-forge: {err}", file=sys.stderr)
            raise SystemExit(err.exit_code) from None
        for ctx in contexts:
            for name, (_, value) in given.items():
                arg = _arg(ctx, name)
                if arg is None or arg.got_value:
                    continue
                if arg.kind is list:  # set_value appends for list kinds
                    for item in value:
                        arg.set_value(item)
                else:
                    arg.set_value(value, cast=False)
        self._note_ignored_arch(contexts, given)
        return super().normalize(tasks)

    def _note_ignored_arch(self, contexts: list[ParserContext], given: dict[str, tuple[str, Any]]) -> None:
        """`invoke fetch --arch aarch64`: fetch takes --arch only so a chain can carry it; alone,
        say that it changes nothing rather than drop it silently (an unknown arch is refused by
        settings.resolve in every task)."""
        if "arch" not in given:
            return
        try:
            resolve_arches(str(given["arch"][1]))
        except ConfigError:
            return   # the task itself refuses it, in one line
        takers = [ctx.name for ctx in contexts if _arg(ctx, "arch") is not None]
        uses = [name for name in takers if name in self.collection.task_names
                and getattr(self.collection[name].body, "per_arch", True)]
        if takers and not uses:
            print(f"tflite-forge: note: --arch {given['arch'][1]} is ignored: {', '.join(takers)} "
                  f"do(es) the same for every arch (give it to build, patch, package or test)", file=sys.stderr)

    def execute(self, *tasks):  # type: ignore[override]
        contexts = [t for t in tasks if isinstance(t, ParserContext)]
        CHAIN[:] = [ctx.name for ctx in contexts]
        try:
            cells = self._matrix_cells(contexts)
            if cells is None:
                return super().execute(*tasks)
            return self._run_matrix(contexts, cells)
        except ForgeError as err:
            raise report(err) from None

    @staticmethod
    def _given(contexts: list[ParserContext], name: str) -> Any:
        for ctx in contexts:
            arg = _arg(ctx, name)
            if arg is not None and arg.got_value:
                return arg.value
        return None

    def _matrix_cells(self, contexts: list[ParserContext]):
        """None for a single run; else the (version, arch) cells to run one process each."""
        takes_version = any("version" in ctx.args for ctx in contexts)
        if not takes_version:
            return None   # doctor, recipes, clean...: TFLITE_FORGE_VERSION=all must not multiply them
        version = self._given(contexts, "version") or os.environ.get("TFLITE_FORGE_VERSION")
        arch = self._given(contexts, "arch") or os.environ.get("TFLITE_FORGE_ARCH")
        takes_arch = any("arch" in ctx.args and getattr(self.collection[ctx.name].body, "per_arch", True)
                         for ctx in contexts)
        if all(getattr(self.collection[ctx.name].body, "handles_matrix", False) for ctx in contexts):
            return None
        if not (_is_matrix(version) or (takes_arch and _is_matrix(arch))):
            return None
        from .arches import resolve_arches
        from .matrix import Cell
        from .recipe import select_recipes
        recipe = self._given(contexts, "recipe")
        versions = [r.version for r in select_recipes(version=version, recipe=recipe)]
        arches = [a.name for a in resolve_arches(arch)] if takes_arch and arch else [""]
        if takes_arch and not arch:
            raise ConfigError("a version matrix needs --arch (a name, a comma list, or 'all')")
        return [Cell(version=v, arch=a, recipe=recipe) for v in versions for a in arches]

    def _run_matrix(self, contexts: list[ParserContext], cells):
        from pathlib import Path

        from .matrix import run_matrix
        from .settings import resolve

        def cell_argv(cell, builder: str | None = None) -> list[str]:
            """The same chain for one cell; --version/--arch (and the cell's one --builder) go to the
            first task taking them (the cell's own ChainExecutor shares them with the rest)."""
            argv = [sys.executable, "-m", "invoke"]
            pending = {"version": None if cell.recipe else cell.version, "arch": cell.arch or None,
                       "builder": builder}
            for ctx in contexts:
                argv += _render_args(ctx, skip=("version", "arch", "builder") + MATRIX_ONLY)
                for name in ("version", "arch", "builder"):
                    if pending[name] and name in ctx.args:
                        argv.append(f"--{name}={pending.pop(name)}")
                        pending[name] = None
            return argv

        settings = resolve({"jobs": self._given(contexts, "jobs"), "builder": self._given(contexts, "builder")},
                           dict(self.config.get("tflite_forge", {}) or {}))
        parallel = self._given(contexts, "parallel")
        states = run_matrix(cells, cell_argv, parallel=int(parallel) if parallel else None,
                            resume=bool(self._given(contexts, "resume")), jobs=settings.jobs,
                            work_dir=Path(settings.work_dir), dist_dir=Path(settings.dist_dir),
                            # test and image package a missing cell themselves (pipeline.py)
                            packages=any(ctx.name in RELEASE_TASKS for ctx in contexts),
                            builders=settings.builders)
        failed = [s for s in states if s.status == "failed"]
        if failed:
            names = ", ".join(s.cell.label for s in failed)
            raise Exit(message=f"tflite-forge: {len(failed)} of {len(states)} matrix cells failed ({names}); "
                               f"see the logs named in the summary", code=1)
        return {}
