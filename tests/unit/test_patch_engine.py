"""The patch engine: drift, atomicity, idempotence, applicability, globs, already-upstream,
unified diffs, dry-run and --check. Real files in tmp folders; no network, no engine."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from tflite_forge.errors import PatchError
from tflite_forge.difftools import apply_hunks, parse_unified_diff
from tflite_forge.patching import apply_in_place, check_recipe, evaluate, plan_diff, prepare_sources, unified_diff
from tflite_forge.patchset import load_patch_set
from tflite_forge.recipe import parse_recipe
from tflite_forge.settings import Settings

SHA_TF = "a" * 64
SHA_DEP = "b" * 64


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mode, keyed by relative path (dirs included, so new files show)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = (p.read_bytes() if p.is_file() else b"<dir>", p.stat().st_mode)
    return out


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def write_set(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(body))
    return path


TF_FILES = {
    "flags/BUILD": 'FLAGS = [\n    "-O3",\n    "-mfpu=neon",\n]\nOTHER = [\n    "-mfpu=neon",\n]\n',
    "cmake/CMakeLists.txt": "add_library(core SHARED core.cc)\n",
    "docs/a.txt": "level -O2\n",
    "docs/b.txt": "level -O2 and -O2\n",
    "docs/c.md": "level -O2\n",
    "untouched.c": "int main(void) { return 0; }\n",
}
DEP_FILES = {"CMakeLists.txt": 'OPTS("$<$<NOT:$<CONFIG:Debug>>:-O2>")\nOPTS("$<$<NOT:$<CONFIG:Debug>>:-Os>")\n'}

NEON_SET = """
    [set]
    kind = "portability"
    description = "drop neon"

    [[edit]]
    id = "drop"
    description = "remove -mfpu=neon lines"
    upstream = "https://github.com/tensorflow/tensorflow/issues/17001"
    tree = "tensorflow"
    files = ["flags/BUILD"]
    pattern = '^[ \\t]*"-mfpu=neon",\\n'
    replacement = ''
    count = 2
    arches = ["aarch64"]
"""

O3_SET = """
    [set]
    kind = "tuning"
    description = "o3"

    [[edit]]
    id = "dep-o3"
    description = "raise"
    upstream = "N/A tuning"
    tree = "dep"
    files = ["CMakeLists.txt"]
    pattern = '(\\$<\\$<NOT:\\$<CONFIG:Debug>>:)-O2>'
    replacement = '\\1-O3>'
    applied = ':-O3>'
    min = 1
    max = 5
    backends = ["cmake"]
