"""The shared compile cache (--ccache-remote) on the miniature TensorFlow, as ratios measured in one run.

- warm remote: a build in a fresh work dir with an empty local ccache while the Redis holds every
  object (what a second builder, or a new CI runner, sees) against a cold build (empty local and
  empty remote). ratio = cold / warm-remote, for the whole `invoke build` and for its compile step.
- stalled cache: the same cold build against a cache that answers the probe's PING and then never
  answers ccache (every request ends at ccache's operation timeout). ratio = stalled / cold: what a
  hung cache costs a build instead of stalling it.

Every figure is the median of RUNS cycles of: empty the Redis and this bench's local ccache volume,
cold build (work dir N), empty the local ccache volume, warm-remote build (work dir N'), and (first
cycle only) a build against the stalling socket. The bench's recipe carries its own unused CMake
option, so its cell has a key, a ccache volume and build volumes of its own (removed afterwards).
Needs an engine (docker by default; TFLITE_FORGE_ENGINE) and Debian's redis-server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, timed_invoke  # noqa: E402  (bench/ is not a package)

RUNS = int(os.environ.get("BENCH_CCACHE_RUNS", "3"))
ARCH = os.environ.get("BENCH_CCACHE_ARCH", "x86_64")




def _redis(sock: Path, *words: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(str(sock))
        conn.sendall((" ".join(words) + "\r\n").encode())
        return conn.recv(256)


@contextlib.contextmanager
def _redis_server(folder: Path):
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed: run ci/setup-host.sh (Debian's redis-server)")
    sock = folder / "redis.sock"
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "777",
                             "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                if _redis(sock, "PING").startswith(b"+PONG"):
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on {sock}")
            time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextlib.contextmanager
def _stalling_socket(path: Path):
    """Answers an inline PING (the pre-build probe), holds every other connection unanswered."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    path.chmod(0o777)
    server.listen(128)
    server.settimeout(0.2)
    stop, held = threading.Event(), []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.settimeout(2)
            with contextlib.suppress(OSError):
                if conn.recv(4096).strip() == b"PING":
                    conn.sendall(b"+PONG\r\n")
                    conn.close()
                    continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def main() -> list[dict]:
    sys.path.insert(0, str(REPO))
    from tflite_forge import build_run
    from tflite_forge import container as ct
    from tflite_forge import engine as eng
    from tflite_forge.loopback import serve_directory
    from tflite_forge.miniature import write_release
    from tflite_forge.recipe import load_recipe

    engine = eng.resolve_engine(os.environ.get("TFLITE_FORGE_ENGINE") or None)
    # Sockets need a short path (107 bytes): a folder of its own under /tmp.
    with tempfile.TemporaryDirectory(prefix="bench-ccache-") as tmp, \
            tempfile.TemporaryDirectory(prefix="bcc-", dir="/tmp") as sockets:
        root, sockets_dir = Path(tmp), Path(sockets)
        sockets_dir.chmod(0o755)
        release = write_release(root / "release")
        recipe = Path(release.recipe_path)
        label = load_recipe(recipe).label
        text = recipe.read_text()
        nonce = f'TFLITE_FORGE_BENCH_NONCE = "{secrets.token_hex(4)}"'
        marker = "[build.cmake_options]"
        text = text.replace(marker, f"{marker}\n{nonce}") if marker in text else text + f"\n{marker}\n{nonce}\n"
        own = root / "own" / recipe.name
        own.parent.mkdir()
        base_env = {"TFLITE_FORGE_CACHE": str(root / "cache"), "TFLITE_FORGE_ENGINE": engine.name}
        works: list[Path] = []

        def env_for(name: str) -> dict:
            works.append(root / name)
            return {**base_env, "TFLITE_FORGE_WORK_DIR": str(root / name)}

        def step_time(name: str) -> float:
            return build_run.step_times(root / name / "logs" / f"build-{label}-{ARCH}.log")["build"]

        def record(name: str) -> dict:
            return json.loads((root / name / "logs" / f"build-{label}-{ARCH}.run.json").read_text())

        key = None
        try:
            with serve_directory(release.www_root) as base_url, _redis_server(sockets_dir) as sock:
                common = [f"--rewrite=https://={base_url}"]
                timed_invoke(["lock", f"--recipe={recipe}", *common], base_env)
                own.write_text(text)
                Path(f"{own}.lock").write_text(Path(f"{recipe}.lock").read_text())
                args = ["build", f"--arch={ARCH}", f"--recipe={own}", *common]
                remote = f"--ccache-remote=redis+unix://{sock}"
                timed_invoke(args, env_for("prepare"))   # builder image, working copies
                key = next((root / "prepare" / "stamps").glob("*.json")).stem
                volume = f"tflite-forge-ccache-{key}"
                cold, warm, cold_compile, warm_compile, hits, stalled = [], [], [], [], [], []
                for run in range(RUNS):
                    _redis(sock, "FLUSHALL")
                    ct.remove_volumes(engine, [volume])
                    cold.append(timed_invoke([*args, remote], env_for(f"cold{run}")))
                    cold_compile.append(step_time(f"cold{run}"))
                    ct.remove_volumes(engine, [volume])
                    warm.append(timed_invoke([*args, remote], env_for(f"warm{run}")))
                    warm_compile.append(step_time(f"warm{run}"))
                    counts = record(f"warm{run}")["ccache"]
                    if counts["misses"] or not counts["remote_hits"]:
                        raise RuntimeError(f"the warm-remote build did not hit remotely: {counts}")
                    hits.append(counts["remote_hits"])
                    if run == 0:
                        ct.remove_volumes(engine, [volume])
                        with _stalling_socket(sockets_dir / "stall.sock") as stall:
                            stalled.append(timed_invoke([*args, f"--ccache-remote=redis+unix://{stall}"], env_for("stalled")))
                        stalled_compile = step_time("stalled")
                        stalled_counts = record("stalled")["ccache"]
        finally:
            for work in works:
                if (work / "stamps").is_dir():
                    with contextlib.suppress(Exception):
                        timed_invoke(["clean", "--build"], {**base_env, "TFLITE_FORGE_WORK_DIR": str(work)})
            if key:
                ct.remove_volumes(engine, [f"tflite-forge-ccache-{key}"], keep_in_use=True)
    med = statistics.median
    return [
        {"benchmark": f"build, empty local ccache + warm remote ({ARCH}, {engine.name})", "ours": f"{med(warm):.2f}s",
         "reference": f"cold build {med(cold):.2f}s", "ratio": round(med(cold) / med(warm), 1),
         "target": "> 1.5x", "note": f"{int(med(hits))} remote hits, 0 misses; the miniature's few compiles leave "
                                     "fixed costs (containers, probe, configure) to dominate"},
        {"benchmark": f"compile step, empty local ccache + warm remote ({ARCH}, {engine.name})",
         "ours": f"{med(warm_compile):.2f}s", "reference": f"cold compile {med(cold_compile):.2f}s",
         "ratio": round(med(cold_compile) / med(warm_compile), 1), "target": ">= 3x"},
        {"benchmark": f"build against a cache that stalls every request ({ARCH}, {engine.name})",
         "ours": f"{stalled[0]:.2f}s", "reference": f"cold build {med(cold):.2f}s",
         "ratio": round(stalled[0] / med(cold), 2),
         "target": "finishes; <= cold + 0.5 s x compiles / jobs",
         "note": f"compile step {stalled_compile:.2f}s vs cold {med(cold_compile):.2f}s; "
                 f"{stalled_counts['compilations']} ccache calls, {stalled_counts['remote_errors']} remote errors, "
                 f"{stalled_counts['remote_timeouts']} timeouts (operation timeout 500 ms)"},
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
