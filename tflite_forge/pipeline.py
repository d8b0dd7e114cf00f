"""Each stage pulls in what it lacks: `package` builds a cell that has no build output yet,
`test` packages a cell that has no tarball yet (and so, transitively, builds and fetches).
`build` itself fetches and patches (build.build_cell). Nothing is redone when present.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from . import container as ct
from . import model_run, package, runtime_image, signing, smoke
from .arches import resolve_arches_or_host
from .errors import ConfigError
from .recipe import select_recipes
from .workspace import Cell, Workspace


def build_output(settings: Any, recipe: Any, arch: Any) -> Path:
    return Path(settings.work_dir) / "out" / f"{recipe.label}-{arch.name}"


def ensure_built(settings: Any, recipe: Any, arch: Any, log: Callable[[str], None] = print) -> None:
    if (build_output(settings, recipe, arch) / "build-info.json").is_file():
        return
    from .build import build_cell, build_engines
    log(f"{recipe.label} {arch.name}: no build output yet; building it first")
    home, engine = build_engines(settings)
    build_cell(settings, recipe, arch, engine, release=True, home=home)


# ---------------------------------------------------------------- release: package, test, image
# package.py, smoke.py, model_run.py and runtime_image.py take prepared inputs (a cell, a tarball):
# packaging a missing tarball, or building a missing cell, first is decided here only.

def _cells(settings: Any) -> list[Cell]:
    """The selected (recipe, arch) cells, recipes outermost."""
    recipes = select_recipes(version=settings.version, recipe=settings.recipe)
    arches = resolve_arches_or_host(settings.arch)
    return [Cell(recipe, arch) for recipe in recipes for arch in arches]


def run_package(settings: Any, *, sign: str | None = None, glibc_max: str | None = None,
                log: Callable[[str], None] = print) -> list[package.Artifact]:
    """`invoke package`: every cell (built first when it has no build output), then SHA256SUMS
    (and SHA256SUMS.asc with --sign KEYID)."""
    ws = Workspace.of(settings)
    artifacts = []
    for cell in _cells(settings):
        ensure_built(settings, cell.recipe, cell.arch, log=log)
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
    for cell in _cells(settings):
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
        engine = ct.resolve_engine(settings.engine)
    reports: list[model_run.ModelReport] = []
    for recipe in select_recipes(version=settings.version, recipe=settings.recipe):
        for arch in arches:
            cell = Cell(recipe, arch)
            tarball = ensure_packaged(settings, cell, log=log)
            tag = None
            if engine is not None:
                tag = runtime_image.build_runtime_image(engine, tarball, arch, flavor="wheel", version=recipe.version,
                                                        cache_dir=Workspace.of(settings).cache_dir, log=log).tag
            reports.append(model_run.run_cell(request, arch, version=recipe.version, tarball=tarball, engine=engine,
                                              image_tag=tag, log=log))
    return reports


def run_runtime_image(settings: Any, *, flavor: str = "minimal", base_image: str | None = None,
                      log: Callable[[str], None] = print) -> list[runtime_image.RuntimeImage]:
    """`invoke image`: one runtime image per cell's tarball (packaged first if missing), then run it once."""
    engine = ct.resolve_engine(settings.engine)
    images = []
    for cell in _cells(settings):
        tarball = ensure_packaged(settings, cell, log=log)
        image = runtime_image.build_runtime_image(engine, tarball, cell.arch, flavor=flavor,
                                                  version=cell.recipe.version, base_image=base_image,
                                                  cache_dir=Workspace.of(settings).cache_dir, log=log)
        for line in runtime_image.run_image(engine, image.tag, cell.arch).splitlines()[-1:]:
            log(f"runtime-image: {image.tag} ran: {line}")
        images.append(image)
    return images
