"""Target architectures: the `Arch` row of each `--arch` and the lookups; the rows are data, in arches.toml.

    --arch      triplet               Debian  platform       qemu                 ELF
    aarch64     aarch64-linux-gnu     arm64   linux/arm64    qemu-aarch64-static  EM_AARCH64, 64-bit
    armhf       arm-linux-gnueabihf   armhf   linux/arm/v7   qemu-arm-static      EM_ARM, 32-bit, hard-float
    x86_64      x86_64-linux-gnu      amd64   linux/amd64    qemu-x86_64-static   EM_X86_64, 64-bit
    riscv64     riscv64-linux-gnu     riscv64 linux/riscv64  qemu-riscv64-static  EM_RISCV, 64-bit, lp64d

arches.toml is read on first use and checked against ROW_SCHEMA / KNOWN_BAD_SCHEMA: an unknown,
missing or mistyped key is one ConfigError naming the file, the row and the key.

Whether a target is native is a question about the host, not the row: `Arch.runs_natively()`
compares it with `host_arch()` (an aarch64 host runs aarch64 natively and x86_64 under
qemu-x86_64-static). Aliases (arm64, armv7l, armv7, amd64, x64, riscv) resolve to these names. The compiler
flags live in the toolchain files (`toolchains/<triplet>.cmake`), not here, so a
CMake user can take a toolchain file without this package. Known-bad combinations
carry the upstream issue that documents them; `check_combination` reports the ones a
build would hit, and `default_cmake_options` already avoids them.
"""

from __future__ import annotations

import difflib
import functools
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._toml import load_toml
from .errors import ConfigError
from .resources import TOOLCHAINS_DIR
from .versions import parse_versions, version_matches


# ELF header flags checked on armhf / riscv64 outputs (values from the psABIs).
EF_ARM_EABI_VER5 = 0x05000000
EF_ARM_ABI_FLOAT_HARD = 0x00000400
EF_RISCV_FLOAT_ABI_DOUBLE = 0x0004


@dataclass(frozen=True, kw_only=True)
class KnownBad:
    """A combination that fails upstream, with the issue that says so and the way around it."""

    arches: tuple[str, ...]
    versions: str                         # version specifier, e.g. ">=2.5" (versions.version_matches)
    when: tuple[tuple[str, str], ...]     # CMake options that trigger it; ON/OFF compared case-insensitively
    gcc_below: int | None = None          # only with GCC older than this major version
    issues: tuple[str, ...]
    reason: str
    avoid: tuple[tuple[str, str], ...]    # CMake options that avoid it

    def describe(self) -> str:
        trigger = " ".join(f"-D{k}={v}" for k, v in self.when)
        if self.gcc_below:
            trigger += f" with GCC < {self.gcc_below}"
        avoid = " ".join(f"-D{k}={v}" for k, v in self.avoid)
        return f"{trigger}: {self.reason} ({', '.join(self.issues)}); use {avoid}"


@dataclass(frozen=True, kw_only=True)
class Arch:
    name: str
    aliases: tuple[str, ...]
    triplet: str
    debian_arch: str
    platform: str                          # container platform (docker/podman --platform)
    cmake_system_processor: str            # what XNNPACK's processor detection expects
    qemu_binary: str                       # qemu-user (static) that runs this target on any other host
    cross_packages: tuple[str, ...]        # Debian packages the builder image needs for this target (x86_64 host)
    foreign_packages: tuple[str, ...] = () # on a host of another arch, if not cross_packages (x86_64's own row)
    elf_machine: str                       # pyelftools e_machine name
    elf_class: int                         # 32 or 64
    elf_flags_set: int = 0                 # e_flags bits every output must carry
    neon: bool = False                     # does every CPU of this target have NEON / ASIMD?
    default_cmake_options: tuple[tuple[str, str], ...] = ()
    notes: str = ""
    known_bad: tuple[KnownBad, ...] = field(default=())

    @property
    def toolchain_file(self) -> Path:
        return TOOLCHAINS_DIR / f"{self.triplet}.cmake"

    @property
    def sysroot(self) -> Path:
        """Where Debian's cross packages put the target's libc (qemu -L uses it)."""
        return Path("/usr") / self.triplet

    def runs_natively(self, host: "str | Arch | None" = None) -> bool:
        """Does `host` (default: this machine) run this target's programs without emulation?
        False means a cross build (host tools first) and qemu-user to run what it made."""
        return self.name == (resolve_arch(host) if host else host_arch()).name

    def toolchain_packages(self, host: "str | Arch | None" = None) -> tuple[str, ...]:
        """Debian packages that give `host` this target's <triplet>-gcc/g++: the native compilers
        for the host's own arch, Debian's cross packages for any other."""
        if self.runs_natively(host):
            return ("build-essential",)
        return self.foreign_packages or self.cross_packages

    def qemu_command(self, host: "str | Arch | None" = None) -> list[str]:
        """argv prefix that runs one of this target's dynamically linked programs on `host`."""
        if self.runs_natively(host):
            return []
        return [self.qemu_binary, "-L", str(self.sysroot)]


