"""The order of the stages, in one place: no stage calls another.

Building a cell: fetch (the verified, locked sources) -> patching.prepare_sources (the patched working
copies) -> image (the builder image, copied to a --builder) -> build_run (plan, then run in a
container). Each stage pulls in what it lacks: `package` builds a cell that has no build output yet,
`test` packages a cell that has no tarball yet (and so, transitively, builds and fetches). Nothing is
redone when present.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from . import build_run, fetch, image, image_io, patching
from .arches import resolve_arches_or_host
from .build_plan import check_soname, wanted_options
from .download import ensure_free_space
from .engine import EngineConfig
from .recipe import select_recipes
from .workspace import Cell, Workspace


def build_cell(settings: Any, recipe: Any, arch: Any, engine: EngineConfig, *, base_image: str | None = None,
               cxx_shared: bool = False, force: bool = False, release: bool = False,
               home: EngineConfig | None = None) -> build_run.CellResult:
    """Fetch and patch if needed, ensure the builder image, plan, run. `release`: the library is to be
    packaged, so the package's SONAME rule is a planning error, not a surprise after the build.
    `engine` may be a builder (--builder): the image is then made on `home` (this host's engine) and
    loaded there with the same ID, so every builder compiles with the same bits."""
    ws, cell = Workspace.of(settings), Cell(recipe=recipe, arch=arch)
    ensure_free_space(ws.work_dir, build_run.min_build_free_bytes(),
                      what=f"building {recipe.label} for {arch.name} (working copies, outputs, logs)",
                      fix="point TFLITE_FORGE_WORK_DIR at a larger disk (or lower TFLITE_FORGE_MIN_FREE_GIB)")
    sources = fetch.ensure_sources(settings, recipe, options=wanted_options(recipe, arch),
                                   processors=(arch.cmake_system_processor,))
    prepared = patching.prepare_sources(settings, sources, arch.name)
    check_soname(recipe, Path(prepared.tensorflow), release=release)
    maker = home if engine.remote and home is not None else engine
    builder = image.ensure_builder_image(maker, arch, ws, base_image=base_image or image.DEFAULT_BASE_IMAGE)
    image_io.copy_to_builder(maker, engine, builder.tag, builder.id)
    return build_run.run_cell(ws, cell, engine, sources=sources, prepared=prepared, builder=builder,
                              jobs=settings.jobs, ccache_remote_url=settings.ccache_remote, cxx_shared=cxx_shared,
                              force=force)


def run_build_task(settings: Any, *, base_image: str | None = None, cxx_shared: bool = False,
                   force: bool = False, release: bool = False) -> list[build_run.CellResult]:
    """`invoke build`: every (recipe, arch) asked for, one container build at a time. `release`: a later
    task of the chain packages the result (see build_cell)."""
    recipes = select_recipes(version=settings.version, recipe=settings.recipe)
    arches = resolve_arches_or_host(settings.arch)
    home, engine = build_run.build_engines(settings)
    results = []
    for recipe in recipes:
        for arch in arches:
            result = build_cell(settings, recipe, arch, engine, base_image=base_image, cxx_shared=cxx_shared,
                                force=force, release=release, home=home)
            libs = ", ".join(lib["name"] for lib in json.loads((result.out_dir / "build-info.json").read_text())
                             ["libraries"] if "sha256" in lib)
            state = "built" if result.built else "up to date"
            print(f"{recipe.label} {arch.name}: {state} -> {result.out_dir} ({libs})")
            results.append(result)
    return results


def ensure_built(settings: Any, recipe: Any, arch: Any, log: Callable[[str], None] = print) -> None:
    if Workspace.of(settings).build_info(Cell(recipe=recipe, arch=arch)).is_file():
        return
    log(f"{recipe.label} {arch.name}: no build output yet; building it first")
    home, engine = build_run.build_engines(settings)
    build_cell(settings, recipe, arch, engine, release=True, home=home)


def ensure_packaged(settings: Any, recipe: Any, arch: Any, tarball: Path,
                    log: Callable[[str], None] = print) -> None:
    if tarball.is_file():
        return
    from .package import run_package
    log(f"{tarball.name}: not packaged yet; packaging it first")
    one_cell = dataclasses.replace(settings, recipe=str(recipe.path), version=None, arch=arch.name)
    run_package(one_cell, log=log)
