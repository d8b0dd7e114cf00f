"""The CLI contract: shared flags reach the whole chain, every option has help, errors are one line."""

import json
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Collection, Program, task

from tests.tasks_module import load_tasks
from tflite_forge.cli import ChainExecutor, forge_task
from tflite_forge.errors import RecipeError

ROOT = Path(__file__).resolve().parents[2]


def run_program(argv, *tasks):
    seen = []

    def recorder(name, params):
        """A task named `name` taking `params` (all default None) that records its kwargs."""
        def body(c, **kw):
            seen.append((name, kw))
        body.__name__ = name
        body.__signature__ = inspect.Signature(
            [inspect.Parameter("c", inspect.Parameter.POSITIONAL_ONLY)]
            + [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, default=None) for p in params])
        return task(body)

    ns = Collection(*(recorder(n, p) for n, p in tasks))
    prog = Program(namespace=ns, executor_class=ChainExecutor, name="t", binary="t")
    prog.run(["t", *argv], exit=False)
    return seen


def test_shared_flag_reaches_every_task_in_the_chain():
    seen = run_program(["fetch", "build", "package", "--version", "2.16.1", "--arch", "aarch64"],
                       ("fetch", ["version", "recipe"]), ("build", ["version", "arch"]),
                       ("package", ["version", "arch"]))
    assert seen == [("fetch", {"version": "2.16.1", "recipe": None}),
                    ("build", {"version": "2.16.1", "arch": "aarch64"}),
                    ("package", {"version": "2.16.1", "arch": "aarch64"})]


def test_flag_given_to_first_task_reaches_later_ones():
    seen = run_program(["fetch", "--version", "2.15.0", "build"],
                       ("fetch", ["version"]), ("build", ["version", "arch"]))
    assert seen[1] == ("build", {"version": "2.15.0", "arch": None})


def test_conflicting_values_are_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        run_program(["fetch", "--arch", "armhf", "build", "--arch", "aarch64"],
                    ("fetch", ["arch"]), ("build", ["arch"]))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--arch given twice with different values" in err and err.count("\n") == 1


def test_non_shared_options_stay_with_their_task():
    seen = run_program(["a", "--dest", "x", "b"], ("a", ["dest"]), ("b", ["dest"]))
    assert seen == [("a", {"dest": "x"}), ("b", {"dest": None})]


def test_project_config_enables_the_chain_executor():
    from invoke import Config
    cfg = Config(project_location=str(ROOT))
    cfg.load_project()
    assert cfg.tasks.executor_class == "tflite_forge.cli.ChainExecutor"


def test_every_task_documents_every_option():
    ns = load_tasks()
    assert len(ns.task_names) >= 4
    for name in ns.task_names:
        t = ns[name]
        assert t.__doc__ and t.__doc__.strip(), f"task {name} has no docstring"
        for arg in t.get_arguments():
            assert arg.help, f"invoke --help {name}: option --{arg.name} has no help"


