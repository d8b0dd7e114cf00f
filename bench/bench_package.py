"""Runtime image sizes and packaging time, each against a reference measured in the same run.

Rows:
- image-size/<flavor>: bytes of our runtime image (minimal, python, wheel) for the host arch,
  against a blog-style runtime stage (Debian + python3 + pip + numpy from apt; this folder's
  blog-runtime.Dockerfile) built now from the same base image. ratio = ours / blog (lower is
  better). minimal has a 20 MB target.
- image-size/minimal-aarch64: the foreign-arch minimal image (assembled without emulation).
- package-time: `invoke package` for one arch (stage, strip + split debug, manifest, SBOM,
  deterministic tar.gz, verify) against plain `tar -czf` of the same unpacked tree.
  Medians of 5 runs.

Needs a container engine and the base image (`invoke image --bootstrap`); uses a small real
build of the C API (tests/fake_build.py) so it runs in a minute.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RUNS = 5
BLOG_DOCKERFILE = Path(__file__).resolve().parent / "blog-runtime.Dockerfile"
BLOG_TAG = "tflite-forge/runtime:bench-x86_64-blog"


def _median_time(fn) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def package_rows(root: Path) -> tuple[list[dict], Path]:
    from tests.fake_build import make_fake_build, settings_for
    from tflite_forge.consumer import unpack
    from tflite_forge.pipeline import run_package

    fake = make_fake_build(root / "x86_64", "x86_64")
    settings = settings_for(fake, root / "dist")
    ours = _median_time(lambda: run_package(settings, log=lambda _: None))
    tarball = next((root / "dist").glob("*x86_64.tar.gz"))
    top = unpack(tarball, root / "unpacked")
    ref = _median_time(lambda: subprocess.run(["tar", "-czf", str(root / "plain.tar.gz"), "-C", str(top.parent),
                                               top.name], check=True))
    row = {"benchmark": "package-time", "ours": round(ours, 3), "reference": round(ref, 3),
           "ratio": ours / ref, "target": "deterministic + verified; plain tar -czf as reference",
           "note": "seconds, median of 5"}
    return [row], root / "dist"


def blog_image_size(engine, base: str, context: Path) -> int:
    """Bytes of the reference image: blog-runtime.Dockerfile built on `base`, the runtime flavors' base."""
    from tflite_forge import image_io
    from tflite_forge.runtime_image import image_size

    if image_io.image_id(engine, base) is None:
        raise RuntimeError(f"base image {base} is missing; make it with `invoke image --bootstrap`")
    context.mkdir(parents=True, exist_ok=True)
    image_io.build_image(engine, context=context, dockerfile=BLOG_DOCKERFILE, tag=BLOG_TAG,
                         build_args={"BASE_IMAGE": base}, labels={"io.tflite-forge.purpose": "bench-reference"})
    return image_size(engine, BLOG_TAG)


def image_rows(root: Path, dist: Path) -> list[dict]:
    from tests.fake_build import make_fake_build, settings_for
    from tflite_forge import engine as eng
    from tflite_forge import image_io
    from tflite_forge.arches import resolve_arch
    from tflite_forge.pipeline import run_package
    from tflite_forge.runtime_image import MINIMAL_LIMIT, build_runtime_image, default_base_image

    engine = eng.resolve_engine(None)
    host = resolve_arch("x86_64")
    tarball = next(dist.glob("*x86_64.tar.gz"))
    cache = root / "cache"
    cache.mkdir(exist_ok=True)
    quiet = lambda _: None  # noqa: E731
    blog = blog_image_size(engine, default_base_image(host), root / "blog-context")
    rows = []
    for flavor in ("minimal", "python", "wheel"):
        image = build_runtime_image(engine, tarball, host, flavor=flavor, version="bench", cache_dir=cache, log=quiet)
        rows.append({"benchmark": f"image-size/{flavor}", "ours": image.size, "reference": blog,
                     "ratio": image.size / blog,
                     "target": f"<= {MINIMAL_LIMIT // 1000000} MB" if flavor == "minimal" else "below the blog stage",
                     "note": "bytes; reference: Debian + python3 + pip + numpy (apt)"})
    fake = make_fake_build(root / "aarch64", "aarch64")
    run_package(settings_for(fake, dist, arch="aarch64"), log=quiet)
    arm = build_runtime_image(engine, next(dist.glob("*aarch64.tar.gz")), resolve_arch("aarch64"), flavor="minimal",
                              version="bench", cache_dir=cache, log=quiet)
    rows.append({"benchmark": "image-size/minimal-aarch64", "ours": arm.size, "reference": blog,
                 "ratio": arm.size / blog, "target": f"<= {MINIMAL_LIMIT // 1000000} MB",
                 "note": "bytes; reference: the host's blog stage"})
    image_io.remove_images(engine, [BLOG_TAG, *(f"tflite-forge/runtime:bench-{a}-{f}" for a, f in
                                                (("x86_64", "minimal"), ("x86_64", "python"), ("x86_64", "wheel"),
                                                 ("aarch64", "minimal")))])
    return rows


def main() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        root = Path(tmp)
        rows, dist = package_rows(root)
        try:
            rows += image_rows(root, dist)
        except Exception as err:  # no engine / no base image: the timing rows still count
            rows.append({"benchmark": "image-size", "ratio": "error", "note": f"{type(err).__name__}: {err}"})
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
