"""tflite-forge tasks. Thin wiring only: every task resolves the shared options and
hands off to the tflite_forge package, where the work and its tests live.

Data flow: recipe -> fetch -> unpack -> patch -> build (in a container) -> package -> verify/test.
Every @forge_task in this module is a task (no explicit Collection: invoke collects them).
Shared options (--version, --recipe, --arch, --engine, --cache-dir, --mirror, --rewrite,
--offline, --jobs, --ccache-remote) given to any task apply to the whole chain (tflite_forge.cli.ChainExecutor).
"""

import sys

# invoke turns bytecode writing off before it loads a tasks file (its --write-pyc flag), so every
# module imported from here on -- all of tflite_forge, requests, urllib3 -- would be compiled from
# source at every command: 0.5 s of CPU per `invoke fetch`, the start-up that kept a cold fetch
# below curl + sync. The tool's modules are cached like any installed package's; Python's own
# switches (-B, PYTHONDONTWRITEBYTECODE) still turn it off.
sys.dont_write_bytecode = bool(sys.flags.dont_write_bytecode)

from tflite_forge.cli import chain_releases, forge_task  # noqa: E402  (after the bytecode switch)
from tflite_forge.settings import settings_from_context  # noqa: E402

SHARED_HELP = {
    "version": "TensorFlow version from recipes/ (e.g. 2.16.1; 'all' or a comma list where a task runs a matrix); default: newest",
    "recipe": "path to a recipe TOML file (overrides --version); for forks and the bundled miniature",
    "arch": "target: aarch64 (arm64), armhf (armv7l), x86_64 (amd64), riscv64, or 'all'",
    "engine": "container engine: docker or podman (default: a reachable docker daemon, else podman)",
    "cache-dir": "download cache (default: $TFLITE_FORGE_CACHE or $XDG_CACHE_HOME/tflite-forge)",
    "mirror": "mirror URL looked up as <mirror>/sha256/<hex> before upstream; http(s):// or file://; repeatable",
    "rewrite": "URL rewrite FROM=TO applied to every upstream URL (like git insteadOf); repeatable",
    "offline": "never open a socket: use only the cache and file:// mirrors",
    "jobs": "parallel compile jobs (default: from cores and memory, ~2 GiB per job)",
    "ccache-remote": "shared compile cache read and written by every build: redis+unix:///abs/path.sock (a Redis "
                     "unix socket on the engine's host, mounted into the build container, which keeps no network); "
                     "the local ccache stays the first level; never changes what is built",
    "parallel": "with --arch/--version lists or 'all' (a matrix): cells run at once, capped by memory (default 1)",
    "resume": "with a matrix: skip cells already packaged from identical inputs",
    "builder": "build on this container engine instead of this host's: unix:///path.sock, ssh://user@host, "
               "tcp://host:port, podman+unix:///path.sock or a docker context; repeatable: a matrix spreads its "
               "cells over the builders, one cell each at a time (env TFLITE_FORGE_BUILDERS)",
}
SHARED_ITERABLE = ["mirror", "rewrite", "builder"]
# The pipeline tasks all take every shared option, so a flag is accepted wherever it stands in a
# chain (invoke parses a flag for the task it follows); ChainExecutor then shares it with the rest.
PIPELINE = ("version", "recipe", "arch", "engine", "cache-dir", "mirror", "rewrite", "offline", "jobs",
            "ccache-remote", "parallel", "resume", "builder")


def _help(*shared, **extra):
    """help= for invoke: the shared options a task takes, plus its own."""
    merged = {name: SHARED_HELP[name] for name in shared}
    merged.update(extra)
    return merged


def stage(per_arch=True, **extra_help):
    """A pipeline task: every shared option, long flags only (one meaning per flag across a chain)."""
    return forge_task(help=_help(*PIPELINE, **extra_help), iterable=SHARED_ITERABLE, auto_shortflags=False,
                      per_arch=per_arch)


def _settings(c, **flags):
    return settings_from_context(c, flags)


