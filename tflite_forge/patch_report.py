"""The `patch` and `patches` task bodies: tables of what each patch entry does (tables.py: rich on a
terminal, one line per row in a log).

The engine and the working copies live in patching.py; this module only calls them and renders.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from . import sources as sources_mod
from .arches import host_arch, resolve_arch
from .errors import PatchError
from .patching import PreparedSources, RecipeCheck, check_recipes, plan_diff, prepare_sources
from .patchset import Edit, available_sets, load_recipe_sets
from .recipe import select_recipe, select_recipes
from .tables import Cell, Styled, console_for, print_table


_STATUS_STYLE = {"applies": "green", "drift": "bold red", "upstream": "yellow", "n/a": "dim", "no-tree": "magenta"}
_STATUS_TEXT = {"applies": "applies", "drift": "DRIFT", "upstream": "already upstream", "n/a": "n/a",
                "no-tree": "tree not fetched"}


def _scope(entry) -> str:
    a = entry.applies
    parts = [a.versions or "all versions", ",".join(a.arches) if a.arches else "all arches",
             ",".join(a.backends) if a.backends else "cmake+bazel"]
    return "; ".join(parts)


CHECK_COLUMNS = ("set", "entry", "tree", "files", "applies to", "expected", "found", "status")
SET_COLUMNS = ("entry", "kind", "tree", "files", "applies to", "expected", "upstream")


def render_checks(checks: list[RecipeCheck], console: Console | TextIO | None = None) -> None:
    console = console_for(console)
    for chk in checks:
        r = chk.recipe
        title = f"{r.label}  ({', '.join(r.build.patch_sets) or 'no patch sets'})"
        if not chk.fetched:
            console.print(Text.assemble((title, "bold"), ": ", (chk.note, "dim")), soft_wrap=True)
            continue
        entries = {(ps.name, e.id): e for ps in load_recipe_sets(r) for e in ps.entries}
        rows: list[tuple[Cell, ...]] = []
        for res in chk.results:
            status = _STATUS_TEXT.get(res.status, res.status)
            if res.detail and res.status != "applies":
                status += f": {res.detail}"
            rows.append((res.set_name, res.entry_id, res.tree, "\n".join(res.files),
                         _scope(entries[(res.set_name, res.entry_id)]), res.expected,
                         "" if res.found is None else str(res.found), Styled(status, _STATUS_STYLE.get(res.status, ""))))
        if not chk.results:
            rows.append(("-", "-", "-", "-", "-", "-", "-", "no patch sets"))
        print_table(console, title, CHECK_COLUMNS, rows, caption=chk.note or None)


def run_patches(settings: Any, *, check: bool = False,
                console: Console | TextIO | None = None) -> list[RecipeCheck] | None:
    """`invoke patches`: list the bundled sets, or (--check) check every selected recipe."""
    console = console_for(console)
    if not check:
        for ps in available_sets():
            rows = [(e.id, ps.kind, e.tree, "\n".join(e.files) if isinstance(e, Edit) else e.id, _scope(e),
                     getattr(e, "expected", "all hunks"), e.upstream) for e in ps.entries]
            print_table(console, f"{ps.name}: {ps.description}", SET_COLUMNS, rows,
                        caption=f"{ps.path.name}  sha256 {ps.digest[:16]}")
        return None
    recipes = select_recipes(version=settings.version or (None if settings.recipe else "all"), recipe=settings.recipe)
    checks = check_recipes(settings.cache_dir, recipes)
    render_checks(checks, console)
    drifted = [(c.recipe.version, r) for c in checks for r in c.drifted]
    if drifted:
        first_v, first = drifted[0]
        raise PatchError(f"{len(drifted)} patch entr{'y' if len(drifted) == 1 else 'ies'} drifted (first: "
                         f"{first.set_name}/{first.entry_id} on TensorFlow {first_v}: expected {first.expected}, "
                         f"found {first.found}); fix the patch set before building")
    return checks


def run_patch(settings: Any, *, backend: str = "cmake", dry_run: bool = False,
              out: TextIO | None = None) -> PreparedSources | str:
    """`invoke patch`: prepare working copies (or print the diff with --dry-run)."""
    out = out or sys.stdout
    recipe = select_recipe(version=settings.version, recipe=settings.recipe)
    arch = resolve_arch(settings.arch) if settings.arch else host_arch()
    sources = sources_mod.ensure_sources(settings, recipe)
    if dry_run:
        diff = plan_diff(sources, arch, backend)
        out.write(diff if diff else f"# {recipe.label} for {arch.name} ({backend}): no changes\n")
        return diff
    prepared = prepare_sources(settings, sources, arch, backend)
    state = "up to date" if prepared.reused else "prepared"
    counts: dict[str, int] = {}
    for r in prepared.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {_STATUS_TEXT.get(s, s)}" for s, n in sorted(counts.items()))
    out.write(f"{recipe.label} for {arch.name} ({backend}): {state} in {prepared.root} ({summary or 'no entries'})\n")
    return prepared
