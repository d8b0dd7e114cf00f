"""fetch against a real misbehaving HTTP server on 127.0.0.1: every fault ends either in a verified
cache entry or in one clear error line with nothing unverified left in sha256/."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tflite_forge.cache import Cache, sha256_file
from tflite_forge.download import FetchPolicy
from tflite_forge.errors import ChecksumError, FetchError, OfflineError
from tflite_forge.fetch import Fetcher, mirror_url, rewrite_url, run_mirror_export
from tflite_forge.sources import run_recipes
from tflite_forge.progress import PlainProgress
from tflite_forge.settings import Settings

from .faultserver import FaultServer, closed_port

BODY = hashlib.sha256(b"seed").digest() * 40_000  # 1.28 MB, not compressible into one read
HEX = hashlib.sha256(BODY).hexdigest()
FAST = FetchPolicy(connect_timeout=2, read_timeout=0.5, retries=2, backoff_factor=0.01, backoff_max=0.05,
                   max_retry_after=1, max_redirects=5, resume_attempts=2)
REPO = Path(__file__).resolve().parents[2]


def fetcher(cache: Path, **kw) -> Fetcher:
    kw.setdefault("policy", FAST)
    return Fetcher(cache, progress=PlainProgress(stream=io.StringIO()), **kw)


def assert_cache_clean(cache: Path, expect: set[str] = frozenset()) -> None:
    """sha256/ holds exactly `expect`, and every file there hashes to its name."""
    blobs = Cache(cache).entries()
    assert {b.name for b in blobs} == set(expect)
    for b in blobs:
        assert sha256_file(b) == b.name


@pytest.fixture
def srv():
    with FaultServer() as server:
        yield server


# ---------------------------------------------------------------- pure helpers

def test_rewrite_longest_prefix_wins_like_git_insteadof():
    rewrites = [("https://", "http://proxy/all/"), ("https://github.com/", "http://gh.local/")]
    assert rewrite_url("https://github.com/a/b.tar.gz", rewrites) == "http://gh.local/a/b.tar.gz"
    assert rewrite_url("https://gitlab.com/x", rewrites) == "http://proxy/all/gitlab.com/x"
    assert rewrite_url("file:///x", rewrites) == "file:///x"


def test_mirror_url_layout():
    assert mirror_url("https://m.example/cache/", HEX) == f"https://m.example/cache/sha256/{HEX}"


def test_policy_from_env_rejects_garbage():
    assert FetchPolicy.from_env({"TFLITE_FORGE_RETRIES": "1", "TFLITE_FORGE_CONNECT_TIMEOUT": "0.5"}).retries == 1
    with pytest.raises(Exception, match="TFLITE_FORGE_READ_TIMEOUT='soon'"):
        FetchPolicy.from_env({"TFLITE_FORGE_READ_TIMEOUT": "soon"})


# ---------------------------------------------------------------- faults

def test_plain_download_lands_verified_and_read_only(srv, tmp_path):
    url = srv.add("/a.tar.gz", BODY)
    path = fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert path == tmp_path / "sha256" / HEX and path.read_bytes() == BODY
    assert not os.access(path, os.W_OK) or os.geteuid() == 0
    assert (path.stat().st_mode & 0o222) == 0
    assert not list((tmp_path / "partial").iterdir())
    # Second fetch: served from the cache, no request.
    fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert len(srv.requests("/a.tar.gz")) == 1


def test_503_then_200_with_retry_after(srv, tmp_path):
    url = srv.add("/a", BODY, mode="status_then_ok", status=503, times=2, retry_after="0")
    fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert len(srv.requests("/a")) == 3
    assert_cache_clean(tmp_path, {HEX})


def test_retry_after_is_waited_for(srv, tmp_path):
    url = srv.add("/a", BODY, mode="status_then_ok", status=503, times=1, retry_after="1")
    started = time.monotonic()
    fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert time.monotonic() - started >= 0.9  # honoured, not a speed target
    assert_cache_clean(tmp_path, {HEX})


def test_500_always_gives_up_after_retries(srv, tmp_path):
    url = srv.add("/a", BODY, mode="status", status=500)
    with pytest.raises(FetchError, match=r"HTTP 500 .*after 2 retries") as err:
        fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert "\n" not in str(err.value)
    assert len(srv.requests("/a")) == 3
    assert_cache_clean(tmp_path)


def test_404_is_not_retried(srv, tmp_path):
    url = srv.add("/a", BODY, mode="status", status=404)
    with pytest.raises(FetchError, match=r"cannot download a: .*/a: HTTP 404 Not Found"):
        fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert len(srv.requests("/a")) == 1
    assert_cache_clean(tmp_path)


def test_redirect_loop_is_bounded(srv, tmp_path):
    url = srv.add("/loop", BODY, mode="redirect", target="/loop")
    with pytest.raises(FetchError, match=r"more than 5 redirects"):
        fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert len(srv.requests("/loop")) == 6
    assert_cache_clean(tmp_path)


def test_redirect_is_followed(srv, tmp_path):
    srv.add("/real", BODY)
    url = srv.add("/moved", BODY, mode="redirect", target="/real")
    fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert_cache_clean(tmp_path, {HEX})


def test_wrong_bytes_one_line_with_url_and_both_hashes(srv, tmp_path):
    other = b"not the bytes you pinned\n"
    url = srv.add("/a", BODY, mode="wrong", other=other)
    with pytest.raises(ChecksumError) as err:
        fetcher(tmp_path).fetch(HEX, [url], name="a")
    msg = str(err.value)
    assert url in msg and HEX in msg and hashlib.sha256(other).hexdigest() in msg and "\n" not in msg
    assert err.value.exit_code == 5
    assert_cache_clean(tmp_path)
    assert not list((tmp_path / "partial").iterdir())


def test_stall_after_headers_hits_the_read_timeout(srv, tmp_path):
    url = srv.add("/a", BODY, mode="stall", send=1000, seconds=30)
    with pytest.raises(FetchError, match=r"no data for 0.5s \(read timeout\)"):
        fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert_cache_clean(tmp_path)


def test_content_length_larger_than_body(srv, tmp_path):
    url = srv.add("/a", BODY, mode="short", extra=100)
    with pytest.raises(FetchError, match=rf"connection closed before the end of the body \({len(BODY)} bytes read, 100 more expected\)"):
        fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert_cache_clean(tmp_path)


def test_truncation_without_content_length_is_caught_by_the_hash(srv, tmp_path):
    url = srv.add("/a", BODY, mode="nolength", cut=5000)
    with pytest.raises(ChecksumError, match=r"checksum mismatch") as err:
        fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert hashlib.sha256(BODY[:5000]).hexdigest() in str(err.value)
    assert_cache_clean(tmp_path)


def test_connection_reset_mid_body(srv, tmp_path):
    url = srv.add("/a", BODY, mode="reset", cut=10_000, validators=False)
    with pytest.raises(FetchError, match=r"connection reset by the server; gave up after 3 tries"):
        fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert_cache_clean(tmp_path)


def test_connection_reset_before_response(srv, tmp_path):
    url = srv.add("/a", BODY, mode="reset_before")
    with pytest.raises(FetchError, match=r"connection reset by the server"):
        fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert len(srv.requests("/a")) == 3  # 1 + 2 retries by urllib3
    assert_cache_clean(tmp_path)


def test_cut_is_resumed_with_range_and_if_range(srv, tmp_path):
    url = srv.add("/a", BODY, mode="cut_once", cut=300_000)
    fetcher(tmp_path).fetch(HEX, [url], name="a")
    reqs = srv.requests("/a")
    assert len(reqs) == 2
    assert reqs[1][1]["Range"] == "bytes=300000-"
    assert reqs[1][1]["If-Range"] == srv.routes["/a"].etag
    assert_cache_clean(tmp_path, {HEX})


def test_partial_survives_a_failed_run_and_is_resumed_next_run(srv, tmp_path):
    url = srv.add("/a", BODY, mode="cut_once", cut=200_000, times=10)
    policy = FetchPolicy(**{**FAST.__dict__, "resume_attempts": 0})
    with pytest.raises(FetchError, match="partial file is kept"):
        fetcher(tmp_path, policy=policy).fetch(HEX, [url], name="a")
    part = tmp_path / "partial" / f"{HEX}.part"
    assert part.stat().st_size == 200_000
    assert_cache_clean(tmp_path)
    srv.routes["/a"].mode = "ok"
    fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert srv.requests("/a")[-1][1]["Range"] == "bytes=200000-"
    assert not part.exists()
    assert_cache_clean(tmp_path, {HEX})


def test_changed_file_at_same_url_restarts_instead_of_splicing(srv, tmp_path):
    # A partial from an old version of the URL: If-Range no longer matches, the server sends 200.
    part = tmp_path / "partial" / f"{HEX}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)
    url = srv.add("/a", BODY)
    part.with_name(part.name + ".json").write_text(json.dumps({"url": url, "validator": '"stale"'}))
    fetcher(tmp_path).fetch(HEX, [url], name="a")
    assert srv.requests("/a")[0][1]["If-Range"] == '"stale"'
    assert_cache_clean(tmp_path, {HEX})


def test_corrupt_partial_is_retried_from_zero(srv, tmp_path):
    url = srv.add("/a", BODY)
    part = tmp_path / "partial" / f"{HEX}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage!" * 1000)  # same length prefix, wrong bytes
    part.with_name(part.name + ".json").write_text(json.dumps({"url": url, "validator": srv.routes["/a"].etag}))
    fetcher(tmp_path).fetch(HEX, [url], name="a")
    ranges = [h.get("Range") for _, h in srv.requests("/a")]
    assert ranges == ["bytes=8000-", None]
    assert_cache_clean(tmp_path, {HEX})


SIGKILL_CHILD = textwrap.dedent("""
    import io, sys
    from pathlib import Path
    from tflite_forge.fetch import Fetcher
    from tflite_forge.progress import PlainProgress
    Fetcher(Path(sys.argv[1]), progress=PlainProgress(stream=io.StringIO())).fetch(sys.argv[2], [sys.argv[3]], name="a")
