"""tflite_forge.loopback: a real file server on 127.0.0.1 (GET, HEAD, 404s, threads, clean exit)."""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlsplit

import pytest
import requests

from tflite_forge.loopback import serve_directory


@pytest.fixture
def site(tmp_path):
    (tmp_path / "github.com/o/r/archive").mkdir(parents=True)
    payload = bytes(range(256)) * 1000
    (tmp_path / "github.com/o/r/archive/v1.tar.gz").write_bytes(payload)
    return tmp_path, payload


def test_get_serves_exact_bytes_at_host_and_path(site):
    root, payload = site
    with serve_directory(root) as base:
        assert base.startswith("http://127.0.0.1:") and base.endswith("/")
        r = requests.get(base + "github.com/o/r/archive/v1.tar.gz", timeout=10)
        assert r.status_code == 200 and r.content == payload
        assert r.headers["Content-Length"] == str(len(payload))
        assert "Content-Encoding" not in r.headers  # clients must not gunzip archives


def test_head_gives_headers_without_body(site):
    root, payload = site
    with serve_directory(root) as base:
        u = urlsplit(base)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        conn.request("HEAD", "/github.com/o/r/archive/v1.tar.gz")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Length") == str(len(payload))
        assert resp.read() == b""
        conn.close()


def test_missing_files_and_directories_are_404(site):
    root, _ = site
    with serve_directory(root) as base:
        assert requests.get(base + "github.com/o/r/archive/v2.tar.gz", timeout=10).status_code == 404
        assert requests.get(base + "github.com/o/r/", timeout=10).status_code == 404  # no listing
        assert requests.get(base + "github.com/o/r", timeout=10, allow_redirects=False).status_code == 404


def test_a_stalled_client_does_not_block_others(site):
    root, payload = site
    with serve_directory(root) as base:
        u = urlsplit(base)
        stalled = socket.create_connection((u.hostname, u.port), timeout=10)
        stalled.sendall(b"GET /github.com/o/r/archive/v1.tar.gz HTTP/1.1\r\n")  # never finishes its headers
        try:
            assert requests.get(base + "github.com/o/r/archive/v1.tar.gz", timeout=10).content == payload
        finally:
            stalled.close()


def test_port_is_released_on_exit(site):
    root, _ = site
    with serve_directory(root) as base:
        port = urlsplit(base).port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_serving_a_missing_directory_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        with serve_directory(tmp_path / "nope"):
            pass


def test_shared_fixtures_reach_the_miniature_release(miniature_release, miniature_server, miniature_rewrite):
    assert miniature_rewrite == f"https://={miniature_server}"
    url = miniature_release.tensorflow_url
    local = miniature_server + url[len("https://"):]
    r = requests.get(local, timeout=10)
    assert r.status_code == 200 and r.content == miniature_release.tensorflow_archive.read_bytes()
