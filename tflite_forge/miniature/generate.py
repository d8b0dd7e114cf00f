"""Write a miniature TensorFlow release: archives laid out like their upstream URLs, and a recipe.

`write_release(dest)` renders the template trees under `trees/` (placeholders `{{NAME}}`),
packs each into a deterministic archive (sorted members, fixed mtime, uid/gid 0, no user
names, gzip header mtime 0; zips with fixed timestamps), and writes:

    dest/www/<host>/<path>                    every archive, at its https URL's host and path
    dest/recipes/tensorflow-<version>.toml    a recipe whose urls are the REAL upstream form

Serving `dest/www` on 127.0.0.1 (tflite_forge.loopback) and rewriting `https://` to the
server reaches every URL. Dependencies are packed before TensorFlow so the URL_HASH values
inside the TensorFlow tree are the real sha256 of the dependency archives. Same inputs, same
bytes: hashes are stable from run to run.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import time
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import tomli_w

from ..fsutil import write_atomic
from . import bazel

# Pins of the fixture's dependencies. The commits are made up (sha1 of a label), shaped like
# the real pins: XNNPACK by commit, flatbuffers by tag, pthreadpool and FP16 by commit.
XNNPACK_TAG = "af8813f5fb58324f3d6aa7fc4492c1fc3da0a13c"
FLATBUFFERS_TAG = "v23.5.26"
PTHREADPOOL_COMMIT = "3662c1e46bf5ebe87ee7708711fb369982ea1598"
FP16_COMMIT = "4b8d53d91b29c4e7f2deeedb28f30f485ea75341"
FFT2D_URL = "https://storage.googleapis.com/mirror.tensorflow.org/github.com/petewarden/OouraFFT/archive/v1.0.tar.gz"
FFT2D_PREFIX = "OouraFFT-1.0"
# Downloads gated by options, like TensorFlow Lite's: the kernel tests' benchmark library
# (TFLITE_KERNEL_TEST) and the GPU delegate's OpenCL headers (TFLITE_ENABLE_GPU).
GOOGLE_BENCHMARK_TAG = "v1.7.0"
# Conditions that hold in the default configuration (TFLITE_ENABLE_XNNPACK is ON by default).
DEFAULT_ON = ("TRUE", "TFLITE_ENABLE_XNNPACK")
OPENCL_HEADERS_COMMIT = "dcd5bede6859d26833cd85f0d6bbcee7382dc9b3"

# Member mtime of every dependency archive (2023-05-26 00:00 UTC).
DEPENDENCY_EPOCH = 1685059200
# TensorFlow archives use the release day of the tag, as recipes/ does; other versions this one.
RELEASE_EPOCHS = {
    "2.14.0": 1695686400,
    "2.15.0": 1699920000,
    "2.16.1": 1709856000,
    "2.17.0": 1720656000,
    "2.18.0": 1729728000,
}
DEFAULT_EPOCH = 1709856000

PLACEHOLDER_RE = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True, kw_only=True)
class MiniatureDependency:
    """One configure-time download, as a correct lock of the miniature would record it."""

    name: str            # lower-case declared name: xnnpack, flatbuffers, fft2d, pthreadpool, fp16
    url: str             # upstream-form https URL of the archive
    sha256: str          # of the archive at `url`
    strip_prefix: str    # the archive's single top folder
    cmake_variable: str  # FETCHCONTENT_SOURCE_DIR_<NAME> or <NAME>_SOURCE_DIR
    declared_in: str     # file declaring it, relative to the tree named by declared_by
    declared_by: str     # "tensorflow" or the dependency whose tree declares it
    archive: Path        # the archive on disk (under www_root)
    when: str = "TRUE"   # the CMake condition that brings it in, as the lock records it


@dataclass(frozen=True, kw_only=True)
class MiniatureRelease:
    version: str
    root: Path                 # dest
    www_root: Path             # dest/www: serve this directory
    recipe_path: Path          # dest/recipes/tensorflow-<version>.toml
    tensorflow_url: str
    tensorflow_sha256: str
    tensorflow_archive: Path
    strip_prefix: str          # tensorflow-<version>
    source_date_epoch: int
    dependencies: tuple[MiniatureDependency, ...]   # every declared download, gated ones included
    archives: tuple[Path, ...]  # every file written under www_root, alternates included

    @property
    def default_dependencies(self) -> tuple[MiniatureDependency, ...]:
        """What the default configuration (XNNPACK on, GPU and kernel tests off) downloads."""
        return tuple(d for d in self.dependencies if d.when in DEFAULT_ON)

    def dependency(self, name: str) -> MiniatureDependency:
        for dep in self.dependencies:
            if dep.name == name:
                return dep
        raise KeyError(f"no miniature dependency {name!r}; known: {', '.join(d.name for d in self.dependencies)}")

    def local_path(self, url: str) -> Path:
        """Where the archive for an https URL lives under www_root."""
        return url_path(self.www_root, url)


def url_path(www_root: Path, url: str) -> Path:
    parts = urlsplit(url)
    rel = PurePosixPath(parts.path.lstrip("/"))
    if not parts.netloc or ".." in rel.parts:
        raise ValueError(f"not an archive URL the miniature can lay out: {url!r}")
    return www_root / parts.netloc / rel


def _render_tree(key: str, subs: dict[str, str]) -> dict[str, bytes]:
    """The template tree `trees/<key>` with placeholders filled: relative path -> bytes."""
    root = resources.files(__package__).joinpath("trees", key)
    out: dict[str, bytes] = {}

    def walk(node, rel: str) -> None:
        for child in node.iterdir():
            name = f"{rel}/{child.name}" if rel else child.name
            if child.is_dir():
                walk(child, name)
            elif child.name != "__pycache__" and not child.name.endswith(".pyc"):
                text = child.read_text(encoding="utf-8")

                def fill(m: re.Match) -> str:
                    if m.group(1) not in subs:
                        raise KeyError(f"template {key}/{name}: no value for placeholder {m.group(0)}")
                    return subs[m.group(1)]

                out[name] = PLACEHOLDER_RE.sub(fill, text).encode("utf-8")

    walk(root, "")
    if not out:
        raise FileNotFoundError(f"miniature template tree {key!r} is empty or missing")
    return out


def _members(prefix: str, files: dict[str, bytes]) -> list[tuple[str, bytes | None]]:
    """Sorted (path, data) under prefix/, directories (data None) included, parents first."""
    dirs = {prefix}
    for rel in files:
        parts = PurePosixPath(rel).parts
        for i in range(1, len(parts)):
            dirs.add("/".join((prefix, *parts[:i])))
    entries: list[tuple[str, bytes | None]] = [(d, None) for d in dirs]
    entries += [(f"{prefix}/{rel}", data) for rel, data in files.items()]
    return sorted(entries, key=lambda e: e[0])


def tar_gz_bytes(prefix: str, files: dict[str, bytes], *, mtime: int, comment: str | None = None) -> bytes:
    """A reproducible .tar.gz of files under one top folder (GitHub-like: pax comment = commit)."""
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        pax = {"comment": comment} if comment else {}
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, pax_headers=pax) as tar:
            for name, data in _members(prefix, files):
                info = tarfile.TarInfo(name)
                info.mtime = mtime
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if data is None:
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o775
                    tar.addfile(info)
                else:
                    info.mode = 0o664
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def zip_bytes(prefix: str, files: dict[str, bytes], *, mtime: int, comment: str | None = None) -> bytes:
    """A reproducible .zip of files under one top folder (GitHub-like: archive comment = commit)."""
    raw = io.BytesIO()
    stamp = time.gmtime(mtime)[:6]
    with zipfile.ZipFile(raw, "w") as zf:
        for name, data in _members(prefix, files):
            if data is None:
                info = zipfile.ZipInfo(name + "/", date_time=stamp)
                info.external_attr = (0o40775 << 16) | 0x10
                info.create_system = 3
                zf.writestr(info, b"")
            else:
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.external_attr = 0o100664 << 16
                info.create_system = 3
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data, compresslevel=9)
        if comment:
            zf.comment = comment.encode("ascii")
    return raw.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _github_top_folder(repo: str, ref: str) -> str:
    """GitHub names the top folder <repo>-<ref>, dropping a tag's leading 'v' before a digit."""
    name = ref[1:] if re.match(r"^v\d", ref) else ref
    return f"{repo}-{name}"


