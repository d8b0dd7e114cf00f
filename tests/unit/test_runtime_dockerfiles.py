"""The runtime images' Dockerfiles: template files under tflite_forge/docker/, filled per flavor and arch;
the blog-style reference stage lives with the benchmark that measures against it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tflite_forge.arches import arch_names, resolve_arch
from tflite_forge.errors import ConfigError
from tflite_forge.image import base_image_ref
from tflite_forge.runtime_image import DOCKER_DIR, FLAVORS, PREFIX, USER, WHEELS, dockerfile

ROOT = Path(__file__).resolve().parents[2]


def test_only_user_facing_flavors_each_with_its_template():
    assert FLAVORS == ("minimal", "python", "wheel")
    assert sorted(p.name for p in DOCKER_DIR.glob("runtime-*.Dockerfile")) == [
        f"runtime-{f}.Dockerfile" for f in sorted(FLAVORS)]
    with pytest.raises(ConfigError, match=r"^--flavor 'blog': expected one of minimal, python, wheel$"):
        dockerfile("blog", base="b", interpreter=None)


@pytest.mark.parametrize("arch_name", arch_names())
@pytest.mark.parametrize("flavor", FLAVORS)
def test_every_flavor_fills_every_placeholder(flavor, arch_name):
    base = base_image_ref(resolve_arch(arch_name))
    text = dockerfile(flavor, base=base, interpreter="/lib/ld-linux-test.so.1")
    assert "@" not in text and text.endswith("\n")
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms[0] == ("scratch" if flavor == "minimal" else base) and froms[-1] == "runtime"
    # The final stage copies the test stage's stamp, so it cannot exist unless the smoke program ran.
    final = text[text.rindex("\nFROM runtime\n"):]
    assert f"COPY --from=test /tmp/smoke.passed {PREFIX}/share/smoke.passed" in final and f"USER {USER}" in final
    if flavor == "minimal":
        assert "COPY interp/ /lib/\n" in text
    if flavor == "wheel":
        assert " ".join(f"'{w}'" for w in WHEELS) in text


def test_the_blog_reference_is_the_benchmarks_own_dockerfile():
    spec = importlib.util.spec_from_file_location("bench_package_under_test", ROOT / "bench" / "bench_package.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    text = bench.BLOG_DOCKERFILE.read_text()
    assert bench.BLOG_DOCKERFILE.parent == ROOT / "bench"
    assert "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n" in text and "python3-numpy" in text
