"""patches/*.toml schema: strict keys with hints, counts that can never be zero, safe paths,
valid regexes and templates, applicability values, Buildroot-style diff headers."""

from __future__ import annotations

import io
import textwrap

import pytest

from tflite_forge.errors import PatchError
from tflite_forge.patch_report import run_patches
from tflite_forge.patchset import available_sets, find_patch_set, load_patch_set
from tflite_forge.versions import version_matches

EDIT = """
[set]
kind = "tuning"
description = "t"

[[edit]]
id = "e"
description = "why"
upstream = "N/A test"
tree = "tensorflow"
files = ["a/b.txt"]
pattern = 'x(y)'
replacement = '\\1'
count = 1
"""


def load(tmp_path, body: str, name: str = "s"):
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(body))
    return load_patch_set(path)


def test_minimal_set_loads(tmp_path):
    ps = load(tmp_path, EDIT)
    (e,) = ps.edits
    assert (e.id, e.tree, e.files, e.min, e.max, e.expected) == ("e", "tensorflow", ("a/b.txt",), 1, 1, "1")
    assert len(ps.digest) == 64


@pytest.mark.parametrize("old,new,message", [
    ("count = 1", "count = 1\ncuont = 2", r"\[\[edit\]\] #1: unknown key 'cuont'; perhaps you meant 'count'"),
    ("count = 1", "min = 0\nmax = 2", "at least 1 .* never succeeds by matching nothing"),
    ("count = 1", "count = 1\nmin = 1\nmax = 2", "either count .* or min/max"),
    ("count = 1", "min = 3\nmax = 2", "max \\(2\\) is below min \\(3\\)"),
    ("count = 1", "", "missing count"),
    ("pattern = 'x(y)'", "pattern = 'x(y'", "pattern: not a valid regular expression"),
    ("pattern = 'x(y)'", "pattern = '(x)?'", "matches the empty string"),
    ("replacement = '\\1'", "replacement = '\\2'", "refers to a group the pattern does not have"),
    ("replacement = '\\1'", "replacement = '\\q'", "bad escape"),
    ('files = ["a/b.txt"]', 'files = ["../etc/passwd"]', "relative to the tree root"),
    ('files = ["a/b.txt"]', 'files = ["**/CMakeLists.txt"]', "would walk the whole tree"),
    ('files = ["a/b.txt"]', "files = []", "non-empty list"),
    ('upstream = "N/A test"', 'upstream = "see issue 5"', "https:// URL or 'N/A <why>'"),
    ('tree = "tensorflow"', 'tree = "Tensor Flow"', "locked dependency name"),
    ("count = 1", 'count = 1\narches = ["sparc"]', "unknown architecture.*valid names: aarch64"),
    ("count = 1", 'count = 1\nbackends = ["make"]', "unknown backend 'make'"),
    ("count = 1", 'count = 1\nversions = "2.16"', "is not OP VERSION"),
    ("count = 1", 'count = 1\nskip = [{ reason = "x" }]', "needs versions, arches or backends"),
    ("count = 1", "count = true", "expected a positive whole number, got True"),
])
def test_schema_errors_name_file_and_key(tmp_path, old, new, message):
    with pytest.raises(PatchError, match=message) as err:
        load(tmp_path, EDIT.replace(old, new))
    assert str(tmp_path / "s.toml") in str(err.value)


def test_every_set_declares_its_kind(tmp_path):
    assert load(tmp_path, EDIT).kind == "tuning"
    with pytest.raises(PatchError) as err:
        load(tmp_path, EDIT.replace('kind = "tuning"\n', ""))
    assert str(err.value) == (f"{tmp_path / 's.toml'}: [set].kind: missing; expected one of backport, portability, "
                              f"tuning (patches/SCHEMA.md says which)")
    with pytest.raises(PatchError) as err:
        load(tmp_path, EDIT.replace('kind = "tuning"', 'kind = "performance"'))
    assert str(err.value) == (f"{tmp_path / 's.toml'}: [set].kind: 'performance' is not a kind; write one of "
                              f"backport, portability, tuning (patches/SCHEMA.md says which)")
    with pytest.raises(PatchError, match=r"\[set\].kind: expected one of backport"):
        load(tmp_path, EDIT.replace('kind = "tuning"', "kind = 3"))


