"""invoke package ships licenses and lists SBOM packages for what the build's options brought in:
not the kernel-test and GPU-only trees a lock may also pin, and fft2d's license although OouraFFT
keeps it in readme files (the miniature's fft2d tree keeps it the same way)."""

from __future__ import annotations

import json
import tarfile
from importlib import resources
from pathlib import Path

import pytest

from tests.fake_build import VERSION, make_fake_build, settings_for
from tflite_forge.lockfile import Lock, LockedDependency, dump_lock, load_lock
from tflite_forge.pipeline import run_package

STEM = f"libtensorflowlite_c-{VERSION}-linux-aarch64"
MODULES = "tensorflow/lite/tools/cmake/modules"
# (name, when, license_file, files of its tree): the gated two as TFLite 2.14 declares them.
EXTRA = (
    ("fft2d", "TRUE", "readme2d.txt", None),   # the miniature's own tree, license in readme files only
    ("google_benchmark", "TFLITE_KERNEL_TEST", "", {"LICENSE": "Apache License\nVersion 2.0\n"}),
    ("opencl_headers", "TFLITE_ENABLE_GPU", "", {"LICENSE": "Apache License\nVersion 2.0\n"}),
    ("neon2sse", 'NOT CMAKE_SYSTEM_PROCESSOR OR CMAKE_SYSTEM_PROCESSOR MATCHES "x86"', "",
     {"LICENSE": "Redistribution and use in source and binary forms, with or without modification\n"}),
)


def _miniature_fft2d() -> dict[str, bytes]:
    root = resources.files("tflite_forge.miniature").joinpath("trees", "fft2d")
    return {child.name: child.read_bytes() for child in root.iterdir() if child.is_file()}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("licenses")
    fake = make_fake_build(root, "aarch64")
    lock_path = next((root / "recipes").glob("*.lock"))
    lock = load_lock(lock_path)
    cell = root / "work" / "src" / f"tensorflow-{VERSION}-aarch64" / "deps"
    extra = []
    for i, (name, when, license_file, files) in enumerate(EXTRA):
        extra.append(LockedDependency(
            name=name, url=f"https://github.com/example/{name}/archive/v1.{i}.tar.gz", sha256=f"{i + 5}" * 64,
            strip_prefix=f"{name}-1.{i}", cmake_variable=f"FETCHCONTENT_SOURCE_DIR_{name.upper()}",
            declared_in=f"{MODULES}/{name}.cmake", declared_by="tensorflow", when=when, license_file=license_file))
        tree = cell / name
        tree.mkdir(parents=True)
        for rel, data in (files or _miniature_fft2d()).items():
            (tree / rel).write_bytes(data if isinstance(data, bytes) else data.encode())
    lock_path.write_text(dump_lock(Lock(path=lock_path, archive_sha256=lock.archive_sha256, generated_by="t",
                                        dependencies=(*lock.dependencies, *extra),
                                        option_defaults=(("TFLITE_ENABLE_GPU", "OFF"), ("TFLITE_KERNEL_TEST", "OFF")))))
    dist = root / "dist"
    lines: list[str] = []
    run_package(settings_for(fake, dist), log=lines.append)
    with tarfile.open(dist / f"{STEM}.tar.gz", "r:gz") as tar:
        names = {m.name[len(STEM) + 1:] for m in tar.getmembers() if m.isfile()}
        sbom = json.loads(tar.extractfile(f"{STEM}/sbom.spdx.json").read())
        readme = tar.extractfile(f"{STEM}/share/licenses/fft2d/readme2d.txt").read()
    return names, sbom, lines, readme


def test_licenses_only_for_trees_the_build_options_bring_in(packaged):
    names, _, lines, _ = packaged
    shipped = {n.split("/")[2] for n in names if n.startswith("share/licenses/")}
    # aarch64, default options: no kernel tests, no GPU, and neon2sse is x86-only.
    assert shipped == {"tensorflow", "xnnpack", "flatbuffers", "fft2d"}
    assert not any("no license file found" in line for line in lines), lines


def test_a_license_kept_in_readme_files_is_shipped(packaged):
    names, _, _, readme = packaged
    assert {n for n in names if n.startswith("share/licenses/fft2d/")} == \
        {"share/licenses/fft2d/readme.txt", "share/licenses/fft2d/readme2d.txt"}
    assert readme == _miniature_fft2d()["readme2d.txt"]


def test_sbom_lists_what_was_built_in_with_the_readme_license(packaged):
    _, sbom, _, _ = packaged
    by_name = {p["name"]: p for p in sbom["packages"]}
    assert set(by_name) == {"libtensorflowlite_c", "tensorflow", "xnnpack", "flatbuffers", "fft2d"}
    contained = {r["relatedSpdxElement"] for r in sbom["relationships"] if r["relationshipType"] == "CONTAINS"}
    assert contained == {by_name[n]["SPDXID"] for n in ("xnnpack", "flatbuffers", "fft2d")}
    assert by_name["fft2d"]["licenseConcluded"] == "LicenseRef-fft2d"
    (info,) = sbom["hasExtractedLicensingInfos"]
    assert info["licenseId"] == "LicenseRef-fft2d"
    assert info["extractedText"].startswith("Copyright")
    assert "You may use, copy, modify and distribute this code" in info["extractedText"]


def test_the_sbom_with_a_readme_license_is_valid_spdx(packaged, tmp_path):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    _, sbom, _, _ = packaged
    path = Path(tmp_path) / "sbom.spdx.json"
    path.write_text(json.dumps(sbom))
    assert validate_full_spdx_document(parse_file(str(path))) == []
