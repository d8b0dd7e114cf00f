"""Recipes: one TOML file per TensorFlow version, validated into frozen dataclasses.

The `[source]` table is a public contract (users write recipes for forks):

    [source]
    name = "tensorflow"
    version = "2.16.1"
    urls = ["https://github.com/tensorflow/tensorflow/archive/refs/tags/v2.16.1.tar.gz"]
    sha256 = "c729e5..."
    strip_prefix = "tensorflow-2.16.1"

`[build]` is optional; see README "Recipes" for every key.

`[policy]` is optional too: facts about a TensorFlow version that the lock and the package read,
each with a default that holds for the shipped versions (a fork or a new release may differ):

    [policy]
    test_only = ["googletest", "googlebenchmark", "benchmark", "gtest"]
        # names of downloads only tests use: a dependency tree's own are skipped (TFLite turns
        # those tests off); TensorFlow's own count as test-only when no option reaches them
    not_built = ["fp16_headers", "opencl_headers", "vulkan_headers", "opengl_headers", "egl_headers"]
        # tensorflow/lite/tools/cmake/modules/<name>.cmake for features tflite-forge never builds:
        # one whose download cannot be read is skipped with a note instead of failing the lock
    header_seeds = ["tensorflow/lite/c", "tensorflow/lite/core/c", "tensorflow/lite/core/async/c",
                    "tensorflow/compiler/mlir/lite/core/c"]
        # folders whose *.h are the public C API (tests and *_internal.h left out)
    header_files = ["tensorflow/lite/builtin_ops.h"]   # single C API headers besides those folders
    cxx_header_root = "tensorflow/lite"                  # the C++ package's headers: every .h below it ...
    cxx_header_skip = '(^|/)(testing|testdata|tools|examples|java|objc|swift|g3doc|python)(/|$)|_test\\.h$|_test_util\\.h$|_testing\\.h$'
        # ... whose path below that root this regular expression does not find (Python `re` syntax)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .resources import RECIPES_DIR
from ._toml import check_keys, expect, load_toml, require
from .errors import RecipeError
from .urls import url_problem

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+([-.+][0-9A-Za-z.-]+)?$")


SOURCE_KEYS = ("name", "version", "urls", "sha256", "strip_prefix")
# What a recipe without [build].patch_sets gets; `patch_sets = []` opts out of every set.
STANDARD_PATCH_SETS = ("o3", "drop-mfpu-neon", "soname")
LOCK_SUFFIX = ".lock"
BUILD_KEYS = ("source_date_epoch", "cmake_source_dir", "cmake_options", "patch_sets", "lock", "host_tools_target")
POLICY_KEYS = ("test_only", "not_built", "header_seeds", "header_files", "cxx_header_root", "cxx_header_skip")
TOP_KEYS = ("source", "build", "policy")
DOWNLOAD_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")     # as the lock records names: lower case
MODULE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")   # a file name without .cmake


@dataclass(frozen=True, kw_only=True)
class Source:
    name: str
    version: str
    urls: tuple[str, ...]
    sha256: str
    strip_prefix: str


@dataclass(frozen=True, kw_only=True)
class BuildSpec:
    # None: taken from the archive (newest member mtime), which is fixed per archive.
    source_date_epoch: int | None = None
    cmake_source_dir: str = "tensorflow/lite/c"
    cmake_options: tuple[tuple[str, str], ...] = ()
    patch_sets: tuple[str, ...] = STANDARD_PATCH_SETS
    lock: str | None = None
    host_tools_target: str = "flatbuffers-flatc"


@dataclass(frozen=True, kw_only=True)
class Policy:
    """What a TensorFlow version's trees hold that the lock and the package cannot read from CMake."""
    # Test downloads in dependency trees (XNNPACK's DownloadGoogleTest.cmake ...): TFLite turns those
    # tests off. TensorFlow's own test modules (googletest, google_benchmark under TFLITE_KERNEL_TEST)
    # are recorded with their condition instead.
    test_only: frozenset[str] = frozenset({"googletest", "googlebenchmark", "benchmark", "gtest"})
    # Modules TFLite's CMakeLists only reaches for features tflite-forge never builds: the GPU
    # delegate's headers, and fp16_headers (GPU and Android NNAPI only; with XNNPACK on it returns
    # before declaring anything). Some trees compute their pins at configure time (fp16_headers
    # downloads XNNPACK's master DownloadFP16.cmake and greps it), which no reader can pin: a module
    # from this set whose download cannot be read is skipped with a note instead of failing the lock.
    not_built: frozenset[str] = frozenset({"fp16_headers", "opencl_headers", "vulkan_headers", "opengl_headers",
                                           "egl_headers"})
    # Public C API headers (TF's install rule and the distro recipes): the *.h of these folders ...
    header_seeds: tuple[str, ...] = ("tensorflow/lite/c", "tensorflow/lite/core/c", "tensorflow/lite/core/async/c",
                                     "tensorflow/compiler/mlir/lite/core/c")
    # ... and these single files.
    header_files: tuple[str, ...] = ("tensorflow/lite/builtin_ops.h",)
    # C++ headers: everything under tensorflow/lite except tests, tools, examples and other languages.
    cxx_header_root: str = "tensorflow/lite"
    cxx_header_skip: re.Pattern[str] = re.compile(
        r"(^|/)(testing|testdata|tools|examples|java|objc|swift|g3doc|python)(/|$)|_test\.h$|_test_util\.h$|_testing\.h$")


