"""fsutil: the one folder swap and the one waiting lock."""

import os
import subprocess
import sys
import textwrap

from tflite_forge.fsutil import held_lock, swap_dir


def test_a_swap_leaves_the_new_folder_alone_and_no_aside(tmp_path):
    dest, new = tmp_path / "out", tmp_path / ".staging"
    dest.mkdir()
    (dest / "old.so").write_text("old")
    new.mkdir()
    (new / "new.so").write_text("new")
    stale = tmp_path / f".old-out-{os.getpid()}"        # what a killed run with this pid left
    stale.mkdir()
    (stale / "junk").write_text("x")
    swap_dir(new, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["new.so"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_swap_into_nothing_is_a_rename(tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    swap_dir(new, tmp_path / "dest")
    assert (tmp_path / "dest").is_dir() and not new.exists()


def test_the_lock_says_once_that_it_waits_and_then_gets_it(tmp_path):
    path = tmp_path / "cell.lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from filelock import FileLock
        with FileLock({str(path)!r}):
            print("held", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    said = []

    def on_wait():
        said.append("waiting")
        holder.stdin.write("go\n")      # the other process lets go once we said we wait
        holder.stdin.flush()

    with held_lock(path, on_wait):
        said.append("got it")
    holder.wait(timeout=30)
    assert said == ["waiting", "got it"]
