"""The arch table: aliases, one error listing valid names, toolchain files, known-bad rules."""

from __future__ import annotations

import re

import pytest

from tflite_forge.arches import (ARCHES, EF_ARM_ABI_FLOAT_HARD, arch_names, check_combination,
                                 default_cmake_options, host_arch, resolve_arch, resolve_arches)
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


def test_rows_are_consistent_with_their_toolchain_files():
    for arch in ARCHES:
        text = arch.toolchain_file.read_text()
        assert arch.toolchain_file.name == f"{arch.triplet}.cmake"
        assert f"set(TFLITE_FORGE_TRIPLET {arch.triplet})" in text
        assert f"set(CMAKE_SYSTEM_PROCESSOR {arch.cmake_system_processor})" in text
        if arch.qemu_binary:
            assert re.search(rf"set\(CMAKE_CROSSCOMPILING_EMULATOR {re.escape(arch.qemu_binary)} ", text)
            assert "CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY" in text
        assert arch.cross_packages
    armhf = resolve_arch("armhf")
    assert armhf.elf_flags_set & EF_ARM_ABI_FLOAT_HARD
    assert (armhf.platform, armhf.debian_arch, armhf.elf_class) == ("linux/arm/v7", "armhf", 32)
    # XNNPACK's processor check: 32-bit ARM must match ^armv[5-8], 64-bit must be exactly aarch64.
    assert re.match(r"^armv[5-8]", armhf.cmake_system_processor)
    assert resolve_arch("arm64").cmake_system_processor == "aarch64"


def test_aarch64_toolchain_has_no_mfpu_flag():
    text = resolve_arch("aarch64").toolchain_file.read_text()
    assert "-mfpu" not in "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))


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
    assert all(a.qemu_binary and a.qemu_binary.startswith("qemu-") for a in ARCHES)


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
