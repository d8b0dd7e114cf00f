"""invoke selftest: the whole chain on the miniature from a loopback mirror, as a new user runs it."""

import tarfile

import pytest

pytestmark = pytest.mark.integration


def test_selftest_builds_packages_and_smoke_tests_host_and_aarch64(forge, docker_engine, base_image_docker, tmp_path):
    work = tmp_path / "work"
    proc = forge("selftest", "--engine=docker", env={"TFLITE_FORGE_WORK_DIR": str(work)}, timeout=1500)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "selftest: ok" in proc.stdout
    assert "matrix summary" in proc.stderr
    dist = work / "selftest" / "dist"
    tarballs = sorted(p.name for p in dist.glob("libtensorflowlite_c-*-linux-*.tar.gz") if "-dbg" not in p.name)
    assert tarballs == ["libtensorflowlite_c-2.16.1-linux-aarch64.tar.gz", "libtensorflowlite_c-2.16.1-linux-x86_64.tar.gz"]
    sums = (dist / "SHA256SUMS").read_text()
    for name in tarballs:
        assert name in sums
    log = (work / "selftest" / "work" / "logs" / "matrix" / "tensorflow-2.16.1-aarch64.log").read_text()
    assert "smoke: ok: {1, 3} -> {3, 9}" in log and "qemu" in log
    with tarfile.open(dist / tarballs[0]) as tar:
        assert any(m.name.endswith("lib/libtensorflowlite_c.so.2.16.1") for m in tar.getmembers())


def test_selftest_without_a_usable_engine_is_one_line(forge, tmp_path):
    proc = forge("selftest", f"--engine={tmp_path / 'podman'}", env={"TFLITE_FORGE_WORK_DIR": str(tmp_path / "w")},
                 timeout=300)
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.startswith("tflite-forge:")]
    assert lines and "Traceback" not in proc.stderr + proc.stdout