def _bazel_files(version: str) -> dict[str, bytes]:
    """The Bazel files carrying -mfpu=neon and -O2 (tflite_forge.miniature.bazel)."""
    files = bazel.bazel_files(version)
    out = {}
    for rel, text in files.items():
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"bazel_files({version!r}) returned a path outside the tree: {rel!r}")
        out[str(p)] = text.encode("utf-8")
    return out


class _Writer:
    def __init__(self, www_root: Path) -> None:
        self.www_root = www_root
        self.written: list[Path] = []

    def put(self, url: str, data: bytes) -> Path:
        path = url_path(self.www_root, url)
        write_atomic(path, data)
        self.written.append(path)
        return path

    def github(self, owner: str, repo: str, ref: str, files: dict[str, bytes], *, mtime: int,
               primary: str, commit: str) -> tuple[str, str, Path, str]:
        """Write every archive form GitHub serves for a ref; returns (url, sha256, path, top folder)
        of the `primary` form: "tar.gz" or "zip"."""
        top = _github_top_folder(repo, ref)
        blobs = {
            "tar.gz": tar_gz_bytes(top, files, mtime=mtime, comment=commit),
            "zip": zip_bytes(top, files, mtime=mtime, comment=commit),
        }
        bases = [f"https://github.com/{owner}/{repo}/archive/{ref}"]
        if not re.fullmatch(r"[0-9a-f]{40}", ref):
            bases.append(f"https://github.com/{owner}/{repo}/archive/refs/tags/{ref}")
        for base in bases:
            for ext, blob in blobs.items():
                self.put(f"{base}.{ext}", blob)
        url = f"{bases[0]}.{primary}"
        return url, _sha256(blobs[primary]), url_path(self.www_root, url), top


