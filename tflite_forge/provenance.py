"""manifest.json: an in-toto Statement v1 whose predicate is SLSA provenance v1.

- `subject`: every regular file of the release tarball (path relative to the top folder)
  with its sha256 — except manifest.json itself. This is the artifact's file list.
- `predicate.buildDefinition.externalParameters`: what the user chose (recipe, arch, CMake
  options, patch sets, SOURCE_DATE_EPOCH).
- `predicate.buildDefinition.internalParameters`: what the builder used (toolchain and
  compiler versions, builder and base image, glibc floor, the full CMake options, and
  build-info.json as written by the build).
- `predicate.buildDefinition.resolvedDependencies`: TensorFlow's archive, every locked
  dependency, each patch set, the lock file and the builder/base images, with digests.
- `predicate.runDetails.byproducts`: the symlinks of the tarball and the split debug file.

No timestamps other than SOURCE_DATE_EPOCH and no host paths: the manifest is as
reproducible as the tarball holding it. Field names follow the in-toto attestation
protobufs (in_toto_attestation.v1), which the tests use to parse it strictly.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://github.com/tflite-forge/tflite-forge/blob/main/docs/buildtype/cmake-container/v1"
BUILDER_ID = "https://github.com/tflite-forge/tflite-forge/builder/container"
MANIFEST = "manifest.json"


def tool_version() -> str:
    try:
        return version("tflite-forge")
    except PackageNotFoundError:
        return "0.1.0"


def _digest(value: Any) -> dict[str, str] | None:
    """'sha256:<hex>' or '<hex>' -> {"sha256": hex}; anything else -> None."""
    if not isinstance(value, str):
        return None
    algo, _, hexpart = value.partition(":") if ":" in value else ("sha256", "", value)
    hexpart = hexpart.lower()
    if algo == "sha256" and len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart):
        return {"sha256": hexpart}
    return None


def _pick(info: dict, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if info.get(key) not in (None, "", {}, []):
            return info[key]
    return default


def _name_digest_pairs(value: Any) -> list[tuple[str, str]]:
    """build-info patch sets / lock digests as [(name, sha256)], from a dict or a list of objects."""
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for name, digest in sorted(value.items()):
            if isinstance(digest, dict):
                digest = digest.get("sha256") or digest.get("digest")
            pairs.append((str(name), str(digest or "")))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                pairs.append((str(item.get("name", "")), str(item.get("sha256") or item.get("digest") or "")))
            elif isinstance(item, str):
                pairs.append((item, ""))
    return pairs


def _image_descriptor(name: str, value: Any) -> dict | None:
    if isinstance(value, dict):
        ref = value.get("ref") or value.get("name") or value.get("tag") or ""
        digest = _digest(value.get("id") or value.get("digest"))
    else:
        ref, digest = (value or ""), _digest(value)
    if not ref and not digest:
        return None
    desc: dict[str, Any] = {"name": name}
    if ref and not _digest(ref):
        desc["uri"] = f"oci:{ref}" if "://" not in str(ref) else str(ref)
    if digest:
        desc["digest"] = digest
    return desc


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def build_statement(inputs: Any, entries: Iterable[Any], debug_entries: Iterable[Any]) -> dict:
    """The Statement for one release tarball (entries: tarball.Entry, without manifest.json)."""
    recipe, arch, info = inputs.recipe, inputs.arch, inputs.build_info
    entries = sorted(entries, key=lambda e: e.path)
    subjects = [{"name": e.path, "digest": {"sha256": e.sha256}} for e in entries
                if not e.is_link and e.path != MANIFEST]

    cmake_options = _pick(info, "cmake_options", default=None)
    if cmake_options is None:
        cmake_options = dict(recipe.build.cmake_options)
    compilers = _pick(info, "compilers", "compiler_versions", "toolchain", default={})
    patch_sets = _name_digest_pairs(_pick(info, "patch_sets", default=[])) or \
        [(name, "") for name in recipe.build.patch_sets]
    lock_digests = _name_digest_pairs(_pick(info, "lock_digests", "locks", default={}))

    resolved: list[dict[str, Any]] = [{
        "name": recipe.source.name,
        "uri": recipe.source.urls[0],
        "digest": {"sha256": recipe.source.sha256},
        "annotations": {"version": recipe.version, "stripPrefix": recipe.source.strip_prefix},
    }]
    for dep in sorted(inputs.dependencies, key=lambda d: d.name):
        resolved.append({"name": dep.name, "uri": dep.url, "digest": {"sha256": dep.sha256},
                         "annotations": {"version": dep.version}})
    for name, digest in patch_sets:
        desc: dict[str, Any] = {"name": f"patch-set:{name}"}
        if _digest(digest):
            desc["digest"] = _digest(digest)
        resolved.append(desc)
    lock_path = Path(recipe.lock_path)
    lock_sha = _file_sha256(lock_path)
    if lock_sha:
        resolved.append({"name": f"lock:{lock_path.name}", "digest": {"sha256": lock_sha}})
    for name, digest in lock_digests:
        if _digest(digest) and name != lock_path.name:
            resolved.append({"name": f"lock:{name}", "digest": _digest(digest)})
    for name, keys in (("builder-image", ("builder_image_id", "builder_image", "builder_image_digest")),
                       ("base-image", ("base_image", "base_image_id"))):
        image = _image_descriptor(name, _pick(info, *keys))
        if image:
            resolved.append(image)

    recipe_sha = _file_sha256(Path(recipe.path))
    external: dict[str, Any] = {
        "recipe": {"name": recipe.label, "file": Path(recipe.path).name,
                   **({"sha256": recipe_sha} if recipe_sha else {})},
        "version": recipe.version,
        "arch": arch.name,
        "triplet": arch.triplet,
        "cmakeOptions": cmake_options,
        "patchSets": [name for name, _ in patch_sets],
        "sourceDateEpoch": inputs.source_date_epoch,
    }
    if getattr(inputs, "variant", ""):
        external["variant"] = inputs.variant      # "cxx": the C++ sibling (verify applies C++ rules)
    internal: dict[str, Any] = {
        "toolchain": compilers,
        "builderImage": _pick(info, "builder_image_id", "builder_image", "builder_image_digest", default=""),
        "baseImage": _pick(info, "base_image", "base_image_id", default=""),
        "glibcFloor": _pick(info, "glibc_floor", default=""),
        "cmakeOptions": cmake_options,
        "sourceDateEpoch": inputs.source_date_epoch,
        "buildInfo": info,
    }
    builder_versions = {"tflite-forge": tool_version()}
    if isinstance(compilers, dict):
        builder_versions.update({str(k): str(v) for k, v in sorted(compilers.items())})

    byproducts: list[dict[str, Any]] = [
        {"name": e.path, "annotations": {"symlinkTo": e.link}} for e in entries if e.is_link]
    byproducts += [{"name": e.path, "digest": {"sha256": e.sha256},
                    "annotations": {"tarball": f"{inputs.stem}-dbg.tar.gz"}} for e in debug_entries]

    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": internal,
                "resolvedDependencies": resolved,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": builder_versions},
                "metadata": {"invocationId": f"{inputs.stem}@{inputs.source_date_epoch}"},
                "byproducts": byproducts,
            },
        },
    }


def dumps(doc: dict) -> bytes:
    """Canonical JSON (sorted keys, 2-space indent, trailing newline): stable bytes."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def subject_digests(statement: dict) -> dict[str, str]:
    return {s["name"]: s["digest"]["sha256"] for s in statement.get("subject", [])}


def symlinks(statement: dict) -> dict[str, str]:
    out = {}
    for item in statement.get("predicate", {}).get("runDetails", {}).get("byproducts", []):
        target = (item.get("annotations") or {}).get("symlinkTo")
        if target:
            out[item["name"]] = target
    return out
