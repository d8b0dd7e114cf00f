"""The arch table (arches.toml): aliases, one error listing valid names, the schema, toolchain files,
known-bad rules."""

from __future__ import annotations

import re

import pytest

from tflite_forge.arches import (ARCHES_FILE, EF_ARM_ABI_FLOAT_HARD, EF_ARM_EABI_VER5,
                                 EF_RISCV_FLOAT_ABI_DOUBLE, KNOWN_BAD_SCHEMA, ROW_SCHEMA, TOP_SCHEMA, arch_names,
                                 arch_table, check_combination, default_cmake_options, host_arch, load_arch_table,
                                 all_arches, resolve_arch, resolve_arches)
from tflite_forge.errors import ConfigError


@pytest.mark.parametrize("alias,name", [("arm64", "aarch64"), ("AARCH64", "aarch64"), ("armv7l", "armhf"),
                                        ("armv7", "armhf"), ("amd64", "x86_64"), ("riscv64", "riscv64")])
def test_aliases(alias, name):
    assert resolve_arch(alias).name == name


def test_unknown_arch_is_one_error_listing_valid_names():
    with pytest.raises(ConfigError) as err:
        resolve_arch("arm46")
    msg = str(err.value)
    assert "\n" not in msg
    for name in arch_names():
        assert name in msg
    assert err.value.exit_code == 2


def test_all_and_lists():
    assert [a.name for a in resolve_arches("all")] == ["aarch64", "armhf", "x86_64", "riscv64"]
    assert [a.name for a in resolve_arches("arm64, armhf,aarch64")] == ["aarch64", "armhf"]
    with pytest.raises(ConfigError):
        resolve_arches("aarch64,nope")


def _cmake_sets(text: str) -> dict[str, str]:
    """set(NAME value) of a toolchain file, with ${TFLITE_FORGE_TRIPLET} filled in."""
    values = dict(re.findall(r"^\s*set\((\w+) ([^)]*)\)", text, re.MULTILINE))
    triplet = values.get("TFLITE_FORGE_TRIPLET", "")
    return {k: v.replace("${TFLITE_FORGE_TRIPLET}", triplet) for k, v in values.items()}


@pytest.mark.parametrize("name", ["aarch64", "armhf", "x86_64", "riscv64"])
def test_each_toolchain_file_agrees_with_its_row(name):
    """What a toolchain file repeats from its arches.toml row: edit one without the other and this fails."""
    arch = resolve_arch(name)
    assert arch.toolchain_file.name == f"{arch.triplet}.cmake" and arch.toolchain_file.is_file()
    text = arch.toolchain_file.read_text()
    values = _cmake_sets(text)
    assert values["TFLITE_FORGE_TRIPLET"] == arch.triplet
    assert values["CMAKE_SYSTEM_PROCESSOR"] == arch.cmake_system_processor
    assert (values["CMAKE_C_COMPILER"], values["CMAKE_CXX_COMPILER"]) == (f"{arch.triplet}-gcc", f"{arch.triplet}-g++")
    assert values["CMAKE_FIND_ROOT_PATH"] == str(arch.sysroot)
    other_host = "riscv64" if name == "x86_64" else "x86_64"
    assert values["CMAKE_CROSSCOMPILING_EMULATOR"].split() == arch.qemu_command(other_host)
    assert "CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY" in text
    # The header comment names the Debian arch and the packages that give another host these compilers.
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert f"Debian {arch.debian_arch}" in header
    for package in arch.toolchain_packages(other_host):
        assert package in header, package


