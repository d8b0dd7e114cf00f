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

import functools
import sys
from typing import Any, Callable

from invoke import Executor, task
from invoke.exceptions import Exit
from invoke.parser import ParserContext

from .errors import ConfigError, ForgeError
from .settings import SHARED_OPTIONS


def report(err: ForgeError) -> Exit:
    return Exit(message=f"tflite-forge: {err}", code=err.exit_code)


def forge_task(*args: Any, **kwargs: Any) -> Callable:
    def decorate(fn: Callable) -> Any:
        @functools.wraps(fn)
        def run(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except ForgeError as err:
                raise report(err) from None
            except KeyboardInterrupt:
                raise Exit(message="tflite-forge: interrupted; nothing half-written was kept", code=130) from None
        return task(**kwargs)(run)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


class ChainExecutor(Executor):
    """Executor that shares SHARED_OPTIONS across every task in one invocation."""

    def normalize(self, tasks):  # type: ignore[override]
        contexts = [t for t in tasks if isinstance(t, ParserContext)]
        given: dict[str, tuple[str, Any]] = {}
        try:
            for ctx in contexts:
                for name in SHARED_OPTIONS:
                    arg = ctx.args.get(name)
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
                arg = ctx.args.get(name)
                if arg is None or arg.got_value:
                    continue
                if arg.kind is list:  # set_value appends for list kinds
                    for item in value:
                        arg.set_value(item)
                else:
                    arg.set_value(value, cast=False)
        return super().normalize(tasks)
