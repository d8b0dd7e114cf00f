"""Progress off a terminal (a pipe, a CI log): periodic plain lines, never a bar or a carriage return.
Downloads (progress.PlainProgress) say start, each tenth (or step of bytes) and end; builds (build_run._Progress)
name each step and each tenth of ninja's edges."""

from __future__ import annotations

import hashlib
import io
import os
import re

from tflite_forge.build_run import _Progress
from tflite_forge.fetch import Fetcher
from tflite_forge.progress import PlainProgress


def test_a_download_off_a_terminal_prints_start_tenths_and_end():
    log = io.StringIO()
    progress = PlainProgress(stream=log, min_step=1)
    progress.start("dep", 1000)
    for _ in range(100):
        progress.advance(10)
    progress.finish(True)
    lines = log.getvalue().splitlines()
    assert lines[0] == "fetch: downloading dep (1000 B)"
    assert lines[1:-1] == [f"fetch: dep: {n} B of 1000 B ({n // 10}%)" for n in range(100, 1000, 100)]
    assert re.fullmatch(r"fetch: dep: 1000 B in \d+\.\ds", lines[-1])
    assert "\r" not in log.getvalue()


def test_a_small_download_says_start_and_end_only_and_an_unknown_size_counts_steps():
    log = io.StringIO()
    progress = PlainProgress(stream=log, min_step=4096)
    progress.start("small", 3000)
    progress.advance(3000)
    progress.finish(True)
    progress.start("unsized", None)
    for _ in range(10):
        progress.advance(1024)
    progress.finish(True)
    lines = log.getvalue().splitlines()
    assert lines[0] == "fetch: downloading small (2.9 KiB)" and lines[1].startswith("fetch: small: 2.9 KiB in ")
    assert lines[2:-1] == ["fetch: downloading unsized", "fetch: unsized: 4.0 KiB", "fetch: unsized: 8.0 KiB"]


def test_a_real_file_fetch_logs_each_mebibyte(tmp_path):
    body = os.urandom(8 << 20)                     # eight of the downloader's 1 MiB chunks
    (tmp_path / "a.tar.gz").write_bytes(body)
    log = io.StringIO()
    url = (tmp_path / "a.tar.gz").as_uri()
    Fetcher(tmp_path / "cache", progress=PlainProgress(stream=log, min_step=1 << 20)).fetch(
        hashlib.sha256(body).hexdigest(), [url], name="a")
    middle = [l for l in log.getvalue().splitlines() if " of 8.0 MiB " in l]
    assert middle == [f"fetch: a from {url}: {n}.0 MiB of 8.0 MiB ({n * 100 // 8}%)" for n in range(1, 8)]


def test_build_steps_off_a_terminal_print_every_tenth_of_ninja():
    log = io.StringIO()
    with _Progress("2.16.1 aarch64", stream=log) as progress:
        progress.step("configure")
        progress.line("-- Configuring done [not ninja]")
        progress.step("build")
        for n in range(1, 201):
            progress.line(f"[{n}/200] Building CXX object k{n}.o")
        progress.done()
    lines = log.getvalue().splitlines()
    assert lines[:2] == ["tflite-forge: 2.16.1 aarch64: configure", "tflite-forge: 2.16.1 aarch64: build"]
    assert lines[2:] == [f"tflite-forge: 2.16.1 aarch64: build {n}/200 ({n // 2}%)" for n in range(20, 201, 20)]
    assert "\r" not in log.getvalue()


def test_a_nested_ninja_does_not_move_the_build_backwards():
    """The real shape of a TFLite build log: ExternalProject's flatc build prints its own [n/2]."""
    log = io.StringIO()
    with _Progress("2.16.1 x86_64", stream=log) as progress:
        progress.step("build")
        for n in range(1, 23):
            progress.line(f"[{n}/31] Building C object o{n}.o")
        progress.line("[1/2] Building C object CMakeFiles/flatc.dir/src/flatc.c.o")
        progress.line("[2/2] Linking C executable flatc")
        for n in range(23, 32):
            progress.line(f"[{n}/31] Building CXX object o{n}.o")
    counts = re.findall(r"build (\d+)/(\d+) \(", log.getvalue())
    assert [int(d) for d, _ in counts] == [4, 7, 10, 13, 16, 19, 22, 25, 28, 31]
    assert {t for _, t in counts} == {"31"}