""")


def test_sigkill_mid_download_then_rerun_resumes(srv, tmp_path):
    url = srv.add("/a", BODY, mode="slow", chunk=16_384, delay=0.01)
    child = subprocess.Popen([sys.executable, "-c", SIGKILL_CHILD, str(tmp_path), HEX, url], cwd=REPO)
    part = tmp_path / "partial" / f"{HEX}.part"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 100_000):
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    have = part.stat().st_size
    assert 100_000 <= have < len(BODY)
    assert_cache_clean(tmp_path)
    srv.routes["/a"].mode = "ok"
    fetcher(tmp_path).fetch(HEX, [url], name="a")
    last = srv.requests("/a")[-1][1]
    assert last["Range"].startswith("bytes=") and int(last["Range"][6:-1]) >= 100_000
    assert_cache_clean(tmp_path, {HEX})


def test_two_processes_fetching_one_archive_download_it_once(srv, tmp_path):
    url = srv.add("/a", BODY, mode="slow", chunk=65_536, delay=0.02)
    procs = [subprocess.Popen([sys.executable, "-c", SIGKILL_CHILD, str(tmp_path), HEX, url], cwd=REPO)
             for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(srv.requests("/a")) == 1  # the second process waited, then found it cached
    assert_cache_clean(tmp_path, {HEX})
    assert not list((tmp_path / "partial").iterdir())


# ---------------------------------------------------------------- sources: mirrors, rewrites, offline

def test_mirror_is_tried_before_upstream(srv, tmp_path):
    srv.add(f"/m/sha256/{HEX}", BODY)
    upstream = srv.add("/upstream", BODY)
    fetcher(tmp_path, mirrors=[srv.url("/m/")]).fetch(HEX, [upstream], name="a")
    assert srv.requests("/upstream") == []
    assert_cache_clean(tmp_path, {HEX})


def test_missing_in_mirror_falls_back_to_upstream(srv, tmp_path):
    upstream = srv.add("/upstream", BODY)
    fetcher(tmp_path, mirrors=[srv.url("/m")]).fetch(HEX, [upstream], name="a")
    assert len(srv.requests(f"/m/sha256/{HEX}")) == 1
    assert_cache_clean(tmp_path, {HEX})


def test_bad_mirror_bytes_fall_back_to_upstream(srv, tmp_path):
    srv.add(f"/m/sha256/{HEX}", BODY, mode="wrong")
    upstream = srv.add("/upstream", BODY)
    fetcher(tmp_path, mirrors=[srv.url("/m")]).fetch(HEX, [upstream], name="a")
    assert_cache_clean(tmp_path, {HEX})


def test_rewrite_reaches_upstream_through_a_proxy_prefix(srv, tmp_path):
    srv.add("/github.com/o/r/archive/v1.tar.gz", BODY)
    f = fetcher(tmp_path, rewrites=[("https://", srv.base)])
    f.fetch(HEX, ["https://github.com/o/r/archive/v1.tar.gz"], name="a")
    assert_cache_clean(tmp_path, {HEX})


def test_file_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "sha256").mkdir(parents=True)
    (mirror / "sha256" / HEX).write_bytes(BODY)
    fetcher(tmp_path / "cache", mirrors=[mirror.as_uri()]).fetch(HEX, ["https://github.com/never"], name="a")
    assert_cache_clean(tmp_path / "cache", {HEX})


@pytest.fixture
def no_sockets(monkeypatch):
    """A guard: any attempt to connect anywhere fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"socket connect attempted in offline mode: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_offline_uses_file_mirror_and_never_opens_a_socket(tmp_path, no_sockets):
    mirror = tmp_path / "mirror"
    (mirror / "sha256").mkdir(parents=True)
    (mirror / "sha256" / HEX).write_bytes(BODY)
    f = fetcher(tmp_path / "cache", offline=True, mirrors=["http://127.0.0.1:9/", mirror.as_uri()])
    f.fetch(HEX, ["https://github.com/x/y/archive/v1.tar.gz"], name="a")
    assert_cache_clean(tmp_path / "cache", {HEX})