def test_rows_hold_the_values_of_the_table():
    armhf = resolve_arch("armhf")
    assert armhf.elf_flags_set == EF_ARM_EABI_VER5 | EF_ARM_ABI_FLOAT_HARD
    assert (armhf.platform, armhf.debian_arch, armhf.elf_class, armhf.elf_machine) == ("linux/arm/v7", "armhf", 32,
                                                                                       "EM_ARM")
    assert armhf.aliases == ("armv7l", "armv7", "arm", "arm-linux-gnueabihf") and armhf.neon
    assert armhf.default_cmake_options == (("TFLITE_ENABLE_XNNPACK", "OFF"),)
    (bad,) = armhf.known_bad
    assert (bad.arches, bad.versions, bad.when, bad.gcc_below, bad.avoid) == (
        ("armhf",), ">=2.5", (("TFLITE_ENABLE_XNNPACK", "ON"),), None, (("TFLITE_ENABLE_XNNPACK", "OFF"),))
    assert bad.issues[0] == "https://github.com/tensorflow/tensorflow/issues/53545" and len(bad.issues) == 3
    riscv = resolve_arch("riscv64")
    assert riscv.cross_packages == ("gcc-riscv64-linux-gnu", "g++-riscv64-linux-gnu", "libc6-dev-riscv64-cross")
    assert (riscv.elf_flags_set, riscv.foreign_packages, riscv.neon, riscv.known_bad) == (EF_RISCV_FLOAT_ABI_DOUBLE,
                                                                                          (), False, ())
    x86 = resolve_arch("x86_64")
    assert (x86.cross_packages, x86.foreign_packages, x86.elf_flags_set) == (
        ("build-essential",), ("crossbuild-essential-amd64",), 0)
    (old_gcc,) = resolve_arch("aarch64").known_bad
    assert old_gcc.gcc_below == 10 and old_gcc.avoid == (("XNNPACK_ENABLE_ARM_BF16", "OFF"),
                                                         ("XNNPACK_ENABLE_ARM_I8MM", "OFF"))
    # XNNPACK's processor check: 32-bit ARM must match ^armv[5-8], 64-bit must be exactly aarch64.
    assert re.match(r"^armv[5-8]", armhf.cmake_system_processor)
    assert resolve_arch("arm64").cmake_system_processor == "aarch64"
    assert arch_table().tflite_defaults == {"TFLITE_ENABLE_XNNPACK": "ON"}


def test_the_file_header_documents_every_key():
    header = "\n".join(line for line in ARCHES_FILE.read_text().splitlines() if line.startswith("#"))
    for key in (*ROW_SCHEMA, *KNOWN_BAD_SCHEMA, *TOP_SCHEMA):
        assert re.search(rf"\b{key}\b", header), key


def _broken_table(tmp_path, old: str, new: str):
    text = ARCHES_FILE.read_text()
    assert old in text
    path = tmp_path / "arches.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_arch_table(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and err.value.exit_code == 2
    return msg


def test_an_unknown_key_names_the_row_and_the_key_it_meant(tmp_path):
    msg = _broken_table(tmp_path, 'qemu_binary = "qemu-arm-static"', 'qemu = "qemu-arm-static"')
    assert "[[arch]] #2 ('armhf'): unknown key 'qemu'; perhaps you meant 'qemu_binary'" in msg
    msg = _broken_table(tmp_path, "gcc_below = 10", "gcc_bellow = 10")
    assert "[[arch]] #1 ('aarch64').known_bad #1: unknown key 'gcc_bellow'; perhaps you meant 'gcc_below'" in msg


def test_a_wrong_type_says_what_the_key_takes(tmp_path):
    msg = _broken_table(tmp_path, "elf_class = 32", 'elf_class = "32"')
    assert msg.endswith("[[arch]] #2 ('armhf').elf_class: expected 32 or 64, got str '32'; "
                        "write it as e.g. elf_class = 64")
    msg = _broken_table(tmp_path, 'cross_packages = ["crossbuild-essential-armhf"]',
                        'cross_packages = "crossbuild-essential-armhf"')
    assert "('armhf').cross_packages: expected a non-empty list of strings" in msg
    msg = _broken_table(tmp_path, '"EF_ARM_ABI_FLOAT_HARD"]', '"EF_ARM_HARD"]')
    assert "('armhf').elf_flags: unknown flag 'EF_ARM_HARD'" in msg
    msg = _broken_table(tmp_path, 'versions = ">=2.5"', 'versions = "2.5+"')
    assert "('armhf').known_bad #1.versions: '2.5+' is not OP VERSION" in msg
    assert "neon = true" in _broken_table(tmp_path, "neon = true", 'neon = "yes"')