"""


@pytest.fixture
def project(tmp_path):
    """A cache with a TensorFlow tree and one locked dependency, a recipe, and its patch sets."""
    cache = tmp_path / "cache"
    tf = write_tree(cache / "trees" / SHA_TF, TF_FILES)
    dep = write_tree(cache / "trees" / SHA_DEP, DEP_FILES)
    recipes = tmp_path / "recipes"
    patches = recipes / "patches"
    write_set(patches, "neon", NEON_SET)
    write_set(patches, "o3", O3_SET)

    def make(sets=("neon", "o3")):
        recipe_path = recipes / "tensorflow-2.16.1.toml"
        data = {"source": {"name": "tensorflow", "version": "2.16.1",
                           "urls": ["https://example.invalid/v2.16.1.tar.gz"], "sha256": SHA_TF,
                           "strip_prefix": "tensorflow-2.16.1"},
                "build": {"patch_sets": list(sets)}}
        recipe = parse_recipe(recipe_path, data)
        locked = SimpleNamespace(dependency=SimpleNamespace(name="dep", sha256=SHA_DEP), tree=dep)
        return SimpleNamespace(recipe=recipe, tensorflow=tf, dependencies={"dep": locked})

    settings = Settings(cache_dir=cache, work_dir=tmp_path / "work")
    return SimpleNamespace(tmp=tmp_path, cache=cache, tf=tf, dep=dep, patches=patches, make=make, settings=settings)


def test_prepare_applies_sets_to_working_copies_and_never_the_cache(project):
    before = snapshot(project.cache)
    prepared = prepare_sources(project.settings, project.make(), "arm64")
    assert snapshot(project.cache) == before
    assert prepared.root == project.tmp / "work" / "src" / "tensorflow-2.16.1-aarch64"
    assert "-mfpu=neon" not in (prepared.tensorflow / "flags/BUILD").read_text()
    assert '"-O3",' in (prepared.tensorflow / "flags/BUILD").read_text()
    dep_text = (prepared.dependencies["dep"] / "CMakeLists.txt").read_text()
    assert ":-O3>" in dep_text and ":-O2>" not in dep_text and ":-Os>" in dep_text
    assert (prepared.tensorflow / "untouched.c").read_text() == TF_FILES["untouched.c"]
    assert [(r.entry_id, r.status, r.found) for r in prepared.results] == [("drop", "applies", 2), ("dep-o3", "applies", 1)]
    assert [n for n, _ in prepared.sets] == ["neon", "o3"]
    assert not prepared.reused


def test_armhf_keeps_neon_flags(project):
    prepared = prepare_sources(project.settings, project.make(), "armv7l")
    assert (prepared.tensorflow / "flags/BUILD").read_text() == TF_FILES["flags/BUILD"]
    assert prepared.results[0].status == "n/a" and "aarch64" in prepared.results[0].detail


def test_second_run_is_a_no_op(project):
    first = prepare_sources(project.settings, project.make(), "aarch64")
    snap = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in first.root.rglob("*") if p.is_file()}
    second = prepare_sources(project.settings, project.make(), "aarch64")
    assert second.reused
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in second.root.rglob("*") if p.is_file()} == snap


def test_changed_patch_set_reapplies_on_a_fresh_copy(project):
    first = prepare_sources(project.settings, project.make(), "aarch64")
    stray = first.tensorflow / "untouched.c"
    stray.write_text("edited by hand\n")          # not a patched file: only a fresh copy undoes it
    write_set(project.patches, "o3", O3_SET.replace("max = 5", "max = 6"))
    second = prepare_sources(project.settings, project.make(), "aarch64")
    assert not second.reused
    assert stray.read_text() == TF_FILES["untouched.c"]


def test_tampered_patched_file_is_detected_by_its_hash(project):
    first = prepare_sources(project.settings, project.make(), "aarch64")
    (first.tensorflow / "flags/BUILD").write_text("broken\n")
    second = prepare_sources(project.settings, project.make(), "aarch64")
    assert not second.reused
    assert "-mfpu=neon" not in (second.tensorflow / "flags/BUILD").read_text()
    assert "-O3" in (second.tensorflow / "flags/BUILD").read_text()


def test_leftovers_of_a_killed_prepare_are_removed(project):
    first = prepare_sources(project.settings, project.make(), "aarch64")
    root = first.root
    stale = [root / ".tmp-tensorflow-k1ll3d", root / ".old-tensorflow-4242", root / "deps" / ".tmp-deps-dep-x",
             root / "deps" / ".old-dep-4242"]
    for path in stale:
        write_tree(path, {"sub/half.c": "int"})
        (path / "sub").chmod(0o500)                # copies of the read-only cache can be read-only
    stamp_temp = root / ".stamps" / ".tensorflow.json.abc.tmp"
    stamp_temp.write_text("{")
    second = prepare_sources(project.settings, project.make(), "aarch64")
    assert second.reused
    assert [p for p in (*stale, stamp_temp) if p.exists()] == []
    assert sorted(p.name for p in root.iterdir()) == [".lock", ".stamps", "deps", "tensorflow"]


def test_drift_fails_naming_everything_and_leaves_the_working_copy_unchanged(project):
    good = prepare_sources(project.settings, project.make(), "aarch64")
    work_before = snapshot(good.root)
    cache_before = snapshot(project.cache)
    # Upstream moved: one of the two lines is gone from the (cache) tree.
    build = project.tf / "flags/BUILD"
    build.write_text(build.read_text().replace('OTHER = [\n    "-mfpu=neon",\n]\n', ""))
    cache_before = snapshot(project.cache)
    with pytest.raises(PatchError) as err:
        prepare_sources(project.settings, project.make(), "aarch64")
    msg = str(err.value)
    assert "\n" not in msg
    for part in ("'neon'", "'drop'", "tensorflow/flags/BUILD", '"-mfpu=neon"', "expected 2", "found 1",
                 "L3:", "Nothing was changed"):
        assert part in msg, (part, msg)
    assert snapshot(good.root) == work_before
    assert snapshot(project.cache) == cache_before


def test_in_place_is_all_or_nothing_across_edits(tmp_path):
    tree = write_tree(tmp_path / "t", TF_FILES)
    path = write_set(tmp_path / "p", "two", """
        [set]
        kind = "tuning"
        description = "two edits, the second drifts"
        [[edit]]
        id = "first"
        description = "applies"
        upstream = "N/A test"
        tree = "tensorflow"
        files = ["cmake/CMakeLists.txt"]
        pattern = 'SHARED'
        replacement = 'STATIC'
        count = 1
        [[edit]]
        id = "second"
        description = "drifts"
        upstream = "N/A test"
        tree = "tensorflow"
        files = ["docs/a.txt"]
        pattern = '-O9'
        replacement = '-O3'
        count = 1
    """)
    before = snapshot(tree)
    with pytest.raises(PatchError, match="'second'.*found 0.*nearest lines: L1: 'level -O2'"):
        apply_in_place({"tensorflow": tree}, [load_patch_set(path)], version="2.16.1")
    assert snapshot(tree) == before


def test_write_all_fails_before_replacing_anything(tmp_path):
    """A failure on the last of several files (here: its path is a folder) leaves every file as it was
    and no temp or backup file behind; before, the files ahead of it were already replaced."""
    from tflite_forge.patching import _write_all

    tree = write_tree(tmp_path / "t", TF_FILES)
    before = snapshot(tree)
    changes = {tree / "cmake/CMakeLists.txt": "patched\n", tree / "docs/new.txt": "created\n",
               tree / "flags": "a folder cannot take this\n"}
    with pytest.raises(PatchError, match=r"flags: is a folder, a patch cannot replace it"):
        _write_all(changes)
    assert snapshot(tree) == before


def test_write_all_writes_every_file_and_keeps_modes(tmp_path):
    from tflite_forge.patching import _write_all

    tree = write_tree(tmp_path / "t", TF_FILES)
    (tree / "untouched.c").chmod(0o755)
    _write_all({tree / "untouched.c": "int main;\n", tree / "docs/new.txt": "created\n"})
    assert (tree / "untouched.c").read_text() == "int main;\n" and (tree / "untouched.c").stat().st_mode & 0o777 == 0o755
    assert (tree / "docs/new.txt").read_text() == "created\n"
    assert not [p for p in tree.rglob(".*")], "a temp or backup file was left behind"


def test_json_stamp_write_leaves_no_temp_on_error(tmp_path):
    from tflite_forge.fsutil import write_json_atomic

    with pytest.raises(TypeError):   # not serialisable: nothing touches the disk
        write_json_atomic(tmp_path / "s" / "stamp.json", {"bad": object()})
    assert not (tmp_path / "s").exists()
    blocker = tmp_path / "s" / "stamp.json"
    (blocker / "inside").mkdir(parents=True)      # the rename onto a non-empty folder fails
    with pytest.raises(OSError):
        write_json_atomic(blocker, {"ok": 1})
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["stamp.json"]   # the temp file is gone


def test_missing_file_is_drift_not_success(tmp_path):
    tree = write_tree(tmp_path / "t", TF_FILES)
    path = write_set(tmp_path / "p", "gone", """
        [set]
        kind = "tuning"
        description = "file moved upstream"
        [[edit]]
        id = "gone"
        description = "x"
        upstream = "N/A test"
        tree = "tensorflow"
        files = ["not/there.txt"]
        pattern = 'x'
        replacement = 'y'
        count = 1
    """)
    with pytest.raises(PatchError, match="not/there.txt: no such file"):
        apply_in_place({"tensorflow": tree}, [load_patch_set(path)], version="2.16.1")


def test_globs_sum_matches_over_the_files_they_name(tmp_path):
    tree = write_tree(tmp_path / "t", TF_FILES)
    body = """
        [set]
        kind = "tuning"
        description = "glob"
        [[edit]]
        id = "docs"
        description = "x"
        upstream = "N/A test"
        tree = "tensorflow"
        files = ["docs/*.txt"]
        pattern = '-O2'
        replacement = '-O3'
        count = {count}
    """
    with pytest.raises(PatchError, match="expected 2 match.*found 3"):
        apply_in_place({"tensorflow": tree}, [load_patch_set(write_set(tmp_path / "p", "g", body.format(count=2)))],
                       version="2.16.1")
    report = apply_in_place({"tensorflow": tree}, [load_patch_set(write_set(tmp_path / "p", "g", body.format(count=3)))],
                            version="2.16.1")
    assert report.changed == (("tensorflow", "docs/a.txt"), ("tensorflow", "docs/b.txt"))
    assert (tree / "docs/b.txt").read_text() == "level -O3 and -O3\n"
    assert (tree / "docs/c.md").read_text() == "level -O2\n"       # not named by the glob
    empty = body.format(count=1).replace("docs/*.txt", "docs/*.rst")
    with pytest.raises(PatchError, match=r"docs/\*\.rst: no such file"):
        apply_in_place({"tensorflow": tree}, [load_patch_set(write_set(tmp_path / "p", "g", empty))], version="2.16.1")


def test_already_upstream_is_reported_not_failed(project):
    dep_cmake = project.dep / "CMakeLists.txt"
    dep_cmake.write_text(dep_cmake.read_text().replace(":-O2>", ":-O3>"))
    prepared = prepare_sources(project.settings, project.make(), "aarch64")
    status = {r.entry_id: (r.status, r.detail) for r in prepared.results}
    assert status["dep-o3"] == ("upstream", "pattern absent, fixed text present")


def test_version_range_and_skip_reason(tmp_path):
    tree = write_tree(tmp_path / "t", TF_FILES)
    path = write_set(tmp_path / "p", "ranges", """
        [set]
        kind = "tuning"
        description = "ranges"
        [[edit]]
        id = "new-only"
        description = "x"
        upstream = "N/A test"
        tree = "tensorflow"
        files = ["docs/a.txt"]
        pattern = '-O2'
        replacement = '-O3'
        count = 1
        versions = ">=2.17"
        [[edit]]
        id = "skipped"
        description = "x"
        upstream = "N/A test"
        tree = "tensorflow"
        files = ["docs/gone.txt"]
        pattern = '-O2'
        replacement = '-O3'
        count = 1
        skip = [{ versions = "<2.17", reason = "docs/gone.txt appears in 2.17" }]
    """)
    ps = load_patch_set(path)
    _st, res = evaluate({"tensorflow": tree}, [ps], version="2.16.1", arch="aarch64", backend="cmake")
    assert [(r.status, r.detail) for r in res] == [("n/a", "only for TensorFlow >=2.17"),
                                                   ("n/a", "docs/gone.txt appears in 2.17")]
    _st, res = evaluate({"tensorflow": tree}, [ps], version="2.17.0")
    assert [r.status for r in res] == ["applies", "drift"]


def test_replacement_placeholders_take_the_recipe_version(tmp_path):
    tree = write_tree(tmp_path / "t", TF_FILES)
    path = write_set(tmp_path / "p", "so", """
        [set]
        kind = "tuning"
        description = "soname"
        [[edit]]
        id = "so"
        description = "x"
        upstream = "N/A test"
        tree = "tensorflow"
        files = ["cmake/CMakeLists.txt"]
        pattern = '^(add_library\\(core SHARED core\\.cc\\)\\n)'
        replacement = '\\1set_target_properties(core PROPERTIES VERSION @TF_VERSION@ SOVERSION @TF_VERSION_MAJOR@)\\n'
        count = 1
    """)
    apply_in_place({"tensorflow": tree}, [load_patch_set(path)], version="2.17.0")
    assert (tree / "cmake/CMakeLists.txt").read_text().endswith(
        "set_target_properties(core PROPERTIES VERSION 2.17.0 SOVERSION 2)\n")


def test_unified_diff_patch_applies_is_idempotent_and_detects_drift(tmp_path):
    tree = write_tree(tmp_path / "t", TF_FILES)
    patches = tmp_path / "p"
    (patches / "fix").mkdir(parents=True)
    (patches / "fix" / "0001-static-core.patch").write_text(textwrap.dedent("""\
        Build core as a static library so the test can tell.

        Upstream: N/A test fixture
        --- a/cmake/CMakeLists.txt
        +++ b/cmake/CMakeLists.txt
        @@ -1 +1,2 @@
        -add_library(core SHARED core.cc)
        +add_library(core STATIC core.cc)
        +set_target_properties(core PROPERTIES POSITION_INDEPENDENT_CODE ON)
        --- /dev/null
        +++ b/cmake/NEW.txt
        @@ -0,0 +1 @@
        +created
        """))
    path = write_set(patches, "fix", """
        [set]
        kind = "tuning"
        description = "a diff"
        [[patch]]
        file = "0001-static-core.patch"
        tree = "tensorflow"
    """)
    ps = load_patch_set(path)
    assert ps.patches[0].upstream == "N/A test fixture"
    assert ps.patches[0].description.startswith("Build core as a static library")
    report = apply_in_place({"tensorflow": tree}, [ps], version="2.16.1")
    assert report.results[0].status == "applies"
    assert (tree / "cmake/CMakeLists.txt").read_text().startswith("add_library(core STATIC core.cc)\nset_target")
    assert (tree / "cmake/NEW.txt").read_text() == "created\n"
    # Applying again: recognised as already present, nothing changes.
    _st, res = evaluate({"tensorflow": tree}, [ps], version="2.16.1")
    assert res[0].status == "upstream"
    # Drift: the context line changed upstream.
    (tree / "cmake/CMakeLists.txt").write_text("add_library(core MODULE core.cc)\n")
    (tree / "cmake/NEW.txt").unlink()
    before = snapshot(tree)
    with pytest.raises(PatchError, match="0001-static-core.patch.*hunk at line 1 does not match"):
        apply_in_place({"tensorflow": tree}, [ps], version="2.16.1")
    assert snapshot(tree) == before


def test_hunk_applier_tolerates_moved_lines_but_not_changed_context():
    diff = parse_unified_diff("--- a/f\n+++ b/f\n@@ -2,3 +2,3 @@\n b\n-c\n+C\n d\n")[0]
    assert apply_hunks("a\nb\nc\nd\n", diff) == "a\nb\nC\nd\n"
    assert apply_hunks("x\ny\na\nb\nc\nd\n", diff) == "x\ny\na\nb\nC\nd\n"     # offset by two lines
    assert apply_hunks("a\nb\nc2\nd\n", diff) is None
    assert apply_hunks("a\nb\nC\nd\n", diff, reverse=True) == "a\nb\nc\nd\n"
    with pytest.raises(PatchError, match="not a unified diff"):
        parse_unified_diff("just text\n")


def test_plan_diff_shows_the_edits_and_writes_nothing(project):
    before = snapshot(project.cache)
    diff = plan_diff(project.make(), "aarch64")
    assert snapshot(project.cache) == before
    assert not (project.tmp / "work").exists()
    assert "--- a/tensorflow/flags/BUILD\n+++ b/tensorflow/flags/BUILD\n" in diff
    assert '-    "-mfpu=neon",\n' in diff
    assert "--- a/deps/dep/CMakeLists.txt" in diff and '+OPTS("$<$<NOT:$<CONFIG:Debug>>:-O3>")' in diff
    assert "untouched.c" not in diff


def test_check_reports_not_fetched_and_statuses(project, monkeypatch):
    sources = project.make()
    chk = check_recipe(project.cache, sources.recipe)
    assert chk.fetched
    # No lock next to the recipe: dependency edits cannot be checked, and say so.
    assert "not locked" in chk.note
    assert {r.entry_id: r.status for r in chk.results} == {"drop": "applies", "dep-o3": "no-tree"}
    os.rename(project.tf, project.tf.with_name("moved"))
    chk = check_recipe(project.cache, sources.recipe)
    assert not chk.fetched and chk.note.startswith("archive not fetched")


def test_unified_diff_of_staging_is_relative_to_the_working_root(tmp_path):
    tree = write_tree(tmp_path / "t", TF_FILES)
    path = write_set(tmp_path / "p", "neon", NEON_SET)
    st, _ = evaluate({"tensorflow": tree}, [load_patch_set(path)], version="2.16.1", arch="aarch64")
    text = unified_diff(st)
    assert text.count("\n-    \"-mfpu=neon\",") == 2
