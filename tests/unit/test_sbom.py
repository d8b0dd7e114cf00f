"""manifest.json and sbom.spdx.json validate against their schemas (in-toto/SLSA protobufs, spdx-tools)."""

from __future__ import annotations

import json
import tarfile

import pytest

from tests.fake_build import EPOCH, VERSION, make_fake_build, settings_for
from tflite_forge.pipeline import run_package
from tflite_forge.sbom import classify_license

STEM = f"libtensorflowlite_c-{VERSION}-linux-x86_64"


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sbom")
    fake = make_fake_build(root, "x86_64")
    run_package(settings_for(fake, root / "dist"), log=lambda _: None)
    with tarfile.open(root / "dist" / f"{STEM}.tar.gz", "r:gz") as tar:
        read = lambda name: tar.extractfile(f"{STEM}/{name}").read()  # noqa: E731
        (root / "sbom.spdx.json").write_bytes(read("sbom.spdx.json"))
        return json.loads(read("manifest.json")), root / "sbom.spdx.json"


def test_manifest_is_a_valid_in_toto_statement_with_slsa_provenance(docs):
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    statement, _ = docs
    pb = json_format.ParseDict(statement, statement_pb2.Statement())  # strict: unknown fields fail
    Statement.copy_from_pb(pb).validate()
    assert pb.predicate_type == "https://slsa.dev/provenance/v1"
    provenance = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    assert provenance.build_definition.external_parameters["arch"] == "x86_64"
    assert provenance.run_details.builder.version["gcc"] == "12.2.0"
    deps = {d.name: d for d in provenance.build_definition.resolved_dependencies}
    assert deps["tensorflow"].digest["sha256"] == "c729e56efc945c6df08efe5c9f5b8b89329c7c91b8f40ad2bb3e13900bd4876d"
    assert deps["builder-image"].digest["sha256"] == "a" * 64
    assert deps["base-image"].uri == "oci:tflite-forge/debian-base:bookworm"


def test_sbom_is_valid_spdx_2_3(docs):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    _, path = docs
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    by_name = {p.name: p for p in document.packages}
    assert set(by_name) == {"libtensorflowlite_c", "tensorflow", "xnnpack", "flatbuffers"}
    assert by_name["tensorflow"].version == VERSION
    assert str(by_name["tensorflow"].license_concluded) == "Apache-2.0"
    assert str(by_name["xnnpack"].license_concluded) == "BSD-3-Clause"
    assert by_name["xnnpack"].version == "6b83f69d4938da4dc9ad63c00bd13e9695659a51"
    assert by_name["flatbuffers"].version == "23.5.26"
    assert by_name["flatbuffers"].download_location == "https://github.com/google/flatbuffers/archive/v23.5.26.tar.gz"
    assert by_name["flatbuffers"].checksums[0].value == "2" * 64
    data = json.loads(path.read_text())
    assert data["creationInfo"]["created"] == "2024-03-08T00:00:00Z"   # SOURCE_DATE_EPOCH, not the clock
    assert EPOCH == 1709856000


@pytest.mark.parametrize(("text", "expected"), [
    ("Apache License\n Version 2.0, January 2004", "Apache-2.0"),
    ("Permission is hereby granted, free of charge, to any person", "MIT"),
    ("Redistribution and use in source and binary forms ... Neither the name of Google", "BSD-3-Clause"),
    ("Redistribution and use in source and binary forms, with or without", "BSD-2-Clause"),
    ("Mozilla Public License Version 2.0", "MPL-2.0"),
    ("some custom terms nobody classified", None),
])
def test_license_classifier_is_conservative(text, expected):
    assert classify_license(text) == expected
