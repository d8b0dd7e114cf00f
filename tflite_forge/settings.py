"""Shared options, resolved once with the precedence invoke users expect:

    command-line flag  >  TFLITE_FORGE_* environment variable  >  invoke.yaml (`tflite_forge:`)  >  default

The options themselves (flag, variable, invoke.yaml key, help) are the rows of options.py; this
module turns what was given into one checked, frozen `Settings`. `cli.ChainExecutor` hands a flag
given to one task in a chain to every other task of the chain that takes it.
"""

from __future__ import annotations

import difflib
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .arches import resolve_arches
from .builders import parse_builders
from .ccache_remote import parse as parse_remote
from .fetch_policy import POLICY_KNOBS, FetchPolicy
from .errors import ConfigError
from .options import CONFIG_KEYS, OPTIONS, lookup
from .urls import url_problem


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tflite-forge"


@dataclass(frozen=True, kw_only=True)
class Settings:
    version: str | None = None
    recipe: str | None = None
    arch: str | None = None
    engine: str | None = None
    cache_dir: Path
    mirrors: tuple[str, ...] = ()
    rewrites: tuple[tuple[str, str], ...] = ()
    offline: bool = False
    jobs: int | None = None
    ccache_remote: str | None = None      # the shared compile cache (ccache_remote.parse): never an input of a build
    work_dir: Path = Path("build")
    dist_dir: Path = Path("dist")
    builders: tuple[str, ...] = ()          # --builder endpoints (builders.py); () = this host's engine
    fetch_policy: FetchPolicy = FetchPolicy()   # download timeouts and retries (connect_timeout, read_timeout, retries)
    min_free_bytes: int = 2 * 2**30             # free space a build wants in the work dir before it starts (min_free_gib)


def _split_list(value: str) -> list[str]:
    return [v for v in re.split(r"[\s,]+", value.strip()) if v]


def parse_rewrite(spec: str) -> tuple[str, str]:
    """'FROM=TO' -> (FROM, TO); like git's url.<TO>.insteadOf = <FROM>."""
    if "=" not in spec:
        raise ConfigError(f"--rewrite {spec!r}: expected FROM=TO, e.g. https://github.com/=https://artifacts.example/github/")
    src, _, dst = spec.partition("=")
    if not src or not dst:
        raise ConfigError(f"--rewrite {spec!r}: both FROM and TO must be non-empty (FROM=TO)")
    return src, dst


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}={value!r}: expected true or false")


def _parse_jobs(name: str, value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        jobs = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r}: expected a positive whole number of parallel compile jobs") from None
    if jobs < 1:
        raise ConfigError(f"{name}={value!r}: expected a positive whole number of parallel compile jobs")
    return jobs


def _parse_free_gib(name: str, value: Any) -> int:
    """min_free_gib: a number of GiB, 0 or more (a real TensorFlow tree's working copies and logs need
    about 2; build trees and ccache live in engine volumes)."""
    try:
        gib = float(value)
    except (TypeError, ValueError):
        gib = -1.0
    if not (gib >= 0 and gib < 2**20):
        raise ConfigError(f"{name}={value!r}: expected a number of GiB, e.g. 2")
    return int(gib * 2**30)


def _spelling(name: str, source: str) -> str:
    """How a user spelled an option, for messages: the flag, the variable or the invoke.yaml key."""
    return OPTIONS[name].spelling(source)


def check_cache_dir(path: Path, where: str = "--cache-dir (TFLITE_FORGE_CACHE)") -> None:
    """The cache must be a folder, or creatable as one: not a file, nor below a file.
    (Checked where the cache is used, not in resolve(): `invoke doctor` reports it as a row.)"""
    probe = path
    while not (probe.exists() or probe.is_symlink()):
        if probe.parent == probe:
            return
        probe = probe.parent
    if probe.is_dir():
        return
    what = "is a file" if probe == path else f"cannot be created: {probe} is a file"
    raise ConfigError(f"{where} {path}: {what}, not a folder; pass a folder (it is created if missing), "
                      f"or move that file away")


def _check_mirror(mirror: str, where: str) -> None:
    problem = url_problem(mirror)
    if problem:
        raise ConfigError(f"{where} {mirror!r}: {problem}; expected an http(s):// or file:///abs/path URL of a "
                          f"folder holding sha256/<hex> files (made by `invoke mirror --dest DIR`)")


