"""The lock file: its format (read, validated, written) and the one rule of which locked trees a
build needs (`needed`, over the build's CMake options and CMAKE_SYSTEM_PROCESSOR). Fetch, patching,
the build's overrides, the licenses and the SBOM read locks through this module; lock.py writes them.

    [lock]        archive_sha256, generated_by, license_sha256 (TensorFlow's LICENSE), scope,
                  option_defaults
    [[dependency]] name, url, sha256, strip_prefix, cmake_variable, declared_in, declared_by,
                  when (CMake if() text; default TRUE), license_file, license_sha256
    [[skipped]]   name, url, when, declared_in, declared_by: declared, not needed by the recipe
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import tomli_w

from ._toml import check_keys, expect, load_toml, require
from .arches import Arch, all_arches, default_cmake_options, host_arch, resolve_arch
from .cmake_scan import check_condition, evaluate_condition
from .errors import LockError
from .fsutil import write_atomic
from .recipe import SHA256_RE, Recipe, recipe_flag


LOCK_KEYS = ("archive_sha256", "generated_by")
LOCK_OPTIONAL = ("license_sha256", "scope", "option_defaults")
DEP_KEYS = ("name", "url", "sha256", "strip_prefix", "cmake_variable", "declared_in", "declared_by")
DEP_OPTIONAL = ("when", "license_file", "license_sha256")
TENSORFLOW_LICENSE = "LICENSE"   # the TensorFlow tree's own license, at its top
SKIP_KEYS = ("name", "url", "when", "declared_in", "declared_by")
ALWAYS = "TRUE"
CMAKE_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")


@dataclass(frozen=True, kw_only=True)
class LockedDependency:
    name: str
    url: str
    sha256: str
    strip_prefix: str
    cmake_variable: str
    declared_in: str
    declared_by: str
    when: str = ALWAYS          # CMake if() condition over the build's options that brings it in
    license_file: str = ""      # LICENSE_FILE of the declaration (a tree keeping its license elsewhere)
    license_sha256: str = ""    # sha256 of that file in the unpacked tree ("": no license_file, or an older lock)


@dataclass(frozen=True, kw_only=True)
class SkippedDependency:
    """Declared, but no configuration of the recipe reaches it: not downloaded (`invoke lock --all` pins it)."""
    name: str
    url: str
    when: str
    declared_in: str
    declared_by: str


@dataclass(frozen=True, kw_only=True)
class Lock:
    path: Path
    archive_sha256: str
    generated_by: str
    dependencies: tuple[LockedDependency, ...]
    scope: str = "recipe"                                    # "recipe" or "all" (invoke lock --all)
    option_defaults: tuple[tuple[str, str], ...] = ()        # option()/cache defaults the `when`s name
    skipped: tuple[SkippedDependency, ...] = ()
    license_sha256: str = ""                                 # of the TensorFlow tree's LICENSE ("": not known)

    def get(self, name: str) -> LockedDependency:
        for dep in self.dependencies:
            if dep.name == name:
                return dep
        raise KeyError(name)


# ---------------------------------------------------------------------- reading and writing

def load_lock(path: str | Path) -> Lock:
    """Read and strictly validate a lock file; every problem is a one-line LockError."""
    path = Path(path)
    data = load_toml(path, error=LockError)
    check_keys(path, "top level", data, ("lock", "dependency", "skipped"), error=LockError)
    head = require(path, "", data, "lock", dict, "a [lock] table", error=LockError)
    check_keys(path, "[lock]", head, LOCK_KEYS + LOCK_OPTIONAL, error=LockError)
    archive = require(path, "[lock]", head, "archive_sha256", str, "64 lower-case hex characters", error=LockError)
    if not SHA256_RE.match(archive):
        raise LockError(f"{path}: [lock].archive_sha256: expected 64 lower-case hex characters, got {archive!r}")
    generated_by = require(path, "[lock]", head, "generated_by", str, "a string", error=LockError)
    tf_license = expect(path, "[lock].license_sha256", head.get("license_sha256", ""), str,
                        "64 lower-case hex characters", error=LockError)
    if "license_sha256" in head and not SHA256_RE.match(tf_license):
        raise LockError(f"{path}: [lock].license_sha256: expected 64 lower-case hex characters, got {tf_license!r}")
    scope = expect(path, "[lock].scope", head.get("scope", "recipe"), str, '"recipe" or "all"', error=LockError)
    if scope not in ("recipe", "all"):
        raise LockError(f'{path}: [lock].scope: expected "recipe" or "all", got {scope!r}')
    raw_defaults = expect(path, "[lock.option_defaults]", head.get("option_defaults", {}), dict,
                          "a table of NAME = value", error=LockError)
    for key, value in raw_defaults.items():
        expect(path, f"[lock.option_defaults].{key}", value, str, "a string", error=LockError)
        if not CMAKE_VAR_RE.match(key):
            raise LockError(f"{path}: [lock.option_defaults]: not a CMake variable name: {key!r}")
    raw = expect(path, "[[dependency]]", data.get("dependency", []), list, "an array of tables", error=LockError)
    deps = []
    names: set[str] = set()
    variables: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"[[dependency]] #{i + 1}"
        expect(path, where, entry, dict, "a table", error=LockError)
        check_keys(path, where, entry, DEP_KEYS + DEP_OPTIONAL, error=LockError)
        values = {k: require(path, where, entry, k, str, "a string", error=LockError) for k in DEP_KEYS}
        for k in DEP_OPTIONAL:
            if k in entry:
                values[k] = expect(path, f"{where}.{k}", entry[k], str, "a string", error=LockError)
        _check_when(path, where, values.get("when", ALWAYS))
        lf = values.get("license_file", "")
        if lf and (lf.startswith("/") or ".." in lf.split("/")):
            raise LockError(f"{path}: {where}.license_file: expected a path inside the tree, got {lf!r}")
        if "license_sha256" in values:
            if not SHA256_RE.match(values["license_sha256"]):
                raise LockError(f"{path}: {where}.license_sha256: expected 64 lower-case hex characters, "
                                f"got {values['license_sha256']!r}")
            if not lf:
                raise LockError(f"{path}: {where}.license_sha256: set without license_file; a hash needs the file it is of")
        if not NAME_RE.match(values["name"]):
            raise LockError(f"{path}: {where}.name: expected a lower-case name, got {values['name']!r}")
        if not re.match(r"^(https?|file)://", values["url"]):
            raise LockError(f"{path}: {where}.url: expected an http(s):// or file:// URL, got {values['url']!r}")
        if not SHA256_RE.match(values["sha256"]):
            raise LockError(f"{path}: {where}.sha256: expected 64 lower-case hex characters, got {values['sha256']!r}")
        sp = values["strip_prefix"]
        if not sp or sp.startswith("/") or ".." in sp.split("/"):
            raise LockError(f"{path}: {where}.strip_prefix: expected the archive's top folder, got {sp!r}")
        if not CMAKE_VAR_RE.match(values["cmake_variable"]):
            raise LockError(f"{path}: {where}.cmake_variable: not a CMake variable name: {values['cmake_variable']!r}")
        if values["name"] in names:
            raise LockError(f"{path}: {where}.name: {values['name']!r} is locked twice; keep one entry")
        if values["cmake_variable"] in variables:
            raise LockError(f"{path}: {where}.cmake_variable: {values['cmake_variable']!r} is set twice; keep one entry")
        names.add(values["name"])
        variables.add(values["cmake_variable"])
        deps.append(LockedDependency(**values))
    skipped = []
    raw_skipped = expect(path, "[[skipped]]", data.get("skipped", []), list, "an array of tables", error=LockError)
    for i, entry in enumerate(raw_skipped):
        where = f"[[skipped]] #{i + 1}"
        expect(path, where, entry, dict, "a table", error=LockError)
        check_keys(path, where, entry, SKIP_KEYS, error=LockError)
        values = {k: require(path, where, entry, k, str, "a string", error=LockError) for k in SKIP_KEYS}
        _check_when(path, where, values["when"])
        skipped.append(SkippedDependency(**values))
    if raw and not any("when" in entry for entry in raw) and "scope" not in head:
        _warn_once(path, f"tflite-forge: warning: {path} predates option conditions (no `when` on any entry): "
                         "every locked tree counts as needed, so trees the build never compiles are fetched and their "
                         "licenses shipped; run `invoke lock` to rewrite it")
    return Lock(path=path, archive_sha256=archive, generated_by=generated_by, dependencies=tuple(deps),
                scope=scope, option_defaults=tuple(sorted(raw_defaults.items())), skipped=tuple(skipped),
                license_sha256=tf_license)


_WARNED: set[Path] = set()


def _warn_once(path: Path, line: str) -> None:
    if path.resolve() not in _WARNED:
        _WARNED.add(path.resolve())
        print(line, file=sys.stderr)


def _check_when(path: Path, where: str, when: str) -> None:
    try:
        check_condition(when)
    except LockError as exc:
        raise LockError(f"{path}: {where}.when: not a CMake condition: {when!r} ({exc})") from None


def dump_lock(lock: Lock) -> str:
    head: dict = {"archive_sha256": lock.archive_sha256, "generated_by": lock.generated_by}
    if lock.license_sha256:
        head["license_sha256"] = lock.license_sha256
    head["scope"] = lock.scope
    if lock.option_defaults:
        head["option_defaults"] = dict(lock.option_defaults)
    data: dict = {
        "lock": head,
        "dependency": [{k: getattr(d, k) for k in DEP_KEYS + DEP_OPTIONAL if k in DEP_KEYS or getattr(d, k)}
                       for d in lock.dependencies],
    }
    if lock.skipped:
        data["skipped"] = [{k: getattr(d, k) for k in SKIP_KEYS} for d in lock.skipped]
    body = tomli_w.dumps(data)
    return ("# Written by `invoke lock`: every tree TFLite's CMake downloads at configure time, pinned.\n"
            "# `when` is the CMake condition over the build's options that brings a tree in (TRUE: always);\n"
            "# [[skipped]] trees no configuration of the recipe reaches (`invoke lock --all` pins them too).\n"
            "# Regenerate rather than edit; `invoke fetch` downloads what the build needs for an offline build.\n\n"
            + body)


def write_lock(lock: Lock) -> Path:
    """Write atomically: a temp file beside the lock, fsync, rename."""
    return write_atomic(lock.path, dump_lock(lock))


def read_recipe_lock(recipe: Recipe) -> Lock:
    """The recipe's lock, checked to belong to the recipe's archive."""
    if not recipe.lock_path.is_file():
        raise LockError(f"{recipe.label} has no dependency lock ({recipe.lock_path}); run "
                        f"`invoke lock {recipe_flag(recipe)}` first")
    lock = load_lock(recipe.lock_path)
    if lock.archive_sha256 != recipe.source.sha256:
        raise LockError(f"{recipe.lock_path} was generated from archive {lock.archive_sha256[:12]}..., but the recipe "
                        f"pins {recipe.source.sha256[:12]}...; rerun `invoke lock {recipe_flag(recipe)}`")
    return lock


def lock_status(recipe: Recipe) -> tuple[Lock | None, str]:
    try:
        return read_recipe_lock(recipe), ""
    except LockError as exc:
        if not recipe.lock_path.is_file():
            return None, f"no lock ({recipe.lock_path.name})"
        return None, str(exc)


# ---------------------------------------------------------------------- which dependencies a build needs

def cmake_value(value: object) -> str:
    """A recipe or build-info option value as CMake sees it (booleans are ON/OFF)."""
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return str(value)


def either(a: str, b: str) -> str:
    """The condition that holds when `a` or `b` does."""
    if ALWAYS in (a, b):
        return ALWAYS
    if a == b or b == "FALSE":
        return a
    if a == "FALSE":
        return b
    return f"({a}) OR ({b})"


def _configurations(cmake_options: Mapping[str, object], defaults: Iterable[tuple[str, str]],
                    processors: Iterable[str | None] | None) -> list[dict[str, str]]:
    base = dict(defaults)
    base.update({k: cmake_value(v) for k, v in cmake_options.items()})
    if processors is None:
        return [base]
    out = []
    for proc in processors:
        env = dict(base)
        if proc:
            env["CMAKE_SYSTEM_PROCESSOR"] = proc
        else:
            env.pop("CMAKE_SYSTEM_PROCESSOR", None)
        out.append(env)
    return out or [base]


def _holds(when: str, configs: list[dict[str, str]]) -> bool:
    return any(evaluate_condition(when, env) for env in configs)


def needed(dependencies: Lock | Iterable[LockedDependency], cmake_options: Mapping[str, object], *,
           processors: Iterable[str | None] | None = None,
           option_defaults: Iterable[tuple[str, str]] | None = None) -> tuple[LockedDependency, ...]:
    """The locked dependencies a build with these options downloads at configure time, in lock order.

    cmake_options: the build's -D options (recipe over arch defaults; build-info.json's
    "cmake_options"); unset options take the lock's recorded defaults. processors: the
    CMAKE_SYSTEM_PROCESSOR values the build configures for (the target's, plus the host's for a
    cross build's host-tools configure); None takes cmake_options' own, or leaves it undefined
    (then x86-only trees count as needed). Pure: nothing is read or fetched."""
    deps = dependencies.dependencies if isinstance(dependencies, Lock) else tuple(dependencies)
    if option_defaults is None:
        option_defaults = dependencies.option_defaults if isinstance(dependencies, Lock) else ()
    configs = _configurations(cmake_options, option_defaults, processors)
    return tuple(d for d in deps if _holds(d.when, configs))


def missing(lock: Lock, cmake_options: Mapping[str, object], *,
            processors: Iterable[str | None] | None = None) -> tuple[SkippedDependency, ...]:
    """Trees these options need that the lock skipped (it was made for other options)."""
    configs = _configurations(cmake_options, lock.option_defaults, processors)
    return tuple(d for d in lock.skipped if _holds(d.when, configs))


def require_needed(lock: Lock, cmake_options: Mapping[str, object], *,
                   processors: Iterable[str | None] | None = None) -> tuple[LockedDependency, ...]:
    """needed(), or a LockError naming what these options need that the lock did not pin."""
    absent = missing(lock, cmake_options, processors=processors)
    if absent:
        names = ", ".join(f"{d.name} (when {d.when})" for d in absent)
        raise LockError(f"{lock.path}: the build's options need {names}, which this lock skipped; rerun `invoke lock` "
                        f"after setting the option in the recipe's [build.cmake_options], or `invoke lock --all`")
    return needed(lock, cmake_options, processors=processors)


def build_processors(arch: Arch, host: Arch | str | None = None) -> tuple[str, ...]:
    """CMAKE_SYSTEM_PROCESSOR of every configure one build of `arch` runs: the target's, and for a
    cross build also the host's (its host-tools configure; x86_64's reaches neon2sse)."""
    procs = [arch.cmake_system_processor]
    if not arch.runs_natively(host):
        native = resolve_arch(host) if host else host_arch()
        procs.append(native.cmake_system_processor)
    return tuple(procs)


def recipe_configurations(recipe: Recipe) -> list[tuple[dict[str, str], str]]:
    """(options, CMAKE_SYSTEM_PROCESSOR) of every build of the recipe: its options over each arch's defaults."""
    own = {k: cmake_value(v) for k, v in recipe.build.cmake_options}
    out = []
    for arch in all_arches():
        options = {k: cmake_value(v) for k, v in default_cmake_options(arch, recipe.version).items()}
        options.update(own)
        out.append((options, arch.cmake_system_processor))
    return out


def needed_by_recipe(when: str, recipe: Recipe, defaults: Iterable[tuple[str, str]]) -> bool:
    return any(_holds(when, _configurations(options, defaults, [proc]))
               for options, proc in recipe_configurations(recipe))