def _pipeline_settings(c, version, recipe, arch, engine, cache_dir, mirror, rewrite, offline, jobs, builder=None,
                       ccache_remote=None):
    return settings_from_context(c, dict(version=version, recipe=recipe, arch=arch, engine=engine, cache_dir=cache_dir,
                                         mirror=mirror, rewrite=rewrite, offline=offline, jobs=jobs, builder=builder,
                                         ccache_remote=ccache_remote))


@forge_task(help=_help("cache-dir"))
def recipes(c, cache_dir=None):
    """List the recipes (TensorFlow versions) tflite-forge knows, and whether each is fetched and locked."""
    from tflite_forge import fetch
    fetch.run_recipes(_settings(c, cache_dir=cache_dir))


@stage(per_arch=False)
def fetch(c, version=None, recipe=None, arch=None, engine=None, cache_dir=None, mirror=None, rewrite=None,
          offline=False, jobs=None, ccache_remote=None, parallel=None, resume=False, builder=None):
    """Download and verify the TensorFlow archive and every locked dependency into the cache."""
    from tflite_forge import fetch as fetch_mod
    fetch_mod.run_fetch(_pipeline_settings(c, version, recipe, arch, engine, cache_dir, mirror, rewrite, offline, jobs,
                                           builder, ccache_remote))


@stage(per_arch=False, all_="also pin what only other options reach (kernel tests, GPU headers, tools): "
                             "for users who build more than the recipe's configuration")
def lock(c, version=None, recipe=None, arch=None, engine=None, cache_dir=None, mirror=None, rewrite=None,
         offline=False, jobs=None, ccache_remote=None, parallel=None, resume=False, builder=None, all_=False):
    """Write <recipe>.lock: every tree the recipe's TFLite configuration downloads at configure time, with sha256."""
    from tflite_forge import lock as lock_mod
    lock_mod.run_lock(_pipeline_settings(c, version, recipe, arch, engine, cache_dir, mirror, rewrite, offline, jobs,
                                         builder, ccache_remote),
                      everything=all_)


@forge_task(help=_help("cache-dir", dest="folder to write the mirror into (sha256/<hex> layout, servable over http or file://)"))
def mirror(c, dest, cache_dir=None):
    """Export the download cache as a mirror for an air-gapped site."""
    from tflite_forge import fetch as fetch_mod
    fetch_mod.run_mirror_export(_settings(c, cache_dir=cache_dir), dest)


@stage(backend="build system the working copy is for: cmake (default) or bazel; edits say which they need",
       dry_run="print the unified diff the patch sets would apply (from the cache trees) and change nothing")
def patch(c, version=None, recipe=None, arch=None, engine=None, cache_dir=None, mirror=None, rewrite=None,
          offline=False, jobs=None, ccache_remote=None, parallel=None, resume=False, builder=None,
          backend="cmake", dry_run=False):
    """Copy the unpacked trees to <work_dir>/src/<recipe>-<arch>/ and apply the recipe's patch sets, all or nothing."""
    from tflite_forge import patch_report
    patch_report.run_patch(_pipeline_settings(c, version, recipe, arch, engine, cache_dir, mirror, rewrite, offline, jobs,
                                              builder, ccache_remote),
                           backend=backend, dry_run=dry_run)


@forge_task(help=_help("version", "recipe", "cache-dir",
                       check="check every selected recipe (--version V, a comma list, or all; default all) against the "
                             "fetched archives: which edits apply, drifted, or are already upstream"),
            auto_shortflags=False, handles_matrix=True)
def patches(c, version=None, recipe=None, cache_dir=None, check=False):
    """List the patch sets in patches/, or (--check) report per recipe which edits apply, drifted or are upstream."""
    from tflite_forge import patch_report
    patch_report.run_patches(_settings(c, version=version, recipe=recipe, cache_dir=cache_dir), check=check)


@forge_task(help=_help("engine", "cache-dir", "mirror", "rewrite", "offline", "builder", "ccache-remote"),
            iterable=SHARED_ITERABLE)
