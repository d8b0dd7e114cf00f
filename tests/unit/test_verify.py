"""invoke verify: each broken property is caught, and each failure is one line naming file and fix."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.fake_build import VERSION, make_fake_build, settings_for
from tflite_forge.errors import PackageError
from tflite_forge.package import assemble, collect_inputs
from tflite_forge.pipeline import run_package
from tflite_forge.tarball import gzip_bytes, tar_bytes
from tflite_forge.variants import LIB_NAME
from tflite_forge.workspace import Cell, Workspace
from tflite_forge.recipe import load_recipe
from tflite_forge.verify import build_path_strings, run_verify, verify_tarball

STEM = f"libtensorflowlite_c-{VERSION}-linux-x86_64"
LIB = f"lib/{LIB_NAME}.so.{VERSION}"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    fake = make_fake_build(root, "x86_64")
    run_package(settings_for(fake, root / "dist"), log=lambda _: None)
    return fake, root / "dist" / f"{STEM}.tar.gz"


def _rewrite(src: Path, dest: Path, change) -> Path:
    """Copy a tarball, letting change(name, data) return new bytes (or None to drop the member)."""
    out = io.BytesIO()
    with tarfile.open(src, "r:gz") as tin, tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.isfile():
                data = change(m.name[len(STEM) + 1:], data)
                if data is None:
                    continue
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
    dest.write_bytes(gzip_bytes(out.getvalue()))
    return dest


def _package_unverified(fake, tmp_path) -> Path:
    """Assemble without package's built-in verification, to inspect what verify says."""
    from tflite_forge.arches import resolve_arch
    settings = settings_for(fake, tmp_path / "dist")
    inputs = collect_inputs(Workspace.of(settings), Cell(load_recipe(fake.recipe_path), resolve_arch(fake.arch)))
    entries, _, _ = assemble(inputs)
    path = tmp_path / f"{STEM}.tar.gz"
    path.write_bytes(gzip_bytes(tar_bytes(STEM, entries, inputs.source_date_epoch)))
    return path


def test_good_artifact_passes_and_reports_glibc(good):
    _, tarball = good
    report = verify_tarball(tarball)
    assert report.problems == []
    assert report.facts.machine == "EM_X86_64" and report.facts.soname == "libtensorflowlite_c.so.2"
    assert report.facts.highest("GLIBC_").startswith("GLIBC_2.")
    assert report.facts.highest("GLIBCXX_").startswith("GLIBCXX_3.4")
    assert "libstdc++.so.6" in report.facts.needed
    assert all(s.startswith("TfLite") or s.startswith("_Z") for s in report.facts.exported)


def test_glibc_max_is_enforced_naming_the_symbols(good):
    _, tarball = good
    report = verify_tarball(tarball, glibc_max="2.2")
    [line] = report.problems
    assert line.startswith(f"{STEM}.tar.gz: {LIB}: needs GLIBC_2.") and "(> --glibc-max 2.2) via" in line
    assert "build on an older base image, e.g. `invoke image --bootstrap --debian-suite bullseye`" in line
    assert verify_tarball(tarball, glibc_max="2.99").problems == []


def test_wrong_arch_is_named(good):
    _, tarball = good
    [line] = verify_tarball(tarball, arch="aarch64").problems
    assert "is EM_X86_64 64-bit, not EM_AARCH64 64-bit for aarch64" in line and "--arch aarch64" in line


def test_altered_file_and_unlisted_file_fail_the_digest_check(good, tmp_path):
    _, tarball = good
    changed = _rewrite(tarball, tmp_path / "changed.tar.gz",
                       lambda name, data: data + b"/* edited */\n" if name.endswith("c_api_types.h") else data)
    [line] = verify_tarball(changed).problems
    assert "include/tensorflow/lite/core/c/c_api_types.h: sha256 differs from manifest.json" in line
    dropped = _rewrite(tarball, tmp_path / "dropped.tar.gz",
                       lambda name, data: None if name == "share/licenses/xnnpack/LICENSE" else data)
    assert any("share/licenses/xnnpack/LICENSE: listed in manifest.json but missing" in p
               for p in verify_tarball(dropped).problems)


def test_tar_and_gzip_metadata_are_checked(good, tmp_path):
    _, tarball = good
    raw = gzip.decompress(tarball.read_bytes())
    named = tmp_path / "named.tar.gz"
    with gzip.GzipFile(filename="x.tar", mode="wb", fileobj=open(named, "wb"), mtime=12345) as gz:
        gz.write(raw)
    problems = verify_tarball(named).problems
    assert any("records a file name" in p for p in problems) and any("records a timestamp" in p for p in problems)


def test_unmapped_build_paths_are_found(tmp_path):
    fake = make_fake_build(tmp_path, "x86_64", map_paths=False)
    path = _package_unverified(fake, tmp_path)
    problems = [p for p in verify_tarball(path).problems if "build-machine paths" in p]
    assert len(problems) == 1 and LIB in problems[0] and "-ffile-prefix-map" in problems[0]


def test_leaked_exports_are_named(tmp_path):
    fake = make_fake_build(tmp_path, "x86_64", extra_export=True)
    [line] = verify_tarball(_package_unverified(fake, tmp_path)).problems
    assert "non-C-API symbol(s) (helper_leaked_symbol" in line and "version_script.lds" in line


def test_build_path_strings_match_path_starts_only():
    data = b"\0/work/src/a.c\0tensorflow/lite/build/x.cc\0/data/local/tmp/\0path=/home/u/x\0/proc/cpuinfo\0"
    assert build_path_strings(data) == ["/work/src/a.c", "path=/home/u/x"]
    assert build_path_strings(b"\0/opt/ci/job/7/x.c\0", ["/opt/ci/job/7"]) == ["/opt/ci/job/7/x.c"]


def test_run_verify_prints_each_problem_then_fails_in_one_line(good, tmp_path):
    fake, tarball = good
    lines: list[str] = []
    with pytest.raises(PackageError) as err:
        run_verify(settings_for(fake, tmp_path), str(tarball), glibc_max="2.2", log=lines.append)
    assert "1 verification problem(s)" in str(err.value) and "\n" not in str(err.value)
    assert lines[0].startswith("verify: ") and "--glibc-max" in lines[0]


def test_not_a_tarball_is_one_clear_line(tmp_path, good):
    fake, _ = good
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(PackageError, match="not a readable .tar.gz"):
        verify_tarball(bad)
    with pytest.raises(PackageError, match="cannot read"):
        verify_tarball(tmp_path / "missing.tar.gz")


def _corrupt_deflate(src: Path, dest: Path) -> Path:
    """Keep the gzip header, damage the deflate stream: gzip.decompress raises zlib.error (not OSError)."""
    raw = bytearray(src.read_bytes())
    for i in range(20, 60):
        raw[i] ^= 0xFF
    dest.write_bytes(bytes(raw))
    return dest


def test_corrupt_deflate_stream_is_one_line_naming_the_file(good, tmp_path):
    _, tarball = good
    bad = _corrupt_deflate(tarball, tmp_path / f"{STEM}.tar.gz")
    with pytest.raises(PackageError, match=r"not a readable \.tar\.gz") as err:
        verify_tarball(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_invoke_verify_on_a_corrupt_tarball_prints_no_traceback(good, tmp_path):
    _, tarball = good
    bad = _corrupt_deflate(tarball, tmp_path / f"{STEM}.tar.gz")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "invoke", "verify", str(bad)], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == PackageError.exit_code, proc.stderr
    assert "Traceback" not in proc.stderr and f"{bad}: not a readable .tar.gz" in proc.stderr