# --- the table: tflite_forge/arches.toml -------------------------------------------------

ARCHES_FILE = Path(__file__).resolve().parent / "arches.toml"

# The e_flags names a row's elf_flags may use.
ELF_FLAGS = {"EF_ARM_EABI_VER5": EF_ARM_EABI_VER5, "EF_ARM_ABI_FLOAT_HARD": EF_ARM_ABI_FLOAT_HARD,
             "EF_RISCV_FLOAT_ABI_DOUBLE": EF_RISCV_FLOAT_ABI_DOUBLE}


@dataclass(frozen=True)
class _Key:
    kind: str             # a key of _WHAT
    example: str          # a right value, shown in every error about the key
    required: bool = True


# The schema of one [[arch]] row and of one [[arch.known_bad]] entry (documented at the top of arches.toml).
ROW_SCHEMA = {
    "name": _Key("text", 'name = "aarch64"'),
    "aliases": _Key("texts", 'aliases = ["arm64", "aarch64-linux-gnu"]'),
    "triplet": _Key("text", 'triplet = "aarch64-linux-gnu"'),
    "debian_arch": _Key("text", 'debian_arch = "arm64"'),
    "platform": _Key("text", 'platform = "linux/arm64"'),
    "cmake_system_processor": _Key("text", 'cmake_system_processor = "aarch64"'),
    "qemu_binary": _Key("text", 'qemu_binary = "qemu-aarch64-static"'),
    "cross_packages": _Key("texts", 'cross_packages = ["crossbuild-essential-arm64"]'),
    "foreign_packages": _Key("texts", 'foreign_packages = ["crossbuild-essential-amd64"]', required=False),
    "elf_machine": _Key("text", 'elf_machine = "EM_AARCH64"'),
    "elf_class": _Key("elf_class", "elf_class = 64"),
    "elf_flags": _Key("elf_flags", 'elf_flags = ["EF_ARM_EABI_VER5", "EF_ARM_ABI_FLOAT_HARD"]', required=False),
    "neon": _Key("bool", "neon = true", required=False),
    "default_cmake_options": _Key("options", 'default_cmake_options = { TFLITE_ENABLE_XNNPACK = "OFF" }',
                                  required=False),
    "notes": _Key("text", 'notes = "one sentence"', required=False),
    "known_bad": _Key("tables", "[[arch.known_bad]] tables under the row", required=False),
}
KNOWN_BAD_SCHEMA = {
    "versions": _Key("versions", 'versions = ">=2.14, <2.17"'),
    "when": _Key("options", 'when = { TFLITE_ENABLE_XNNPACK = "ON" }'),
    "gcc_below": _Key("integer", "gcc_below = 10", required=False),
    "issues": _Key("texts", 'issues = ["https://github.com/tensorflow/tensorflow/issues/53545"]'),
    "reason": _Key("text", 'reason = "what fails, in one sentence"'),
    "avoid": _Key("options", 'avoid = { TFLITE_ENABLE_XNNPACK = "OFF" }'),
}
TOP_SCHEMA = {
    "tflite_defaults": _Key("options", '[tflite_defaults] TFLITE_ENABLE_XNNPACK = "ON"', required=False),
    "arch": _Key("tables", "one [[arch]] table per target"),
}

