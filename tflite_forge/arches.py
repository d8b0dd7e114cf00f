"""Target architectures as data: one row per `--arch`, everything a later step needs.

    --arch      triplet               Debian  platform       qemu                 ELF
    aarch64     aarch64-linux-gnu     arm64   linux/arm64    qemu-aarch64-static  EM_AARCH64, 64-bit
    armhf       arm-linux-gnueabihf   armhf   linux/arm/v7   qemu-arm-static      EM_ARM, 32-bit, hard-float
    x86_64      x86_64-linux-gnu      amd64   linux/amd64    qemu-x86_64-static   EM_X86_64, 64-bit
    riscv64     riscv64-linux-gnu     riscv64 linux/riscv64  qemu-riscv64-static  EM_RISCV, 64-bit, lp64d

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
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .resources import TOOLCHAINS_DIR
from .versions import version_matches


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


_GITHUB = "https://github.com/tensorflow/tensorflow/issues/"

_XNNPACK_ARM32 = KnownBad(
    arches=("armhf",),
    versions=">=2.5",
    when=(("TFLITE_ENABLE_XNNPACK", "ON"),),
    issues=(f"{_GITHUB}53545", f"{_GITHUB}50029", f"{_GITHUB}57364"),
    reason="XNNPACK fails to cross-compile for 32-bit ARM in many releases; the official armhf build turns it off",
    avoid=(("TFLITE_ENABLE_XNNPACK", "OFF"),),
)

_XNNPACK_BF16_I8MM_OLD_GCC = KnownBad(
    arches=("aarch64",),
    versions=">=2.14",
    when=(("TFLITE_ENABLE_XNNPACK", "ON"),),
    gcc_below=10,
    issues=(f"{_GITHUB}68616", f"{_GITHUB}71636"),
    reason="XNNPACK's bf16 and i8mm kernels need GCC >= 10 (-march=armv8.2-a+bf16 / +i8mm)",
    avoid=(("XNNPACK_ENABLE_ARM_BF16", "OFF"), ("XNNPACK_ENABLE_ARM_I8MM", "OFF")),
)

ARCHES: tuple[Arch, ...] = (
    Arch(
        name="aarch64",
        aliases=("arm64", "armv8", "aarch64-linux-gnu"),
        triplet="aarch64-linux-gnu",
        debian_arch="arm64",
        platform="linux/arm64",
        cmake_system_processor="aarch64",
        qemu_binary="qemu-aarch64-static",
        cross_packages=("crossbuild-essential-arm64",),
        elf_machine="EM_AARCH64",
        elf_class=64,
        neon=True,
        notes="ASIMD is mandatory on ARMv8-A; GCC for aarch64 rejects -mfpu=neon (#17001).",
        known_bad=(_XNNPACK_BF16_I8MM_OLD_GCC,),
    ),
    Arch(
        name="armhf",
        aliases=("armv7l", "armv7", "arm", "arm-linux-gnueabihf"),
        triplet="arm-linux-gnueabihf",
        debian_arch="armhf",
        platform="linux/arm/v7",
        cmake_system_processor="armv7",
        qemu_binary="qemu-arm-static",
        cross_packages=("crossbuild-essential-armhf",),
        elf_machine="EM_ARM",
        elf_class=32,
        elf_flags_set=EF_ARM_EABI_VER5 | EF_ARM_ABI_FLOAT_HARD,
        neon=True,
        default_cmake_options=(("TFLITE_ENABLE_XNNPACK", "OFF"),),
        notes="ARMv7-A with NEON-VFPv4 (Raspberry Pi 2 and later in 32-bit mode); keeps its -mfpu flags.",
        known_bad=(_XNNPACK_ARM32,),
    ),
    Arch(
        name="x86_64",
        aliases=("amd64", "x64", "x86-64", "x86_64-linux-gnu"),
        triplet="x86_64-linux-gnu",
        debian_arch="amd64",
        platform="linux/amd64",
        cmake_system_processor="x86_64",
        qemu_binary="qemu-x86_64-static",         # on a non-x86_64 host (e.g. an aarch64 runner)
        cross_packages=("build-essential",),
        foreign_packages=("crossbuild-essential-amd64",),
        elf_machine="EM_X86_64",
        elf_class=64,
    ),
    Arch(
        name="riscv64",
        aliases=("riscv", "rv64", "riscv64-linux-gnu"),
        triplet="riscv64-linux-gnu",
        debian_arch="riscv64",
        platform="linux/riscv64",
        cmake_system_processor="riscv64",
        qemu_binary="qemu-riscv64-static",
        # Debian bookworm has no crossbuild-essential-riscv64: name the compilers and libc directly.
        cross_packages=("gcc-riscv64-linux-gnu", "g++-riscv64-linux-gnu", "libc6-dev-riscv64-cross"),
        elf_machine="EM_RISCV",
        elf_class=64,
        elf_flags_set=EF_RISCV_FLOAT_ABI_DOUBLE,
        notes="Extra target: RV64GC, lp64d ABI (Debian's riscv64 port).",
    ),
)

_BY_NAME = {a.name: a for a in ARCHES}
_ALIASES = {alias: a.name for a in ARCHES for alias in (a.name, *a.aliases)}


def arch_names() -> list[str]:
    return [a.name for a in ARCHES]


def resolve_arch(name: str | Arch) -> Arch:
    """'arm64' -> the aarch64 row; an unknown name is one ConfigError listing the valid ones."""
    if isinstance(name, Arch):
        return name
    key = (name or "").strip().lower()
    if key in _ALIASES:
        return _BY_NAME[_ALIASES[key]]
    valid = ", ".join(f"{a.name} ({'/'.join(a.aliases[:2])})" for a in ARCHES)
    close = difflib.get_close_matches(key, list(_ALIASES), n=1)
    hint = f"; perhaps you meant {_ALIASES[close[0]]!r}" if close else ""
    raise ConfigError(f"--arch {name!r}: unknown architecture{hint}; valid names: {valid}, or 'all'")


def resolve_arches(spec: str | None) -> list[Arch]:
    """'all' -> every arch; 'aarch64,armhf' -> those two (duplicates dropped, order kept)."""
    if spec is None or not spec.strip():
        raise ConfigError(f"--arch is required here; valid names: {', '.join(arch_names())}, or 'all'")
    if spec.strip().lower() == "all":
        return list(ARCHES)
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


# TFLite's own defaults (tensorflow/lite/CMakeLists.txt) for the options the known-bad rules look at.
TFLITE_OPTION_DEFAULTS = {"TFLITE_ENABLE_XNNPACK": "ON"}


def check_combination(arch: str | Arch, version: str, cmake_options: dict[str, str] | None = None,
                      gcc_major: int | None = None) -> list[KnownBad]:
    """The known-bad rules a build of `version` for `arch` with these options would hit."""
    arch = resolve_arch(arch)
    given = cmake_options or {}
    options = dict(TFLITE_OPTION_DEFAULTS)
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
