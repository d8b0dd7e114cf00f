"""The seam between invoke and the package.

- `forge_task`: invoke's @task, plus the error contract: a `ForgeError` becomes one
  line `tflite-forge: <message>` on stderr and its exit code, never a traceback. The shared
  options a task takes are named, not written out: their parameters, help and repeatability
  come from options.py, and the task body receives them resolved, as one `Settings`.
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
import inspect
import os
import sys
from typing import Any, Callable, Iterable, Mapping

from invoke import Call, Executor, task
from invoke.exceptions import Exit
from invoke.parser import ParserContext

from .arches import resolve_arches
from .errors import ConfigError, DiskSpaceError, ForgeError, Interrupted
from . import matrix
from .options import AXES, MATRIX_OPTIONS, OPTIONS, SHARED_OPTIONS
from .settings import Settings, resolve, settings_from_context
from .workspace import Cell, Workspace


def _render_args(ctx: ParserContext, skip: tuple[str, ...]) -> list[str]:
    """A task's explicitly given flags, back as argv (to re-run it in a matrix cell)."""
    argv = [str(ctx.name)]
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


def _signature(fn: Callable, options: Iterable[str]) -> tuple[inspect.Signature, bool, bool]:
    """The task's signature as invoke reads it: the context, the body's own parameters, then a
    keyword parameter per named option (its default from options.py). The body is given the
    context only if its first parameter is `c`, and the resolved Settings in a parameter named
    `settings` (first, or after `c`) instead of the options one by one. The body's own parameters
    come before the options so that invoke's short flags (-c, -e ...) stay as they are."""
    params = list(inspect.signature(fn).parameters.values())
    takes_context = bool(params) and params[0].name == "c"
    rest = params[1:] if takes_context else params
    wants_settings = bool(rest) and rest[0].name == "settings"
    own = rest[1:] if wants_settings else rest
    context = inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=OPTIONS[name].default)
              for name in options]
    return inspect.Signature([context, *own, *shared]), takes_context, wants_settings