_WHAT = {"text": "a non-empty string", "texts": "a non-empty list of strings", "integer": "a whole number",
         "bool": "true or false", "options": "a table of CMake options to string values",
         "elf_flags": f"a list of flag names ({', '.join(ELF_FLAGS)})", "tables": "an array of tables",
         "versions": "a version range", "elf_class": "32 or 64"}


@dataclass(frozen=True)
class ArchTable:
    arches: tuple[Arch, ...]
    tflite_defaults: dict[str, str]    # TFLite's own defaults for the options the known-bad rules look at
    by_name: dict[str, Arch]           # every name and alias -> its row


def _problem(path: Path, where: str, message: str, example: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {message}; write it as e.g. {example}")


def _value(path: Path, where: str, key: _Key, value: Any) -> Any:
    """The Python value of one key, or one ConfigError saying what the key takes."""
    kind = key.kind
    got = f"got {type(value).__name__} {value!r}"
    wrong = _problem(path, where, f"expected {_WHAT[kind]}, {got}", key.example)
    if kind in ("text", "versions"):
        if not isinstance(value, str) or not value.strip():
            raise wrong
        if kind == "versions":
            try:
                parse_versions(value)
            except ValueError as exc:
                raise _problem(path, where, f"{str(exc)!r} is not OP VERSION (OP one of >= <= > < == !=)",
                               key.example) from None
        return value
    if kind in ("texts", "elf_flags"):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise wrong
        if kind == "elf_flags":
            unknown = [v for v in value if v not in ELF_FLAGS]
            if unknown:
                raise _problem(path, where, f"unknown flag {unknown[0]!r} (known: {', '.join(ELF_FLAGS)})", key.example)
            bits = 0
            for v in value:
                bits |= ELF_FLAGS[v]
            return bits
        return tuple(value)
    if kind in ("integer", "elf_class"):
        if isinstance(value, bool) or not isinstance(value, int) or (kind == "elf_class" and value not in (32, 64)):
            raise wrong
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong
        return value
    if kind == "options":
        if not isinstance(value, dict) or not value or not all(isinstance(v, str) for v in value.values()):
            raise wrong
        return tuple(value.items())
    if kind == "tables":
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            raise wrong
        return value
    raise AssertionError(kind)


def _checked(path: Path, where: str, table: dict[str, Any], schema: dict[str, _Key]) -> dict[str, Any]:
    """Every key of `table` known, every required one present, each of the right type."""
    for key in table:
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1) or [k for k in schema if key in k]
            hint = f"perhaps you meant {close[0]!r}" if close else f"the keys are {', '.join(schema)}"
            raise ConfigError(f"{path}: {where}: unknown key {key!r}; {hint} (the top of the file lists them)")
    out = {}
    for key, spec in schema.items():
        if key in table:
            out[key] = _value(path, f"{where}.{key}", spec, table[key])
        elif spec.required:
            raise ConfigError(f"{path}: {where}: missing key {key!r}; add e.g. {spec.example}")
    return out


def _row(path: Path, index: int, raw: Any) -> Arch:
    label = f"[[arch]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {label}: expected a table; write each row as an [[arch]] table")
    if isinstance(raw.get("name"), str):
        label += f" ({raw['name']!r})"
    row = _checked(path, label, raw, ROW_SCHEMA)
    name = row["name"]
    if "elf_flags" in row:
        row["elf_flags_set"] = row.pop("elf_flags")
    rules = []
    for j, rule in enumerate(row.pop("known_bad", [])):
        rules.append(KnownBad(arches=(name,), **_checked(path, f"{label}.known_bad #{j + 1}", rule, KNOWN_BAD_SCHEMA)))
    return Arch(**row, known_bad=tuple(rules))


def load_arch_table(path: Path = ARCHES_FILE) -> ArchTable:
    """Read and validate arches.toml: a mistake is one ConfigError naming the file, the row and the key."""
    data = load_toml(path, error=ConfigError)
    top = _checked(path, "top level", data, TOP_SCHEMA)
    arches = tuple(_row(path, i, raw) for i, raw in enumerate(top["arch"]))
    by_name: dict[str, Arch] = {}
    for arch in arches:
        for alias in (arch.name, *arch.aliases):
            if alias in by_name:
                raise ConfigError(f"{path}: [[arch]] {arch.name!r}: the name {alias!r} is already taken by "
                                  f"{by_name[alias].name!r}; every name and alias must be unique")
            by_name[alias] = arch
    return ArchTable(arches=arches, tflite_defaults=dict(top.get("tflite_defaults", ())), by_name=by_name)