def write_release(dest: str | Path, version: str = "2.16.1") -> "MiniatureRelease":
    """Generate the miniature TensorFlow `version` and its dependencies under dest (see module doc)."""
    m = VERSION_RE.match(version)
    if not m:
        raise ValueError(f"miniature version must be MAJOR.MINOR.PATCH, got {version!r}")
    dest = Path(dest).resolve()
    www = dest / "www"
    w = _Writer(www)
    epoch = RELEASE_EPOCHS.get(version, DEFAULT_EPOCH)
    fake_commit = hashlib.sha1(f"tflite-forge miniature tensorflow {version}".encode()).hexdigest()
    subs = {
        "TF_VERSION": version, "TF_MAJOR": m.group(1), "TF_MINOR": m.group(2), "TF_PATCH": m.group(3),
        "XNNPACK_TAG": XNNPACK_TAG, "FLATBUFFERS_TAG": FLATBUFFERS_TAG,
        "FLATBUFFERS_VERSION": FLATBUFFERS_TAG.lstrip("v"),
        "PTHREADPOOL_COMMIT": PTHREADPOOL_COMMIT, "FP16_COMMIT": FP16_COMMIT,
        "GOOGLE_BENCHMARK_TAG": GOOGLE_BENCHMARK_TAG, "OPENCL_HEADERS_COMMIT": OPENCL_HEADERS_COMMIT,
    }
    deps: list[MiniatureDependency] = []

    def dep(name, url, sha, archive, top, variable, declared_in, declared_by, when="TRUE"):
        deps.append(MiniatureDependency(name=name, url=url, sha256=sha, strip_prefix=top, cmake_variable=variable,
                                        declared_in=declared_in, declared_by=declared_by, archive=archive, when=when))
        return sha

    # Leaves first: their hashes go into the trees that download them.
    url, sha, path, top = w.github("Maratyszcza", "FP16", FP16_COMMIT, _render_tree("fp16", subs),
                                   mtime=DEPENDENCY_EPOCH, primary="zip", commit=FP16_COMMIT)
    subs["FP16_SHA256"] = dep("fp16", url, sha, path, top, "FP16_SOURCE_DIR", "cmake/DownloadFP16.cmake", "xnnpack",
                              when="TFLITE_ENABLE_XNNPACK")
    url, sha, path, top = w.github("Maratyszcza", "pthreadpool", PTHREADPOOL_COMMIT, _render_tree("pthreadpool", subs),
                                   mtime=DEPENDENCY_EPOCH, primary="zip", commit=PTHREADPOOL_COMMIT)
    subs["PTHREADPOOL_SHA256"] = dep("pthreadpool", url, sha, path, top, "PTHREADPOOL_SOURCE_DIR",
                                     "tensorflow/lite/cmake/DownloadPThreadPool.cmake", "tensorflow")
    url, sha, path, top = w.github("google", "XNNPACK", XNNPACK_TAG, _render_tree("xnnpack", subs),
                                   mtime=DEPENDENCY_EPOCH, primary="tar.gz", commit=XNNPACK_TAG)
    dep("xnnpack", url, sha, path, top, "FETCHCONTENT_SOURCE_DIR_XNNPACK",
        "tensorflow/lite/tools/cmake/modules/xnnpack.cmake", "tensorflow", when="TFLITE_ENABLE_XNNPACK")
    flatbuffers_commit = hashlib.sha1(f"tflite-forge miniature flatbuffers {FLATBUFFERS_TAG}".encode()).hexdigest()
    url, sha, path, top = w.github("google", "flatbuffers", FLATBUFFERS_TAG, _render_tree("flatbuffers", subs),
                                   mtime=DEPENDENCY_EPOCH, primary="tar.gz", commit=flatbuffers_commit)
    dep("flatbuffers", url, sha, path, top, "FETCHCONTENT_SOURCE_DIR_FLATBUFFERS",
        "tensorflow/lite/tools/cmake/modules/flatbuffers.cmake", "tensorflow")
    fft2d = tar_gz_bytes(FFT2D_PREFIX, _render_tree("fft2d", subs), mtime=DEPENDENCY_EPOCH)
    subs["FFT2D_SHA256"] = dep("fft2d", FFT2D_URL, _sha256(fft2d), w.put(FFT2D_URL, fft2d), FFT2D_PREFIX,
                               "FETCHCONTENT_SOURCE_DIR_FFT2D", "tensorflow/lite/tools/cmake/modules/fft2d.cmake",
                               "tensorflow")
    benchmark_commit = hashlib.sha1(f"tflite-forge miniature benchmark {GOOGLE_BENCHMARK_TAG}".encode()).hexdigest()
    url, sha, path, top = w.github("google", "benchmark", GOOGLE_BENCHMARK_TAG, _render_tree("google_benchmark", subs),
                                   mtime=DEPENDENCY_EPOCH, primary="tar.gz", commit=benchmark_commit)
    dep("google_benchmark", url, sha, path, top, "FETCHCONTENT_SOURCE_DIR_GOOGLE_BENCHMARK",
        "tensorflow/lite/tools/cmake/modules/Findgoogle_benchmark.cmake", "tensorflow", when="TFLITE_KERNEL_TEST")
    url, sha, path, top = w.github("KhronosGroup", "OpenCL-Headers", OPENCL_HEADERS_COMMIT,
                                   _render_tree("opencl_headers", subs), mtime=DEPENDENCY_EPOCH, primary="tar.gz",
                                   commit=OPENCL_HEADERS_COMMIT)
    dep("opencl_headers", url, sha, path, top, "FETCHCONTENT_SOURCE_DIR_OPENCL_HEADERS",
        "tensorflow/lite/tools/cmake/modules/opencl_headers.cmake", "tensorflow", when="TFLITE_ENABLE_GPU")

    tf_files = _render_tree("tensorflow", subs)
    for rel, data in _bazel_files(version).items():
        if rel in tf_files:
            raise ValueError(f"bazel_files({version!r}) would replace the miniature's own {rel}")
        tf_files[rel] = data
    strip_prefix = f"tensorflow-{version}"
    tf = tar_gz_bytes(strip_prefix, tf_files, mtime=epoch, comment=fake_commit)
    tf_url = f"https://github.com/tensorflow/tensorflow/archive/refs/tags/v{version}.tar.gz"
    tf_archive = w.put(tf_url, tf)
    w.put(f"https://github.com/tensorflow/tensorflow/archive/v{version}.tar.gz", tf)
    tf_sha = _sha256(tf)

    recipe_path = dest / "recipes" / f"tensorflow-{version}.toml"
    recipe = {
        "source": {
            "name": "tensorflow",
            "version": version,
            "urls": [tf_url],
            "sha256": tf_sha,
            "strip_prefix": strip_prefix,
        },
        "build": {
            "source_date_epoch": epoch,
            "cmake_source_dir": "tensorflow/lite/c",
            "patch_sets": ["o3", "drop-mfpu-neon", "soname"],
            "host_tools_target": "flatbuffers-flatc",
        },
    }
    header = (f"# Miniature TensorFlow {version}: a test fixture generated by tflite_forge.miniature.\n"
              "# Serve the www/ folder beside recipes/ on 127.0.0.1 and pass --rewrite https://=http://127.0.0.1:PORT/ to reach its URLs.\n\n")
    write_atomic(recipe_path, (header + tomli_w.dumps(recipe)).encode("utf-8"))

    return MiniatureRelease(
        version=version, root=dest, www_root=www, recipe_path=recipe_path,
        tensorflow_url=tf_url, tensorflow_sha256=tf_sha, tensorflow_archive=tf_archive,
        strip_prefix=strip_prefix, source_date_epoch=epoch,
        dependencies=tuple(deps), archives=tuple(w.written),
    )
