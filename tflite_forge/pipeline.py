"""Each stage pulls in what it lacks: `package` builds a cell that has no build output yet,
`test` packages a cell that has no tarball yet (and so, transitively, builds and fetches).
`build` itself fetches and patches (build.build_cell). Nothing is redone when present.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable


def build_output(settings: Any, recipe: Any, arch: Any) -> Path:
    return Path(settings.work_dir) / "out" / f"{recipe.label}-{arch.name}"


def ensure_built(settings: Any, recipe: Any, arch: Any, log: Callable[[str], None] = print) -> None:
    if (build_output(settings, recipe, arch) / "build-info.json").is_file():
        return
    from .build import build_cell, build_engines
    log(f"{recipe.label} {arch.name}: no build output yet; building it first")
    home, engine = build_engines(settings)
    build_cell(settings, recipe, arch, engine, release=True, home=home)


def ensure_packaged(settings: Any, recipe: Any, arch: Any, tarball: Path,
                    log: Callable[[str], None] = print) -> None:
    if tarball.is_file():
        return
    from .package import run_package
    log(f"{tarball.name}: not packaged yet; packaging it first")
    one_cell = dataclasses.replace(settings, recipe=str(recipe.path), version=None, arch=arch.name)
    run_package(one_cell, log=log)