def test_invoke_help_shows_help_for_each_option():
    out = subprocess.run([sys.executable, "-m", "invoke", "--help", "fetch"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--version", "--recipe", "--mirror", "--rewrite", "--offline", "--cache-dir"):
        line = next(l for l in out.splitlines() if flag in l)
        assert len(line.split(flag, 1)[1].strip()) > 10, f"{flag} shows no help: {line!r}"


def test_forge_error_is_one_line_and_exit_code():
    @forge_task
    def boom(c):
        """Fail like a user error."""
        raise RecipeError("recipes/x.toml: [source].sha256: expected 64 lower-case hex characters")

    prog = Program(namespace=Collection(boom), name="t", binary="t")
    with pytest.raises(SystemExit) as exc:
        prog.run(["t", "boom"])
    assert exc.value.code == RecipeError.exit_code


def test_cli_error_output_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "invoke", "fetch", "--version", "9.9.9", "--offline"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == RecipeError.exit_code
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("tflite-forge: no recipe for TensorFlow 9.9.9")


def test_real_chain_accepts_shared_flags_after_any_pipeline_task():
    """`invoke fetch build package --rewrite X --arch aarch64`: invoke parses a flag for the task it
    follows, so every pipeline task must accept every shared flag; the executor then shares them."""
    from invoke.parser import Parser
    ns = load_tasks()
    argv = ["fetch", "build", "package", "test", "--recipe", "r.toml", "--rewrite", "https://=http://127.0.0.1:1/",
            "--mirror", "file:///m", "--arch", "aarch64", "--engine", "podman"]
    parsed = Parser(contexts=ns.to_contexts()).parse_argv(argv)
    calls = ChainExecutor(ns).normalize(parsed)
    for call in calls:
        assert call.kwargs["recipe"] == "r.toml", call.task.name
        assert call.kwargs["rewrite"] == ["https://=http://127.0.0.1:1/"], call.task.name
        assert call.kwargs["mirror"] == ["file:///m"]
        assert call.kwargs["arch"] == "aarch64" and call.kwargs["engine"] == "podman"


SHARED_VALUES = {  # option -> (argv after the flag, value each task must receive)
    "version": (["2.16.1"], "2.16.1"), "recipe": (["r.toml"], "r.toml"), "arch": (["aarch64"], "aarch64"),
    "engine": (["podman"], "podman"), "cache_dir": (["/tmp/forge-cache"], "/tmp/forge-cache"),
    "mirror": (["file:///m"], ["file:///m"]), "rewrite": (["https://=http://127.0.0.1:1/"], ["https://=http://127.0.0.1:1/"]),
    "offline": ([], True), "jobs": (["3"], "3"),
    "builder": (["unix:///run/b.sock"], ["unix:///run/b.sock"]),
    "ccache_remote": (["redis+unix:///run/cache.sock"], "redis+unix:///run/cache.sock"),
}


@pytest.mark.parametrize("first", [True, False], ids=["given-to-fetch", "given-to-patch"])
@pytest.mark.parametrize("option", sorted(SHARED_VALUES))
def test_every_shared_option_reaches_every_task_whatever_its_spelling(option, first):
    """issue 10 I4: `--cache-dir` given to patch never reached fetch (invoke keys it `cache-dir`)."""
    from invoke.parser import Parser

    from tflite_forge.options import SHARED_OPTIONS
    assert set(SHARED_VALUES) == set(SHARED_OPTIONS)   # a new shared option needs a row here
    ns = load_tasks()
    extra, expected = SHARED_VALUES[option]
    flag = ["--" + option.replace("_", "-"), *extra]
    argv = ["fetch", *flag, "patch"] if first else ["fetch", "patch", *flag]
    calls = ChainExecutor(ns).normalize(Parser(contexts=ns.to_contexts()).parse_argv(argv))
    assert [c.task.name for c in calls] == ["fetch", "patch"]
    for call in calls:
        assert call.kwargs[option] == expected, (call.task.name, call.kwargs)


def test_arch_given_only_to_tasks_that_ignore_it_is_said_to_be_ignored(capsys):
    from invoke.parser import Parser
    ns = load_tasks()
    ChainExecutor(ns).normalize(Parser(contexts=ns.to_contexts()).parse_argv(["fetch", "lock", "--arch", "aarch64"]))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--arch aarch64 is ignored: fetch, lock" in err
    ChainExecutor(ns).normalize(Parser(contexts=ns.to_contexts()).parse_argv(["fetch", "build", "--arch", "aarch64"]))
    assert capsys.readouterr().err == ""   # build uses it: nothing to say


@pytest.mark.parametrize("python_says_no", [False, True])
def test_the_tool_s_modules_are_byte_compiled_like_an_installed_package_s(tmp_path, python_says_no):
    """invoke switches bytecode writing off before it loads tasks.py; tasks.py switches it back on
    (the cost was half a second of compiling per command), unless Python itself was told not to."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    if python_says_no:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    subprocess.run([sys.executable, "-m", "invoke", "--help", "fetch"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    written = {p.name.split(".")[0] for p in (tmp_path / "pycache").rglob("*.pyc")
               if "tflite_forge" in p.parts}
    if python_says_no:
        assert written == set()
    else:
        assert {"cli", "settings", "errors"} <= written


def test_declaring_the_tasks_loads_no_stage_module():
    """`invoke --list`, `--help` and each matrix cell import tasks.py: it declares the tasks from the
    option registry and leaves every stage (and numpy, requests, pyelftools) to the task that runs it."""
    probe = ("import json, sys; import tasks; "
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('tflite_forge.', 'numpy', "
             "'flatbuffers', 'requests', 'elftools')))))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    loaded = set(json.loads(out))
    stages = {"tflite_forge." + m for m in ("pipeline", "sources", "fetch", "lock", "patching", "build_plan",
                                             "build_run", "image", "image_io", "package", "verify", "smoke",
                                             "model_run", "runtime_image", "doctor", "clean", "selftest")}
    assert not loaded & stages, sorted(loaded & stages)
    assert not {m for m in loaded if not m.startswith("tflite_forge.")}, sorted(loaded)
