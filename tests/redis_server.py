"""A real Redis (Debian's redis-server) on a unix socket, and a listener that never answers: the shared
compile cache's test parts. A missing redis-server skips on a developer machine and FAILS under CI.

Sockets live in a short folder under /tmp (a unix socket path is limited to 107 bytes, and pytest's
tmp_path can be longer); it is removed afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from tests.ci import need_tools
from tflite_forge.ccache_remote import ping


class Redis:
    def __init__(self, folder: Path) -> None:
        self.socket = folder / "redis.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis+unix://{self.socket}"

    def start(self) -> "Redis":
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "777",
             "--save", "", "--appendonly", "no", "--dir", str(self.socket.parent)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while ping(str(self.socket), timeout=1)[0] is not None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} before answering on {self.socket}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on {self.socket} within 20 s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def command(self, *words: str) -> bytes:
        """One command in Redis' inline protocol; the raw first reply line."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall((" ".join(words) + "\r\n").encode())
            return sock.recv(4096).split(b"\r\n", 1)[0]

    def keys(self) -> int:
        return int(self.command("DBSIZE").lstrip(b":"))


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="tf-cc-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[Redis]:
    need_tools("redis-server")
    with short_dir() as folder:
        redis = Redis(folder).start()
        try:
            yield redis
        finally:
            redis.stop()


class Staller:
    """A unix socket that accepts every connection and answers `PING` with +PONG (so the pre-build probe
    passes), then never answers anything else: a cache that is up but stalls every request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests = 0
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(str(path))
        path.chmod(0o777)
        self._server.listen(128)
        self._server.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"redis+unix://{self.path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                first = conn.recv(4096)
            except OSError:
                first = b""
            if first.strip() == b"PING":
                with contextlib.suppress(OSError):
                    conn.sendall(b"+PONG\r\n")
                conn.close()
                continue
            self.requests += 1
            self._held.append(conn)   # never answered, closed only at the end

    def __enter__(self) -> "Staller":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._server.close()
