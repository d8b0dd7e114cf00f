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
from typing import Any, Callable, TextIO

from . import build_run, image, image_io, model_run, package, patch_report, patching, runtime_image, signing, smoke
from . import engine as eng
from .arches import host_arch, resolve_arch, resolve_arches_or_host
from .build_plan import check_soname, wanted_options
from .download import ensure_free_space
from .engine import EngineConfig
from .errors import ConfigError
from .patching import PreparedSources
from .recipe import select_recipe, select_recipes
from .sources import ensure_sources
from .workspace import Cell, Workspace


def selected_cells(settings: Any) -> list[Cell]:
    """The (recipe, arch) cells a task in this process works on, recipes outermost (a matrix of
    processes is matrix.cells' work)."""
    recipes = select_recipes(version=settings.version, recipe=settings.recipe)
    arches = resolve_arches_or_host(settings.arch)
    return [Cell(recipe, arch) for recipe in recipes for arch in arches]


def build_cell(settings: Any, cell: Cell, engine: EngineConfig, *, base_image: str | None = None,
               cxx_shared: bool = False, force: bool = False, release: bool = False,
               home: EngineConfig | None = None) -> build_run.CellResult:
    """Fetch and patch if needed, ensure the builder image, plan, run. `release`: the library is to be
    packaged, so the package's SONAME rule is a planning error, not a surprise after the build.
    `engine` may be a builder (--builder): the image is then made on `home` (this host's engine) and
    loaded there with the same ID, so every builder compiles with the same bits."""
    ws, recipe, arch = Workspace.of(settings), cell.recipe, cell.arch
    ensure_free_space(ws.work_dir, settings.min_free_bytes,
                      what=f"building {recipe.label} for {arch.name} (working copies, outputs, logs)",
                      fix="point TFLITE_FORGE_WORK_DIR at a larger disk (or lower TFLITE_FORGE_MIN_FREE_GIB)")
    sources = ensure_sources(settings, recipe, options=wanted_options(recipe, arch),
                             processors=(arch.cmake_system_processor,))
    prepared = patching.prepare_sources(settings, sources, arch.name)
    check_soname(recipe, Path(prepared.tensorflow), release=release)
    maker = home if engine.remote and home is not None else engine
    builder = image.ensure_builder_image(maker, arch, ws, base_image=base_image or image.DEFAULT_BASE_IMAGE)
    image_io.copy_to_builder(maker, engine, builder.tag, builder.id)
    return build_run.run_cell(ws, cell, engine, sources=sources, prepared=prepared, builder=builder,
                              jobs=settings.jobs, ccache_remote_url=settings.ccache_remote, cxx_shared=cxx_shared,
                              force=force)


def run_patch(settings: Any, *, backend: str = "cmake", dry_run: bool = False,
              out: TextIO | None = None) -> PreparedSources | str:
    """`invoke patch`: fetch what is missing, then prepare the working copies (or, with --dry-run, print
    the diff the patch sets would apply and change nothing)."""
    recipe = select_recipe(version=settings.version, recipe=settings.recipe)
    arch = resolve_arch(settings.arch) if settings.arch else host_arch()
    sources = ensure_sources(settings, recipe)
    if dry_run:
        diff = patching.plan_diff(sources, arch, backend)
        patch_report.report_diff(diff, recipe.label, arch.name, backend, out)
        return diff
    prepared = patching.prepare_sources(settings, sources, arch, backend)
    patch_report.report_prepared(prepared, out)
    return prepared


def run_build_task(settings: Any, *, base_image: str | None = None, cxx_shared: bool = False,
                   force: bool = False, release: bool = False) -> list[build_run.CellResult]:
    """`invoke build`: every (recipe, arch) asked for, one container build at a time. `release`: a later
    task of the chain packages the result (see build_cell)."""
    cells = selected_cells(settings)
    home, engine = build_run.build_engines(settings)
    results = []
    for cell in cells:
        result = build_cell(settings, cell, engine, base_image=base_image, cxx_shared=cxx_shared,
                            force=force, release=release, home=home)
        libs = ", ".join(lib["name"] for lib in json.loads((result.out_dir / "build-info.json").read_text())
                         ["libraries"] if "sha256" in lib)
        state = "built" if result.built else "up to date"
        print(f"{cell.recipe.label} {cell.arch.name}: {state} -> {result.out_dir} ({libs})")
        results.append(result)
    return results