@dataclass(frozen=True, kw_only=True)
class Recipe:
    path: Path
    source: Source
    build: BuildSpec = field(default_factory=BuildSpec)
    policy: Policy = field(default_factory=Policy)

    @property
    def version(self) -> str:
        return self.source.version

    @property
    def lock_path(self) -> Path:
        if self.build.lock:
            return (self.path.parent / self.build.lock).resolve()
        return self.path.with_name(self.path.name + ".lock")

    @property
    def label(self) -> str:
        return f"{self.source.name}-{self.source.version}"


DEFAULT_POLICY = Policy()


def _cmake_value(path: Path, where: str, value: Any) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, (int, str)):
        return str(value)
    raise RecipeError(f"{path}: {where}: expected a string, integer or boolean, got {type(value).__name__}")


def _safe_relpath(path: Path, where: str, value: str) -> str:
    p = Path(value)
    if not value or p.is_absolute() or ".." in p.parts:
        raise RecipeError(f"{path}: {where}: expected a relative path inside the tree, got {value!r}")
    return value


def _strings(path: Path, where: str, value: Any, what: str) -> list[str]:
    items = expect(path, where, value, list, f"a list of {what}")
    for i, item in enumerate(items):
        expect(path, f"{where}[{i}]", item, str, what)
        if not item:
            raise RecipeError(f"{path}: {where}[{i}]: expected {what}, got an empty string")
    if len(set(items)) != len(items):
        raise RecipeError(f"{path}: {where}: an entry is listed twice: {items}")
    return items


def _names(path: Path, where: str, value: Any, what: str, pattern: re.Pattern[str]) -> frozenset[str]:
    items = _strings(path, where, value, what)
    for i, item in enumerate(items):
        if not pattern.match(item):
            raise RecipeError(f"{path}: {where}[{i}]: expected {what}, got {item!r}")
    return frozenset(items)


def _paths(path: Path, where: str, value: Any, what: str) -> tuple[str, ...]:
    items = _strings(path, where, value, what)
    return tuple(_safe_relpath(path, f"{where}[{i}]", item) for i, item in enumerate(items))


