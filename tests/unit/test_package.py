"""invoke package on a small real build (host g++): layout, determinism, sums, signing, errors."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.fake_build import EPOCH, VERSION, make_fake_build, settings_for
from tflite_forge.errors import PackageError
from tflite_forge.pipeline import run_package
from tflite_forge.tarball import Entry, gzip_bytes, tar_bytes
from tflite_forge.recipe import load_recipe

STEM = f"libtensorflowlite_c-{VERSION}-linux-x86_64"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("pkg")
    fake = make_fake_build(root, "x86_64")
    dist = root / "dist"
    lines: list[str] = []
    run_package(settings_for(fake, dist), log=lines.append)
    return fake, dist, lines


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(path: Path, name: str) -> bytes:
    with tarfile.open(path, "r:gz") as tar:
        return tar.extractfile(f"{STEM}/{name}").read()


def test_layout_is_what_consumers_expect(packaged):
    _, dist, _ = packaged
    members = _members(dist / f"{STEM}.tar.gz")
    rel = {name[len(STEM) + 1:]: m for name, m in members.items() if name != STEM}
    files = {k for k, m in rel.items() if m.isfile()}
    assert files == {
        "include/tensorflow/lite/builtin_ops.h",
        "include/tensorflow/lite/c/c_api.h",
        "include/tensorflow/lite/core/c/c_api.h",
        "include/tensorflow/lite/core/c/c_api_types.h",
        f"lib/libtensorflowlite_c.so.{VERSION}",
        "lib/pkgconfig/tensorflowlite_c.pc",
        "lib/cmake/tensorflowlite_c/tensorflowlite_cConfig.cmake",
        "lib/cmake/tensorflowlite_c/tensorflowlite_cConfigVersion.cmake",
        "share/licenses/tensorflow/LICENSE",
        "share/licenses/xnnpack/LICENSE",
        "share/licenses/flatbuffers/LICENSE",
        "manifest.json",
        "sbom.spdx.json",
    }  # c_api_internal.h and .cc files stay out
    assert rel["lib/libtensorflowlite_c.so.2"].linkname == f"libtensorflowlite_c.so.{VERSION}"
    assert rel["lib/libtensorflowlite_c.so"].linkname == "libtensorflowlite_c.so.2"
    assert all(name == STEM or name.startswith(STEM + "/") for name in members)


def test_members_are_normalised(packaged):
    _, dist, _ = packaged
    raw = (dist / f"{STEM}.tar.gz").read_bytes()
    assert raw[3] & 0x08 == 0 and raw[4:8] == b"\0\0\0\0"       # gzip: no name, mtime 0
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw))) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH)
        assert m.pax_headers == {}
    assert b"ustar\x0000" in gzip.decompress(raw)[:512]          # POSIX ustar, not GNU/pax


def test_library_is_stripped_and_linked_to_its_debug_file(packaged):
    from tflite_forge.elf import elf_facts
    _, dist, _ = packaged
    lib = _read(dist / f"{STEM}.tar.gz", f"lib/libtensorflowlite_c.so.{VERSION}")
    assert b".debug_info" not in lib
    facts = elf_facts(lib)
    assert facts.debuglink == f"libtensorflowlite_c.so.{VERSION}.debug"
    with tarfile.open(dist / f"{STEM}-dbg.tar.gz", "r:gz") as tar:
        debug = tar.extractfile(f"{STEM}/lib/.debug/libtensorflowlite_c.so.{VERSION}.debug").read()
    assert b".debug_info" in debug


def test_pkgconfig_and_cmake_files_are_relocatable(packaged):
    _, dist, _ = packaged
    pc = _read(dist / f"{STEM}.tar.gz", "lib/pkgconfig/tensorflowlite_c.pc").decode()
    assert "prefix=${pcfiledir}/../.." in pc and f"Version: {VERSION}" in pc and "-ltensorflowlite_c" in pc
    config = _read(dist / f"{STEM}.tar.gz", "lib/cmake/tensorflowlite_c/tensorflowlite_cConfig.cmake").decode()
    assert "tensorflowlite::c" in config and "CMAKE_CURRENT_LIST_DIR" in config
    assert "/tmp" not in config and str(packaged[0].root) not in config + pc


def test_cmake_version_file_accepts_same_major_only(packaged, tmp_path):
    _, dist, _ = packaged
    text = _read(dist / f"{STEM}.tar.gz", "lib/cmake/tensorflowlite_c/tensorflowlite_cConfigVersion.cmake").decode()
    (tmp_path / "v.cmake").write_text(text)
    results = {}
    for want in ("2", "2.16.1", "2.17", "3"):
        major = want.split(".")[0]
        script = tmp_path / f"check-{want}.cmake"
        script.write_text(f'set(PACKAGE_FIND_VERSION "{want}")\nset(PACKAGE_FIND_VERSION_MAJOR "{major}")\n'
                          f'set(CMAKE_SIZEOF_VOID_P 8)\ninclude("{tmp_path}/v.cmake")\n'
                          'message("${PACKAGE_VERSION_COMPATIBLE}")\n')
        proc = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True, check=True)
        results[want] = proc.stderr.strip()
    assert results == {"2": "TRUE", "2.16.1": "TRUE", "2.17": "FALSE", "3": "FALSE"}


def test_manifest_lists_every_file_with_its_digest(packaged):
    import hashlib
    _, dist, _ = packaged
    statement = json.loads(_read(dist / f"{STEM}.tar.gz", "manifest.json"))
    digests = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    with tarfile.open(dist / f"{STEM}.tar.gz", "r:gz") as tar:
        files = {m.name[len(STEM) + 1:]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    del files["manifest.json"]
    assert digests == {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["sourceDateEpoch"] == EPOCH
    assert build["internalParameters"]["glibcFloor"] == "2.36"
    names = [d["name"] for d in build["resolvedDependencies"]]
    assert names[:3] == ["tensorflow", "flatbuffers", "xnnpack"] and "patch-set:soname" in names
    assert {"builder-image", "base-image"} <= set(names)


def test_sha256sums_checks_with_coreutils(packaged):
    _, dist, _ = packaged
    sums = (dist / "SHA256SUMS").read_text().splitlines()
    assert [line.split("  ")[1] for line in sums] == [f"{STEM}-dbg.tar.gz", f"{STEM}.tar.gz"]
    subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dist, check=True, capture_output=True)


@pytest.fixture
def gnupg_home(tmp_path, monkeypatch):
    """A throwaway GNUPGHOME with no keys; the gpg-agent gpg starts for it is stopped afterwards."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


