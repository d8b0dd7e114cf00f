"""Recipes are a public contract: the shipped ones load, malformed ones fail with file + key."""

from pathlib import Path

import pytest

from tflite_forge.errors import RecipeError
from tflite_forge.recipe import DEFAULT_POLICY, available_recipes, load_recipe, select_recipe, select_recipes

FACTS_SHA256 = {
    "2.14.0": "ce357fd0728f0d1b0831d1653f475591662ec5bca736a94ff789e6b1944df19f",
    "2.15.0": "9cec5acb0ecf2d47b16891f8bc5bc6fbfdffe1700bdadc0d9ebe27ea34f0c220",
    "2.16.1": "c729e56efc945c6df08efe5c9f5b8b89329c7c91b8f40ad2bb3e13900bd4876d",
    "2.17.0": "9cc4d5773b8ee910079baaecb4086d0c28939f024dd74b33fc5e64779b6533dc",
    "2.18.0": "d7876f4bb0235cac60eb6316392a7c48676729860da1ab659fb440379ad5186d",
}

MINIMAL = """
[source]
name = "tensorflow"
version = "2.16.1"
urls = ["https://github.com/tensorflow/tensorflow/archive/refs/tags/v2.16.1.tar.gz"]
sha256 = "c729e56efc945c6df08efe5c9f5b8b89329c7c91b8f40ad2bb3e13900bd4876d"
strip_prefix = "tensorflow-2.16.1"
"""


