"""tflite-forge tasks. Thin wiring only: every task resolves the shared options and
hands off to the tflite_forge package, where the work and its tests live.

Data flow: recipe -> fetch -> unpack -> patch -> build (in a container) -> package -> verify/test.
Every @forge_task in this module is a task (no explicit Collection: invoke collects them).
A task names the shared options it takes (rows of tflite_forge/options.py: flag, variable,
invoke.yaml key, help); its body receives them resolved as `settings`. Given to any task of a
chain they apply to the whole chain (tflite_forge.cli.ChainExecutor).
"""

import sys

# invoke turns bytecode writing off before it loads a tasks file (its --write-pyc flag), so every
# module imported from here on -- all of tflite_forge, requests, urllib3 -- would be compiled from
# source at every command: 0.5 s of CPU per `invoke fetch`, the start-up that kept a cold fetch
# below curl + sync. The tool's modules are cached like any installed package's; Python's own
# switches (-B, PYTHONDONTWRITEBYTECODE) still turn it off.
sys.dont_write_bytecode = bool(sys.flags.dont_write_bytecode)

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

# Only what declaring the tasks needs is imported here: `invoke --list`, `--help` and every matrix
# cell's start-up stay at the cost of these few modules. Each task imports the stage modules it
# runs in its body (pyproject: PLC0415 is ignored for this file only; the package keeps imports at
# the top of every module). tests/unit/test_cli.py holds this: importing tasks.py loads no stage.
from tflite_forge.cli import chain_releases, forge_task  # noqa: E402
from tflite_forge.errors import ConfigError  # noqa: E402
from tflite_forge.options import PIPELINE  # noqa: E402
from tflite_forge.settings import Settings  # noqa: E402

def stage(per_arch: bool = True, **extra_help: str):
    """A pipeline task: every shared option, long flags only (one meaning per flag across a chain)."""
    return forge_task(options=PIPELINE, help=extra_help, auto_shortflags=False, per_arch=per_arch)


@forge_task(options=["cache_dir"])
def recipes(settings: Settings):
    """List the recipes (TensorFlow versions) tflite-forge knows, and whether each is fetched and locked."""
    from tflite_forge import sources

    sources.run_recipes(settings)


@stage(per_arch=False)
def fetch(settings: Settings):
    """Download and verify the TensorFlow archive and every locked dependency into the cache."""
    from tflite_forge import sources

    sources.run_fetch(settings)


@stage(per_arch=False, all_="also pin what only other options reach (kernel tests, GPU headers, tools): "
                             "for users who build more than the recipe's configuration")
def lock(settings: Settings, all_=False):
    """Write <recipe>.lock: every tree the recipe's TFLite configuration downloads at configure time, with sha256."""
    from tflite_forge import lock as lock_mod

    lock_mod.run_lock(settings, everything=all_)


@forge_task(options=["cache_dir"],
            help={"dest": "folder to write the mirror into (sha256/<hex> layout, servable over http or file://)"})
def mirror(settings: Settings, dest):
    """Export the download cache as a mirror for an air-gapped site."""
    from tflite_forge import fetch as fetch_mod

    fetch_mod.run_mirror_export(settings, dest)


@stage(backend="build system the working copy is for: cmake (default) or bazel; edits say which they need",
       dry_run="print the unified diff the patch sets would apply (from the cache trees) and change nothing")
def patch(settings: Settings, backend="cmake", dry_run=False):
    """Copy the unpacked trees to <work_dir>/src/<recipe>-<arch>/ and apply the recipe's patch sets, all or nothing."""
    from tflite_forge import pipeline

    pipeline.run_patch(settings, backend=backend, dry_run=dry_run)


@forge_task(options=["version", "recipe", "cache_dir"],
            help={"check": "check every selected recipe (--version V, a comma list, or all; default all) against the "
                           "fetched archives: which edits apply, drifted, or are already upstream"},
            auto_shortflags=False, handles_matrix=True)
