"""Hostile and broken input, as issue 10 found it (A1-A4, I1-I4): every case is refused with one
line and the right exit code, nothing is written outside its destination, and where the contract
is "no traceback" the CLI runs as a subprocess, as a user runs it. Loopback servers only."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from tests.ci import ctrl_c_default
from tflite_forge.cache import Cache, sha256_file
from tflite_forge.download import FetchPolicy
from tflite_forge.errors import ConfigError, FetchError, PatchError, UnpackError
from tflite_forge.fetch import Fetcher
from tflite_forge.patching import apply_in_place
from tflite_forge.patchset import load_patch_set
from tflite_forge.progress import PlainProgress
from tflite_forge.unpack import check_archive, remove_unreadable, top_folder, unpack_archive

from .faultserver import FaultServer
from .test_lock import Release
from .test_unpack import _info, _zip_entry, folder, make_tar, make_zip, regular

REPO = Path(__file__).resolve().parents[2]
HEX = "ab" * 32
FAST = FetchPolicy(connect_timeout=2, read_timeout=2, retries=0, backoff_factor=0, resume_attempts=0)


@pytest.fixture
def sandbox(tmp_path):
    """A cache, and beside it an `outside` folder that nothing may ever write into."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched")
    return Cache(tmp_path / "c" / "cache"), tmp_path


def outside_untouched(root: Path) -> None:
    assert sorted(p.name for p in (root / "outside").iterdir()) == ["victim"]
    assert (root / "outside" / "victim").read_text() == "untouched"


def no_tree_left(cache: Cache, hex_: str = HEX) -> None:
    assert not cache.tree(hex_).exists()
    assert not list(cache.trees.glob(".tmp-*")) if cache.trees.is_dir() else True


