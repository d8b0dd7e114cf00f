"""`invoke image` (runtime flavors): the runtime stage tutorials write, done right, from a release tarball.

Flavors (multi-stage; a `test` stage runs the smoke program, the final stage copies its
stamp — so the final image cannot exist unless the test passed — and runs as non-root):

- minimal: FROM scratch. The library, the model, the smoke program and exactly their runtime
  libraries (the NEEDED closure, resolved in the arch's Debian cross sysroot /usr/<triplet>/lib,
  plus the program's ELF interpreter) are assembled on the host, without emulation, into a
  root filesystem. A few MB; the target is <= 20 MB.
- python:  a Debian base image + python3 (apt, from the Debian mirror), the library, the model
  and a ctypes smoke script (smoke/smoke_ctypes.py).
- wheel:   the python flavor plus a prebuilt tflite-runtime wheel (and numpy<2) fetched on the
  host with `pip download --platform manylinux_2_<N>_<machine> ... --only-binary=:all:` (every
  manylinux tag the base image's glibc 2.36 accepts: tflite-runtime 2.14.0 is manylinux_2_34 on
  aarch64, manylinux2014 on x86_64) and
  installed offline (`pip install --no-index`) in a build stage; only site-packages reach
  the final stage.

Foreign-arch images are built with `--platform <arch.platform>`: the minimal flavor needs
emulation only for its test stage (binfmt + qemu-user-static run the smoke program); the
python/wheel flavors need a base image of that arch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import container as ct
from . import elf, image, image_io
from .consumer import build_with_scons, unpack
from .cache import Cache
from .errors import ConfigError, EngineError, PackageError
from .resources import SMOKE_DIR
from .tflite_model import write_add_model

FLAVORS = ("minimal", "python", "wheel")     # each one's Dockerfile: docker/runtime-<flavor>.Dockerfile
DOCKER_DIR = Path(__file__).resolve().parent / "docker"
USER = "65532:65532"                 # "nonroot", as distroless images number it
PREFIX = "/opt/tflite"
IMAGE_REPO = "tflite-forge/runtime"
WHEELS = ("tflite-runtime==2.14.0", "numpy<2")
WHEEL_PYTHON = "3.11"                # bookworm's python3
WHEEL_GLIBC = (2, 36)                # bookworm's glibc: the newest manylinux tag the base image runs
MINIMAL_LIMIT = 20 * 1000 * 1000


@dataclass(frozen=True)
class RuntimeImage:
    tag: str
    flavor: str
    arch: str
    size: int          # bytes, as the engine reports


def image_tag(version: str, arch: str, flavor: str) -> str:
    return f"{IMAGE_REPO}:{version}-{arch}-{flavor}"


def default_base_image(arch: Any) -> str:
    """The base image `invoke image --bootstrap [--arch A]` makes for `arch` on this host (image.py names it)."""
    return image.base_image_ref(arch)


# ---------------------------------------------------------------- the root filesystem (host side, no emulation)

def _search_dirs(arch: Any) -> list[Path]:
    dirs = [arch.sysroot / "lib", arch.sysroot / "lib64"]
    if arch.runs_natively():   # the host's own libraries are the target's
        dirs += [Path(f"/lib/{arch.triplet}"), Path(f"/usr/lib/{arch.triplet}"), Path("/lib64")]
    return [d for d in dirs if d.is_dir()]


def runtime_closure(elves: list[Path], arch: Any) -> dict[str, Path]:
    """NEEDED name -> file in the sysroot, for every ELF given and everything they need."""
    dirs = _search_dirs(arch)
    found: dict[str, Path] = {}
    todo = [name for path in elves for name in elf.elf_facts(path.read_bytes()).needed]
    provided = {path.name for path in elves} | {elf.elf_facts(path.read_bytes()).soname for path in elves}
    while todo:
        name = todo.pop()
        if name in found or name in provided:
            continue
        path = next((d / name for d in dirs if (d / name).exists()), None)
        if path is None:
            raise PackageError(f"{name} (needed at run time for {arch.name}) is not in {', '.join(map(str, dirs))}; "
                               f"apt-get install {' '.join(arch.cross_packages)}")
        found[name] = path
        todo += elf.elf_facts(path.resolve().read_bytes()).needed
    return found


def assemble_rootfs(tarball: Path, arch: Any, rootfs: Path, scratch: Path) -> dict[str, Any]:
    """Lay out rootfs/opt (-> /opt/tflite: lib, bin, share) and rootfs/runtime-libs (-> /lib)."""

    prefix = unpack(tarball, scratch / "artifact")
    program = build_with_scons(prefix, arch, scratch / "scons")
    opt = rootfs / "opt"           # becomes PREFIX in the image
    for sub in ("bin", "lib", "share/licenses"):
        (opt / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(program, opt / "bin" / "tflite-smoke")
    # the C library and what ships beside it (libtensorflow-lite.so in a --cxx-shared release)
    libs = sorted((prefix / "lib").glob("lib*.so*"))
    for lib in libs:
        dest = opt / "lib" / lib.name
        if lib.is_symlink():
            dest.symlink_to(os.readlink(lib))
        else:
            shutil.copy2(lib, dest)
    shutil.copytree(prefix / "share" / "licenses", opt / "share" / "licenses", dirs_exist_ok=True)
    shutil.copy2(prefix / "manifest.json", opt / "share" / "manifest.json")
    write_add_model(opt / "share" / "add.tflite")
    shutil.copy2(SMOKE_DIR / "smoke_ctypes.py", opt / "share" / "smoke_ctypes.py")
    shutil.copy2(SMOKE_DIR / "smoke_tflite_runtime.py", opt / "share" / "smoke_tflite_runtime.py")
    closure = runtime_closure([program, *(p for p in libs if not p.is_symlink())], arch)
    runtime = rootfs / "runtime-libs"
    runtime.mkdir(parents=True, exist_ok=True)
    for name, path in sorted(closure.items()):
        shutil.copyfile(path.resolve(), runtime / name)
    interp = elf.interpreter(program.read_bytes())
    return {"closure": sorted(closure), "interpreter": interp,
            "interpreter_source": next((d / Path(interp).name for d in _search_dirs(arch)
                                        if (d / Path(interp).name).exists()), None) if interp else None}


# ---------------------------------------------------------------- Dockerfiles

# @NAME@ placeholders (configure_file style, like the patch sets' @TF_VERSION@): a Dockerfile's own
# $VAR, ${VAR} and braces stay as written; a name the template uses but nobody fills is a KeyError.
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def dockerfile(flavor: str, *, base: str, interpreter: str | None) -> str:
    """The Dockerfile of `flavor`: tflite_forge/docker/runtime-<flavor>.Dockerfile, filled in."""
    if flavor not in FLAVORS:
        raise ConfigError(f"--flavor {flavor!r}: expected one of {', '.join(FLAVORS)}")
    values = {"PREFIX": PREFIX, "USER": USER, "BASE": base, "WHEELS": " ".join(f"'{w}'" for w in WHEELS)}
    if interpreter:
        values["INTERP_DIR"] = str(Path(interpreter).parent)
    template = (DOCKER_DIR / f"runtime-{flavor}.Dockerfile").read_text(encoding="utf-8")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


# ---------------------------------------------------------------- wheels (host side)

def wheel_platform(arch: Any) -> str:
    machines = {"aarch64": "aarch64", "x86_64": "x86_64"}
    if arch.name not in machines:
        raise ConfigError(f"--flavor wheel: tflite-runtime publishes wheels for aarch64 and x86_64 only, not {arch.name}; "
                          "use --flavor minimal or python")
    return f"manylinux2014_{machines[arch.name]}"


def wheel_platforms(arch: Any, glibc: tuple[int, int] = WHEEL_GLIBC) -> list[str]:
    """Every manylinux tag a glibc-`glibc` system accepts, newest first (pip does not expand
    `--platform` itself): manylinux_2_36_<m> ... manylinux_2_17_<m>, manylinux2014_<m>."""
    machine = wheel_platform(arch).removeprefix("manylinux2014_")
    tags = [f"manylinux_{glibc[0]}_{minor}_{machine}" for minor in range(glibc[1], 16, -1)]
    return tags + [f"manylinux2014_{machine}"]


def download_wheels(arch: Any, dest: Path, cache_dir: Path) -> list[Path]:
    """pip download on the host (the container has no route to PyPI); cached per platform."""
    cached = Cache(cache_dir).wheels(wheel_platforms(arch)[0])
    if not list(cached.glob("tflite_runtime-*.whl")):
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".wheels-", dir=cache_dir))
        try:
            argv = ["pip", "download", "--quiet", "--dest", str(tmp), "--only-binary=:all:",
                    *(f"--platform={tag}" for tag in wheel_platforms(arch)), "--python-version", WHEEL_PYTHON,
                    *WHEELS]
            proc = subprocess.run(argv, capture_output=True, text=True)
            if proc.returncode != 0:
                msg = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
                raise PackageError(f"pip download of {' '.join(WHEELS)} for {wheel_platforms(arch)[0]} (and older manylinux tags) failed: {msg}; "
                                   "check PyPI access (or pre-fill the cache)")
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(cached, ignore_errors=True)
            os.replace(tmp, cached)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cached.glob("*.whl"))
    for wheel in wheels:
        shutil.copy2(wheel, dest / wheel.name)
    return wheels


# ---------------------------------------------------------------- building

def _build(engine: Any, *, context: Path, tag: str, platform: str) -> None:
    image_io.build_image(engine, context=context, dockerfile=context / "Dockerfile", tag=tag,
                         labels={"io.tflite-forge.purpose": "runtime-image"}, platform=platform)


def image_size(engine: Any, tag: str) -> int:
    proc = subprocess.run(engine.argv("image", "inspect", "--format", "{{.Size}}", tag), capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        raise EngineError(f"{engine.name} image inspect {tag} failed; is the engine healthy?")
    return int(proc.stdout.strip())


def build_runtime_image(engine: Any, tarball: Path, arch: Any, *, flavor: str = "minimal", version: str,
                        base_image: str | None = None, cache_dir: Path, log=print) -> RuntimeImage:
    """Assemble the context on the host, build the image (its test stage runs the smoke program)."""
    if flavor not in FLAVORS:
        raise ConfigError(f"--flavor {flavor!r}: expected one of {', '.join(FLAVORS)}")
    base = base_image or default_base_image(arch)
    if flavor != "minimal" and image_io.image_id(engine, base) is None:
        hint = ("`invoke image --bootstrap`" if base == image.DEFAULT_BASE_IMAGE else
                f"`invoke image --bootstrap --arch {arch.name}` (debootstrap --arch={arch.debian_arch} under qemu), "
                "or --base-image")
        raise EngineError(f"base image {base} is missing for --flavor {flavor}; make it with {hint}")
    tag = image_tag(version, arch.name, flavor)
    with tempfile.TemporaryDirectory(prefix=f"tflite-forge-image-{arch.name}-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        facts = assemble_rootfs(tarball, arch, context, Path(tmp) / "scratch")
        interpreter = facts["interpreter"]
        (context / "tmp").mkdir()
        if flavor == "minimal":
            if not interpreter or facts["interpreter_source"] is None:
                raise PackageError(f"the smoke program's ELF interpreter {interpreter} is not in the {arch.name} "
                                   f"sysroot; apt-get install {' '.join(arch.cross_packages)}")
            interp_dir = context / "interp"
            interp_dir.mkdir()
            shutil.copyfile(Path(facts["interpreter_source"]).resolve(), interp_dir / Path(interpreter).name)
            os.chmod(interp_dir / Path(interpreter).name, 0o755)
        if flavor == "wheel":
            download_wheels(arch, context / "wheels", Path(cache_dir))
        (context / "Dockerfile").write_text(dockerfile(flavor, base=base, interpreter=interpreter))
        _build(engine, context=context, tag=tag, platform=arch.platform)
    size = image_size(engine, tag)
    if flavor == "minimal" and size > MINIMAL_LIMIT:
        log(f"runtime-image: warning: {tag} is {size / 1e6:.1f} MB, above the {MINIMAL_LIMIT / 1e6:.0f} MB target")
    log(f"runtime-image: {tag} ({arch.platform}, {size / 1e6:.1f} MB): the test stage ran the smoke program")
    return RuntimeImage(tag=tag, flavor=flavor, arch=arch.name, size=size)


def run_image(engine: Any, tag: str, arch: Any, *, timeout: float = 180) -> str:
    """Run a built runtime image (under binfmt/qemu for foreign arches); return its output."""
    spec = ct.ContainerSpec(image=tag, purpose="runtime-smoke", platform=arch.platform)
    proc = ct.run_container(engine, spec, [], timeout=timeout)   # no argv: the image's ENTRYPOINT + CMD
    output = ((proc.stdout or "") + (proc.stderr or "")).strip()
    if proc.returncode != 0:
        raise PackageError(f"{tag} failed when run on {arch.platform} (exit {proc.returncode}): "
                           f"{(output.splitlines() or ['(no output)'])[-1]}")
    return (proc.stdout or "").strip() or output