def test_offline_missing_is_one_clear_line(tmp_path, no_sockets):
    f = fetcher(tmp_path, offline=True, mirrors=["http://127.0.0.1:9/"])
    with pytest.raises(OfflineError) as err:
        f.fetch(HEX, ["https://github.com/x/y/archive/v1.tar.gz"], name="tensorflow 2.16.1")
    msg = str(err.value)
    assert "not in the cache" in msg and "--offline" in msg and "--mirror file:///" in msg and "\n" not in msg
    assert_cache_clean(tmp_path)


def test_unreachable_upstream_says_how_to_use_a_mirror(tmp_path):
    port = closed_port()
    f = fetcher(tmp_path, rewrites=[("https://github.com/", f"http://127.0.0.1:{port}/")],
                policy=FetchPolicy(**{**FAST.__dict__, "retries": 0}))
    with pytest.raises(FetchError) as err:
        f.fetch(HEX, ["https://github.com/tensorflow/tensorflow/archive/refs/tags/v2.16.1.tar.gz"], name="tensorflow 2.16.1")
    msg = str(err.value)
    assert "connection refused" in msg and "--mirror URL" in msg and "TFLITE_FORGE_MIRRORS" in msg
    assert "invoke mirror --dest DIR" in msg and "\n" not in msg


