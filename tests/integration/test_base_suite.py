"""An older Debian suite as the builder's base: the glibc floor follows it.

`invoke image --bootstrap --debian-suite bullseye` makes tflite-forge/debian-base:bullseye (glibc 2.31,
GCC 10); the miniature built on it for aarch64 passes `--glibc-max 2.31` (it loads on Debian 11 /
Ubuntu 20.04 boards), while the default bookworm build (glibc 2.36) fails that check with one line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tflite_forge.elf import version_key

pytestmark = pytest.mark.integration

BULLSEYE = "tflite-forge/debian-base:bullseye"


def glibc_needs(lib: Path) -> list[str]:
    with open(lib, "rb") as fh:
        section = ELFFile(fh).get_section_by_name(".gnu.version_r")
        assert section is not None, f"{lib} has no version references"
        return sorted({aux.name for _, auxes in section.iter_versions() for aux in auxes
                       if aux.name.startswith("GLIBC_")}, key=version_key)


def compilers_in(lib: Path) -> set[str]:
    """GCC versions in .comment: one per compiler that made an object linked in."""
    with open(lib, "rb") as fh:
        comment = ELFFile(fh).get_section_by_name(".comment")
        return set(re.findall(rb"GCC: \([^)]*\) (\d+)\.", comment.data())) if comment else set()


def only_tarball(dist: Path) -> Path:
    found = [p for p in dist.glob("libtensorflowlite_c-*-linux-aarch64.tar.gz")]
    assert len(found) == 1, sorted(p.name for p in dist.iterdir())
    return found[0]


def test_bullseye_base_meets_glibc_2_31_and_bookworm_does_not(miniature, base_image_docker, docker_engine, forge,
                                                              tmp_path):
    # The debootstrap tarball is made once per host (default cache dir); the import is seconds.
    made = forge("image", "--bootstrap", "--debian-suite=bullseye", "--engine=docker", check=True, timeout=1200)
    assert f"{BULLSEYE} " in made.stdout and "glibc 2.31" in made.stdout, made.stdout

    # bullseye: builder image on that base, build, package with the check (its own work and dist dirs)
    env = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / "work"),
           "TFLITE_FORGE_DIST_DIR": str(tmp_path / "dist-bullseye")}
    cell = [*miniature.args, "--arch=aarch64", "--engine=docker"]
    forge("build", *cell, f"--base-image={BULLSEYE}", "package", "--glibc-max=2.31", env=env, check=True,
          timeout=2400)
    out = tmp_path / "work" / "out"
    (cell_dir,) = [p for p in out.iterdir() if p.name.endswith("-aarch64")]
    info = json.loads((cell_dir / "build-info.json").read_text())
    assert info["base_image"]["ref"] == BULLSEYE
    assert info["glibc_floor"] == "2.31" and info["compilers"]["gcc"].startswith("10.")
    lib = next(p for p in (cell_dir / "lib").glob("libtensorflowlite_c.so.*") if not p.is_symlink())
    assert compilers_in(lib) == {b"10"}, "every object was compiled by bullseye's GCC 10, none reused from another image"
    needs = glibc_needs(lib)
    assert needs and version_key(needs[-1]) <= version_key("GLIBC_2.31"), needs
    tarball = only_tarball(tmp_path / "dist-bullseye")
    forge("verify", str(tarball), "--glibc-max=2.31", env=env, check=True, timeout=300)

    # bookworm (the default base): the same check fails, in one line naming the version and the fix
    env_default = {**miniature.env, "TFLITE_FORGE_DIST_DIR": str(tmp_path / "dist-bookworm")}
    proc = forge("package", *cell, "--glibc-max=2.31", env=env_default, timeout=2400)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if "--glibc-max 2.31" in line]
    assert len(problems) == 1 and re.search(r"needs GLIBC_2\.(3[2-9]|[4-9]\d)", problems[0]), proc.stdout + proc.stderr
    assert "nothing was written to dist/" in proc.stderr.strip().splitlines()[-1]
    assert not list((tmp_path / "dist-bookworm").glob("*.tar.gz"))


def test_missing_suite_base_says_how_to_make_it(miniature, docker_engine, forge, tmp_path):
    """A suite nobody bootstrapped: build stops before any container, naming the command (no pull)."""
    env = {**miniature.env, "TFLITE_FORGE_WORK_DIR": str(tmp_path / "work")}
    ref = "tflite-forge/debian-base:buster"
    assert os.system(f"docker image inspect {ref} >/dev/null 2>&1") != 0, f"{ref} exists here; the test needs it absent"
    proc = forge("build", *miniature.args, "--arch=aarch64", "--engine=docker", f"--base-image={ref}", env=env,
                 timeout=600)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "`sudo invoke image --bootstrap --debian-suite buster`" in last, proc.stderr
