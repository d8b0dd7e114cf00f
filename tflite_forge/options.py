"""Every option and knob of tflite-forge, in one table.

Each row says how a user can give it: a task flag (`--cache-dir`), a TFLITE_FORGE_* variable, a key of
invoke.yaml's `tflite_forge:` section. Where more than one is given the order is always

    command-line flag  >  environment variable  >  invoke.yaml  >  default

From this table come the task signatures and their help (cli.options_task), the chain sharing
(cli.ChainExecutor), the names settings.resolve accepts, and the knobs read where they are used
(download.FetchPolicy, the build's free-space floor: resolved into Settings like the rest). A new
option is a new row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True, kw_only=True)
class Option:
    name: str                    # the Python name: a task parameter, a Settings field's source
    help: str = ""               # what it means; for a flag, its help in `invoke --help <task>`
    env: str | None = None       # TFLITE_FORGE_* variable
    config: str | None = None    # key under invoke.yaml `tflite_forge:`
    flag: bool = True            # a task flag exists (else: environment and invoke.yaml only)
    default: Any = None          # given nowhere: a task parameter's default (its type sets invoke's flag kind)
    repeatable: bool = False     # the flag may be given many times (invoke `iterable`)
    axis: bool = False           # a matrix axis: 'all' or a comma list runs one cell per value
    chain: bool = True           # shared across a chain (`invoke fetch build --arch X`); False: read by the matrix

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    def spelling(self, source: str) -> str:
        """How the user wrote it, for messages: the flag, the variable or the invoke.yaml key."""
        if source == "env" and self.env:
            return self.env
        if source == "config":
            return f"invoke.yaml tflite_forge.{self.config or self.name}"
        if not self.flag and self.env:
            return self.env
        return self.flag_name


_ROWS = (
    Option(name="version", env="TFLITE_FORGE_VERSION", config="version", axis=True,
           help="TensorFlow version from recipes/ (e.g. 2.16.1; 'all' or a comma list where a task runs a matrix); "
                "default: newest"),
    Option(name="recipe", env="TFLITE_FORGE_RECIPE", config="recipe",
           help="path to a recipe TOML file (overrides --version); for forks and the bundled miniature"),
    Option(name="arch", env="TFLITE_FORGE_ARCH", config="arch", axis=True,
           help="target: aarch64 (arm64), armhf (armv7l), x86_64 (amd64), riscv64, or 'all'"),
    Option(name="engine", env="TFLITE_FORGE_ENGINE", config="engine",
           help="container engine: docker or podman (default: a reachable docker daemon, else podman)"),
    Option(name="cache_dir", env="TFLITE_FORGE_CACHE", config="cache_dir",
           help="download cache (default: $TFLITE_FORGE_CACHE or $XDG_CACHE_HOME/tflite-forge)"),
    Option(name="mirror", env="TFLITE_FORGE_MIRRORS", config="mirrors", repeatable=True,
           help="mirror URL looked up as <mirror>/sha256/<hex> before upstream; http(s):// or file://; repeatable"),
    Option(name="rewrite", env="TFLITE_FORGE_REWRITES", config="rewrites", repeatable=True,
           help="URL rewrite FROM=TO applied to every upstream URL (like git insteadOf); repeatable"),
    Option(name="offline", env="TFLITE_FORGE_OFFLINE", config="offline", default=False,
           help="never open a socket: use only the cache and file:// mirrors"),
    Option(name="jobs", env="TFLITE_FORGE_JOBS", config="jobs",
           help="parallel compile jobs (default: from cores and memory, ~2 GiB per job)"),
    Option(name="ccache_remote", env="TFLITE_FORGE_CCACHE_REMOTE", config="ccache_remote",
           help="shared compile cache read and written by every build: redis+unix:///abs/path.sock (a Redis "
                "unix socket on the engine's host, mounted into the build container, which keeps no network); "
                "the local ccache stays the first level; never changes what is built"),
    Option(name="parallel", chain=False,
           help="with --arch/--version lists or 'all' (a matrix): cells run at once, capped by memory (default 1)"),
    Option(name="resume", chain=False, default=False,
           help="with a matrix: skip cells already packaged from identical inputs"),
    Option(name="builder", env="TFLITE_FORGE_BUILDERS", config="builders", repeatable=True,
           help="build on this container engine instead of this host's: unix:///path.sock, ssh://user@host, "
                "tcp://host:port, podman+unix:///path.sock or a docker context; repeatable: a matrix spreads its "
                "cells over the builders, one cell each at a time (env TFLITE_FORGE_BUILDERS)"),
    # No flag: where a workspace lives, and the knobs of downloads and builds.
    Option(name="work_dir", env="TFLITE_FORGE_WORK_DIR", config="work_dir", flag=False, default="build",
           help="working copies, build output, stamps and logs (workspace.py)"),
    Option(name="dist_dir", env="TFLITE_FORGE_DIST_DIR", config="dist_dir", flag=False, default="dist",
           help="release tarballs, SHA256SUMS and the matrix's --resume records"),
    Option(name="connect_timeout", env="TFLITE_FORGE_CONNECT_TIMEOUT", config="connect_timeout", flag=False,
           help="seconds to wait for a download's connection (download.FetchPolicy)"),
    Option(name="read_timeout", env="TFLITE_FORGE_READ_TIMEOUT", config="read_timeout", flag=False,
           help="seconds a download may stall before it is resumed (download.FetchPolicy)"),
    Option(name="retries", env="TFLITE_FORGE_RETRIES", config="retries", flag=False,
           help="retries of a failed request, 0 to 100 (download.FetchPolicy)"),
    Option(name="min_free_gib", env="TFLITE_FORGE_MIN_FREE_GIB", config="min_free_gib", flag=False, default="2",
           help="free GiB a build wants in the work dir before it starts"),
)

OPTIONS: Mapping[str, Option] = {row.name: row for row in _ROWS}

# Given to one task of a chain, given to every task of it that takes them.
SHARED_OPTIONS = tuple(o.name for o in _ROWS if o.flag and o.chain)
# Flags of the matrix itself, read by the executor and not passed on to its cells.
MATRIX_OPTIONS = tuple(o.name for o in _ROWS if o.flag and not o.chain)
# What a matrix multiplies: each cell gets its own value of these, in place of the chain's.
AXES = tuple(o.name for o in _ROWS if o.axis)
# Every shared option a pipeline task (fetch, build, package, ...) takes, so that a flag is accepted
# wherever it stands in a chain (invoke parses a flag for the task it follows).
PIPELINE = tuple(o.name for o in _ROWS if o.flag)
ENV = {o.name: o.env for o in _ROWS if o.env}
CONFIG_KEYS = frozenset(o.config for o in _ROWS if o.config)


def given(value: Any) -> bool:
    """A flag's value that means 'given': invoke passes None, False or [] for a flag left out."""
    return value not in (None, "", [], ()) and value is not False


def lookup(name: str, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
           config: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """(raw value, source) of one option: source is 'flag', 'env', 'config' or 'default'.
    The value is as given (a string from the environment, any YAML value from invoke.yaml)."""
    option = OPTIONS[name]
    if option.flag and flags is not None and given(flags.get(name)):
        return flags[name], "flag"
    if option.env and environ is not None and environ.get(option.env, "") != "":
        return environ[option.env], "env"
    if option.config and config is not None and config.get(option.config) not in (None, ""):
        return config[option.config], "config"
    return option.default, "default"
