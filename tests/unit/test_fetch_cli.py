"""The fetch tasks as a user runs them: `invoke lock/mirror/fetch/recipes` in a subprocess,
against a loopback server (never any other address)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tflite_forge.cache import Cache, sha256_file

from .faultserver import FaultServer, closed_port
from .test_lock import Release

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str, cache: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TFLITE_FORGE_")}
    environ.update(TFLITE_FORGE_CACHE=str(cache), TFLITE_FORGE_RETRIES="0", TFLITE_FORGE_CONNECT_TIMEOUT="2", **env)
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_lock_mirror_then_offline_fetch_from_a_file_mirror(tmp_path):
    rel = Release(tmp_path)
    connected = tmp_path / "connected-cache"
    with FaultServer(rel.www) as srv:
        done = invoke("lock", f"--recipe={rel.recipe_path}", f"--rewrite=https://={srv.base}", cache=connected)
    assert done.returncode == 0, done.stderr
    assert "4 dependencies pinned" in done.stdout
    assert rel.recipe_path.with_name(rel.recipe_path.name + ".lock").is_file()

    exported = invoke("mirror", f"--dest={tmp_path / 'mirror'}", cache=connected)
    assert exported.returncode == 0, exported.stderr
    assert len(list((tmp_path / "mirror" / "sha256").iterdir())) == 5

    airgapped = tmp_path / "airgapped-cache"
    fetched = invoke("fetch", f"--recipe={rel.recipe_path}", f"--mirror={(tmp_path / 'mirror').as_uri()}",
                     "--offline", cache=airgapped)
    assert fetched.returncode == 0, fetched.stderr
    assert "archive and 4 locked dependencies verified" in fetched.stdout
    blobs = Cache(airgapped).entries()
    assert len(blobs) == 5 and all(sha256_file(b) == b.name for b in blobs)


def test_offline_fetch_with_nothing_cached_fails_in_one_line(tmp_path):
    rel = Release(tmp_path)
    done = invoke("fetch", f"--recipe={rel.recipe_path}", "--offline", cache=tmp_path / "cache")
    assert done.returncode == 6
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tflite-forge: tensorflow 9.9.9") and "--mirror file:///" in lines[0]


def test_fetch_without_network_says_how_to_use_a_mirror(tmp_path):
    port = closed_port()  # stands in for an unreachable github.com; nothing leaves 127.0.0.1
    done = invoke("fetch", "--version", "2.16.1", f"--rewrite=https://github.com/=http://127.0.0.1:{port}/",
                  cache=tmp_path / "cache")
    assert done.returncode == 4
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("tflite-forge: cannot download tensorflow 2.16.1")
    assert "--mirror URL" in line and "TFLITE_FORGE_MIRRORS" in line and "invoke mirror --dest DIR" in line
    assert Cache(tmp_path / "cache").entries() == []


def test_checksum_mismatch_through_the_cli(tmp_path):
    rel = Release(tmp_path)
    tf = rel.www / "github.com/tensorflow/tensorflow/archive/refs/tags/v9.9.9.tar.gz"
    tf.write_bytes(b"GitHub regenerated this archive")
    with FaultServer(rel.www) as srv:
        done = invoke("fetch", f"--recipe={rel.recipe_path}", f"--rewrite=https://={srv.base}", cache=tmp_path / "c")
    assert done.returncode == 5
    line, = done.stderr.strip().splitlines()
    assert "checksum mismatch" in line and "expected sha256" in line and "got" in line
    assert Cache(tmp_path / "c").entries() == []


def test_recipes_lists_every_bundled_version(tmp_path):
    done = invoke("recipes", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()   # piped: the title, then one line per recipe
    assert lines[0] == f"recipes (cache: {tmp_path / 'cache'})"
    assert "version=2.16.1 | sha256=c729e56efc94 | fetched=no | locked=" in done.stdout


def test_cli_lock_of_the_miniature_with_per_host_rewrites(tmp_path):
    from tflite_forge.lockfile import load_lock
    from tflite_forge.miniature import write_release
    mini = write_release(tmp_path / "release")
    recipe = tmp_path / "my.toml"  # a user's recipe, anywhere on disk
    recipe.write_text(mini.recipe_path.read_text())
    with FaultServer(mini.www_root) as srv:
        done = invoke("lock", f"--recipe={recipe}", f"--rewrite=https://github.com/={srv.base}github.com/",
                      f"--rewrite=https://storage.googleapis.com/={srv.base}storage.googleapis.com/",
                      cache=tmp_path / "cache")
        assert done.returncode == 0, done.stderr
        fetched = invoke("fetch", f"--recipe={recipe}", f"--rewrite=https://={srv.base}", cache=tmp_path / "cache")
        assert fetched.returncode == 0, fetched.stderr
    lock = load_lock(tmp_path / "my.toml.lock")
    assert {d.name for d in lock.dependencies} == {d.name for d in mini.default_dependencies}
    assert all(sha256_file(Cache(tmp_path / "cache").blob(d.sha256)) == d.sha256 for d in lock.dependencies)
