"""Prove the patch sets on the compiler's own command lines.

A patch set's `[[compile_check]]` rows (patchset.CompileCheck) say what its edits promise, e.g.
"every XNNPACK microkernel compile ends on -O3 and has no -O2" or "no aarch64 compile has
-mfpu=". `run()` reads each entry of the build's compile_commands.json, finds the tree the file
belongs to and the CMake target the object goes into (`CMakeFiles/<target>.dir/`), and checks
the rows that apply. A sed that matched but never reached the compiler (a flag added elsewhere,
a target renamed) shows up here, not on the device.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable, Mapping, Sequence

from .patchset import CompileCheck

TARGET_DIR = re.compile(r"(?:^|/)CMakeFiles/([^/]+)\.dir/")
OPT_FLAG = re.compile(r"^-O(\d|s|z|g|fast)?$")
SHOWN = 240                     # characters of a failing command in the error line


@dataclass(frozen=True)
class Compile:
    file: str                   # absolute path in the build container
    output: str
    target: str                 # CMake target ("" when the object is not under CMakeFiles/<t>.dir/)
    argv: tuple[str, ...]

    def tree(self, trees: Mapping[str, str], deps_root: str) -> str | None:
        for name, root in trees.items():
            if self.file.startswith(root.rstrip("/") + "/"):
                return name
        prefix = deps_root.rstrip("/") + "/"
        if self.file.startswith(prefix):
            return self.file[len(prefix):].split("/", 1)[0]
        return None

    def shown(self) -> str:
        text = " ".join(self.argv)
        return text if len(text) <= SHOWN else text[:SHOWN] + " ..."


def parse(entries: Iterable[Mapping]) -> list[Compile]:
    """compile_commands.json entries ("command" or "arguments"; "output" or the argument after -o)."""
    out = []
    for e in entries:
        argv = tuple(e["arguments"]) if "arguments" in e else tuple(shlex.split(e["command"]))
        output = e.get("output") or (argv[argv.index("-o") + 1] if "-o" in argv[:-1] else "")
        file = str(PurePosixPath(e.get("directory", "/")) / e["file"])
        match = TARGET_DIR.search(output)
        out.append(Compile(file=file, output=output, target=match.group(1) if match else "", argv=argv))
    return out


def _problem(check: CompileCheck, c: Compile) -> str | None:
    for arg in c.argv:
        for bad in check.forbid:
            if arg == bad or (bad.endswith("=") and arg.startswith(bad)):
                return f"has {arg}"
    for need in check.require:
        if need not in c.argv:
            return f"lacks {need}"
    if check.last_opt:
        last = next((a for a in reversed(c.argv) if OPT_FLAG.match(a)), None)
        if last != check.last_opt:
            return f"ends on {last or 'no -O flag'} instead of {check.last_opt}"
    return None


def run(entries: Sequence[Mapping], checks: Iterable[CompileCheck], *,
        trees: Mapping[str, str], deps_root: str) -> list[dict]:
    """`checks` are those that apply to the cell (version and arch already decided). One row per check: {id, set, matched, failed}; `failed` is "" or one line naming the first
    compile command that breaks it. A check that matches no command (XNNPACK off, say) passes with
    matched = 0: build-info.json shows it proved nothing."""
    compiles = parse(entries)
    report = []
    for check in checks:
        matched, failed = 0, ""
        for c in compiles:
            if check.tree is not None and c.tree(trees, deps_root) != check.tree:
                continue
            if check.targets and not any(fnmatch.fnmatchcase(c.target, p) for p in check.targets):
                continue
            if check.files and not any(fnmatch.fnmatchcase(PurePosixPath(c.file).name, p) for p in check.files):
                continue
            matched += 1
            problem = _problem(check, c)
            if problem and not failed:
                failed = f"{c.file} (target {c.target or '?'}) {problem}: {c.shown()}"
        report.append({"id": check.id, "set": check.set_name, "matched": matched, "failed": failed})
    return report


__all__ = ["Compile", "parse", "run"]
