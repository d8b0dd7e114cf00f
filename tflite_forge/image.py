"""The builder image: Debian + compilers + the target's cross packages, one image per arch.

- `bootstrap_base_image` makes the base image with no registry at all:
  `debootstrap --variant=minbase <suite> DIR <mirror>` (default bookworm from deb.debian.org), then
  the tree is tarred once into the cache and imported (`docker import` / `podman import`) as
  `tflite-forge/debian-base:<suite>`. Idempotent. The suite is the glibc floor of everything built
  on it: bookworm (glibc 2.36) by default, bullseye (2.31) for older boards. The image's apt
  sources name the mirror it was bootstrapped from, so builder images install from it too.
  For a foreign arch (`base_image_ref(arch)`: `tflite-forge/debian-base:bookworm-arm64`) it runs
  `debootstrap --arch=arm64`, whose second stage runs under binfmt + qemu-user-static, and the
  import records the platform (linux/arm64) so `--platform` builds find the image. The runtime
  images' python/wheel flavors use it; the builder image stays native (cross compilers).
- `ensure_builder_image` builds `tflite_forge/docker/builder.Dockerfile` (multi-stage: base,
  then toolchain) tagged `tflite-forge/builder:<arch>-<hash>`, the hash covering the Dockerfile
  text, both package lists and the base image's ID: it is rebuilt only when one of them changes.
  The base image's glibc is the glibc floor of every library built in it; `BuilderImage.facts`
  carries it with the compiler versions, read from the image itself.

Runtime images (for running results on the target) are another module (runtime_image.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TypeGuard

from . import container as ct
from . import engine as eng
from . import image_io
from .arches import Arch, resolve_arch, resolve_arches
from .cache import Cache
from .errors import ConfigError, EngineError
from .workspace import Workspace

DOCKERFILE = Path(__file__).resolve().parent / "docker" / "builder.Dockerfile"
BUILDER_REPO = "tflite-forge/builder"
BASE_REPO = "tflite-forge/debian-base"
DEBIAN_SUITE = "bookworm"
DEFAULT_BASE_IMAGE = f"{BASE_REPO}:{DEBIAN_SUITE}"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
# Native tools every builder has; the target's cross packages come from arches.py.
# rsync makes the build's writable copies of the dependency trees; flock (util-linux) guards /host.
BASE_PACKAGES = ("build-essential", "cmake", "ninja-build", "ccache", "qemu-user-static", "file", "rsync")
FACTS_FILE = "/etc/tflite-forge/builder.env"


@dataclass(frozen=True, kw_only=True)
class BuilderImage:
    tag: str
    id: str
    arch: str
    base_image: str
    base_id: str
    facts: Mapping[str, str]          # glibc, gcc, gxx, host_gcc, cmake, ninja, ccache, debian, triplet

    @property
    def glibc_floor(self) -> str:
        return self.facts.get("glibc", "")

    @property
    def gcc_major(self) -> int | None:
        text = self.facts.get("gcc", "")
        return int(text.split(".")[0]) if text.split(".")[0].isdigit() else None


def _say(message: str) -> None:
    print(f"tflite-forge: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- base image (no registry)

def host_debian_arch() -> str:
    return resolve_arch(platform.machine()).debian_arch


def is_foreign(arch: Arch | None) -> TypeGuard[Arch]:
    return arch is not None and arch.debian_arch != host_debian_arch()


def base_image_ref(arch: Arch | None = None, suite: str = DEBIAN_SUITE) -> str:
    """The bootstrap base image for `arch` and `suite`: `tflite-forge/debian-base:<suite>` for the
    host's arch, `tflite-forge/debian-base:<suite>-<debian arch>` otherwise."""
    return f"{BASE_REPO}:{suite}-{arch.debian_arch}" if is_foreign(arch) else f"{BASE_REPO}:{suite}"


