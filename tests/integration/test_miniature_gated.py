"""The miniature's option-gated downloads behave as TensorFlow Lite's do, with the host cmake:
a default disconnected configure needs neither the kernel tests' benchmark library nor the GPU
headers (CMake reports their overrides as unused), and turning the option on needs that tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_miniature_native import Sources, need

pytestmark = pytest.mark.integration

GATED = {"FETCHCONTENT_SOURCE_DIR_GOOGLE_BENCHMARK": "TFLITE_KERNEL_TEST",
         "FETCHCONTENT_SOURCE_DIR_OPENCL_HEADERS": "TFLITE_ENABLE_GPU"}


@pytest.fixture(scope="module")
def sources(miniature_release, tmp_path_factory) -> Sources:
    need("cmake", "ninja", "cc", "c++")
    return Sources(miniature_release, tmp_path_factory.mktemp("miniature-gated"))


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_default_configure_leaves_the_gated_overrides_unused(sources, tmp_path):
    proc = sources.configure(tmp_path / "default")
    assert proc.returncode == 0, proc.stderr[-3000:]
    unused = proc.stderr.split("Manually-specified variables were not used by the project:", 1)[1]
    for variable in GATED:
        assert variable in unused
    # ... so a default configure succeeds without them, fully disconnected.
    assert sources.configure(tmp_path / "without", drop=tuple(GATED)).returncode == 0


@pytest.mark.parametrize("variable", sorted(GATED))
def test_the_option_brings_its_download_in(sources, tmp_path, variable):
    option = {GATED[variable]: "ON"}
    proc = sources.configure(tmp_path / "on", **option)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert variable not in proc.stderr.split("Manually-specified variables were not used", 1)[-1]
    proc = sources.configure(tmp_path / "missing", drop=(variable,), **option)
    assert proc.returncode != 0
    assert f"pass -D{variable}=<unpacked" in _flat(proc.stderr)


def test_kernel_benchmark_builds_against_the_gated_tree(sources, tmp_path):
    build: Path = tmp_path / "kernels"
    sources.configure_ok(build, TFLITE_KERNEL_TEST="ON", TFLITE_ENABLE_GPU="ON")
    sources.build(build, "miniature_kernel_benchmark", "tensorflowlite_c")
    assert (build / "tensorflow-lite" / "kernels" / "miniature_kernel_benchmark").is_file()