def doctor(c, engine=None, cache_dir=None, mirror=None, rewrite=None, offline=False, builder=None, ccache_remote=None):
    """Check this host (engine, builders, disk, memory, qemu/binfmt, cross compilers, cache, upstream, mirrors, compile cache); a fix for every failing row."""
    from tflite_forge import doctor as doctor_mod
    from tflite_forge.errors import ConfigError
    failing = doctor_mod.run_doctor(_settings(c, engine=engine, cache_dir=cache_dir, mirror=mirror,
                                              rewrite=rewrite, offline=offline, builder=builder,
                                              ccache_remote=ccache_remote))
    if failing:
        raise ConfigError(f"{failing} check(s) failed; apply the fixes in the table above")


@forge_task(help={"only": "run only benchmarks whose name contains this (fetch, patch, build, ccache, package); repeatable"},
            iterable=["only"])
def bench(c, only=None):
    """Run the benchmarks in bench/ and print one table of ratios against references measured in the same run."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("bench_run_all", Path(__file__).parent / "bench" / "run_all.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    runner.main(only or None)   # fails (non-zero exit) when a benchmark crashed


@forge_task(help=_help("engine", "jobs", keep="keep the scratch release (artifacts stay in <work_dir>/selftest/dist either way)"))
def selftest(c, engine=None, jobs=None, keep=False):
    """Run the whole pipeline on the bundled miniature TensorFlow (loopback mirror) for the host arch and aarch64."""
    from tflite_forge import selftest as selftest_mod
    selftest_mod.run_selftest(_settings(c, engine=engine, jobs=jobs), keep=keep)


@stage(base_image="base image of the builder (default tflite-forge/debian-base:bookworm, made by "
                  "`invoke image --bootstrap`); its glibc is the oldest the library runs on: for older boards "
                  "use tflite-forge/debian-base:bullseye (glibc 2.31, `invoke image --bootstrap --debian-suite "
                  "bullseye`); with a registry, pin one by digest: debian:bookworm@sha256:...",
       cxx_shared="also build the C++ shared library libtensorflow-lite.so (-DBUILD_SHARED_LIBS=ON)",
       force="build even when the stamp says nothing changed")
def build(c, version=None, recipe=None, arch=None, engine=None, cache_dir=None, mirror=None, rewrite=None,
          offline=False, jobs=None, ccache_remote=None, parallel=None, resume=False, builder=None,
          base_image=None, cxx_shared=False, force=False):
    """Build libtensorflowlite_c.so for --arch in a container with no network (fetches and patches first if needed)."""
    from tflite_forge import pipeline
    pipeline.run_build_task(_pipeline_settings(c, version, recipe, arch, engine, cache_dir, mirror, rewrite, offline,
                                               jobs, builder, ccache_remote), base_image=base_image, cxx_shared=cxx_shared, force=force,
                            release=chain_releases())


@forge_task(help=_help("engine", "cache-dir", "builder",
                       build="remove build trees: build volumes, <work_dir>/out and stamps (the default scope)",
                       images="remove the builder images (the base image is kept)",
                       cache="remove the ccache volumes (the next build is cold)",
                       downloads="read every cached download through and remove those that are not readable "
                                 "archives (truncated, corrupt); alone, only this scope"), iterable=["builder"])
def clean(c, engine=None, build=False, images=False, cache=False, cache_dir=None, downloads=False, builder=None):
    """Remove what builds leave behind (and, with --downloads, unreadable cached downloads); each scope says what it deleted."""
    if downloads:
        from tflite_forge import unpack
        unpack.clean_downloads(_settings(c, cache_dir=cache_dir).cache_dir)
        if not (build or images or cache):
            return
    from tflite_forge import clean as clean_mod
    clean_mod.run_clean(_settings(c, engine=engine, cache_dir=cache_dir, builder=builder), build=build, images=images,
                        cache=cache)


@stage(sign="gpg key id: also write a detached, armoured dist/SHA256SUMS.asc",
       glibc_max="fail when the library needs a GLIBC_ symbol version above this (e.g. 2.31)")
def package(c, version=None, recipe=None, arch=None, engine=None, cache_dir=None, mirror=None, rewrite=None,
            offline=False, jobs=None, ccache_remote=None, parallel=None, resume=False, builder=None,
            sign=None, glibc_max=None):
    """Pack the build output into dist/ (builds first if needed): tarball + -dbg, manifest, SBOM, SHA256SUMS; verified."""
    from tflite_forge import package as package_mod
    package_mod.run_package(_pipeline_settings(c, version, recipe, arch, engine, cache_dir, mirror, rewrite, offline,
                                               jobs, builder, ccache_remote), sign=sign, glibc_max=glibc_max)


@forge_task(help={"tarball": "a release tarball (dist/libtensorflowlite_c-<v>-linux-<arch>.tar.gz)",
                  "arch": "expected target arch (default: the one recorded in its manifest.json)",
                  "glibc_max": "fail when the library needs a GLIBC_ symbol version above this (e.g. 2.31)"})
def verify(c, tarball, arch=None, glibc_max=None):
    """Check a release tarball: ELF machine/class, SONAME, NEEDED, glibc needs, exports, build paths, digests."""
    from tflite_forge import verify as verify_mod
    verify_mod.run_verify(_settings(c), tarball, glibc_max=glibc_max, arch=arch)


@stage(no_cmake="skip the CMake find_package consumer (SCons smoke only)",
       model="run this .tflite model instead of the smoke test: print its input and output names, types and "
             "shapes, the first output values and the median invoke time, on the target arch",
       input="with --model: a .npy file to feed input 0 (comma-separated list: inputs 0, 1, ... in order); "
             "default: zeros. The array's dtype and shape must match the input's",
       runs="with --model: how many times to invoke (default 10); the report gives the median time",
       resize="with --model --input: resize each input to its array's shape first (for models with dynamic dims)",
       interpreter="with --model: c-api (default: the packaged library, through a C program built against the "
                   "tarball) or tflite-runtime (the real interpreter from PyPI, in the arch's wheel runtime image)")
def test(c, version=None, recipe=None, arch=None, engine=None, cache_dir=None, mirror=None, rewrite=None,
         offline=False, jobs=None, ccache_remote=None, parallel=None, resume=False, builder=None,
         no_cmake=False, model=None, input=None, runs=10,
         resize=False, interpreter="c-api"):
    """Smoke-test dist/'s tarballs on their target arch (natively or under qemu-user): {1, 3} -> {3, 9}; packages first if needed.
    With --model FILE: run that model through the packaged library instead and print what it computed."""
    settings = _pipeline_settings(c, version, recipe, arch, engine, cache_dir, mirror, rewrite, offline, jobs,
                                  builder, ccache_remote)
    if model is None:
        from tflite_forge import smoke
        smoke.run_test(settings, cmake=not no_cmake)
    else:
        from tflite_forge import model_run
        model_run.run_model_test(settings, model_run.make_request(model, inputs=input, runs=runs, resize=resize,
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
def image(c, version=None, recipe=None, arch=None, engine=None, cache_dir=None, mirror=None, rewrite=None,
          offline=False, jobs=None, ccache_remote=None, parallel=None, resume=False, builder=None,
          flavor="minimal", builder_image=False,
          bootstrap=False,
          base_image=None, force=False, debian_suite=None, debian_mirror=None):
    """Build images: the runtime image for --arch (--flavor; its test stage runs the smoke program), or the builder / base image."""
    settings = _pipeline_settings(c, version, recipe, arch, engine, cache_dir, mirror, rewrite, offline, jobs,
                                  builder, ccache_remote)
    if builder_image or bootstrap:
        from tflite_forge import image as image_mod
        image_mod.run_image(settings, bootstrap=bootstrap, base_image=base_image, force=force, arch=arch,
                            builder=builder_image, debian_suite=debian_suite, debian_mirror=debian_mirror)
    elif debian_suite or debian_mirror:
        from tflite_forge.errors import ConfigError
        raise ConfigError("--debian-suite/--debian-mirror make base and builder images: add --bootstrap or --builder-image "
                          "(a runtime image's base is --base-image)")
    else:
        from tflite_forge import runtime_image as runtime_mod
        runtime_mod.run_runtime_image(settings, flavor=flavor, base_image=base_image)