@pytest.fixture
def release_key(gnupg_home) -> str:
    """A throwaway signing key in gnupg_home; returns its user id."""
    uid = "release@example.invalid"
    subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                    "--quick-generate-key", f"Release Test <{uid}>", "ed25519", "sign", "1d"],
                   check=True, capture_output=True)
    return uid


def test_sign_makes_a_detached_signature_gpg_verifies(tmp_path, release_key):
    fake = make_fake_build(tmp_path / "b", "x86_64")
    dist = tmp_path / "dist"
    run_package(settings_for(fake, dist), sign="release@example.invalid", log=lambda _: None)
    proc = subprocess.run(["gpg", "--batch", "--verify", str(dist / "SHA256SUMS.asc"), str(dist / "SHA256SUMS")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (dist / "SHA256SUMS").write_text((dist / "SHA256SUMS").read_text() + "0" * 64 + "  evil.tar.gz\n")
    assert subprocess.run(["gpg", "--batch", "--verify", str(dist / "SHA256SUMS.asc"), str(dist / "SHA256SUMS")],
                          capture_output=True).returncode != 0
    # Packaging again without --sign drops the signature that no longer matches.
    run_package(settings_for(fake, dist), log=lambda _: None)
    assert not (dist / "SHA256SUMS.asc").exists()


def test_unknown_key_is_one_line_and_leaves_no_signature(tmp_path, gnupg_home):
    fake = make_fake_build(tmp_path / "b", "x86_64")
    with pytest.raises(PackageError, match="gpg could not sign SHA256SUMS with key 'nobody@example.invalid'") as err:
        run_package(settings_for(fake, tmp_path / "dist"), sign="nobody@example.invalid", log=lambda _: None)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in (tmp_path / "dist").iterdir() if p.name.startswith("SHA256SUMS")) == ["SHA256SUMS"]


def test_failed_signing_leaves_no_stale_signature_beside_new_sums(tmp_path, release_key):
    fake = make_fake_build(tmp_path / "b", "x86_64")
    dist = tmp_path / "dist"
    run_package(settings_for(fake, dist), sign="release@example.invalid", log=lambda _: None)
    assert (dist / "SHA256SUMS.asc").is_file()
    (dist / "another-release.tar.gz").write_bytes(gzip_bytes(b"x"))   # the next sums differ
    with pytest.raises(PackageError, match="gpg could not sign SHA256SUMS"):
        run_package(settings_for(fake, dist), sign="nobody@example.invalid", log=lambda _: None)
    assert "another-release.tar.gz" in (dist / "SHA256SUMS").read_text()
    assert not (dist / "SHA256SUMS.asc").exists(), "a signature over the old sums was left beside the new ones"
    assert not list(dist.glob(".SHA256SUMS.asc*")), "gpg's temp file was left behind"


def test_missing_build_output_says_to_build(tmp_path):
    fake = make_fake_build(tmp_path, "x86_64")
    from tflite_forge.arches import resolve_arch
    from tflite_forge.package import package_cell
    from tflite_forge.workspace import Cell, Workspace
    with pytest.raises(PackageError, match=r"run `invoke build --version 2.16.1 --arch aarch64` first"):
        package_cell(Workspace.of(settings_for(fake, tmp_path / "dist", arch="aarch64")),
                     Cell(load_recipe(fake.recipe_path), resolve_arch("aarch64")), log=lambda _: None)
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())


