"""A real HTTP server on 127.0.0.1 that misbehaves on purpose, for the fetch tests and the benchmark.

    with FaultServer() as srv:
        srv.add("/a.tar.gz", body, mode="status_then_ok", status=503, times=2, retry_after="0")
        url = srv.url("/a.tar.gz")
        ...
        srv.requests("/a.tar.gz")  # [(method, headers), ...] as received

Modes (per path):
  ok              200 with Content-Length, a strong ETag and Last-Modified; honours Range + If-Range
  status          always answers `status` (e.g. 500, 404)
  status_then_ok  answers `status` (with Retry-After: `retry_after` when given) `times` times, then ok
  redirect        302 to `target` (a path; itself for a loop)
  stall           headers (full Content-Length) and `send` bytes, then silence for `seconds`
  short           Content-Length says len(body) + `extra`; sends the body, then closes
  nolength        no Content-Length; sends the first `cut` bytes, then closes (HTTP/1.0 style end)
  reset           headers and `cut` body bytes, then a TCP reset (SO_LINGER 0)
  cut_once        the first `times` (default 1) requests send `cut` bytes and close; then ok with Range
  slow            ok, but `chunk` bytes at a time with `delay` seconds between them
  wrong           ok, but serves `other` bytes instead of the body
`validators=False` on any mode omits ETag/Last-Modified (so a cut download cannot resume).
A `root` folder, when given, serves any path not added (mode ok), e.g. a miniature release's www/.
Bodies can be bytes or a Path (sent with sendfile, for the benchmark's large files).
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Route:
    def __init__(self, body: bytes | Path, mode: str, opts: dict[str, Any]):
        self.body = body
        self.mode = mode
        self.opts = opts
        self.hits = 0
        if isinstance(body, Path):
            self.size = body.stat().st_size
            with open(body, "rb") as fh:
                head = fh.read(1 << 16)
            tag = hashlib.sha256(head + str(self.size).encode()).hexdigest()[:32]
        else:
            self.size = len(body)
            tag = hashlib.sha256(body).hexdigest()[:32]
        self.etag = f'"{tag}"'
        self.last_modified = email.utils.formatdate(1_700_000_000, usegmt=True)

    def chunk(self, start: int, end: int) -> bytes:
        if isinstance(self.body, Path):
            with open(self.body, "rb") as fh:
                fh.seek(start)
                return fh.read(end - start)
        return self.body[start:end]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    # -------------------------------------------------------------- helpers

    def _route(self) -> Route | None:
        path = self.path.split("?", 1)[0]
        owner = self.server.owner
        with owner.lock:
            owner.log.append((path, self.command, dict(self.headers.items())))
            route = owner.routes.get(path)
            if route is None and owner.root is not None:
                local = (owner.root / path.lstrip("/")).resolve()
                if owner.root.resolve() in local.parents and local.is_file():
                    route = owner.routes[path] = Route(local, "ok", {})
            if route is not None:
                route.hits += 1
            return route

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def _validators(self, route: Route) -> dict[str, str]:
        if route.opts.get("validators", True) is False:
            return {}
        return {"ETag": route.etag, "Last-Modified": route.last_modified}

    def _reset(self) -> None:
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _send_range(self, route: Route, start: int, end: int, head: bool) -> None:
        if head:
            return
        opts = route.opts
        if route.mode == "slow":
            step, delay = opts.get("chunk", 4096), opts.get("delay", 0.01)
            pos = start
            while pos < end:
                if self.server.owner.stopping.is_set():
                    return
                self.wfile.write(route.chunk(pos, min(end, pos + step)))
                self.wfile.flush()
                pos += step
                time.sleep(delay)
            return
        if isinstance(route.body, Path):
            self.wfile.flush()
            with open(route.body, "rb") as fh:
                self.connection.sendfile(fh, start, end - start)
            return
        self.wfile.write(route.chunk(start, end))

    # -------------------------------------------------------------- modes

    def _handle(self, head: bool) -> None:
        route = self._route()
        if route is None:
            self._headers(404, {"Content-Length": "0", "Connection": "close"})
            return
        mode, opts = route.mode, route.opts
        hit = route.hits
        if mode == "status" or (mode == "status_then_ok" and hit <= opts.get("times", 1)):
            extra = {"Retry-After": str(opts["retry_after"])} if "retry_after" in opts else {}
            body = b"fault\n"
            self._headers(opts.get("status", 500), {"Content-Length": str(len(body)), "Connection": "close", **extra})
            if not head:
                self.wfile.write(body)
            return
        if mode == "redirect":
            self._headers(302, {"Location": opts["target"], "Content-Length": "0"})
            return
        if mode == "reset_before":
            self._reset()
            return
        size = route.size
        if mode == "stall":
            self._headers(200, {"Content-Length": str(size), **self._validators(route)})
            self.wfile.write(route.chunk(0, opts.get("send", 0)))
            self.wfile.flush()
            self.server.owner.stopping.wait(opts.get("seconds", 30))
            self.close_connection = True
            return
        if mode == "short":
            self._headers(200, {"Content-Length": str(size + opts.get("extra", 100)), "Connection": "close",
                                **self._validators(route)})
            self._send_range(route, 0, size, head)
            self.close_connection = True
            return
        if mode == "nolength":
            self.protocol_version = "HTTP/1.0"
            self._headers(200, {"Connection": "close", **self._validators(route)})
            self._send_range(route, 0, opts.get("cut", size // 2), head)
            self.close_connection = True
            return
        if mode == "reset":
            self._headers(200, {"Content-Length": str(size), **self._validators(route)})
            self.wfile.write(route.chunk(0, opts.get("cut", size // 2)))
            self._reset()
            return
        if mode == "cut_once" and hit <= opts.get("times", 1) and "Range" not in self.headers:
            self._headers(200, {"Content-Length": str(size), "Connection": "close", **self._validators(route)})
            self.wfile.write(route.chunk(0, opts.get("cut", size // 2)))
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "wrong":
            other = opts.get("other", b"not the bytes you pinned\n")
            self._headers(200, {"Content-Length": str(len(other)), **self._validators(route)})
            if not head:
                self.wfile.write(other)
            return
        self._ok(route, head)

    def _ok(self, route: Route, head: bool) -> None:
        size = route.size
        validators = self._validators(route)
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        honour = rng and validators and (if_range is None or if_range in (route.etag, route.last_modified))
        if honour and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= size:
                self._headers(416, {"Content-Range": f"bytes */{size}", "Content-Length": "0"})
                return
            self._headers(206, {"Content-Length": str(size - start), "Content-Range": f"bytes {start}-{size - 1}/{size}",
                                **validators})
            self._send_range(route, start, size, head)
            return
        self._headers(200, {"Content-Length": str(size), **validators})
        self._send_range(route, 0, size, head)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "FaultServer"

    def handle_error(self, request, client_address) -> None:
        # Clients hanging up mid-response is what these tests provoke; anything else is a bug.
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FaultServer:
    def __init__(self, root: Path | None = None):
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.root = Path(root) if root else None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def add(self, path: str, body: bytes | Path = b"", mode: str = "ok", **opts: Any) -> str:
        with self.lock:
            self.routes[path] = Route(body, mode, opts)
        return self.url(path)

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def requests(self, path: str) -> list[tuple[str, dict[str, str]]]:
        with self.lock:
            return [(method, headers) for p, method, headers in self.log if p == path]

    def __enter__(self) -> "FaultServer":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def closed_port() -> int:
    """A 127.0.0.1 port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_forever(root: str, port_file: str) -> None:  # pragma: no cover - used by subprocess tests
    with FaultServer(Path(root)) as srv:
        Path(port_file).write_text(srv.base)
        while True:
            time.sleep(3600)


if __name__ == "__main__":  # pragma: no cover
    import sys
    serve_forever(sys.argv[1], sys.argv[2])
    os._exit(0)