def parse_policy(path: Path, data: Any) -> Policy:
    """[policy]: every key optional; what is not set keeps Policy's default."""
    expect(path, "[policy]", data, dict, "a table")
    check_keys(path, "[policy]", data, POLICY_KEYS)
    kwargs: dict[str, Any] = {}
    if "test_only" in data:
        kwargs["test_only"] = _names(path, "[policy].test_only", data["test_only"],
                                     "a lower-case download name such as 'googletest'", DOWNLOAD_NAME_RE)
    if "not_built" in data:
        kwargs["not_built"] = _names(path, "[policy].not_built", data["not_built"],
                                     "a module name such as 'opencl_headers' (tools/cmake/modules/<name>.cmake)",
                                     MODULE_NAME_RE)
    if "header_seeds" in data:
        kwargs["header_seeds"] = _paths(path, "[policy].header_seeds", data["header_seeds"],
                                        "a folder such as 'tensorflow/lite/c'")
    if "header_files" in data:
        kwargs["header_files"] = _paths(path, "[policy].header_files", data["header_files"],
                                        "a header such as 'tensorflow/lite/builtin_ops.h'")
    if "cxx_header_root" in data:
        root = expect(path, "[policy].cxx_header_root", data["cxx_header_root"], str, "a folder such as 'tensorflow/lite'")
        kwargs["cxx_header_root"] = _safe_relpath(path, "[policy].cxx_header_root", root)
    if "cxx_header_skip" in data:
        skip = expect(path, "[policy].cxx_header_skip", data["cxx_header_skip"], str, "a regular expression")
        try:
            kwargs["cxx_header_skip"] = re.compile(skip)
        except re.error as exc:
            raise RecipeError(f"{path}: [policy].cxx_header_skip: not a regular expression ({exc}): {skip!r}") from None
    return Policy(**kwargs)


def parse_recipe(path: Path, data: dict[str, Any]) -> Recipe:
    check_keys(path, "top level", data, TOP_KEYS)
    src = require(path, "", data, "source", dict, "a [source] table").copy()
    where = "[source]"
    check_keys(path, where, src, SOURCE_KEYS)
    name = require(path, where, src, "name", str, "a project name such as 'tensorflow'")
    version = require(path, where, src, "version", str, "a version such as '2.16.1'")
    if not VERSION_RE.match(version):
        raise RecipeError(f"{path}: [source].version: expected MAJOR.MINOR.PATCH (e.g. '2.16.1'), got {version!r}")
    urls = require(path, where, src, "urls", list, "a non-empty list of http(s):// or file:// URLs")
    if not urls:
        raise RecipeError(f"{path}: [source].urls: expected a non-empty list of URLs, got []")
    for i, url in enumerate(urls):
        expect(path, f"[source].urls[{i}]", url, str, "a URL string")
        problem = url_problem(url)
        if problem:
            raise RecipeError(f"{path}: [source].urls[{i}]: {problem}, got {url!r}; expected an http(s)://host/... "
                              f"or file:///abs/path URL")
    sha256 = require(path, where, src, "sha256", str, "64 lower-case hex characters")
    if not SHA256_RE.match(sha256):
        raise RecipeError(f"{path}: [source].sha256: expected 64 lower-case hex characters, got {sha256!r}")
    strip_prefix = require(path, where, src, "strip_prefix", str, "the archive's top folder, e.g. 'tensorflow-2.16.1'")
    _safe_relpath(path, "[source].strip_prefix", strip_prefix)
    source = Source(name=name, version=version, urls=tuple(urls), sha256=sha256, strip_prefix=strip_prefix)

    b = data.get("build", {})
    expect(path, "[build]", b, dict, "a table")
    check_keys(path, "[build]", b, BUILD_KEYS)
    kwargs: dict[str, Any] = {}
    if "source_date_epoch" in b:
        epoch = expect(path, "[build].source_date_epoch", b["source_date_epoch"], int, "a Unix timestamp (integer)")
        if epoch < 0:
            raise RecipeError(f"{path}: [build].source_date_epoch: expected a non-negative Unix timestamp, got {epoch}")
        kwargs["source_date_epoch"] = epoch
    if "cmake_source_dir" in b:
        kwargs["cmake_source_dir"] = _safe_relpath(
            path, "[build].cmake_source_dir",
            expect(path, "[build].cmake_source_dir", b["cmake_source_dir"], str, "a path such as 'tensorflow/lite/c'"))
    if "cmake_options" in b:
        opts = expect(path, "[build].cmake_options", b["cmake_options"], dict, "a table of NAME = value")
        for key in opts:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", key):
                raise RecipeError(f"{path}: [build].cmake_options: {key!r} is not a CMake variable name")
        kwargs["cmake_options"] = tuple(sorted((k, _cmake_value(path, f"[build].cmake_options.{k}", v)) for k, v in opts.items()))
    if "patch_sets" in b:
        sets = expect(path, "[build].patch_sets", b["patch_sets"], list, "a list of patch-set names")
        for i, s in enumerate(sets):
            expect(path, f"[build].patch_sets[{i}]", s, str, "a patch-set name such as 'o3'")
        if len(set(sets)) != len(sets):
            raise RecipeError(f"{path}: [build].patch_sets: a patch set is listed twice: {sets}")
        kwargs["patch_sets"] = tuple(sets)
    if "lock" in b:
        lock = expect(path, "[build].lock", b["lock"], str, "a lock file path relative to the recipe")
        _safe_relpath(path, "[build].lock", lock)
        if not lock.endswith(LOCK_SUFFIX) or lock.endswith("/"):
            raise RecipeError(f"{path}: [build].lock: expected a {LOCK_SUFFIX} file beside the recipe or below its "
                              f"folder (e.g. {path.name}{LOCK_SUFFIX}, what `invoke lock` writes), got {lock!r}")
        kwargs["lock"] = lock
    if "host_tools_target" in b:
        kwargs["host_tools_target"] = expect(path, "[build].host_tools_target", b["host_tools_target"], str, "a CMake target name")
    policy = parse_policy(path, data.get("policy", {}))
    return Recipe(path=path.resolve(), source=source, build=BuildSpec(**kwargs), policy=policy)


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    return parse_recipe(path, load_toml(path))


