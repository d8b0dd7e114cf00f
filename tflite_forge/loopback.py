"""A quiet static file server on 127.0.0.1, for tests and `invoke selftest`.

    with serve_directory(release.www_root) as base:   # "http://127.0.0.1:PORT/"
        ... fetch with --rewrite https://=<base> ...

GET and HEAD of files under root (Content-Length, no Range); 404 for anything else,
directory listings included. Threaded, so concurrent fetches do not queue. The port is
chosen by the kernel and released on exit.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietFileHandler(SimpleHTTPRequestHandler):
    # Archives are bytes: never let a client think the body is content-encoded.
    extensions_map = {"": "application/octet-stream", ".gz": "application/gzip", ".zip": "application/zip",
                      ".toml": "text/plain", ".json": "application/json"}
    protocol_version = "HTTP/1.1"

    def send_head(self):  # noqa: D401 - http.server's hook
        if Path(self.translate_path(self.path)).is_dir():
            self.send_error(404, "Not Found")
            return None
        return super().send_head()

    def log_message(self, format: str, *args) -> None:  # quiet: tests read their own output
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    """Serve root on 127.0.0.1 (a free port) while the block runs; yields "http://127.0.0.1:PORT/"."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"cannot serve {root}: not a directory")
    handler = functools.partial(_QuietFileHandler, directory=str(root))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"loopback:{server.server_address[1]}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