def test_duplicate_ids_and_empty_sets_are_refused(tmp_path):
    with pytest.raises(PatchError, match="'e' is used twice"):
        load(tmp_path, EDIT + "\n" + EDIT[EDIT.index("[[edit]]"):])
    with pytest.raises(PatchError, match="no \\[\\[edit\\]\\] and no \\[\\[patch\\]\\]"):
        load(tmp_path, '[set]\nkind = "tuning"\ndescription = "nothing"\n')
    with pytest.raises(PatchError, match="top level: unknown key 'edits'; perhaps you meant 'edit'"):
        load(tmp_path, '[set]\nkind = "tuning"\ndescription = "x"\n[[edits]]\nid = "x"\n')


def test_diff_patch_needs_a_header_with_upstream(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "0001-x.patch").write_text("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n")
    body = '[set]\nkind = "tuning"\ndescription = "d"\n[[patch]]\nfile = "0001-x.patch"\ntree = "tensorflow"\n'
    with pytest.raises(PatchError, match="Upstream: <URL or N/A why>"):
        load(tmp_path, body)
    (tmp_path / "s" / "0001-x.patch").write_text("Upstream: N/A\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n")
    with pytest.raises(PatchError, match="no sentence saying why"):
        load(tmp_path, body)
    with pytest.raises(PatchError, match="expected NNNN-name.patch"):
        load(tmp_path, body.replace("0001-x.patch", "fix.patch"))


def test_version_ranges():
    assert version_matches("2.16.1", ">=2.14, <2.17")
    assert not version_matches("2.17.0", ">=2.14, <2.17")
    assert version_matches("2.17.0", "==2.17")
    assert version_matches("2.18.0", None)


def test_unknown_set_name_suggests_the_close_one():
    with pytest.raises(PatchError, match="perhaps you meant 'drop-mfpu-neon'"):
        find_patch_set("drop-mfpu-nen")


def test_bundled_sets_are_documented_and_strict():
    sets = {ps.name: ps for ps in available_sets()}
    assert {"o3", "drop-mfpu-neon", "soname"} <= set(sets)
    for ps in sets.values():
        for e in ps.edits:
            assert len(e.description) > 80, e.id          # reason + where it was checked
            assert e.upstream.startswith(("https://", "N/A"))
            assert e.min >= 1
    assert {name: ps.kind for name, ps in sets.items()} == {"o3": "tuning", "drop-mfpu-neon": "portability",
                                                            "soname": "portability"}
    # drop-mfpu-neon never applies to armhf, which needs its NEON flags.
    for e in sets["drop-mfpu-neon"].edits:
        assert e.applies.arches == ("aarch64",)
        assert e.applies.why_not("2.16.1", "armhf", "cmake") == "only for aarch64"
    o3 = {e.id: e for e in sets["o3"].edits}
    assert o3["xnnpack-cmake-o2"].tree == "xnnpack" and o3["xnnpack-cmake-o2"].applies.backends == ("cmake",)
    assert o3["bazel-arm-linux-opt-o2"].applies.backends == ("bazel",)


def test_the_listing_shows_each_entrys_kind():
    out = io.StringIO()
    assert run_patches(None, console=out) is None
    lines = out.getvalue().splitlines()
    assert "entry=xnnpack-cmake-o2 | kind=tuning | tree=xnnpack | files=CMakeLists.txt | " \
           "applies to=all versions; all arches; cmake | expected=1..40 | upstream=N/A: deliberate upstream " \
           "default (see google/XNNPACK CMakeLists.txt, TARGET_COMPILE_OPTIONS ... -O2)" in lines
    assert any(line.startswith("entry=c-api-soversion | kind=portability | ") for line in lines)
