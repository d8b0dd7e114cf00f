"""The `patch` and `patches` task bodies: tables of what each patch entry does (tables.py: rich on a
terminal, one line per row in a log).

The engine and the working copies live in patching.py; this module only calls them and renders.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from .errors import PatchError
from .patching import PreparedSources, RecipeCheck, check_recipes
from .patchset import Edit, available_sets, load_recipe_sets
from .recipe import select_recipes
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


def report_prepared(prepared: PreparedSources, out: TextIO | None = None) -> None:
    """`invoke patch`'s line: the working copies' state and what the entries did."""
    out = out or sys.stdout
    state = "up to date" if prepared.reused else "prepared"
    counts: dict[str, int] = {}
    for r in prepared.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {_STATUS_TEXT.get(s, s)}" for s, n in sorted(counts.items()))
    out.write(f"{prepared.recipe.label} for {prepared.arch} ({prepared.backend}): {state} in {prepared.root} "
              f"({summary or 'no entries'})\n")


def report_diff(diff: str, label: str, arch_name: str, backend: str, out: TextIO | None = None) -> None:
    """`invoke patch --dry-run`'s output: the unified diff, or a line saying there is none."""
    (out or sys.stdout).write(diff if diff else f"# {label} for {arch_name} ({backend}): no changes\n")
