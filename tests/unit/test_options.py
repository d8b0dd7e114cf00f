"""One option registry (options.py): task signatures, help, variables and invoke.yaml keys come from it."""

import re
from pathlib import Path

import pytest

from tests.tasks_module import load_tasks
from tflite_forge import options
from tflite_forge.download import FetchPolicy
from tflite_forge.errors import ConfigError
from tflite_forge.options import OPTIONS, lookup
from tflite_forge.settings import resolve

ROOT = Path(__file__).resolve().parents[2]


def test_the_lists_other_modules_read_are_made_from_the_rows():
    assert options.SHARED_OPTIONS == ("version", "recipe", "arch", "engine", "cache_dir", "mirror", "rewrite",
                                      "offline", "jobs", "ccache_remote", "builder")
    assert options.MATRIX_OPTIONS == ("parallel", "resume")
    assert options.ENV["cache_dir"] == "TFLITE_FORGE_CACHE" and options.ENV["builder"] == "TFLITE_FORGE_BUILDERS"
    assert {"mirrors", "rewrites", "builders", "work_dir", "dist_dir"} <= options.CONFIG_KEYS
    assert options.AXES == ("version", "arch")
    assert all(o.help for o in OPTIONS.values()), "a row without help"


def test_every_task_option_that_is_a_row_has_the_row_s_help_and_kind():
    ns = load_tasks()
    for name in ns.task_names:
        if name == "verify":        # its --arch is the tarball's expected arch, with its own help
            continue
        for arg in ns[name].get_arguments():
            row = OPTIONS.get(arg.attr_name or arg.name)
            if row is None:
                continue
            assert arg.help == row.help, (name, arg.name)
            assert (arg.kind is list) == row.repeatable, (name, arg.name)


@pytest.mark.parametrize("source", ["flag", "env", "config"])
def test_precedence_is_one_rule_for_every_row(source):
    flags = {"jobs": "3"} if source == "flag" else {}
    environ = {"TFLITE_FORGE_JOBS": "4"} if source in ("flag", "env") else {}
    config = {"jobs": 5}
    value, got = lookup("jobs", flags, environ, config)
    assert got == source and value == {"flag": "3", "env": "4", "config": 5}[source]
    assert lookup("work_dir", {"work_dir": "ignored: no such flag"}, {}, {}) == ("build", "default")


def test_messages_name_the_option_as_the_user_spelled_it():
    with pytest.raises(ConfigError, match=r"^invoke.yaml tflite_forge.arch 'sparc'"):
        resolve({}, {"arch": "sparc"}, {})
    with pytest.raises(ConfigError, match="TFLITE_FORGE_RETRIES='many'"):
        FetchPolicy.from_env({"TFLITE_FORGE_RETRIES": "many"})


def test_no_module_reads_a_tflite_forge_variable_past_the_registry():
    """A TFLITE_FORGE_* knob read straight from os.environ would bypass the registry (and its help,
    its precedence); the one exception is the matrix's own status file, set for each cell."""
    internal = {"TFLITE_FORGE_STATUS_FILE"}
    pattern = re.compile(r"""(?:environ(?:\.get)?\(|environ\[|getenv\()\s*["'](TFLITE_FORGE_\w+)""")
    found = {(path.name, var) for path in (ROOT / "tflite_forge").rglob("*.py")
             for var in pattern.findall(path.read_text()) if var not in internal}
    assert found == set()
    assert {o.env for o in OPTIONS.values() if o.env} >= {"TFLITE_FORGE_MIN_FREE_GIB", "TFLITE_FORGE_RETRIES",
                                                          "TFLITE_FORGE_CONNECT_TIMEOUT", "TFLITE_FORGE_READ_TIMEOUT"}


def test_the_download_and_disk_knobs_follow_the_same_precedence_as_every_option():
    """issue 12: the timeouts, retries and the free-space floor were variables only, read where they
    were used; now invoke.yaml sets them too, the environment beats it, and a bad value names its source."""
    from tflite_forge.settings import resolve
    config = {"retries": 2, "read_timeout": "7.5", "min_free_gib": 0.5}
    by_config = resolve({}, config, {})
    assert (by_config.fetch_policy.retries, by_config.fetch_policy.read_timeout) == (2, 7.5)
    assert by_config.min_free_bytes == 2**29
    by_env = resolve({}, config, {"TFLITE_FORGE_RETRIES": "0", "TFLITE_FORGE_MIN_FREE_GIB": "3"})
    assert by_env.fetch_policy.retries == 0 and by_env.min_free_bytes == 3 * 2**30
    assert resolve({}, {}, {}).fetch_policy == FetchPolicy() and resolve({}, {}, {}).min_free_bytes == 2 * 2**30
    with pytest.raises(ConfigError, match=r"^invoke.yaml tflite_forge.retries='lots': expected a whole number"):
        resolve({}, {"retries": "lots"}, {})
    with pytest.raises(ConfigError, match=r"^TFLITE_FORGE_MIN_FREE_GIB='-1': expected a number of GiB"):
        resolve({}, {}, {"TFLITE_FORGE_MIN_FREE_GIB": "-1"})


def test_resolve_refuses_a_non_flag_passed_as_a_flag():
    """work_dir has no flag: given in `flags` it used to be dropped without a word, and two integration
    tests built in the checkout's own build/ instead of their temp folder."""
    from tflite_forge.settings import resolve
    with pytest.raises(TypeError, match="work_dir are not flags"):
        resolve({"work_dir": "/tmp/w"}, {}, {})
    assert resolve({}, {"work_dir": "/tmp/w"}, {}).work_dir == Path("/tmp/w")