def parse_base_ref(ref: str) -> tuple[str, str | None] | None:
    """(suite, debian arch or None) of a `tflite-forge/debian-base:<suite>[-<arch>]` name; None for other images."""
    repo, sep, tag = ref.partition(":")
    if repo != BASE_REPO or not sep or "@" in tag:
        return None
    suite, _, debian_arch = tag.partition("-")
    return suite, debian_arch or None


def check_suite(suite: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9]*", suite or ""):
        raise ConfigError(f"--debian-suite {suite!r} is not a Debian suite name; use a codename such as bookworm "
                          "or bullseye")
    return suite


def check_mirror(mirror: str) -> str:
    if not re.match(r"(https?|file)://[^\s]+$", mirror or ""):
        raise ConfigError(f"--debian-mirror {mirror!r} is not a URL; give the archive root, e.g. "
                          f"{DEBIAN_MIRROR} or http://mirror.example/debian")
    return mirror.rstrip("/")


def base_tarball(cache_dir: Path, suite: str = DEBIAN_SUITE, debian_arch: str | None = None,
                 mirror: str = DEBIAN_MIRROR) -> Path:
    """The cached debootstrap tarball; another mirror gets its own (the tree's apt sources name it)."""
    foreign = debian_arch and debian_arch != host_debian_arch()
    name = f"debian-{suite}-minbase" + (f"-{debian_arch}" if foreign else "")
    if mirror.rstrip("/") != DEBIAN_MIRROR:
        name += "-" + hashlib.sha256(mirror.rstrip("/").encode()).hexdigest()[:12]
    return Cache(Path(cache_dir)).images / f"{name}.tar"


def _check_emulation(arch: Arch) -> None:
    """A foreign debootstrap runs its second stage (the target's dpkg) through binfmt_misc."""
    machine = (arch.qemu_binary or "").removeprefix("qemu-").removesuffix("-static")
    entry = Path("/proc/sys/fs/binfmt_misc") / f"qemu-{machine}"
    if not machine or not entry.exists() or "enabled" not in entry.read_text(errors="replace"):
        raise EngineError(f"{entry} is not registered, so {arch.debian_arch} programs cannot run here; "
                          "install qemu-user-static and binfmt-support (ci/setup-host.sh does)")


def debootstrap_tarball(dest: Path, *, suite: str = DEBIAN_SUITE, mirror: str = DEBIAN_MIRROR,
                        on_line: Callable[[str], None] | None = None, arch: Arch | None = None) -> Path:
    """debootstrap a minbase root filesystem (of `arch`, default the host's) and tar it to `dest` (atomically)."""
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        raise EngineError("debootstrap not found; install it (apt-get install debootstrap, or run ci/setup-host.sh) "
                          "or pass --base-image with an image your engine has")
    if not (DEBOOTSTRAP_SCRIPTS / suite).exists():
        raise ConfigError(f"this host's debootstrap does not know the suite {suite!r} (no {DEBOOTSTRAP_SCRIPTS / suite}); "
                          "use a Debian codename it has a script for (bookworm, bullseye, ...) or upgrade debootstrap")
    if os.geteuid() != 0:
        raise EngineError("debootstrap needs root to make the base image; run `sudo invoke image --bootstrap` once, "
                          "or pass --base-image with an existing Debian image")
    dest.parent.mkdir(parents=True, exist_ok=True)
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    with tempfile.TemporaryDirectory(prefix=".bootstrap-", dir=dest.parent) as tmp:
        root = Path(tmp) / "rootfs"
        argv = [debootstrap, "--variant=minbase", suite, str(root), mirror]
        if is_foreign(arch):
            assert arch is not None
            _check_emulation(arch)
            argv.insert(1, f"--arch={arch.debian_arch}")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", stdin=subprocess.DEVNULL)
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-20:]
            if on_line:
                on_line(line.rstrip())
        if proc.wait() != 0:
            raise EngineError(f"debootstrap {suite} from {mirror} failed: {tail[-1] if tail else '?'}; "
                              "check that the Debian mirror is reachable (or pass --base-image)")
        partial = Path(tmp) / "rootfs.tar"
        tar = subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(partial), "."],
                             capture_output=True, text=True)
        if tar.returncode != 0:
            raise EngineError(f"could not tar the debootstrap tree: {tar.stderr.strip().splitlines()[-1:]}")
        os.replace(partial, dest)
    return dest