@functools.cache
def arch_table() -> ArchTable:
    """The checkout's table, read on first use (so a broken file is one error inside a task)."""
    return load_arch_table()


def all_arches() -> tuple[Arch, ...]:
    return arch_table().arches


def arch_names() -> list[str]:
    return [a.name for a in all_arches()]


def resolve_arch(name: str | Arch) -> Arch:
    """'arm64' -> the aarch64 row; an unknown name is one ConfigError listing the valid ones."""
    if isinstance(name, Arch):
        return name
    key = (name or "").strip().lower()
    by_name = arch_table().by_name
    if key in by_name:
        return by_name[key]
    valid = ", ".join(f"{a.name} ({'/'.join(a.aliases[:2])})" for a in all_arches())
    close = difflib.get_close_matches(key, list(by_name), n=1)
    hint = f"; perhaps you meant {by_name[close[0]].name!r}" if close else ""
    raise ConfigError(f"--arch {name!r}: unknown architecture{hint}; valid names: {valid}, or 'all'")


def resolve_arches(spec: str | None) -> list[Arch]:
    """'all' -> every arch; 'aarch64,armhf' -> those two (duplicates dropped, order kept)."""
    if spec is None or not spec.strip():
        raise ConfigError(f"--arch is required here; valid names: {', '.join(arch_names())}, or 'all'")
    if spec.strip().lower() == "all":
        return list(all_arches())
    out: list[Arch] = []
    for part in re.split(r"[\s,]+", spec.strip()):
        if part:
            arch = resolve_arch(part)
            if arch not in out:
                out.append(arch)
    return out


def _option_on(value: str) -> bool:
    return value.strip().upper() in ("ON", "TRUE", "YES", "1", "Y")


def _same_option(a: str, b: str) -> bool:
    truthy = {"ON", "OFF", "TRUE", "FALSE", "YES", "NO", "1", "0", "Y", "N"}
    if a.strip().upper() in truthy and b.strip().upper() in truthy:
        return _option_on(a) == _option_on(b)
    return a == b


def check_combination(arch: str | Arch, version: str, cmake_options: dict[str, str] | None = None,
                      gcc_major: int | None = None) -> list[KnownBad]:
    """The known-bad rules a build of `version` for `arch` with these options would hit."""
    arch = resolve_arch(arch)
    given = cmake_options or {}
    options = dict(arch_table().tflite_defaults)
    options.update(given)
    hits = []
    for bad in arch.known_bad:
        if not version_matches(version, bad.versions):
            continue
        if not all(k in options and _same_option(options[k], v) for k, v in bad.when):
            continue
        if bad.gcc_below is not None and (gcc_major is None or gcc_major >= bad.gcc_below):
            continue
        # Already avoided: every "avoid" option is set as the rule asks.
        if all(k in given and _same_option(given[k], v) for k, v in bad.avoid):
            continue
        hits.append(bad)
    return hits


def default_cmake_options(arch: str | Arch, version: str, gcc_major: int | None = None) -> dict[str, str]:
    """Options this table adds for `arch` (the recipe's own options override them)."""
    arch = resolve_arch(arch)
    options = dict(arch.default_cmake_options)
    for bad in check_combination(arch, version, options, gcc_major=gcc_major):
        options.update(dict(bad.avoid))
    return options


def host_arch() -> Arch:
    """The arch this machine runs natively: the default --arch of build, package and test."""
    machine = platform.machine()
    try:
        return resolve_arch(machine)
    except ConfigError:
        raise ConfigError(f"this machine is {machine!r}, which tflite-forge cannot build on natively; "
                          f"run it on one of: {', '.join(arch_names())}") from None


def resolve_arches_or_host(spec: str | None) -> list[Arch]:
    """--arch as given, or the host's arch when none was given."""
    return resolve_arches(spec) if spec and spec.strip() else [host_arch()]