def test_a_missing_key_says_what_to_add(tmp_path):
    msg = _broken_table(tmp_path, 'debian_arch = "riscv64"\n', "")
    assert msg.endswith("[[arch]] #4 ('riscv64'): missing key 'debian_arch'; add e.g. debian_arch = \"arm64\"")
    msg = _broken_table(tmp_path, '[[arch]]\nname = "x86_64"\n', "[[arch]]\n")
    assert "[[arch]] #3: missing key 'name'" in msg
    msg = _broken_table(tmp_path, 'aliases = ["riscv", "rv64", "riscv64-linux-gnu"]', 'aliases = ["arm64"]')
    assert "the name 'arm64' is already taken by 'aarch64'" in msg


def test_aarch64_toolchain_has_no_mfpu_flag():
    text = resolve_arch("aarch64").toolchain_file.read_text()
    assert "-mfpu" not in "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def test_known_bad_xnnpack_on_armhf():
    hits = check_combination("armhf", "2.16.1", {"TFLITE_ENABLE_XNNPACK": "ON"})
    assert len(hits) == 1 and "53545" in hits[0].describe() and "TFLITE_ENABLE_XNNPACK=OFF" in hits[0].describe()
    # TFLite's default is ON, so no options at all is the bad combination too.
    assert check_combination("armhf", "2.16.1")
    assert check_combination("armhf", "2.16.1", {"TFLITE_ENABLE_XNNPACK": "OFF"}) == []
    assert default_cmake_options("armhf", "2.16.1") == {"TFLITE_ENABLE_XNNPACK": "OFF"}


def test_known_bad_bf16_i8mm_only_with_old_gcc():
    assert check_combination("aarch64", "2.16.1", gcc_major=12) == []
    (hit,) = check_combination("aarch64", "2.16.1", gcc_major=8)
    assert "68616" in hit.describe() and "71636" in hit.describe()
    assert default_cmake_options("aarch64", "2.16.1", gcc_major=8) == {
        "XNNPACK_ENABLE_ARM_BF16": "OFF", "XNNPACK_ENABLE_ARM_I8MM": "OFF"}
    assert check_combination("aarch64", "2.16.1", {"XNNPACK_ENABLE_ARM_BF16": "OFF", "XNNPACK_ENABLE_ARM_I8MM": "OFF"},
                             gcc_major=8) == []
    assert default_cmake_options("aarch64", "2.16.1", gcc_major=12) == {}


def test_native_is_a_function_of_the_host_not_of_x86_64():
    x86, arm64 = resolve_arch("x86_64"), resolve_arch("aarch64")
    assert x86.runs_natively("x86_64") and not x86.runs_natively("aarch64")
    assert arm64.runs_natively("arm64") and not arm64.runs_natively("amd64")
    assert x86.qemu_command("x86_64") == []
    assert x86.qemu_command("aarch64") == ["qemu-x86_64-static", "-L", "/usr/x86_64-linux-gnu"]
    assert arm64.qemu_command("aarch64") == []
    assert arm64.qemu_command("x86_64")[0] == "qemu-aarch64-static"
    # Compilers: the host's own arch uses build-essential, every other one Debian's cross packages.
    assert x86.toolchain_packages("x86_64") == ("build-essential",)
    assert x86.toolchain_packages("aarch64") == ("crossbuild-essential-amd64",)
    assert arm64.toolchain_packages("aarch64") == ("build-essential",)
    assert arm64.toolchain_packages("x86_64") == ("crossbuild-essential-arm64",)
    assert all(a.qemu_binary and a.qemu_binary.startswith("qemu-") for a in all_arches())


def test_this_hosts_arch_runs_natively_and_the_others_through_a_real_qemu():
    import shutil
    import subprocess

    host = host_arch()
    assert host.runs_natively() and host.qemu_command() == []
    # Every row's qemu binary is a real program: on this host it runs a host program as its arch would
    # be run from another host (qemu-x86_64-static on an aarch64 runner, qemu-aarch64-static here).
    qemu = shutil.which(host.qemu_binary)
    assert qemu, f"{host.qemu_binary} missing: apt-get install qemu-user-static (ci/setup-host.sh does)"
    proc = subprocess.run([qemu, "/bin/echo", "emulated"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "emulated\n", proc.stderr
