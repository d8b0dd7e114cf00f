"""Images on an engine (engine.py): build one from a Dockerfile, import a root filesystem (or load it
as a docker-archive written here, for a foreign platform), pull, list and remove ours, and copy one
to a builder with the same ID (`copy_to_builder`: save here, load there).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import os
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

from .engine import INSTALL_HINT, LABEL, EngineConfig, last_line, refused, run_cli
from .errors import EngineError

def image_id(engine: EngineConfig, ref: str) -> str | None:
    """The local image's ID, or None when the engine does not have it (never pulls)."""
    proc = run_cli(engine.argv("image", "inspect", "--format", "{{.Id}}", ref), timeout=60)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def image_labels(engine: EngineConfig, ref: str) -> dict[str, str]:
    proc = run_cli(engine.argv("image", "inspect", "--format", "{{json .Config.Labels}}", ref), timeout=60)
    if proc.returncode != 0:
        return {}
    return json.loads(proc.stdout or "null") or {}


def build_image(engine: EngineConfig, *, context: Path, dockerfile: Path, tag: str,
                build_args: Mapping[str, str] = {}, labels: Mapping[str, str] = {},
                pull_never: bool = True, log: IO[str] | None = None,
                on_line: Callable[[str], None] | None = None, platform: str | None = None) -> None:
    """`build` with a local base image and no registry; output streamed to log/on_line. `platform`
    ("linux/arm64"): the docker CLI builds for it through DOCKER_DEFAULT_PLATFORM, given to that
    build's process only; podman picks the platform from the base image it finds."""
    argv = engine.argv("build", "--tag", tag, "--file", str(dockerfile), "--force-rm")
    env = {**os.environ, "DOCKER_DEFAULT_PLATFORM": platform} if platform and engine.name == "docker" else None
    if engine.name == "podman":
        argv.append("--pull=never" if pull_never else "--pull=missing")
        argv.append("--layers")
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in {LABEL: "1", **labels}.items():
        argv += ["--label", f"{key}={value}"]
    argv.append(str(context))
    tail: list[str] = []
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", bufsize=1, env=env)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail = (tail + [line])[-40:]
            if log:
                log.write(line + "\n")
            if on_line:
                on_line(line)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
    if proc.wait() != 0:
        raise EngineError(f"{engine.name} build of {tag} failed: {last_line(chr(10).join(tail))}")


def import_image(engine: EngineConfig, tarball: Path, ref: str, *, changes: Sequence[str] = (),
                 platform: str | None = None) -> str:
    """Import a root filesystem tarball; `platform` ("linux/arm64") records a foreign architecture
    (docker: --platform; podman: --os/--arch/--variant), so `--platform` builds and runs find it."""
    if platform and engine.name != "podman":
        return load_rootfs(engine, tarball, ref, changes=changes, platform=platform)
    argv = engine.argv("import")
    for change in changes:
        argv += ["--change", change]
    if platform:
        argv += import_platform_flags(engine, platform)
    argv += [str(tarball), ref]
    proc = run_cli(argv, timeout=900)
    if proc.returncode != 0:
        raise EngineError(f"{engine.name} import of {tarball} as {ref} failed: {last_line(proc.stderr)}")
    found = image_id(engine, ref)
    if not found:
        raise EngineError(f"{engine.name} import reported success but {ref} is missing; check `{engine.name} images`")
    return found


def rootfs_image_config(layer_sha256: str, *, changes: Sequence[str], platform: str) -> dict:
    """An OCI/docker image config for one rootfs layer; `changes` as `import --change` takes them
    (LABEL k=v, CMD [json], ENV k=v)."""
    os_name, arch, *variant = platform.split("/")
    config: dict = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Labels": {}}
    for change in changes:
        verb, _, rest = change.partition(" ")
        if verb == "LABEL":
            key, _, value = rest.partition("=")
            config["Labels"][key] = value
        elif verb == "CMD":
            config["Cmd"] = json.loads(rest)
        elif verb == "ENV":
            config["Env"].append(rest)
        else:
            raise EngineError(f"internal: image change {change!r} is not LABEL, CMD or ENV")
    image = {"architecture": arch, "os": os_name, "created": "1970-01-01T00:00:00Z", "config": config,
             "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_sha256}"]},
             "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tflite-forge: debootstrap rootfs"}]}
    if variant:
        image["variant"] = variant[0]
    return image