def bootstrap_base_image(engine: eng.EngineConfig, *, cache_dir: Path, ref: str | None = None,
                         suite: str = DEBIAN_SUITE, mirror: str = DEBIAN_MIRROR, force: bool = False,
                         on_line: Callable[[str], None] | None = None, arch: Arch | None = None) -> str:
    """Make `ref` (default `base_image_ref(arch)`) from debootstrap + import; reuse the image, or
    the cached tarball, when present. A foreign `arch` is debootstrapped under emulation and
    imported with its platform."""
    check_suite(suite)
    mirror = check_mirror(mirror)
    ref = ref or base_image_ref(arch, suite)
    existing = image_io.image_id(engine, ref)
    if existing and not force:
        return existing
    tarball = base_tarball(cache_dir, suite, arch.debian_arch if arch else None, mirror)
    if force or not tarball.exists():
        what = f"{suite} {arch.debian_arch} (second stage under qemu: several minutes)" if is_foreign(arch) else suite
        _say(f"debootstrap {what} ({mirror}) -> {tarball}")
        debootstrap_tarball(tarball, suite=suite, mirror=mirror, on_line=on_line, arch=arch)
    _say(f"importing {tarball.name} into {engine.name} as {ref}")
    changes = [f"LABEL {eng.LABEL}=1", f"LABEL io.tflite-forge.debian-suite={suite}",
               f"LABEL io.tflite-forge.debian-mirror={mirror}", 'CMD ["/bin/bash"]']
    if arch is not None:
        changes.append(f"LABEL io.tflite-forge.debian-arch={arch.debian_arch}")
    return image_io.import_image(engine, tarball, ref, changes=changes, platform=arch.platform if is_foreign(arch) else None)


# ---------------------------------------------------------------- builder image

def builder_inputs(arch: Arch, base_id: str, dockerfile_text: str | None = None) -> dict[str, str]:
    """Everything the image depends on; its hash is the tag."""
    text = dockerfile_text if dockerfile_text is not None else DOCKERFILE.read_text()
    return {
        "dockerfile_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "base_packages": " ".join(BASE_PACKAGES),
        "cross_packages": " ".join(arch.toolchain_packages()),
        "triplet": arch.triplet,
        "base_id": base_id,
    }


def builder_tag(arch: Arch, inputs: Mapping[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(dict(inputs), sort_keys=True).encode()).hexdigest()
    return f"{BUILDER_REPO}:{arch.name}-{digest[:16]}"


def parse_facts(text: str) -> dict[str, str]:
    facts = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key:
            facts[key] = value
    return facts


def read_facts(engine: eng.EngineConfig, tag: str, image_id: str, workspace: Workspace) -> dict[str, str]:
    """The image's builder.env, cached on the host by image ID (one probe container per new image)."""
    cache = workspace.image_facts(image_id)
    if cache.exists():
        cached = json.loads(cache.read_text())
        if "debian_suite" in cached:      # older caches lack it: probe again
            return cached
    spec = ct.ContainerSpec(image=tag, purpose="probe", labels=(("io.tflite-forge.image", tag),))
    # The suite's codename comes from the image's os-release (a --base-image need not carry our labels).
    script = f'cat {FACTS_FILE} && . /etc/os-release && echo "debian_suite=${{VERSION_CODENAME:-}}"'
    proc = ct.run_container(engine, spec, ["sh", "-c", script], timeout=120)
    if proc.returncode != 0:
        raise EngineError(f"{tag} has no readable {FACTS_FILE} ({(proc.stderr or '').strip()[-200:]}); "
                          "remove the image (invoke clean --images) and build it again")
    facts = parse_facts(proc.stdout)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, cache)
    return facts


