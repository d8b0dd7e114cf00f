"""Listing by labels means every label, on every engine: podman ORs several `--filter label=...`
for volumes, so `invoke clean --build` on podman once took ccache volumes and other work dirs' trees."""

from __future__ import annotations

import secrets

import pytest

from tflite_forge import container as ct


@pytest.mark.parametrize("which", ["docker", "podman"])
def test_volumes_and_containers_are_listed_by_all_their_labels(which, request):
    engine = request.getfixturevalue(f"{which}_engine")
    tag = secrets.token_hex(3)
    names = {kind: f"tflite-forge-labels-{tag}-{kind}" for kind in ("a", "b")}
    try:
        for kind, name in names.items():
            ct.ensure_volume(engine, name, (("io.tflite-forge.kind", kind), ("io.tflite-forge.test", tag)))
        mine = ("io.tflite-forge.test", tag)
        assert ct.list_volumes(engine, (("io.tflite-forge.kind", "a"), mine)) == [names["a"]]
        assert sorted(ct.list_volumes(engine, (mine,))) == sorted(names.values())
        assert ct.list_volumes(engine, (("io.tflite-forge.kind", "c"), mine)) == []
        assert ct.list_containers(engine, (("io.tflite-forge.kind", "a"), mine)) == []
    finally:
        ct.remove_volumes(engine, list(names.values()))


def test_clean_keeps_the_completion_marker_of_a_shipped_tree_a_build_uses(docker_engine, base_image_docker):
    """A tree shipped to a builder is complete when its `-ok` companion exists. `invoke clean --build`
    keeps a tree a running build uses; it once removed that tree's `-ok` all the same (nothing mounts
    it), and the next build there found a tree in use that looked half-filled and failed."""
    from tflite_forge import clean, remote

    tag = secrets.token_hex(3)
    busy, idle = f"tflite-forge-src-test{tag}busy", f"tflite-forge-src-test{tag}idle"
    names = [busy, busy + remote.COMPLETE_SUFFIX, idle, idle + remote.COMPLETE_SUFFIX]
    for name in names:
        ct.ensure_volume(docker_engine, name, (remote.SOURCE_KIND, ("io.tflite-forge.test", tag)))
    spec = ct.ContainerSpec(image=base_image_docker, purpose="test-busy", network="none",
                            mounts=(ct.Mount(source=busy, target="/busy", volume=True),))
    try:
        with ct.Container(docker_engine, spec):
            removed, kept = clean._remove_unused(docker_engine, list(names))
            assert (removed, kept) == (2, [busy])
            left = set(ct.list_volumes(docker_engine, (("io.tflite-forge.test", tag),)))
            assert left == {busy, busy + remote.COMPLETE_SUFFIX}
        removed, kept = clean._remove_unused(docker_engine, [busy, busy + remote.COMPLETE_SUFFIX])
        assert (removed, kept) == (2, [])
        assert ct.list_volumes(docker_engine, (("io.tflite-forge.test", tag),)) == []
    finally:
        for name in names:
            ct.remove_volumes(docker_engine, [name], keep_in_use=True)