def sym(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    return _info(name, type=tarfile.SYMTYPE, linkname=target), None


def zsym(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    return _zip_entry(name, stat.S_IFLNK | 0o777), target.encode()


def invoke(*args: str, cache: Path | None = None, timeout: int = 120, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TFLITE_FORGE_")}
    environ.update(TFLITE_FORGE_RETRIES="0", TFLITE_FORGE_CONNECT_TIMEOUT="2", **env)
    if cache is not None:
        environ["TFLITE_FORGE_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess, code: int) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tflite-forge: "), proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    return lines[0]


# ---------------------------------------------------------------- A1: link chains, tar and zip

# Each chain's links look harmless one by one (their text normalises inside the tree); followed
# as the kernel follows them, after the links before (or after) them exist, they leave it.
TAR_CHAINS = {
    # issue 10's chain: sub/b -> ..  is the root; sub/c -> b/../..  is then the root's parent
    "issue-chain": [folder("p"), folder("p/sub"), sym("p/sub/b", ".."), sym("p/sub/c", "b/../.."),
                    regular("p/sub/c/outside/pwned")],
    # the same chain left in the tree for a later step (invoke patch) to write through
    "issue-chain-links-only": [folder("p"), folder("p/sub"), sym("p/sub/b", ".."), sym("p/sub/c", "b/../.."),
                               regular("p/sub/x.h")],
    # a link to a link: d/up is the root, esc -> d/up/.. is above it
    "link-to-link": [folder("p"), folder("p/d"), sym("p/d/up", ".."), sym("p/esc", "d/up/..")],
    # a later link changes where an earlier one ends: a -> b/.. is the root until b -> . exists
    "later-link": [folder("p"), sym("p/a", "b/.."), sym("p/b", ".")],
    # a deep chain of in-tree hops that finally climbs out
    "deep-chain": [folder("p"), folder("p/x"), folder("p/x/y"), sym("p/x/y/l1", "../.."), sym("p/l2", "x/y/l1/..")],
    # a file written through a link into the root's parent
    "write-through": [folder("p"), folder("p/d"), sym("p/d/up", ".."), sym("p/d/upup", "up/.."),
                      regular("p/d/upup/outside/pwned")],
    # the same path twice, once as a link: what it ends up as depends on extraction order
    "replaced-link": [folder("p"), folder("p/inner"), sym("p/l", "inner"), regular("p/l", b"x")],
}


@pytest.mark.filterwarnings("ignore:Duplicate name")   # replaced-link, written as a zip
@pytest.mark.parametrize("case", sorted(TAR_CHAINS))
@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_link_chains_leaving_the_tree_are_refused(sandbox, case, kind):
    cache, root = sandbox
    members = TAR_CHAINS[case]
    path = root / f"{case}.{kind}"
    if kind == "tar.gz":
        make_tar(path, members)
    else:
        entries = []
        for info, data in members:
            if info.issym():
                entries.append(zsym(info.name, info.linkname))
            elif info.isdir():
                entries.append((info.name + "/", b""))
            else:
                entries.append((info.name, data))
        make_zip(path, entries)
    with pytest.raises(UnpackError) as err:
        unpack_archive(path, cache, HEX, "p")
    message = str(err.value)
    assert path.name in message and "refusing this archive" in message and "\n" not in message
    assert "outside the tree" in message or "appears twice" in message or "lands where another" in message
    outside_untouched(root)
    assert not (root / "c" / "outside").exists() and not (root / "c" / "pwned").exists()
    no_tree_left(cache)


def test_in_tree_link_chains_still_unpack(sandbox):
    cache, root = sandbox
    archive = make_tar(root / "ok.tar.gz", [
        folder("p"), folder("p/sub"), regular("p/sub/real.h", b"int x;\n"), sym("p/sub/b", ".."),
        sym("p/alias", "sub/b/sub/real.h"), sym("p/again", "alias"),
        (_info("p/hard.h", type=tarfile.LNKTYPE, linkname="p/again"), None)])   # a hard link via two symlinks
    tree = unpack_archive(archive, cache, HEX, "p")
    assert (tree / "again").read_text() == "int x;\n"
    assert (tree / "hard.h").stat().st_ino == (tree / "sub/real.h").stat().st_ino
    outside_untouched(root)


def test_hard_link_refusal_names_the_member_not_its_target(sandbox):
    cache, root = sandbox
    archive = make_tar(root / "hard.tar.gz", [folder("p"), (_info("p/h", type=tarfile.LNKTYPE, linkname="outside/victim"), None)])
    with pytest.raises(UnpackError, match=r"member 'p/h' \(hard link target 'outside/victim'\) is not under strip_prefix"):
        unpack_archive(archive, cache, HEX, "p")
    dotdot = make_tar(root / "hard2.tar.gz", [folder("p"), (_info("p/h", type=tarfile.LNKTYPE, linkname="p/../outside/victim"), None)])
    with pytest.raises(UnpackError, match=r"member 'p/h' \(hard link target 'p/\.\./outside/victim'\) contains '\.\.'"):
        unpack_archive(dotdot, cache, HEX, "p")
    to_dir = make_tar(root / "hard3.tar.gz", [folder("p"), folder("p/d"), (_info("p/h", type=tarfile.LNKTYPE, linkname="p/d"), None)])
    with pytest.raises(UnpackError, match=r"member 'p/h' is a hard link to 'd', which is not a file earlier"):
        unpack_archive(to_dir, cache, HEX, "p")
    outside_untouched(root)
    no_tree_left(cache)


def test_refusal_names_the_url_and_cache_path_and_gives_a_fix(sandbox):
    cache, root = sandbox
    cache.ensure_dirs()
    src = make_tar(root / "evil.tar.gz", TAR_CHAINS["issue-chain"])
    blob = cache.install(src, sha256_file(src))
    cache.note_origin(blob.name, "https://github.com/evil/proj/archive/v1.tar.gz")
    with pytest.raises(UnpackError) as err:
        unpack_archive(blob, cache, blob.name, "p")
    message = str(err.value)
    assert "https://github.com/evil/proj/archive/v1.tar.gz" in message and str(blob) in message
    assert "member 'p/sub/c' is a symbolic link to 'b/../..'" in message
    assert "check its URL and sha256 pin" in message
    assert cache.has(blob.name)    # readable bytes matching their pin stay; only unreadable ones go


def _working_copy_with_a_link_out(root: Path) -> Path:
    tree = root / "work" / "tensorflow"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "BUILD").write_text('COPTS = ["-mfpu=neon"]\n')
    os.symlink(os.path.relpath(root / "outside", tree), tree / "escape")   # a link no safe archive makes
    (root / "outside" / "BUILD").write_text('COPTS = ["-mfpu=neon"]\n')
    return tree


def test_patch_step_never_follows_a_link_out_of_the_working_copy(tmp_path):
    (tmp_path / "outside").mkdir()
    tree = _working_copy_with_a_link_out(tmp_path)
    set_path = tmp_path / "sets" / "neon.toml"
    set_path.parent.mkdir()
    for files in ('["escape/BUILD"]', '["escape/*"]'):
        set_path.write_text(f"""
[set]
kind = "portability"
description = "drop neon"

[[edit]]
id = "drop"
description = "remove -mfpu=neon"
upstream = "N/A test"
tree = "tensorflow"
files = {files}
pattern = '"-mfpu=neon"'
replacement = ''
count = 1
""")
        with pytest.raises(PatchError, match=r"tensorflow/escape/BUILD: leads outside the tensorflow tree"):
            apply_in_place({"tensorflow": tree}, [load_patch_set(set_path)], version="2.16.1")
        assert (tmp_path / "outside" / "BUILD").read_text() == 'COPTS = ["-mfpu=neon"]\n'
        assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["BUILD"]


# ---------------------------------------------------------------- A2: truncated and corrupt archives

def _good_tar(root: Path) -> Path:
    data = os.urandom(256 << 10)   # incompressible, so a cut lands inside a member's data
    return make_tar(root / "good.tar.gz", [folder("p"), regular("p/a.bin", data), regular("p/LICENSE", b"MIT\n")])


def _good_zip(root: Path) -> Path:
    path = root / "good.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("p/", b"")
        zf.writestr("p/a.bin", os.urandom(64 << 10))
    return path


def _truncated(path: Path, dest: Path) -> Path:
    dest.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    return dest


def _corrupt_zip(path: Path, dest: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF      # inside a stored member: the CRC no longer matches
    dest.write_bytes(bytes(data))
    return dest


BROKEN = {
    "truncated.tar.gz": lambda root: _truncated(_good_tar(root), root / "truncated.tar.gz"),
    "truncated.zip": lambda root: _truncated(_good_zip(root), root / "truncated.zip"),
    "corrupt.zip": lambda root: _corrupt_zip(_good_zip(root), root / "corrupt.zip"),
    "html.tar.gz": lambda root: (root / "html.tar.gz").write_bytes(b"<html>rate limited</html>") and root / "html.tar.gz",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_cached_archive_is_one_error_and_leaves_the_cache(sandbox, case):
    cache, root = sandbox
    cache.ensure_dirs()
    src = BROKEN[case](root)
    sha = sha256_file(src)
    blob = cache.install(src, sha)
    cache.note_origin(sha, f"https://example.org/{case}")
    with pytest.raises(UnpackError) as err:
        unpack_archive(blob, cache, sha, "p")
    message = str(err.value)
    assert f"https://example.org/{case}" in message and str(blob) in message and "\n" not in message
    assert "not a readable tar or zip archive" in message and "removed it from the cache" in message
    assert not cache.has(sha) and cache.origin(sha) is None
    no_tree_left(cache, sha)
    outside_untouched(root)


def test_a_broken_file_that_is_not_this_caches_entry_is_never_deleted(sandbox):
    cache, root = sandbox
    src = BROKEN["truncated.tar.gz"](root)
    sha = sha256_file(src)
    elsewhere = root / "mirror" / "sha256" / sha      # laid out like a cache entry, but a mirror's file
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_bytes(src.read_bytes())
    with pytest.raises(UnpackError, match="not a readable tar or zip archive"):
        unpack_archive(elsewhere, cache, sha, "p")
    assert elsewhere.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("case", ["truncated.tar.gz", "truncated.zip", "html.tar.gz"])
def test_top_folder_of_a_broken_archive_is_an_unpack_error_not_a_traceback(sandbox, case):
    cache, root = sandbox
    cache.ensure_dirs()
    src = BROKEN[case](root)
    blob = cache.install(src, sha256_file(src))
    with pytest.raises(UnpackError, match="not a readable tar or zip archive"):
        top_folder(blob)   # what `invoke lock` calls for every dependency
    assert not blob.exists()


def test_check_archive_reads_every_member(sandbox):
    _, root = sandbox
    assert check_archive(_good_tar(root)) == "p"
    assert check_archive(_good_zip(root)) == "p"
    with pytest.raises(UnpackError, match="bad CRC-32|not a readable"):
        check_archive(BROKEN["corrupt.zip"](root))
    two_tops = make_tar(root / "two.tar.gz", [regular("a/x"), regular("b/y")])
    with pytest.raises(UnpackError, match="has no single top folder"):
        check_archive(two_tops, origin="https://example.org/two.tar.gz")


def test_an_unpinned_truncated_download_is_never_cached(tmp_path):
    data = _truncated(_good_tar(tmp_path), tmp_path / "t.tar.gz").read_bytes()
    with FaultServer() as srv:
        url = srv.add("/github.com/o/dep/archive/1.tar.gz", data)
        fetcher = Fetcher(tmp_path / "cache", policy=FAST, progress=PlainProgress(stream=io.StringIO()))
        with pytest.raises(UnpackError) as err:
            fetcher.fetch_unpinned([url], name="dep")
    assert url in str(err.value) and "nothing was cached" in str(err.value)
    assert Cache(tmp_path / "cache").entries() == []
    assert list((tmp_path / "cache" / "partial").iterdir()) == []


def test_cli_lock_of_a_truncated_unpinned_dependency_is_exit_7(tmp_path):
    rel = Release(tmp_path)
    xnn = rel.www / "github.com/google/XNNPACK/archive/5555.tar.gz"
    xnn.write_bytes(xnn.read_bytes()[:-40])
    with FaultServer(rel.www) as srv:
        done = invoke("lock", f"--recipe={rel.recipe_path}", f"--rewrite=https://={srv.base}", cache=tmp_path / "c")
    line = one_line(done, UnpackError.exit_code)
    assert "XNNPACK/archive/5555.tar.gz" in line and "not a readable tar or zip archive" in line
    assert all(sha256_file(b) != sha256_file(xnn) for b in Cache(tmp_path / "c").entries())
    assert not rel.recipe_path.with_name(rel.recipe_path.name + ".lock").exists()


def test_cli_fetch_of_a_pinned_truncated_archive_is_exit_7_and_leaves_the_cache(tmp_path):
    broken = _truncated(_good_tar(tmp_path), tmp_path / "tf.tar.gz")
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[source]\nname = "tensorflow"\nversion = "9.9.8"\nurls = ["{broken.as_uri()}"]\n'
                      f'sha256 = "{sha256_file(broken)}"\nstrip_prefix = "p"\n')
    done = invoke("fetch", f"--recipe={recipe}", cache=tmp_path / "c")   # no lock yet: fetch locks, so unpacks
    line = one_line(done, UnpackError.exit_code)
    assert broken.as_uri() in line and "removed it from the cache" in line
    assert Cache(tmp_path / "c").entries() == []


def test_cli_clean_downloads_removes_only_unreadable_entries(tmp_path):
    cache = Cache(tmp_path / "c")
    cache.ensure_dirs()
    good = cache.install(_good_tar(tmp_path), sha256_file(tmp_path / "good.tar.gz"))
    bad_src = BROKEN["truncated.tar.gz"](tmp_path)
    bad = cache.install(bad_src, sha256_file(bad_src))
    done = invoke("clean", "--downloads", f"--cache-dir={cache.root}")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert good.is_file() and not bad.exists()
    assert f"removed {bad.name[:12]}" in done.stdout and "1 unreadable removed" in done.stdout
    assert remove_unreadable(cache, say=lambda _: None) == []   # idempotent


# ---------------------------------------------------------------- A3: resume keeps every byte

@pytest.mark.parametrize("cut", [6_000, 700_000])
def test_a_reset_below_one_read_keeps_every_byte_received(tmp_path, cut):
    body = os.urandom(1_500_000)
    with FaultServer() as srv:
        url = srv.add("/a", body, mode="cut_once", cut=cut)
        fetcher = Fetcher(tmp_path, policy=FAST, progress=PlainProgress(stream=io.StringIO()))
        with pytest.raises(FetchError) as err:
            fetcher.fetch(sha256_file_bytes(body), [url], name="a")
        part = tmp_path / "partial" / f"{sha256_file_bytes(body)}.part"
        assert part.stat().st_size == cut
        assert "partial file is kept" in str(err.value) and f"{cut / 1024:.1f} KiB" in str(err.value)
        srv.routes["/a"].mode = "ok"
        got = Fetcher(tmp_path, policy=FAST, progress=PlainProgress(stream=io.StringIO())).fetch(
            sha256_file_bytes(body), [url], name="a")
        assert srv.requests("/a")[-1][1]["Range"] == f"bytes={cut}-"
    assert got.read_bytes() == body


def test_an_in_run_resume_says_how_much_it_kept(tmp_path):
    body = os.urandom(300_000)
    log = io.StringIO()
    with FaultServer() as srv:
        url = srv.add("/a", body, mode="cut_once", cut=6_000)
        policy = FetchPolicy(connect_timeout=2, read_timeout=2, retries=0, backoff_factor=0)
        got = Fetcher(tmp_path, policy=policy, progress=PlainProgress(stream=log)).fetch(
            sha256_file_bytes(body), [url], name="a")
        assert srv.requests("/a")[-1][1]["Range"] == "bytes=6000-"
    assert got.read_bytes() == body
    assert "5.9 KiB kept, resuming" in log.getvalue()


def test_tcp_reset_mid_body_keeps_what_arrived(tmp_path):
    body = os.urandom(200_000)
    with FaultServer() as srv:
        url = srv.add("/a", body, mode="reset", cut=6_000)
        with pytest.raises(FetchError, match="partial file is kept"):
            Fetcher(tmp_path, policy=FAST, progress=PlainProgress(stream=io.StringIO())).fetch(
                sha256_file_bytes(body), [url], name="a")
    part = tmp_path / "partial" / f"{sha256_file_bytes(body)}.part"
    assert part.read_bytes() == body[:6_000]


def test_without_validators_the_message_says_nothing_was_kept(tmp_path):
    body = os.urandom(100_000)
    with FaultServer() as srv:
        url = srv.add("/a", body, mode="cut_once", cut=5_000, validators=False)
        with pytest.raises(FetchError, match=r"were not kept: the server sends no strong ETag.*rerun to try again"):
            Fetcher(tmp_path, policy=FAST, progress=PlainProgress(stream=io.StringIO())).fetch(
                sha256_file_bytes(body), [url], name="a")
    assert list((tmp_path / "partial").iterdir()) == []


def sha256_file_bytes(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- I1-I3: bad input, one line each

def test_i1_cache_dir_that_is_a_file_or_below_one(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for cache_dir in (afile, afile / "below"):
        done = invoke("fetch", "--version", "2.16.1", "--offline", f"--cache-dir={cache_dir}")
        line = one_line(done, ConfigError.exit_code)
        assert str(afile) in line and "is a file" in line
    assert afile.read_text() == "x"


@pytest.mark.parametrize("var", ["TFLITE_FORGE_READ_TIMEOUT", "TFLITE_FORGE_CONNECT_TIMEOUT"])
@pytest.mark.parametrize("value", ["0", "inf", "nan", "1e400", "-1", "soon"])
def test_i2_timeouts_must_be_finite_and_positive(var, value):
    with pytest.raises(ConfigError, match=rf"{var}='{value}': expected a number of seconds above 0"):
        FetchPolicy.from_env({var: value})


def test_i2_through_the_cli(tmp_path):
    for value in ("inf", "0"):
        done = invoke("fetch", "--version", "2.16.1", cache=tmp_path / "c", TFLITE_FORGE_READ_TIMEOUT=value)
        assert "expected a number of seconds" in one_line(done, ConfigError.exit_code)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("argv, code, needle", [
    (["--mirror", "http://"], 2, "no host name"),
    (["--mirror", "http://mirror.example:99999/"], 2, "Port out of range"),
    (["--mirror", "file://relative/mirror"], 2, "'relative' would be a host name"),
    (["--mirror", "file:///nonexistent-forge-mirror"], 2, "is not a folder"),
    (["--arch", "sparc"], 2, "unknown architecture"),
    (["--jobs", "0"], 2, "positive whole number"),
])
def test_i3_bad_options_are_one_line(tmp_path, argv, code, needle):
    done = invoke("fetch", "--version", "2.16.1", "--offline", *argv, cache=tmp_path / "c")
    assert needle in one_line(done, code)
    assert not (tmp_path / "c" / "sha256").exists()


def test_i3_fetch_with_a_valid_arch_says_it_is_ignored(tmp_path):
    done = invoke("fetch", "--version", "2.16.1", "--offline", "--arch", "aarch64", cache=tmp_path / "c")
    assert "--arch aarch64 is ignored: fetch" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("edit, needle", [
    (lambda t: t.replace("https://github.com", "http://[::1"), "not a valid URL (Invalid IPv6 URL)"),
    (lambda t: t.replace("https://github.com", "https://github.com:99999"), "Port out of range"),
    (lambda t: t.replace("[build]\n", '[build]\nlock = "/etc/passwd"\n'), "[build].lock: expected a relative path"),
    (lambda t: t.replace("[build]\n", '[build]\nlock = "passwd"\n'), "expected a .lock file"),
])
def test_i3_bad_recipes_fail_validation(tmp_path, edit, needle):
    recipe = tmp_path / "r.toml"
    recipe.write_text(edit((REPO / "recipes" / "tensorflow-2.16.1.toml").read_text()))
    done = invoke("fetch", f"--recipe={recipe}", cache=tmp_path / "c")
    assert needle in one_line(done, 3)


def test_i3_sigint_says_truthfully_what_was_kept(tmp_path):
    body = os.urandom(4 << 20)
    recipe = tmp_path / "r.toml"
    recipe.write_text('[source]\nname = "tensorflow"\nversion = "9.9.7"\n'
                      'urls = ["https://github.com/x/tensorflow/archive/v9.9.7.tar.gz"]\n'
                      f'sha256 = "{sha256_file_bytes(body)}"\nstrip_prefix = "p"\n')
    part = tmp_path / "c" / "partial" / f"{sha256_file_bytes(body)}.part"
    with FaultServer() as srv:
        srv.add("/github.com/x/tensorflow/archive/v9.9.7.tar.gz", body, mode="slow", chunk=16384, delay=0.01)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TFLITE_FORGE_")}
        environ.update(TFLITE_FORGE_CACHE=str(tmp_path / "c"))
        proc = subprocess.Popen([sys.executable, "-m", "invoke", "fetch", f"--recipe={recipe}",
                                 f"--rewrite=https://={srv.base}"], cwd=REPO, env=environ,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size > 100_000) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    line, = [line for line in err.splitlines() if line.strip()]
    kept = part.stat().st_size
    assert 100_000 <= kept < len(body)
    assert "partial file is kept" in line and f"{kept / 1024:.1f} KiB" in line and str(part) in line
    assert Cache(tmp_path / "c").entries() == []


# ---------------------------------------------------------------- I4: --cache-dir along a chain

def test_i4_cache_dir_is_shared_along_a_real_chain(tmp_path):
    rel = Release(tmp_path)
    chosen, default = tmp_path / "chosen-cache", tmp_path / "xdg"
    with FaultServer(rel.www) as srv:
        done = invoke("fetch", "lock", f"--recipe={rel.recipe_path}", f"--rewrite=https://={srv.base}",
                      f"--cache-dir={chosen}", XDG_CACHE_HOME=str(default))
    assert done.returncode == 0, done.stderr
    assert len(Cache(chosen).entries()) == 5
    assert not default.exists()   # before issue 10, fetch downloaded everything into the default cache