def patches(settings: Settings, check=False):
    """List the patch sets in patches/, or (--check) report per recipe which edits apply, drifted or are upstream."""
    from tflite_forge import patch_report

    patch_report.run_patches(settings, check=check)


@forge_task(options=["engine", "cache_dir", "mirror", "rewrite", "offline", "builder", "ccache_remote"])
def doctor(settings: Settings):
    """Check this host (engine, builders, disk, memory, qemu/binfmt, cross compilers, cache, upstream, mirrors, compile cache); a fix for every failing row."""
    from tflite_forge import doctor as doctor_mod

    failing = doctor_mod.run_doctor(settings)
    if failing:
        raise ConfigError(f"{failing} check(s) failed; apply the fixes in the table above")


@forge_task(help={"only": "run only benchmarks whose name contains this (fetch, patch, build, ccache, package); repeatable"},
            iterable=["only"])
def bench(only=None):
    """Run the benchmarks in bench/ and print one table of ratios against references measured in the same run."""
    spec = importlib.util.spec_from_file_location("bench_run_all", Path(__file__).parent / "bench" / "run_all.py")
    assert spec is not None and spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    runner.main(only or None)   # fails (non-zero exit) when a benchmark crashed


@forge_task(options=["engine", "jobs"],
            help={"keep": "keep the scratch release (artifacts stay in <work_dir>/selftest/dist either way)"})
def selftest(settings: Settings, keep=False):
    """Run the whole pipeline on the bundled miniature TensorFlow (loopback mirror) for the host arch and aarch64."""
    from tflite_forge import selftest as selftest_mod

    selftest_mod.run_selftest(settings, keep=keep)


@stage(base_image="base image of the builder (default tflite-forge/debian-base:bookworm, made by "
                  "`invoke image --bootstrap`); its glibc is the oldest the library runs on: for older boards "
                  "use tflite-forge/debian-base:bullseye (glibc 2.31, `invoke image --bootstrap --debian-suite "
                  "bullseye`); with a registry, pin one by digest: debian:bookworm@sha256:...",
       cxx_shared="also build the C++ shared library libtensorflow-lite.so (-DBUILD_SHARED_LIBS=ON)",
       force="build even when the stamp says nothing changed")
def build(settings: Settings, base_image=None, cxx_shared=False, force=False):
    """Build libtensorflowlite_c.so for --arch in a container with no network (fetches and patches first if needed)."""
    from tflite_forge import pipeline

    pipeline.run_build_task(settings, base_image=base_image, cxx_shared=cxx_shared, force=force,
                            release=chain_releases())


@forge_task(options=["engine", "cache_dir", "builder"],
            help={"build": "remove build trees: build volumes, <work_dir>/out and stamps (the default scope)",
                  "images": "remove the builder images (the base image is kept)",
                  "cache": "remove the ccache volumes (the next build is cold)",
                  "downloads": "read every cached download through and remove those that are not readable "
                               "archives (truncated, corrupt); alone, only this scope"})
def clean(settings: Settings, build=False, images=False, cache=False, downloads=False):
    """Remove what builds leave behind (and, with --downloads, unreadable cached downloads); each scope says what it deleted."""
    from tflite_forge import clean as clean_mod
    from tflite_forge import unpack

    if downloads:
        unpack.clean_downloads(settings.cache_dir)
        if not (build or images or cache):
            return
    clean_mod.run_clean(settings, build=build, images=images, cache=cache)


@stage(sign="gpg key id: also write a detached, armoured dist/SHA256SUMS.asc",
       glibc_max="fail when the library needs a GLIBC_ symbol version above this (e.g. 2.31)")
def package(settings: Settings, sign=None, glibc_max=None):
    """Pack the build output into dist/ (builds first if needed): tarball + -dbg, manifest, SBOM, SHA256SUMS; verified."""
    from tflite_forge import pipeline

    pipeline.run_package(settings, sign=sign, glibc_max=glibc_max)