def bootstrap_command(ref: str) -> str:
    """The command that makes one of our base images."""
    parsed = parse_base_ref(ref)
    if parsed is None:
        return "sudo invoke image --bootstrap"
    suite, debian_arch = parsed
    words = ["sudo invoke image --bootstrap"]
    if suite != DEBIAN_SUITE:
        words.append(f"--debian-suite {suite}")
    if debian_arch:
        words.append(f"--arch {debian_arch}")
    return " ".join(words)


def resolve_base_image(engine: eng.EngineConfig, base_image: str, *, cache_dir: Path,
                       on_line: Callable[[str], None] | None = None) -> str:
    """The base image's ID; the default one is bootstrapped when missing, other suites of ours are
    named with the command that makes them, anything else is pulled."""
    found = image_io.image_id(engine, base_image)
    if found:
        return found
    if base_image == DEFAULT_BASE_IMAGE:
        _say(f"{base_image} is missing from {engine.name}; making it now (invoke image --bootstrap)")
        return bootstrap_base_image(engine, cache_dir=cache_dir, ref=base_image, on_line=on_line)
    if parse_base_ref(base_image) is not None:
        raise EngineError(f"base image {base_image} is missing from {engine.name}; make it once with "
                          f"`{bootstrap_command(base_image)}` (or `docker load` it from a site that has it)")
    image_io.pull_image(engine, base_image)
    found = image_io.image_id(engine, base_image)
    if not found:
        raise EngineError(f"base image {base_image} is not available to {engine.name}; pull or import it, "
                          "or use the default (invoke image --bootstrap)")
    return found


def base_suite(engine: eng.EngineConfig, base_image: str) -> str | None:
    """The Debian suite of a base image: its bootstrap label, else its name (debian:bullseye-slim@...)."""
    label = image_io.image_labels(engine, base_image).get("io.tflite-forge.debian-suite")
    if label:
        return label
    parsed = parse_base_ref(base_image)
    if parsed:
        return parsed[0]
    match = re.fullmatch(r"(?:.*/)?debian:([a-z]+)\b[^@]*(?:@.*)?", base_image)
    return match.group(1) if match else None


def missing_package(log_text: str) -> str | None:
    """The package apt could not find, from a build log: a suite without one of the target's cross
    packages (bullseye has all of arm64, armhf and riscv64's; older suites may not)."""
    match = (re.search(r"E: Unable to locate package (\S+)", log_text)
             or re.search(r"E: Package '([^']+)' has no installation candidate", log_text))
    return match.group(1) if match else None