def ensure_built(settings: Any, cell: Cell, log: Callable[[str], None] = print) -> None:
    """The cell's build output, built first when it is not there."""
    if Workspace.of(settings).build_info(cell).is_file():
        return
    log(f"{cell.recipe.label} {cell.arch.name}: no build output yet; building it first")
    home, engine = build_run.build_engines(settings)
    build_cell(settings, cell, engine, release=True, home=home)


# ---------------------------------------------------------------- release: package, test, image
# package.py, smoke.py, model_run.py and runtime_image.py take prepared inputs (a cell, a tarball):
# packaging a missing tarball, or building a missing cell, first is decided here only.

def run_package(settings: Any, *, sign: str | None = None, glibc_max: str | None = None,
                log: Callable[[str], None] = print) -> list[package.Artifact]:
    """`invoke package`: every cell (built first when it has no build output), then SHA256SUMS
    (and SHA256SUMS.asc with --sign KEYID)."""
    ws = Workspace.of(settings)
    artifacts = []
    for cell in selected_cells(settings):
        ensure_built(settings, cell, log=log)
        artifact = package.package_cell(ws, cell, glibc_max=glibc_max, log=log)
        for path in artifact.files:
            log(f"package: {path}")
        artifacts.append(artifact)
    signing.publish_sums(ws.dist_dir, sign=sign, log=log)
    return artifacts


def ensure_packaged(settings: Any, cell: Cell, log: Callable[[str], None] = print) -> Path:
    """The cell's release tarball in dist/, packaged (and so built) first when it is not there."""
    tarball = Workspace.of(settings).tarball(cell)
    if tarball.is_file():
        return tarball
    log(f"{tarball.name}: not packaged yet; packaging it first")
    one_cell = dataclasses.replace(settings, recipe=str(cell.recipe.path), version=None, arch=cell.arch.name)
    run_package(one_cell, log=log)
    return tarball


def run_test(settings: Any, *, cmake: bool = True, log: Callable[[str], None] = print) -> list[smoke.SmokeResult]:
    """`invoke test`: smoke-test every cell's tarball (packaged first if missing)."""
    results: list[smoke.SmokeResult] = []
    for cell in selected_cells(settings):
        tarball = ensure_packaged(settings, cell, log=log)
        results += smoke.run_smoke(tarball, cell.arch, cmake=cmake, log=log)
    return results


def run_model_test(settings: Any, request: model_run.ModelRequest, *,
                   log: Callable[[str], None] = print) -> list[model_run.ModelReport]:
    """`invoke test --model`: the model through every cell's tarball (packaged first if missing);
    with --interpreter tflite-runtime, through the cell's wheel runtime image instead."""
    arches = resolve_arches_or_host(settings.arch)
    engine = None
    if request.interpreter == "tflite-runtime":
        for arch in arches:           # armhf, riscv64: no tflite-runtime wheel; say so before packaging
            try:
                runtime_image.wheel_platform(arch)
            except ConfigError:
                raise ConfigError(f"--interpreter tflite-runtime: PyPI has tflite-runtime wheels for aarch64 and "
                                  f"x86_64 only, not {arch.name}; use --interpreter c-api there") from None
        engine = eng.resolve_engine(settings.engine)
    reports: list[model_run.ModelReport] = []
    for cell in selected_cells(settings):
        tarball = ensure_packaged(settings, cell, log=log)
        tag = None
        if engine is not None:
            tag = runtime_image.build_runtime_image(engine, tarball, cell.arch, flavor="wheel",
                                                    version=cell.recipe.version,
                                                    cache_dir=Workspace.of(settings).cache_dir, log=log).tag
        reports.append(model_run.run_cell(request, cell.arch, version=cell.recipe.version, tarball=tarball,
                                          engine=engine, image_tag=tag, log=log))
    return reports


def run_runtime_image(settings: Any, *, flavor: str = "minimal", base_image: str | None = None,
                      log: Callable[[str], None] = print) -> list[runtime_image.RuntimeImage]:
    """`invoke image`: one runtime image per cell's tarball (packaged first if missing), then run it once."""
    engine = eng.resolve_engine(settings.engine)
    images = []
    for cell in selected_cells(settings):
        tarball = ensure_packaged(settings, cell, log=log)
        made = runtime_image.build_runtime_image(engine, tarball, cell.arch, flavor=flavor,
                                                 version=cell.recipe.version, base_image=base_image,
                                                 cache_dir=Workspace.of(settings).cache_dir, log=log)
        for line in runtime_image.run_image(engine, made.tag, cell.arch).splitlines()[-1:]:
            log(f"runtime-image: {made.tag} ran: {line}")
        images.append(made)
    return images