def _version_key(version: str) -> tuple:
    parts = re.split(r"[.-]", version)
    return tuple((0, int(p)) if p.isdigit() else (-1, p) for p in parts)


def available_recipes(recipes_dir: Path = RECIPES_DIR) -> list[Recipe]:
    """Every recipes/tensorflow-*.toml, oldest version first."""
    recipes = [load_recipe(p) for p in sorted(recipes_dir.glob("*.toml"))]
    return sorted(recipes, key=lambda r: _version_key(r.version))


def select_recipe(*, version: str | None = None, recipe: str | Path | None = None,
                  recipes_dir: Path = RECIPES_DIR) -> Recipe:
    """--recipe PATH wins; else --version V from recipes/; else the newest."""
    if recipe:
        if version:
            loaded = load_recipe(recipe)
            if loaded.version != version:
                raise RecipeError(f"--recipe {recipe} is version {loaded.version} but --version {version} was given; drop one of them")
            return loaded
        return load_recipe(recipe)
    recipes = available_recipes(recipes_dir)
    if not recipes:
        raise RecipeError(f"no recipes in {recipes_dir}; pass --recipe PATH")
    if not version or version == "latest":
        return recipes[-1]
    for r in recipes:
        if r.version == version:
            return r
    known = ", ".join(r.version for r in recipes)
    raise RecipeError(f"no recipe for TensorFlow {version}; known versions: {known} (or pass --recipe PATH)")


def select_recipes(*, version: str | None = None, recipe: str | Path | None = None,
                   recipes_dir: Path = RECIPES_DIR) -> list[Recipe]:
    """Like select_recipe, but --version takes 'all' or a comma-separated list."""
    if recipe or not version or "," not in version and version != "all":
        return [select_recipe(version=version, recipe=recipe, recipes_dir=recipes_dir)]
    if version == "all":
        return available_recipes(recipes_dir)
    return [select_recipe(version=v.strip(), recipes_dir=recipes_dir) for v in version.split(",") if v.strip()]


def recipe_flag(recipe: Recipe, recipes_dir: Path = RECIPES_DIR) -> str:
    """How a command line names this recipe: `--version V` for a bundled one, else `--recipe PATH`."""
    if recipe.path.parent == recipes_dir.resolve():
        return f"--version {recipe.version}"
    return f"--recipe {recipe.path}"
