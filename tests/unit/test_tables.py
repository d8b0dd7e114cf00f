"""tables.py: a rich table on a terminal; off one (a pipe, a file, a CI log) one line per row that is
never folded, with no markup and no box drawing, for every table the tool prints."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from tests.cells import cell_of
from tflite_forge.loopback import serve_directory
from tflite_forge.matrix import Board, CellState
from tflite_forge.miniature import write_release
from tflite_forge.patch_report import render_checks
from tflite_forge.patching import check_recipes
from tflite_forge.recipe import available_recipes
from tflite_forge.tables import Styled, plain_lines, print_table

REPO = Path(__file__).resolve().parents[2]
BOX = re.compile("[\u2500-\u257f]")     # rich's box drawing characters
ANSI = "\x1b["
COLUMNS = ("check", "status", "detail")


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=200, color_system="standard"), out


def plain() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out), out


def test_a_terminal_gets_a_rich_table_with_colour():
    console, out = terminal()
    print_table(console, "tflite-forge doctor", COLUMNS,
                [("cache dir", Styled("ok", "green"), "writable"), ("upstream", Styled("FAIL", "red"), "[12/345] a:smile:")],
                caption="one row per check")
    text = out.getvalue()
    assert text.count("┏") == 1 and "check" in text.splitlines()[2]   # a box, the header row under its top
    assert "\x1b[32mok" in text and "\x1b[31mFAIL" in text          # the status colours, on the terminal only
    assert "[12/345] a:smile:" in text                               # a value is shown as written, never parsed
    assert text.index("tflite-forge doctor") < text.index("cache dir") < text.index("one row per check")


def test_off_a_terminal_one_line_per_row_never_folded():
    console, out = plain()
    long_word = "x" * 300
    rows = [("cache dir", Styled("ok", "green"), long_word), ("upstream", Styled("FAIL", "red"), f"see {long_word} now")]
    print_table(console, "tflite-forge doctor", COLUMNS, rows, caption="one row per check")
    assert out.getvalue().splitlines() == [
        "tflite-forge doctor",
        f"check=cache dir | status=ok | detail={long_word}",
        f"check=upstream | status=FAIL | detail=see {long_word} now",
        "one row per check",
    ]
    assert ANSI not in out.getvalue() and not BOX.search(out.getvalue())


def test_plain_lines_leave_out_empty_cells_and_keep_markup_and_emoji_codes_literal():
    console, out = plain()
    print_table(console, "t", ("a", "b", "c"), [("", "[green]ok[/]", ":smile:"), ("1", "", "")])
    assert out.getvalue().splitlines() == ["t", "b=[green]ok[/] | c=:smile:", "a=1"]


def test_a_line_break_in_a_cell_stays_on_the_row():
    assert plain_lines("files", ("entry", "files"), [("e1", "a/CMakeLists.txt\nb/BUILD\n")]) == [
        "files", "entry=e1 | files=a/CMakeLists.txt, b/BUILD"]


def test_a_stream_that_is_not_a_terminal_gets_lines():
    out = io.StringIO()
    print_table(out, "title", ("k",), [("v",)])
    assert out.getvalue() == "title\nk=v\n"


def test_matrix_board_summary_in_a_log_and_the_live_table_on_a_terminal(tmp_path):
    states = [CellState(cell=cell_of("2.16.1", "armhf"), log=tmp_path / "armhf.log", status="failed", started=1.0, ended=3.5),
              CellState(cell=cell_of("2.16.1", "aarch64"), log=tmp_path / "aarch64.log", status="ok", started=1.0, ended=2.0)]
    states[0].last_line = "[17/900] Building CXX object " + "y" * 200
    out = io.StringIO()
    Board(states, stream=out).summary()
    assert out.getvalue().splitlines() == [
        "matrix summary",
        f"cell=2.16.1/armhf | result=failed | time=2.5s | log / last line={tmp_path / 'armhf.log'}: {states[0].last_line}",
        f"cell=2.16.1/aarch64 | result=ok | time=1.0s | log / last line={tmp_path / 'aarch64.log'}",
    ]
    console, term = terminal()
    console.print(Board(states).table())
    assert BOX.search(term.getvalue()) and "\x1b[31mfailed" in term.getvalue()


def forge(*args: str, stdout, cache: Path, work: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFLITE_FORGE_")}
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):   # rich would treat the pipe as a terminal
        env.pop(name, None)
    env.update(TFLITE_FORGE_CACHE=str(cache), TFLITE_FORGE_WORK_DIR=str(work))
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env=env, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=300)


def test_patches_check_into_a_file_prints_one_line_per_edit(tmp_path):
    release = write_release(tmp_path / "release")  # our own copy: `invoke patch` writes its lock beside the recipe
    cache, work = tmp_path / "cache", tmp_path / "work"
    recipe = f"--recipe={release.recipe_path}"
    with serve_directory(release.www_root) as base:
        # `patch --dry-run` fetches, locks and unpacks the trees into the cache, which --check reads.
        done = forge("patch", "--dry-run", recipe, f"--rewrite=https://={base}", stdout=subprocess.DEVNULL,
                     cache=cache, work=work)
        assert done.returncode == 0, done.stderr
    with open(tmp_path / "check.log", "w") as log:
        done = forge("patches", "--check", recipe, stdout=log, cache=cache, work=work)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "check.log").read_text().splitlines()
    assert lines[0] == "tensorflow-2.16.1  (o3, drop-mfpu-neon, soname)"
    rows = lines[1:]
    assert len(rows) == 5 and all(r.startswith("set=") and r.endswith("status=applies") for r in rows)
    assert ("set=o3 | entry=xnnpack-cmake-o2 | tree=xnnpack | files=CMakeLists.txt | "
            "applies to=all versions; all arches; cmake | expected=1..40 | found=9 | status=applies") in rows
    text = "\n".join(lines)
    assert "tensorflow/tools/toolchains/embedded/arm-linux/cc_config.bzl.tpl" in text   # 66 characters, one piece
    assert not BOX.search(text) and ANSI not in text and "[/" not in text


def test_doctor_piped_prints_a_title_and_one_line_per_check(tmp_path):
    done = forge("doctor", "--offline", stdout=subprocess.PIPE, cache=tmp_path / "cache", work=tmp_path / "work")
    lines = done.stdout.splitlines()   # the exit code depends on this host; the shape does not
    assert lines[0] == "tflite-forge doctor" and len(lines) > 3
    assert all(re.match(r"check=[^|]+ \| status=(ok|warn|FAIL)( \||$)", line) for line in lines[1:]), done.stdout
    assert any(line.startswith(f"check=cache dir | status=ok | detail={tmp_path / 'cache'}") for line in lines)
    assert not BOX.search(done.stdout) and ANSI not in done.stdout


def test_a_recipe_not_fetched_is_one_plain_line(tmp_path):
    recipe = available_recipes()[0]
    out = io.StringIO()
    render_checks(check_recipes(tmp_path, [recipe]), out)
    assert out.getvalue() == (f"{recipe.label}  ({', '.join(recipe.build.patch_sets)}): archive not fetched "
                              f"(run `invoke fetch --version {recipe.version}`)\n")