def check_file_mirrors(mirrors: Iterable[str]) -> None:
    """A file:// mirror must be an existing folder: a typo or an unmounted disk would otherwise be
    skipped for every file without a word. (Checked where mirrors are used; doctor reports it.)"""
    for mirror in mirrors:
        if mirror.startswith("file:"):
            folder = Path(urllib.parse.unquote(urllib.parse.urlsplit(mirror).path))
            if not folder.is_dir():
                raise ConfigError(f"--mirror {mirror!r}: {folder} is not a folder (not mounted, or a typo?); pass "
                                  f"the folder made by `invoke mirror --dest DIR` as file:///DIR")


def resolve(flags: Mapping[str, Any], config: Mapping[str, Any] | None = None,
            environ: Mapping[str, str] | None = None) -> Settings:
    """Merge flags (None / empty means 'not given'), environment and invoke config."""
    environ = os.environ if environ is None else environ
    config = dict(config or {})
    not_flags = sorted(k for k in flags if k not in OPTIONS or not OPTIONS[k].flag)
    if not_flags:   # a caller's mistake, not a user's: work_dir and the knobs come from env or invoke.yaml
        raise TypeError(f"resolve(): {', '.join(not_flags)} are not flags; pass them in config or environ")
    unknown = set(config) - CONFIG_KEYS
    if unknown:
        key = sorted(unknown)[0]
        close = difflib.get_close_matches(key, sorted(CONFIG_KEYS), n=1)
        hint = f"; perhaps you meant {close[0]!r}" if close else ""
        raise ConfigError(f"invoke.yaml: tflite_forge.{key}: unknown key{hint}")

    def pick(name: str) -> tuple[Any, str]:
        return lookup(name, flags, environ, config)

    def pick_list(name: str) -> tuple[Any, str]:
        value, source = pick(name)
        return (_split_list(value) if isinstance(value, str) else value), source

    version, _ = pick("version")
    recipe, _ = pick("recipe")
    arch, asrc = pick("arch")
    engine, _ = pick("engine")
    cache_dir, _ = pick("cache_dir")
    mirrors, msrc = pick_list("mirror")
    rewrites, _ = pick_list("rewrite")
    offline, _ = pick("offline")
    jobs, _ = pick("jobs")
    ccache_url, csrc = pick("ccache_remote")
    work_dir, _ = pick("work_dir")
    builders, bsrc = pick_list("builder")
    dist_dir, _ = pick("dist_dir")
    knobs = {name: (value, _spelling(name, source))
             for name in POLICY_KNOBS for value, source in [pick(name)]}
    min_free, fsrc = pick("min_free_gib")
    for m in mirrors or ():
        _check_mirror(str(m), _spelling("mirror", msrc))
    if arch:
        try:
            resolve_arches(str(arch))   # an unknown arch is an error for every task, even one that ignores it
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("--arch", _spelling("arch", asrc), 1)) from None
    specs = parse_builders(builders, _spelling("builder", bsrc))
    cache_path = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return Settings(
        version=str(version) if version is not None else None,
        recipe=str(recipe) if recipe else None,
        arch=str(arch) if arch else None,
        engine=str(engine) if engine else None,
        cache_dir=cache_path,
        mirrors=tuple(mirrors or ()),
        rewrites=tuple(parse_rewrite(r) for r in (rewrites or ())),
        offline=_parse_bool("offline", offline) if offline is not None else False,
        jobs=_parse_jobs("jobs", jobs),
        ccache_remote=parse_remote(str(ccache_url), _spelling("ccache_remote", csrc)).url if ccache_url else None,
        work_dir=Path(work_dir) if work_dir else Path("build"),
        dist_dir=Path(dist_dir) if dist_dir else Path("dist"),
        builders=tuple(s.text for s in specs),
        fetch_policy=FetchPolicy.from_values(knobs),
        min_free_bytes=_parse_free_gib(_spelling("min_free_gib", fsrc), min_free),
    )


def settings_from_context(ctx: Any, flags: Mapping[str, Any]) -> Settings:
    """Read the `tflite_forge:` section of invoke's config (invoke.yaml, ~/.invoke.yaml, -f FILE)."""
    section: Any = {}
    try:
        section = ctx.config.get("tflite_forge", {}) or {}
    except AttributeError:
        section = {}
    return resolve(flags, dict(section))
