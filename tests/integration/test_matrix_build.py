"""`invoke fetch build package --arch all` on the miniature: every arch built in its own process,
a board while it runs and a summary at the end, one SHA256SUMS over all of them."""

import pytest

from tflite_forge.arches import arch_names

pytestmark = pytest.mark.integration


def test_all_arches_build_and_package_with_a_board_and_summary(forge, miniature, docker_engine, base_image_docker,
                                                               tmp_path):
    dist = tmp_path / "dist"
    env = dict(miniature.env, TFLITE_FORGE_DIST_DIR=str(dist))
    proc = forge("fetch", "build", "package", *miniature.args, "--arch=all", "--engine=docker", "--parallel=2",
                 env=env, timeout=2400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "matrix summary" in proc.stderr
    for arch in arch_names():
        assert f"2.16.1/{arch}" in proc.stderr
        assert (dist / f"libtensorflowlite_c-2.16.1-linux-{arch}.tar.gz").is_file()
    listed = {line.split()[1] for line in (dist / "SHA256SUMS").read_text().splitlines()}
    assert len(listed) == 2 * len(arch_names())   # each release and its -dbg, from parallel cells
