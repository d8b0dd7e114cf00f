"""`invoke clean`: remove what builds leave behind, scope by scope, and say what went.

--build: this work dir's build and deps volumes (another checkout's are not ours), the shared
host-tools, shipped-tree and /out volumes, out/ and stamps/; --images: the builder images and their
facts (the base image is kept); --cache: the ccache volumes (shared by every work dir). On every
--builder as well as on this host's engine. A volume a running build uses is kept and named.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

from . import container as ct
from . import engine as eng
from . import image_io, remote
from .build_plan import work_id
from .builders import parse_builders
from .image import builder_images
from .workspace import Workspace


def _kept_note(kept: Sequence[str]) -> str:
    return f"; kept {len(kept)} in use by a running build ({', '.join(kept)})" if kept else ""


def _build_tree_volumes(engine: eng.EngineConfig, work: Path) -> list[str]:
    """What `invoke clean --build` removes on an engine: this work dir's build and deps trees (another
    checkout's are not ours to remove), and the shared host-tools trees, shipped trees and /out
    volumes (caches or leftovers: the next build remakes them); the caller keeps those in use."""
    return (ct.list_volumes(engine, (("io.tflite-forge.kind", "build"), ("io.tflite-forge.work", work_id(work))))
            + ct.list_volumes(engine, (("io.tflite-forge.kind", "build"), ("io.tflite-forge.host-tools", "1")))
            + ct.list_volumes(engine, (remote.SOURCE_KIND,)) + ct.list_volumes(engine, (remote.OUT_KIND,)))


def _remove_unused(engine: eng.EngineConfig, volumes: list[str]) -> tuple[int, list[str]]:
    """(volumes removed, volumes kept because a running build uses them). A shipped tree's `-ok`
    companion (remote.ship_tree: "this volume is complete") is never in use itself: it goes only
    with its tree, or a build using the kept tree would leave it looking half-filled to the next."""
    markers = [v for v in volumes if v.endswith(remote.COMPLETE_SUFFIX) and
               v.removesuffix(remote.COMPLETE_SUFFIX) in volumes]
    trees = [v for v in volumes if v not in markers]
    kept = ct.remove_volumes(engine, trees, keep_in_use=True)
    orphaned = [m for m in markers if m.removesuffix(remote.COMPLETE_SUFFIX) not in kept]
    kept += ct.remove_volumes(engine, orphaned, keep_in_use=True)
    return len(trees) + len(orphaned) - len(kept), kept


def _ccache_volumes(engine: eng.EngineConfig) -> list[str]:
    return ct.list_volumes(engine, (("io.tflite-forge.kind", "ccache"),))


def run_clean(settings: Any, *, build: bool = False, images: bool = False, cache: bool = False) -> list[str]:
    """`invoke clean`: remove build trees (this work dir's volumes, outputs, stamps), builder images, ccache
    volumes (shared by every work dir: the compiler cache)."""
    if not (build or images or cache):
        build = True
    engine = eng.resolve_engine(settings.engine)
    said: list[str] = []
    ws = Workspace.of(settings)
    work = ws.work_dir
    for spec in parse_builders(settings.builders):
        # A builder holds this work dir's build trees, the trees shipped to it and its compiler cache.
        far = eng.resolve_builder(spec)
        removed, kept = _remove_unused(far, (_build_tree_volumes(far, work) if build else [])
                                       + (_ccache_volumes(far) if cache else []))
        said.append(f"on builder {far.title}: {removed} volume(s)" + _kept_note(kept))
    if build:
        removed, kept = _remove_unused(engine, _build_tree_volumes(engine, work))
        for path in (ws.out_root, ws.stamps):
            if path.exists():
                shutil.rmtree(path)
        said.append(f"build trees: {removed} {engine.name} volume(s), {ws.out_root}, {ws.stamps}"
                    + _kept_note(kept))
    if cache:
        removed, kept = _remove_unused(engine, _ccache_volumes(engine))
        said.append(f"compiler cache: {removed} ccache volume(s)" + _kept_note(kept))
    if images:
        refs = builder_images(engine)
        image_io.remove_images(engine, refs)
        if ws.images.exists():
            shutil.rmtree(ws.images)
        said.append(f"builder images: {len(refs)} ({', '.join(refs) or 'none'}); the base image is kept")
    for line in said:
        print(f"removed {line}")
    return said
