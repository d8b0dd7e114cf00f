"""A container spec made fit for a builder that shares no filesystem with this host.

On this host's engine a build bind-mounts its trees and its staging folder. A builder (`--builder`,
builders.py) cannot see our paths, so `localize` turns

- every read-only bind mount (TensorFlow, the dependency trees, the toolchains) into a read-only
  volume on the builder, named by the tree's digest and filled once by streaming a tar of the tree
  into a throw-away container (no network, no capabilities, the build user): a second cell, or a
  second run, with the same tree reuses it;
- the writable staging mount (/out) into a volume of this run, whose files `fetch_out` copies back
  (`docker cp`) when the build asks for them, and which is removed afterwards.

A volume is complete only when its `-ok` companion volume exists (made after the fill): an
interrupted fill is found and redone, never used. Images go over with `image_io.copy_to_builder`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from . import container as ct
from . import engine as eng
from .errors import EngineError
from .fsutil import tree_digest

FILL_ROOT = "/deps"          # a 1777 folder of the builder image: a fresh volume mounted there is writable
SOURCE_KIND = ("io.tflite-forge.kind", "source")
OUT_KIND = ("io.tflite-forge.kind", "out")
COMPLETE_SUFFIX = "-ok"      # <volume>-ok exists once <volume>'s fill finished


@dataclass(frozen=True)
class Localized:
    spec: ct.ContainerSpec                 # the spec with volumes in place of bind mounts
    out_volume: str | None                 # the per-run volume behind the writable mount, removed afterwards
    out_target: str | None                 # where it is mounted in the container
    out_source: Path | None                # the host folder its files are copied back into
    shipped: tuple[tuple[str, str], ...]   # (host tree, volume) for each read-only tree


def source_volume(tree: Path) -> str:
    return f"tflite-forge-src-{tree_digest(tree)[:32]}"


def _volume_exists(engine: eng.EngineConfig, name: str) -> bool:
    proc = subprocess.run(engine.argv("volume", "inspect", name), capture_output=True, text=True, timeout=60)
    return proc.returncode == 0


def _stream_tar(tree: Path, sink) -> None:
    """The tree as an uncompressed tar stream, entries in a stable order, owners zeroed (the files
    belong to the build user wherever they land)."""
    def anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(tree)):   # not "." itself: the volume's root is the image's 1777 folder
            tar.add(os.path.join(tree, entry), arcname=entry, filter=anonymous)


def ship_tree(engine: eng.EngineConfig, image: str, tree: Path, *, user: str | None,
              labels: tuple[tuple[str, str], ...] = ()) -> str:
    """A read-only copy of `tree` on the builder, as a volume named by its digest (reused when present)."""
    name = source_volume(tree)
    done = f"{name}{COMPLETE_SUFFIX}"
    if _volume_exists(engine, done) and _volume_exists(engine, name):
        return name
    ct.remove_volumes(engine, [name, done])          # what an interrupted fill left
    print(f"tflite-forge: copying {tree} to builder {engine.title} (volume {name})", file=sys.stderr, flush=True)
    all_labels = (SOURCE_KIND, *labels)
    ct.ensure_volume(engine, name, all_labels)
    spec = ct.ContainerSpec(image=image, purpose="ship", user=user, network="none",
                            mounts=(ct.Mount(source=name, target=FILL_ROOT, volume=True),))
    cname = ct.container_name(spec.purpose)
    argv = engine.argv("run", "-i", *ct.run_flags(engine, spec, cname), image,
                       "tar", "-x", "-p", "--no-same-owner", "-f", "-", "-C", FILL_ROOT)
    ct.register_container(cname, engine)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        errors: list[bytes] = []
        reader = threading.Thread(target=lambda: errors.append(proc.stderr.read() if proc.stderr else b""),
                                  daemon=True)
        reader.start()
        try:
            assert proc.stdin is not None
            _stream_tar(Path(tree), proc.stdin)
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass                                     # the container ended early: its exit status says why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        reader.join()
    finally:
        ct.forget_container(cname, engine)
    if code != 0:
        ct.remove_volumes(engine, [name])
        message = eng.last_line(b"".join(errors).decode(errors="replace"))
        raise EngineError(f"builder {engine.title}: copying {tree} into volume {name} failed: {message}")
    ct.ensure_volume(engine, done, all_labels)
    return name


def localize(engine: eng.EngineConfig, spec: ct.ContainerSpec, *, run_labels: tuple[tuple[str, str], ...] = ()
             ) -> Localized:
    """`spec` as it can run on `engine`: unchanged on this host's engine, trees shipped to a builder."""
    if not engine.remote:
        return Localized(spec=spec, out_volume=None, out_target=None, out_source=None, shipped=())
    mounts, shipped = [], []
    out_volume = out_target = out_source = None
    for mount in spec.mounts:
        if mount.volume or mount.engine_host:
            mounts.append(mount)
        elif mount.read_only:
            name = ship_tree(engine, spec.image, Path(mount.source), user=spec.user)
            shipped.append((mount.source, name))
            mounts.append(ct.Mount(source=name, target=mount.target, read_only=True, volume=True))
        elif out_volume is None:
            out_volume = f"tflite-forge-out-{secrets.token_hex(6)}"
            out_target, out_source = mount.target, Path(mount.source)
            ct.ensure_volume(engine, out_volume, (OUT_KIND, *run_labels))
            mounts.append(ct.Mount(source=out_volume, target=mount.target, volume=True))
        else:
            raise EngineError(f"builder {engine.title}: a spec with two writable host folders cannot run remotely "
                              f"({mount.source})")
    return Localized(spec=replace(spec, mounts=tuple(mounts)), out_volume=out_volume, out_target=out_target,
                     out_source=out_source, shipped=tuple(shipped))


def fetch_out(engine: eng.EngineConfig, box: ct.Container, local: Localized, sub: str) -> None:
    """Copy <out>/<sub> from the builder into the host folder the spec named for it (no-op locally)."""
    if local.out_volume is None or local.out_source is None:
        return
    dest = local.out_source / sub
    if dest.exists():
        raise EngineError(f"{dest} exists before its copy from builder {engine.title}; remove it and rerun")
    dest.parent.mkdir(parents=True, exist_ok=True)
    box.copy_out(f"{local.out_target}/{sub}", dest)


def release(engine: eng.EngineConfig, local: Localized) -> None:
    """Remove the run's own volume (the shipped trees stay: the next run with those trees reuses them)."""
    if local.out_volume:
        try:
            ct.remove_volumes(engine, [local.out_volume])
        except EngineError:
            pass     # a builder gone mid-run: the next run of the cell removes it (build_run.run_build)