def forge_task(*args: Any, options: Iterable[str] = (), help: Mapping[str, str] | None = None,
               iterable: Iterable[str] = (), handles_matrix: bool = False, per_arch: bool = True,
               **kwargs: Any) -> Callable:
    """invoke's @task with the error contract. `options`: the shared options (rows of options.py)
    the task takes, resolved flag > env > invoke.yaml > default into the body's `settings`.
    `handles_matrix=True`: the task takes `--version all` / lists itself (a report over versions),
    so no matrix of processes is made. `per_arch=False`: the task accepts --arch (so a chain can
    carry it) but its work does not depend on it, so a matrix does not multiply it by arch (fetch, lock)."""
    options = tuple(options)

    def decorate(fn: Callable) -> Any:
        signature, takes_context, wants_settings = _signature(fn, options)

        @functools.wraps(fn)
        def run(c: Any, *a: Any, **kw: Any) -> Any:
            _report_stage(fn.__name__)
            given = {name: kw.pop(name) for name in options if name in kw}
            try:
                first: list[Any] = [c] if takes_context else []
                if wants_settings:
                    flags = {name: value for name, value in given.items() if name not in MATRIX_OPTIONS}
                    first.append(settings_from_context(c, flags))
                return fn(*first, *a, **kw)
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
        run.__signature__ = signature  # type: ignore[attr-defined]
        run.handles_matrix = handles_matrix  # type: ignore[attr-defined]
        run.per_arch = per_arch  # type: ignore[attr-defined]
        helps = {name: OPTIONS[name].help for name in options}
        helps.update(help or {})
        repeatable = [name for name in options if OPTIONS[name].repeatable] + list(iterable)
        return task(help=helps, iterable=repeatable, **kwargs)(run)

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

    def normalize(self, tasks: tuple[str | tuple[str, dict[str, Any]] | ParserContext, ...]) -> list[Call]:
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
                    given[name] = (str(ctx.name), value)
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
        takers = [str(ctx.name) for ctx in contexts if _arg(ctx, "arch") is not None]
        uses = [name for name in takers if name in self.collection.task_names
                and getattr(self.collection[name].body, "per_arch", True)]
        if takers and not uses:
            print(f"tflite-forge: note: --arch {given['arch'][1]} is ignored: {', '.join(takers)} "
                  f"do(es) the same for every arch (give it to build, patch, package or test)", file=sys.stderr)

    def execute(self, *tasks: str | tuple[str, dict[str, Any]] | ParserContext) -> dict:
        contexts = [t for t in tasks if isinstance(t, ParserContext)]
        CHAIN[:] = [str(ctx.name) for ctx in contexts]
        try:
            planned = self._matrix_cells(contexts)
            if planned is None:
                return super().execute(*tasks)
            return self._run_matrix(contexts, planned)
        except ForgeError as err:
            raise report(err) from None

    @staticmethod
    def _given(contexts: list[ParserContext], name: str) -> Any:
        for ctx in contexts:
            arg = _arg(ctx, name)
            if arg is not None and arg.got_value:
                return arg.value
        return None

    def _config_file_args(self) -> list[str]:
        """`-f FILE` again for each cell when the command line named one: a matrix that invoke.yaml
        asked for is made from that file, and so must each of its cells be."""
        core = self.core[0] if self.core else None
        arg = core.args.get("config") if core is not None else None
        return ["-f", str(arg.value)] if arg is not None and arg.got_value else []

    def _settings(self, contexts: list[ParserContext]) -> Settings:
        """The chain's shared options, resolved as each of its tasks resolves them."""
        flags = {name: self._given(contexts, name) for name in SHARED_OPTIONS}
        return resolve(flags, dict(self.config.get("tflite_forge", {}) or {}))

    def _matrix_cells(self, contexts: list[ParserContext]) -> tuple[Settings, list[Cell]] | None:
        """None for a single run; else the settings and the (version, arch) cells to run one process each.
        A matrix is a matrix whichever source names it: `--version all`, TFLITE_FORGE_VERSION=all or
        `version: all` in invoke.yaml expand alike (matrix.cells)."""
        takes_version = any("version" in ctx.args for ctx in contexts)
        if not takes_version:
            return None   # doctor, recipes, clean...: TFLITE_FORGE_VERSION=all must not multiply them
        if all(getattr(self.collection[ctx.name].body, "handles_matrix", False) for ctx in contexts):
            return None
        takes_arch = any("arch" in ctx.args and getattr(self.collection[ctx.name].body, "per_arch", True)
                         for ctx in contexts)
        settings = self._settings(contexts)
        if not matrix.is_matrix(settings, per_arch=takes_arch):
            return None
        return settings, matrix.cells(settings, per_arch=takes_arch)

    def _run_matrix(self, contexts: list[ParserContext], planned: tuple[Settings, list[Cell]]) -> dict:
        settings, planned_cells = planned

        def cell_argv(cell: Cell, builder: str | None = None) -> list[str]:
            """The same chain for one cell; --version/--arch (and the cell's one --builder) go to the
            first task taking them (the cell's own ChainExecutor shares them with the rest)."""
            argv = [sys.executable, "-m", "invoke", *self._config_file_args()]
            # --recipe FILE reaches every cell as given; otherwise each cell names its version.
            pending = {"version": None if settings.recipe else cell.recipe.version, "arch": cell.arch_name or None,
                       "builder": builder}
            for ctx in contexts:
                argv += _render_args(ctx, skip=(*AXES, "builder", *MATRIX_OPTIONS))
                for name in (*AXES, "builder"):
                    if pending[name] and name in ctx.args:
                        argv.append(f"--{name}={pending.pop(name)}")
                        pending[name] = None
            return argv

        parallel = self._given(contexts, "parallel")
        states = matrix.run_matrix(planned_cells, cell_argv, parallel=int(parallel) if parallel else None,
                                   resume=bool(self._given(contexts, "resume")), jobs=settings.jobs,
                                   workspace=Workspace.of(settings),
                                   # test and image package a missing cell themselves (pipeline.py)
                                   packages=any(ctx.name in RELEASE_TASKS for ctx in contexts),
                                   builders=settings.builders)
        failed = [s for s in states if s.status == "failed"]
        if failed:
            names = ", ".join(s.cell.label for s in failed)
            raise Exit(message=f"tflite-forge: {len(failed)} of {len(states)} matrix cells failed ({names}); "
                               f"see the logs named in the summary", code=1)
        return {}