def test_package_pulls_in_a_missing_build(tmp_path):
    """invoke package on a cell never built starts the build (here: stops at its offline fetch)."""
    import dataclasses
    from tflite_forge.errors import OfflineError
    fake = make_fake_build(tmp_path, "x86_64")
    settings = dataclasses.replace(settings_for(fake, tmp_path / "dist", arch="aarch64"), offline=True)
    lines: list[str] = []
    with pytest.raises(OfflineError):
        run_package(settings, log=lines.append)
    assert any("no build output yet; building it first" in line for line in lines)
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())


def test_failed_verification_writes_nothing(tmp_path):
    fake = make_fake_build(tmp_path, "x86_64", extra_export=True)
    lines: list[str] = []
    with pytest.raises(PackageError, match="verification problem"):
        run_package(settings_for(fake, tmp_path / "dist"), log=lines.append)
    assert any("helper_leaked_symbol" in line for line in lines)
    assert list((tmp_path / "dist").iterdir()) == []


def test_library_without_soname_is_refused_with_the_fix(tmp_path):
    fake = make_fake_build(tmp_path, "x86_64", soname=False)
    with pytest.raises(PackageError, match="enable the recipe's `soname` patch set"):
        run_package(settings_for(fake, tmp_path / "dist"), log=lambda _: None)


def test_tar_bytes_ignore_input_order_and_reject_duplicates():
    a = [Entry("b.txt", b"b"), Entry("a/x.h", b"x"), Entry("lib/l.so", link="l.so.1")]
    assert tar_bytes("top", a, 5) == tar_bytes("top", list(reversed(a)), 5)
    assert gzip_bytes(b"same") == gzip_bytes(b"same")
    with pytest.raises(PackageError, match="duplicate member"):
        tar_bytes("top", [Entry("a", b"1"), Entry("a", b"2")], 5)


def test_umask_does_not_reach_modes(tmp_path):
    old = os.umask(0o077)
    try:
        fake = make_fake_build(tmp_path, "x86_64")
        run_package(settings_for(fake, tmp_path / "dist"), log=lambda _: None)
    finally:
        os.umask(old)
    modes = {m.name.rsplit("/", 1)[-1]: m.mode for m in _members(tmp_path / "dist" / f"{STEM}.tar.gz").values()}
    assert modes["manifest.json"] == 0o644 and modes["lib"] == 0o755 and modes["libtensorflowlite_c.so"] == 0o777
    assert oct(os.stat(tmp_path / "dist" / f"{STEM}.tar.gz").st_mode & 0o777) == "0o644"
