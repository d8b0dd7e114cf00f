"""Real container engines for the integration tests.

- `docker_engine` / `podman_engine`: the engine, checked. Without one the test is skipped on a
  developer machine, but FAILS under CI=true: CI must never pass by skipping the real work.
- `base_image_docker` / `base_image_podman`: the bootstrap base image, made once per session through
  `invoke image --bootstrap` (idempotent: reused when the engine already has it).
- `forge`: runs the invoke CLI in a subprocess from the repository, with a per-session cache and
  work dir, and returns the CompletedProcess.
- `miniature`: the miniature TensorFlow release served on 127.0.0.1, with its recipe locked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ci import unavailable
from tflite_forge import engine as eng
from tflite_forge import image_io
from tflite_forge.errors import EngineError

REPO = Path(__file__).resolve().parents[2]


def _engine_or_fail(name: str) -> eng.EngineConfig:
    try:
        return eng.resolve_engine(name)
    except EngineError as err:
        unavailable(f"{name} is not usable here ({err}); run ci/setup-host.sh")


@pytest.fixture(scope="session")
def docker_engine() -> eng.EngineConfig:
    return _engine_or_fail("docker")


@pytest.fixture(scope="session")
def podman_engine() -> eng.EngineConfig:
    return _engine_or_fail("podman")


def run_forge(*args: str, env: dict | None = None, timeout: float = 1800, check: bool = False,
              cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`invoke <args>` from the repository root, as a user would type it."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"invoke {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def forge():
    """run_forge: `invoke <args>` in a subprocess from the repository root."""
    return run_forge


def _bootstrap(engine: eng.EngineConfig) -> str:
    from tflite_forge.image import DEFAULT_BASE_IMAGE
    # Default cache dir: the debootstrap tarball is made once per host and imported into each engine.
    run_forge("image", "--bootstrap", f"--engine={engine.name}", check=True, timeout=1200)
    found = image_io.image_id(engine, DEFAULT_BASE_IMAGE)
    assert found, f"invoke image --bootstrap did not leave {DEFAULT_BASE_IMAGE} in {engine.name}"
    return DEFAULT_BASE_IMAGE


@pytest.fixture(scope="session")
def base_image_docker(docker_engine) -> str:
    return _bootstrap(docker_engine)


@pytest.fixture(scope="session")
def base_image_podman(podman_engine) -> str:
    return _bootstrap(podman_engine)


@dataclass(frozen=True)
class Miniature:
    recipe: Path
    base_url: str
    cache_dir: Path
    work_dir: Path

    @property
    def env(self) -> dict:
        return {"TFLITE_FORGE_CACHE": str(self.cache_dir), "TFLITE_FORGE_WORK_DIR": str(self.work_dir)}

    @property
    def args(self) -> list[str]:
        return [f"--recipe={self.recipe}", f"--rewrite=https://={self.base_url}"]


@pytest.fixture(scope="session")
def miniature(tmp_path_factory) -> Miniature:
    """The miniature release on a loopback server; its recipe gets a lock (invoke lock) once."""
    from tflite_forge.loopback import serve_directory
    from tflite_forge.miniature import write_release

    root = tmp_path_factory.mktemp("miniature")
    release = write_release(root / "release")
    recipe = Path(release.recipe_path)
    with serve_directory(root / "release" / "www") as base_url:
        mini = Miniature(recipe=recipe, base_url=base_url, cache_dir=root / "cache", work_dir=root / "work")
        if not Path(str(recipe) + ".lock").exists():
            run_forge("lock", *mini.args, env=mini.env, check=True, timeout=600)
        yield mini