def test_verify_replaces_a_tampered_cache_entry(srv, tmp_path):
    url = srv.add("/a", BODY)
    path = fetcher(tmp_path).fetch(HEX, [url], name="a")
    os.chmod(path, 0o644)
    path.write_bytes(b"bit rot")
    fetcher(tmp_path).fetch(HEX, [url], name="a", verify=True)
    assert len(srv.requests("/a")) == 2
    assert_cache_clean(tmp_path, {HEX})


# ---------------------------------------------------------------- mirror export and recipes table

def test_mirror_export_round_trip(srv, tmp_path, capsys):
    url = srv.add("/a", BODY)
    fetcher(tmp_path / "cache").fetch(HEX, [url], name="a")
    settings = Settings(cache_dir=tmp_path / "cache")
    assert run_mirror_export(settings, tmp_path / "out") == 1
    assert (tmp_path / "out" / "sha256" / HEX).read_bytes() == BODY
    assert "--mirror file://" in capsys.readouterr().out
    assert run_mirror_export(settings, tmp_path / "out") == 0  # already there
    assert [p.name for p in (tmp_path / "out" / "sha256").iterdir()] == [HEX]  # no temp files left
    # The export serves a fresh cache, offline.
    fetcher(tmp_path / "cache2", offline=True, mirrors=[(tmp_path / "out").as_uri()]).fetch(HEX, [url], name="a")
    assert_cache_clean(tmp_path / "cache2", {HEX})


def test_recipes_table_reports_fetched_and_locked(tmp_path):
    from tflite_forge.recipe import available_recipes
    recipe = available_recipes()[-1]
    cache = Cache(tmp_path)
    cache.ensure_dirs()
    (cache.blobs / recipe.source.sha256).write_bytes(b"")  # presence is what the table reports
    out = io.StringIO()
    rows = run_recipes(Settings(cache_dir=tmp_path), stream=out)
    assert [r[0] for r in rows] == [r.version for r in available_recipes()]
    row = {r[0]: r for r in rows}[recipe.version]
    assert row[1] == recipe.source.sha256[:12] and row[2] == "yes"
    assert {r[2] for r in rows if r[0] != recipe.version} == {"no"}
    lines = out.getvalue().splitlines()   # not a terminal: the title, then one line per recipe
    assert lines[0] == f"recipes (cache: {tmp_path})"
    assert len(lines) == 1 + len(rows)
    assert f"version={recipe.version} | sha256={recipe.source.sha256[:12]} | fetched=yes | locked=" in out.getvalue()
