"""sbom.spdx.json: an SPDX 2.3 JSON document for one release tarball.

Packages: the shipped library (what the document describes), TensorFlow (GENERATED_FROM)
and every locked dependency the build's options bring in (the library CONTAINS it: they are
linked in statically; package.collect_inputs filters with lockfile.needed). Each source package
carries version, downloadLocation (the upstream URL from the recipe or lock), its archive's
SHA256, and the license found in its license files (SPDX id from a small text classifier;
NOASSERTION when unsure — never a guess). A tree that keeps its license in readme files
(OouraFFT's fft2d) gets `LicenseRef-<name>` with the copyright paragraph as extracted text.

`created` is SOURCE_DATE_EPOCH and `documentNamespace` is derived from the content, so
the document is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .licenses import LICENSE_RE, license_excerpt, license_files
from .provenance import tool_version

NAMESPACE_BASE = "https://github.com/tflite-forge/tflite-forge/spdx"

# (SPDX id, every regex that must match the license text), most specific first.
_CLASSIFIER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Apache-2.0", (r"Apache License", r"Version 2\.0")),
    ("MPL-2.0", (r"Mozilla Public License,? [Vv]ersion 2\.0",)),
    ("BSD-3-Clause", (r"Redistribution and use in source and binary forms",
                      r"(Neither the name|names of its\s+contributors|name of the copyright holder)")),
    ("BSD-2-Clause", (r"Redistribution and use in source and binary forms",)),
    ("MIT", (r"Permission is hereby granted, free of charge",)),
    ("Zlib", (r"This software is provided 'as-is'", r"(altered source versions|misrepresented)")),
    ("BSL-1.0", (r"Boost Software License",)),
)


def classify_license(text: str) -> str | None:
    """An SPDX license id for a license file's text, or None when no rule is sure."""
    flat = " ".join(text.split())
    for spdx_id, patterns in _CLASSIFIER:
        if all(re.search(p, flat) for p in patterns):
            return spdx_id
    return None


def license_info(name: str, tree: Path | None, license_file: str = "") -> tuple[str, dict[str, str] | None]:
    """(SPDX expression, extracted licensing info or None) for one component's tree: classified
    ids joined by AND; a license found only as a readme paragraph, LicenseRef-<name> with that
    paragraph; NOASSERTION when there is nothing to go by."""
    found: list[str] = []
    excerpts: list[str] = []
    for path in license_files(tree, license_file):
        text = path.read_text(encoding="utf-8", errors="replace")
        spdx_id = classify_license(text)
        if spdx_id and spdx_id not in found:
            found.append(spdx_id)
        elif not spdx_id and not LICENSE_RE.match(path.name):
            excerpt = license_excerpt(text)
            if excerpt and excerpt not in excerpts:
                excerpts.append(excerpt)
    if found:
        return " AND ".join(sorted(found)), None
    if excerpts:
        ref = "LicenseRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-")
        return ref, {"licenseId": ref, "name": f"{name} license (from its readme files)",
                     "extractedText": "\n\n".join(excerpts)}
    return "NOASSERTION", None


def license_of(tree: Path | None, license_file: str = "") -> str:
    """SPDX expression for a tree's license files ('A AND B', LicenseRef-..., or NOASSERTION)."""
    return license_info(tree.name if tree else "tree", tree, license_file)[0]


def _spdx_id(name: str) -> str:
    return "SPDXRef-Package-" + re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-")


def _timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _purl(url: str, version: str) -> str | None:
    m = re.match(r"https://github\.com/([^/]+)/([^/]+)/", url)
    if m:
        return f"pkg:github/{m.group(1).lower()}/{m.group(2).lower()}@{version}"
    return None


def _source_package(name: str, version: str, url: str, sha256: str, license_expr: str) -> dict[str, Any]:
    pkg: dict[str, Any] = {
        "SPDXID": _spdx_id(name),
        "name": name,
        "versionInfo": version,
        "downloadLocation": url,
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": sha256}],
        "licenseConcluded": license_expr,
        "licenseDeclared": license_expr,
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "SOURCE",
    }
    purl = _purl(url, version)
    if purl:
        pkg["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                "referenceLocator": purl}]
    return pkg


def build_sbom(inputs: Any, *, library_sha256: str, library_name: str = "libtensorflowlite_c",
               library_file: str | None = None) -> dict:
    recipe = inputs.recipe
    tf_name = recipe.source.name
    library_id = _spdx_id(library_name) if library_name != "libtensorflowlite_c" else "SPDXRef-Package-libtensorflowlite-c"
    library_file = library_file or f"lib/libtensorflowlite_c.so.{recipe.version}"
    library = {
        "SPDXID": library_id,
        "name": library_name,
        "versionInfo": recipe.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": library_sha256}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "LIBRARY",
        "comment": f"{inputs.stem}: {library_file} built for {inputs.arch.triplet}",
    }
    packages = [library, _source_package(tf_name, recipe.version, recipe.source.urls[0], recipe.source.sha256,
                                         license_of(inputs.tensorflow_tree))]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": library_id},
        {"spdxElementId": library_id, "relationshipType": "GENERATED_FROM", "relatedSpdxElement": _spdx_id(tf_name)},
    ]
    extracted = []
    for dep in sorted(inputs.dependencies, key=lambda d: d.name):
        expr, info = license_info(dep.name, dep.tree, getattr(dep, "license_file", ""))
        if info:
            extracted.append(info)
        packages.append(_source_package(dep.name, dep.version, dep.url, dep.sha256, expr))
        relationships.append({"spdxElementId": library_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": _spdx_id(dep.name)})
    seed = json.dumps([library_sha256, recipe.source.sha256, sorted(d.sha256 for d in inputs.dependencies)])
    doc_hash = hashlib.sha256(seed.encode()).hexdigest()[:32]
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": inputs.stem,
        "documentNamespace": f"{NAMESPACE_BASE}/{inputs.stem}-{doc_hash}",
        "creationInfo": {
            "created": _timestamp(inputs.source_date_epoch),
            "creators": [f"Tool: tflite-forge-{tool_version()}"],
        },
        "packages": packages,
        "relationships": relationships,
    }
    if extracted:
        doc["hasExtractedLicensingInfos"] = extracted
    return doc


def dumps(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
