"""Where everything lives: one frozen `Workspace` owns every path of the work dir, the dist dir and
the download cache, and one `Cell` names what a stage works on (one recipe on one arch).

    <work_dir>/src/<cell>/                  patched working copies (patching)
    <work_dir>/out/<cell>/                  build output: lib/, build-info.json (build)
    <work_dir>/out/.staging-<key>/          a build in progress; swapped into out/<cell>/ on success
    <work_dir>/out/.<cell>.lock             one build of a cell at a time
    <work_dir>/stamps/<key>.json            what the last build of a key was made from (no-op check)
    <work_dir>/logs/build-<cell>.log        the build's log; .run.json (ccache counts) and
                                            .compile_commands.json beside it
    <work_dir>/logs/image-<arch>-<engine>.log, logs/matrix/<slug>.log
    <work_dir>/images/<image id>.json       a builder image's facts, read from it once
    <dist_dir>/<stem>.tar.gz, SHA256SUMS    releases; <dist_dir>/.cells/<slug>.json (--resume)
    <cache_dir>/sha256/<hex>                verified downloads; trees/<hex>/ unpacked; wheels/<platform>/;
                                            images/ debootstrap root filesystems (cache.Cache)

No other module spells these out (the cache's own layout is cache.Cache's): a layout change is a
change here or there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import Cache
from .variants import artifact_stem


@dataclass(frozen=True)
class Cell:
    """One recipe on one arch: the unit every stage after fetch works on, and one process of a
    matrix run (matrix.cells). `arch` is None only for a matrix of work that is the same on every
    arch (a chain of fetch or lock): one cell per recipe."""

    recipe: Any         # recipe.Recipe
    arch: Any = None    # arches.Arch

    @property
    def name(self) -> str:
        """'<recipe label>-<arch>', the folder name of the cell in src/, out/ and logs/."""
        return f"{self.recipe.label}-{self.arch.name}"

    @property
    def arch_name(self) -> str:
        return self.arch.name if self.arch is not None else ""

    @property
    def label(self) -> str:
        """'<version>/<arch>': how the matrix board and summary name the cell."""
        return f"{self.recipe.version}/{self.arch.name}" if self.arch is not None else self.recipe.version

    @property
    def slug(self) -> str:
        """'tensorflow-<version>-<arch>': the matrix's log and --resume marker file name."""
        return f"tensorflow-{self.recipe.version}" + (f"-{self.arch.name}" if self.arch is not None else "")


@dataclass(frozen=True)
class Workspace:
    work_dir: Path
    dist_dir: Path
    cache_dir: Path

    @classmethod
    def of(cls, settings: Any) -> "Workspace":
        """The workspace of resolved `Settings` (or anything with work_dir, dist_dir, cache_dir)."""
        return cls(work_dir=Path(settings.work_dir), dist_dir=Path(settings.dist_dir),
                   cache_dir=Path(settings.cache_dir))

    def resolved(self) -> "Workspace":
        """The same workspace with absolute, symlink-free paths (what a package records as build paths)."""
        return Workspace(work_dir=self.work_dir.resolve(), dist_dir=self.dist_dir.resolve(),
                         cache_dir=self.cache_dir.resolve())

    # ------------------------------------------------------------ work dir
    def src(self, cell: Cell) -> Path:
        return self.work_dir / "src" / cell.name

    def src_tensorflow(self, cell: Cell) -> Path:
        return self.src(cell) / "tensorflow"

    def src_dependency(self, cell: Cell, name: str) -> Path:
        return self.src(cell) / "deps" / name

    @property
    def out_root(self) -> Path:
        return self.work_dir / "out"

    def out(self, cell: Cell) -> Path:
        return self.out_root / cell.name

    def build_info(self, cell: Cell) -> Path:
        return self.out(cell) / "build-info.json"

    def staging(self, key: str) -> Path:
        return self.out_root / f".staging-{key}"

    def cell_lock(self, cell: Cell) -> Path:
        return self.out_root / f".{cell.name}.lock"

    @property
    def stamps(self) -> Path:
        return self.work_dir / "stamps"

    def stamp(self, key: str) -> Path:
        return self.stamps / f"{key}.json"

    @property
    def logs(self) -> Path:
        return self.work_dir / "logs"

    def build_log(self, cell: Cell) -> Path:
        return self.logs / f"build-{cell.name}.log"

    def run_record(self, cell: Cell) -> Path:
        """What the last run of the cell did (ccache hits), beside its log; never packaged."""
        return self.build_log(cell).with_suffix(".run.json")

    def build_compile_commands(self, cell: Cell) -> Path:
        """Every compile command of the cell's last build (what the compile checks read), beside its log."""
        return self.build_log(cell).with_suffix(".compile_commands.json")

    def image_log(self, arch_name: str, engine_name: str) -> Path:
        return self.logs / f"image-{arch_name}-{engine_name}.log"

    @property
    def matrix_logs(self) -> Path:
        return self.logs / "matrix"

    @property
    def images(self) -> Path:
        return self.work_dir / "images"

    def image_facts(self, image_id: str) -> Path:
        """A builder image's facts (compilers, glibc, suite), read from it once and kept by image ID."""
        return self.images / f"{image_id.replace(':', '-')}.json"

    # ------------------------------------------------------------ dist dir
    def cell_marker(self, slug: str) -> Path:
        """--resume's record of a finished matrix cell."""
        return self.dist_dir / ".cells" / f"{slug}.json"

    def release(self, file_name: str) -> Path:
        return self.dist_dir / file_name

    def tarball(self, cell: Cell, variant: str = "") -> Path:
        """The cell's release tarball (or a variant's sibling, e.g. "cxx") in dist/."""
        return self.release(f"{artifact_stem(cell.recipe.version, cell.arch.name, variant)}.tar.gz")

    # ------------------------------------------------------------ cache
    @property
    def cache(self) -> Cache:
        return Cache(self.cache_dir)

    def cached_tree(self, sha256: str) -> Path:
        return self.cache.trees / sha256
