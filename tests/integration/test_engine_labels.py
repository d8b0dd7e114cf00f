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