def ensure_builder_image(engine: eng.EngineConfig, arch: Arch, workspace: Workspace, *,
                         base_image: str = DEFAULT_BASE_IMAGE,
                         on_line: Callable[[str], None] | None = None) -> BuilderImage:
    """The builder image for `arch`, built only when its inputs changed."""
    base_id = resolve_base_image(engine, base_image, cache_dir=workspace.cache_dir, on_line=on_line)
    suite = base_suite(engine, base_image)
    text = DOCKERFILE.read_text()
    inputs = builder_inputs(arch, base_id, text)
    tag = builder_tag(arch, inputs)
    found = image_io.image_id(engine, tag)
    if not found:
        log_path = workspace.image_log(arch.name, engine.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        _say(f"building {tag} with {engine.name} (base {base_image}); log: {log_path}")
        with tempfile.TemporaryDirectory(prefix="tflite-forge-image-") as ctx, open(log_path, "w") as log:
            dockerfile = Path(ctx) / "Dockerfile"
            dockerfile.write_text(text)
            labels = {f"io.tflite-forge.{k.replace('_', '-')}": v for k, v in inputs.items()}
            labels["io.tflite-forge.base-image"] = base_image
            labels["io.tflite-forge.arch"] = arch.name
            try:
                image_io.build_image(engine, context=Path(ctx), dockerfile=dockerfile, tag=tag, log=log, on_line=on_line,
                               build_args={"BASE_IMAGE": base_id if engine.name == "podman" else base_image,
                                           "BASE_PACKAGES": inputs["base_packages"],
                                           "CROSS_PACKAGES": inputs["cross_packages"],
                                           "TRIPLET": arch.triplet},
                               labels=labels)
            except EngineError as err:
                log.flush()
                package = missing_package(log_path.read_text(errors="replace"))
                if package:
                    raise EngineError(f"{base_image} (Debian {suite or '?'}) has no package {package}, needed to build "
                                      f"for {arch.name}; use a newer suite (--base-image {DEFAULT_BASE_IMAGE}) "
                                      f"(full log: {log_path})") from None
                raise EngineError(f"{err} (full log: {log_path})") from None
        found = image_io.image_id(engine, tag)
        if not found:
            raise EngineError(f"{engine.name} built {tag} but does not list it; see {log_path}")
    facts = read_facts(engine, tag, found, workspace)
    return BuilderImage(tag=tag, id=found, arch=arch.name, base_image=base_image, base_id=base_id, facts=facts)


def builder_images(engine: eng.EngineConfig) -> list[str]:
    return [ref for ref in image_io.list_images(engine) if ref.startswith(BUILDER_REPO + ":")]


def run_image(settings, *, bootstrap: bool = False, base_image: str | None = None, force: bool = False,
              arch: str | None = None, builder: bool = False, debian_suite: str | None = None,
              debian_mirror: str | None = None) -> None:
    # settings: tflite_forge.settings.Settings (engine, arch, cache_dir, work_dir)
    """`invoke image`: make base images (--bootstrap) and/or the builder image for --arch (--builder-image).

    `--bootstrap` alone makes the host's base image; with `--arch` it makes the base image of each
    arch (`tflite-forge/debian-base:bookworm-arm64` for aarch64: the runtime base of the python and
    wheel flavors). `--debian-suite bullseye` makes `tflite-forge/debian-base:bullseye[-<arch>]`
    instead (and is the builder's base with --builder-image); `--debian-mirror` is the archive debootstrap
    (and later apt in the builder image) downloads from. Builder images are made with `--builder-image`
    (or without --bootstrap)."""

    suite = check_suite(debian_suite) if debian_suite else DEBIAN_SUITE
    mirror = check_mirror(debian_mirror) if debian_mirror else DEBIAN_MIRROR
    if debian_mirror and not bootstrap:
        raise ConfigError("--debian-mirror is used by debootstrap: give it with --bootstrap (the builder image's apt "
                          "then uses the mirror its base was bootstrapped from)")
    engine = eng.resolve_engine(settings.engine)
    targets = arch or settings.arch
    if bootstrap:
        bases = resolve_arches(targets) if targets else [None]
        if base_image and len(bases) > 1:
            raise EngineError("--base-image names one image; give one --arch with --bootstrap --base-image")
        for target in bases:
            ref = base_image or base_image_ref(target, suite)
            image = bootstrap_base_image(engine, cache_dir=settings.cache_dir, ref=ref, force=force, arch=target,
                                         suite=suite, mirror=mirror)
            target_platform = target.platform if is_foreign(target) else None
            probe = ct.run_container(engine, ct.ContainerSpec(image=ref, purpose="probe", platform=target_platform),
                                     ["sh", "-c", "getconf GNU_LIBC_VERSION; dpkg --print-architecture"], timeout=300)
            words = probe.stdout.split() if probe.returncode == 0 else []
            glibc, deb_arch = (words[-2], words[-1]) if len(words) >= 3 else ("?", "?")
            print(f"{ref}  {image[:19]}  {deb_arch}  glibc {glibc}  ({engine.name})")
    base = base_image or base_image_ref(None, suite)
    if builder or not bootstrap:
        for target in resolve_arches(targets):
            built = ensure_builder_image(engine, target, Workspace.of(settings), base_image=base)
            print(f"{built.tag}  {built.id[:19]}  glibc floor {built.glibc_floor}  gcc {built.facts.get('gcc', '?')}"
                  f"  ({engine.name})")
