"""A cell of a shipped recipe by its version and arch names, as the matrix makes them."""

from __future__ import annotations

from tflite_forge.arches import resolve_arch
from tflite_forge.recipe import select_recipe
from tflite_forge.workspace import Cell


def cell_of(version: str, arch: str | None) -> Cell:
    return Cell(select_recipe(version=version, recipe=None), resolve_arch(arch) if arch else None)