def load_rootfs(engine: EngineConfig, tarball: Path, ref: str, *, changes: Sequence[str] = (),
                platform: str, timeout: float = 900) -> str:
    """`docker import --platform` needs an experimental daemon (it is ignored otherwise, and the image
    claims the host's arch): write a docker-archive (manifest.json, config with the platform, the
    rootfs tar as its one layer) straight into `docker load` instead."""
    digest = hashlib.sha256()
    with open(tarball, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    layer_sha = digest.hexdigest()
    config = json.dumps(rootfs_image_config(layer_sha, changes=changes, platform=platform), sort_keys=True).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": [f"{layer_sha}/layer.tar"]}]).encode()
    try:
        proc = subprocess.Popen(engine.argv("load"), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise EngineError(f"{engine.argv('load')[0]} not found; {INSTALL_HINT}") from None
    assert proc.stdin is not None
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.USTAR_FORMAT) as out:
            for name, data in ((config_name, config), ("manifest.json", manifest)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                out.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(f"{layer_sha}/layer.tar")
            info.size = tarball.stat().st_size
            with open(tarball, "rb") as fh:
                out.addfile(info, fh)
        proc.stdin.close()
    except BrokenPipeError:
        pass   # the engine stopped reading: its message is on stderr
    finally:
        if not proc.stdin.closed:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
    assert proc.stderr is not None
    stderr = proc.stderr
    # stderr is read beside the wait, so an engine that never finishes cannot block us on the read.
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(stderr.read()), daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise EngineError(f"{engine.name} load of {tarball} as {ref} did not finish within {timeout:.0f} s; stopped it. "
                          f"Check the engine's health (`{engine.name} info`) and run again") from None
    finally:
        reader.join(timeout=10)
    err = b"".join(chunks)
    if proc.returncode != 0:
        raise EngineError(f"{engine.name} load of {tarball} as {ref} ({platform}) failed: "
                          f"{last_line(err.decode(errors='replace'))}")
    found = image_id(engine, ref)
    if not found:
        raise EngineError(f"{engine.name} load reported success but {ref} is missing; check `{engine.name} images`")
    return found


def import_platform_flags(engine: EngineConfig, platform: str) -> list[str]:
    """docker import takes --platform os/arch[/variant]; podman import takes --os, --arch, --variant."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise EngineError(f"platform {platform!r} is not os/arch[/variant] (e.g. linux/arm64)")
    if engine.name != "podman":
        return ["--platform", platform]
    flags = ["--os", parts[0], "--arch", parts[1]]
    return flags + (["--variant", parts[2]] if len(parts) == 3 else [])


def pull_image(engine: EngineConfig, ref: str) -> None:
    proc = run_cli(engine.argv("pull", ref), timeout=1800)
    if proc.returncode != 0:
        raise EngineError(f"{engine.name} could not pull {ref} ({last_line(proc.stderr)}); import it, or make the "
                          "default base image with `invoke image --bootstrap`")


GONE = re.compile(r"no such image|image not known|image not found", re.IGNORECASE)


def remove_images(engine: EngineConfig, refs: Sequence[str]) -> None:
    """`rmi -f`; an image already gone is fine, anything else the engine refuses is an EngineError."""
    if not refs:
        return
    proc = run_cli(engine.argv("rmi", "-f", *refs), timeout=300)
    if proc.returncode != 0:
        problems = [line for line in proc.stderr.splitlines() if line.strip() and not GONE.search(line)]
        if problems or not proc.stderr.strip():
            raise refused(engine, f"remove image(s) {', '.join(refs)}", proc)


def list_images(engine: EngineConfig, label: str = LABEL) -> list[str]:
    """repo:tag of every local image carrying `label` (those we made)."""
    proc = run_cli(engine.argv("images", "--filter", f"label={label}", "--format", "{{.Repository}}:{{.Tag}}"), timeout=60)
    if proc.returncode != 0:
        raise refused(engine, "list images", proc)
    return sorted({line.strip() for line in proc.stdout.splitlines() if line.strip() and "<none>" not in line})


def _same_id(a: str | None, b: str | None) -> bool:
    """docker says sha256:<hex>, podman <hex>: the same image either way."""
    return bool(a and b) and a.removeprefix("sha256:") == b.removeprefix("sha256:")  # type: ignore[union-attr]


def copy_to_builder(home: EngineConfig, engine: EngineConfig, ref: str, wanted_id: str) -> None:
    """Make `ref` exist on the builder with exactly `wanted_id`: `save` from this host's engine, `load`
    there (a docker build is not reproducible, so loading is how every builder gets the same ID)."""
    if not engine.remote or _same_id(image_id(engine, ref), wanted_id):
        return
    save = subprocess.Popen(home.argv("save", ref), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        load = subprocess.run(engine.argv("load"), stdin=save.stdout, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        save.kill()
        raise EngineError(f"builder {engine.title}: loading {ref} took more than an hour; check the link to it") from None
    finally:
        if save.stdout:
            save.stdout.close()
    saved = save.wait()
    if saved != 0 or load.returncode != 0:
        why = last_line(save.stderr.read().decode(errors="replace") if saved and save.stderr else load.stderr)
        raise EngineError(f"builder {engine.title}: could not load {ref} from {home.title}: {why}")
    found = image_id(engine, ref)
    if not _same_id(found, wanted_id):
        raise EngineError(f"builder {engine.title}: {ref} has image ID {found}, not {wanted_id} as on "
                          f"{home.title}; remove it there (`{engine.name} {' '.join(engine.flags)} rmi {ref}`) and rerun")