@forge_task(help={"tarball": "a release tarball (dist/libtensorflowlite_c-<v>-linux-<arch>.tar.gz)",
                  "arch": "expected target arch (default: the one recorded in its manifest.json)",
                  "glibc_max": "fail when the library needs a GLIBC_ symbol version above this (e.g. 2.31)"})
def verify(settings: Settings, tarball, arch=None, glibc_max=None):
    """Check a release tarball: ELF machine/class, SONAME, NEEDED, glibc needs, exports, build paths, digests."""
    from tflite_forge import verify as verify_mod

    verify_mod.run_verify(settings, tarball, glibc_max=glibc_max, arch=arch)


@stage(no_cmake="skip the CMake find_package consumer (SCons smoke only)",
       model="run this .tflite model instead of the smoke test: print its input and output names, types and "
             "shapes, the first output values and the median invoke time, on the target arch",
       input="with --model: a .npy file to feed input 0 (comma-separated list: inputs 0, 1, ... in order); "
             "default: zeros. The array's dtype and shape must match the input's",
       runs="with --model: how many times to invoke (default 10); the report gives the median time",
       resize="with --model --input: resize each input to its array's shape first (for models with dynamic dims)",
       interpreter="with --model: c-api (default: the packaged library, through a C program built against the "
                   "tarball) or tflite-runtime (the real interpreter from PyPI, in the arch's wheel runtime image)")
def test(settings: Settings, no_cmake=False, model=None, input=None, runs=10,
         resize=False, interpreter="c-api"):
    """Smoke-test dist/'s tarballs on their target arch (natively or under qemu-user): {1, 3} -> {3, 9}; packages first if needed.
    With --model FILE: run that model through the packaged library instead and print what it computed."""
    from tflite_forge import model_run, pipeline

    if model is None:
        pipeline.run_test(settings, cmake=not no_cmake)
    else:
        pipeline.run_model_test(settings, model_run.make_request(model, inputs=input, runs=runs, resize=resize,
                                                                 interpreter=interpreter))


@stage(flavor="runtime image from dist/'s tarball: minimal (<= 20 MB, FROM scratch, the default), "
              "python (python3 + ctypes smoke) or wheel (a prebuilt tflite-runtime wheel, installed offline)",
       builder_image="make the builder image for --arch instead (tagged by a hash of its inputs; build does this itself)",
       bootstrap="make the Debian base image with debootstrap + import (no registry needed; needs root); "
                 "with --arch, that arch's base (e.g. tflite-forge/debian-base:bookworm-arm64, under qemu)",
       base_image="Debian base image: for --builder-image/--bootstrap the builder's base (default "
                  "tflite-forge/debian-base:bookworm), for python/wheel the runtime base",
       force="with --bootstrap: debootstrap again even if the image or its cached tarball exists",
       debian_suite="with --bootstrap/--builder-image: Debian suite of the base image, the glibc floor of every build "
                    "on it (default bookworm, glibc 2.36; bullseye: 2.31); makes tflite-forge/debian-base:<suite>",
       debian_mirror="with --bootstrap: Debian archive debootstrap downloads from, and the base image's apt "
                     "sources (default http://deb.debian.org/debian)")
def image(settings: Settings, flavor="minimal", builder_image=False, bootstrap=False,
          base_image=None, force=False, debian_suite=None, debian_mirror=None):
    """Build images: the runtime image for --arch (--flavor; its test stage runs the smoke program), or the builder / base image."""
    from tflite_forge import image as image_mod
    from tflite_forge import pipeline

    if builder_image or bootstrap:
        image_mod.run_image(settings, bootstrap=bootstrap, base_image=base_image, force=force, arch=settings.arch,
                            builder=builder_image, debian_suite=debian_suite, debian_mirror=debian_mirror)
    elif debian_suite or debian_mirror:
        raise ConfigError("--debian-suite/--debian-mirror make base and builder images: add --bootstrap or --builder-image "
                          "(a runtime image's base is --base-image)")
    else:
        pipeline.run_runtime_image(settings, flavor=flavor, base_image=base_image)