def write(tmp_path: Path, text: str, name: str = "r.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_shipped_recipes_match_the_facts():
    recipes = {r.version: r for r in available_recipes()}
    assert set(recipes) == set(FACTS_SHA256)
    for version, r in recipes.items():
        assert r.source.sha256 == FACTS_SHA256[version]
        assert r.source.urls == (f"https://github.com/tensorflow/tensorflow/archive/refs/tags/v{version}.tar.gz",)
        assert r.source.strip_prefix == f"tensorflow-{version}"
        assert r.build.cmake_source_dir == "tensorflow/lite/c"
        assert r.build.source_date_epoch and r.build.source_date_epoch > 1_600_000_000
        assert r.lock_path.name == f"tensorflow-{version}.toml.lock"


def test_default_is_newest_and_version_picks():
    assert select_recipe().version == "2.18.0"
    assert select_recipe(version="2.16.1").version == "2.16.1"
    assert [r.version for r in select_recipes(version="2.16.1,2.17.0")] == ["2.16.1", "2.17.0"]
    assert len(select_recipes(version="all")) == 5


def test_unknown_version_lists_known_ones():
    with pytest.raises(RecipeError, match=r"no recipe for TensorFlow 9\.9\.9; known versions: 2\.14\.0, .*2\.18\.0"):
        select_recipe(version="9.9.9")


def test_minimal_schema_is_enough(tmp_path):
    r = load_recipe(write(tmp_path, MINIMAL))
    assert r.version == "2.16.1" and r.build.source_date_epoch is None
    assert r.build.patch_sets == ("o3", "drop-mfpu-neon", "soname")   # the standard sets ship by default


def test_empty_patch_sets_opts_out_and_a_list_is_kept_in_order(tmp_path):
    assert load_recipe(write(tmp_path, MINIMAL + "\n[build]\npatch_sets = []\n")).build.patch_sets == ()
    r = load_recipe(write(tmp_path, MINIMAL + "\n[build]\npatch_sets = ['soname', 'o3']\n"))
    assert r.build.patch_sets == ("soname", "o3")


def test_lock_must_be_a_lock_file_beside_or_below_the_recipe(tmp_path):
    r = load_recipe(write(tmp_path, MINIMAL + "\n[build]\nlock = 'locks/r.toml.lock'\n"))
    assert r.lock_path == tmp_path / "locks" / "r.toml.lock"
    for bad, message in (("/etc/passwd", "expected a relative path inside the tree"),
                         ("../other.toml.lock", "expected a relative path inside the tree"),
                         ("passwd", r"expected a \.lock file beside the recipe"),
                         ("r.toml", r"expected a \.lock file")):
        with pytest.raises(RecipeError, match=message) as exc:
            load_recipe(write(tmp_path, MINIMAL + f"\n[build]\nlock = '{bad}'\n"))
        assert "[build].lock" in str(exc.value) and "\n" not in str(exc.value)


def test_policy_defaults_hold_for_every_shipped_recipe_and_each_key_can_be_set(tmp_path):
    assert all(r.policy == DEFAULT_POLICY for r in available_recipes())
    assert "googletest" in DEFAULT_POLICY.test_only and "opencl_headers" in DEFAULT_POLICY.not_built
    assert DEFAULT_POLICY.header_files == ("tensorflow/lite/builtin_ops.h",)
    assert DEFAULT_POLICY.cxx_header_skip.search("kernels/foo_test.h")
    assert not DEFAULT_POLICY.cxx_header_skip.search("kernels/foo.h")
    r = load_recipe(write(tmp_path, MINIMAL + """
[policy]
test_only = ["gtest"]
not_built = []
header_seeds = ["tensorflow/lite/c"]
header_files = []
cxx_header_root = "tensorflow/lite/core"
cxx_header_skip = '_test\\.h$'
"""))
    assert r.policy.test_only == frozenset({"gtest"}) and r.policy.not_built == frozenset()
    assert r.policy.header_seeds == ("tensorflow/lite/c",) and r.policy.header_files == ()
    assert r.policy.cxx_header_root == "tensorflow/lite/core"
    assert r.policy.cxx_header_skip.search("x_test.h") and not r.policy.cxx_header_skip.search("testing/x.h")
    # A key left out keeps its default.
    r = load_recipe(write(tmp_path, MINIMAL + "\n[policy]\nheader_files = []\n"))
    assert r.policy.test_only == DEFAULT_POLICY.test_only and r.policy.header_seeds == DEFAULT_POLICY.header_seeds


def test_the_documented_policy_defaults_are_the_real_ones():
    import tomllib

    import tflite_forge.recipe as recipe_mod
    doc = recipe_mod.__doc__ or ""
    block = doc[doc.index("    [policy]\n"):]
    lines = [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    text = "\n".join(lines).replace(",\n", ", ")
    data = tomllib.loads("\n".join(line.split("   #", 1)[0] for line in text.splitlines()))
    policy = recipe_mod.parse_policy(Path("doc"), data["policy"])
    assert policy == DEFAULT_POLICY


@pytest.mark.parametrize("mutation, message", [
    (lambda t: t.replace('sha256 = "c7', 'sha256 = "C7'), r"\[source\]\.sha256: expected 64 lower-case hex"),
    (lambda t: t.replace("urls = [", "url = ["), r"\[source\]: unknown key 'url'; perhaps you meant 'urls'"),
    (lambda t: t.replace('version = "2.16.1"', "version = 2.16"), r"\[source\]\.version: expected a version"),
    (lambda t: t.replace('strip_prefix = "tensorflow-2.16.1"', 'strip_prefix = "../x"'), r"strip_prefix: expected a relative path"),
    (lambda t: t.replace("https://github.com", "ftp://github.com"), r"urls\[0\]: expected an http\(s\):// or file:// URL"),
    (lambda t: t.replace("https://github.com", "http://[::1"), r"urls\[0\]: not a valid URL \(Invalid IPv6 URL\)"),
    (lambda t: t.replace("https://github.com", "https://github.com:99999"), r"urls\[0\]: not a valid URL \(Port out of range"),
    (lambda t: t.replace("https://github.com", "https://github.com:0"), r"urls\[0\]: port 0 is out of range"),
    (lambda t: t.replace("https://github.com/", "https:///"), r"urls\[0\]: no host name"),
    (lambda t: t.replace("https://github.com/", "file://relative/"), r"urls\[0\]: a file:// URL names an absolute local path"),
    (lambda t: t + "\n[build]\npatch_set = []\n", r"\[build\]: unknown key 'patch_set'; perhaps you meant 'patch_sets'"),
    (lambda t: t + "\n[build]\nsource_date_epoch = true\n", r"source_date_epoch: expected a Unix timestamp"),
    (lambda t: t + "\n[build]\npatch_sets = ['o3', 'o3']\n", r"listed twice"),
    (lambda t: t.replace('name = "tensorflow"\n', 'name = "tensorflow"\nname = "x"\n'), r"not valid TOML"),
    (lambda t: t.replace("[source]", "[sauce]"), r"top level: unknown key 'sauce'; perhaps you meant 'source'"),
    (lambda t: t + "\n[policy]\ntest_onl = []\n", r"\[policy\]: unknown key 'test_onl'; perhaps you meant 'test_only'"),
    (lambda t: t + "\n[policy]\ntest_only = 'gtest'\n", r"\[policy\]\.test_only: expected a list of"),
    (lambda t: t + "\n[policy]\ntest_only = ['GTest']\n", r"\[policy\]\.test_only\[0\]: expected a lower-case download name"),
    (lambda t: t + "\n[policy]\nnot_built = [1]\n", r"\[policy\]\.not_built\[0\]: expected a module name"),
    (lambda t: t + "\n[policy]\nheader_seeds = ['../up']\n", r"\[policy\]\.header_seeds\[0\]: expected a relative path"),
    (lambda t: t + "\n[policy]\nheader_files = ['a.h', 'a.h']\n", r"\[policy\]\.header_files: an entry is listed twice"),
    (lambda t: t + "\n[policy]\ncxx_header_root = '/abs'\n", r"\[policy\]\.cxx_header_root: expected a relative path"),
    (lambda t: t + "\n[policy]\ncxx_header_skip = '(unclosed'\n", r"\[policy\]\.cxx_header_skip: not a regular expression"),
    (lambda t: "policy = 1\n" + t, r"\[policy\]: expected a table"),
])
def test_malformed_recipe_names_file_and_key(tmp_path, mutation, message):
    p = write(tmp_path, mutation(MINIMAL))
    with pytest.raises(RecipeError, match=message) as exc:
        load_recipe(p)
    assert str(p) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_recipe_and_conflicting_version(tmp_path):
    p = write(tmp_path, MINIMAL)
    with pytest.raises(RecipeError, match="is version 2.16.1 but --version 2.17.0"):
        select_recipe(recipe=p, version="2.17.0")


ROOT = Path(__file__).resolve().parents[2]


def test_a_folder_or_unreadable_path_is_one_line_naming_it(tmp_path):
    with pytest.raises(RecipeError, match=r"is a folder, not a TOML file; pass the \.toml file itself") as err:
        load_recipe(tmp_path)
    assert str(err.value).startswith(f"{tmp_path}: ")
    under_a_file = write(tmp_path, MINIMAL) / "x.toml"          # NotADirectoryError: another OSError
    with pytest.raises(RecipeError, match=r"x\.toml: cannot read \(Not a directory\)"):
        load_recipe(under_a_file)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(MINIMAL.replace("tensorflow-2.16.1", "tensorflow-\xe9").encode("latin-1"))
    with pytest.raises(RecipeError, match=r"latin1\.toml: not UTF-8 text"):
        load_recipe(latin1)


def test_permission_denied_is_one_line_naming_the_fix(tmp_path):
    """A real PermissionError. As root (who may read anything) the file is read by an unprivileged
    user in a subprocess, with the system interpreter that user can run (pyenv's lives under /root),
    importing the two modules it needs from a world-readable copy (the checkout may be a private
    folder, as `mktemp -d` makes it)."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    recipe = write(tmp_path, MINIMAL)
    recipe.chmod(0)
    code = ("import sys\nfrom pathlib import Path\nfrom tflite_forge._toml import load_toml\n"
            "from tflite_forge.errors import RecipeError\n"
            "try:\n    load_toml(Path(sys.argv[1]))\nexcept RecipeError as e:\n    print(e)\n")
    as_root = os.geteuid() == 0
    python = "/usr/bin/python3" if as_root else sys.executable
    readable = Path(tempfile.mkdtemp(prefix="tflite-forge-perm-"))
    try:
        (readable / "tflite_forge").mkdir()
        for name in ("__init__.py", "_toml.py", "errors.py"):
            shutil.copy(ROOT / "tflite_forge" / name, readable / "tflite_forge" / name)
        for path in (readable, readable / "tflite_forge", *(readable / "tflite_forge").iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        proc = subprocess.run([python, "-c", code, str(recipe)], cwd=readable, capture_output=True, text=True,
                              env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}, timeout=60,
                              **({"user": 65534} if as_root else {}))
    finally:
        shutil.rmtree(readable)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{recipe}: permission denied; make it readable (chmod u+r) or pass another file"


def test_invoke_with_a_recipe_folder_prints_no_traceback():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "invoke", "fetch", "--recipe", "recipes/", "--offline"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == RecipeError.exit_code and "Traceback" not in proc.stderr
    assert "recipes: is a folder, not a TOML file" in proc.stderr
