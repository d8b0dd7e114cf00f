"""The GitHub Actions workflow parses, and every invoke task and option it calls exists."""

import re
import shlex
from pathlib import Path

import yaml

from tests.tasks_module import load_tasks

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "matrix.yml"


def invoke_calls(workflow: dict) -> list[list[str]]:
    calls = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                words = shlex.split(re.sub(r"\$\{\{.*?\}\}", "EXPR", line))
                if words and words[0] == "invoke":
                    calls.append(words[1:])
    return calls


def test_workflow_parses_and_builds_the_matrix():
    wf = yaml.safe_load(WORKFLOW.read_text())
    matrix = wf["jobs"]["build"]["strategy"]["matrix"]
    from tflite_forge.recipe import available_recipes
    assert set(matrix["version"]) == {r.version for r in available_recipes()}
    assert {"aarch64", "armhf", "x86_64"} <= set(matrix["arch"])
    assert any("upload-artifact" in s.get("uses", "") for s in wf["jobs"]["build"]["steps"])
    assert any("ci/setup-host.sh" in s.get("run", "") for s in wf["jobs"]["build"]["steps"])


def test_every_invoked_task_and_option_exists():
    ns = load_tasks()
    calls = invoke_calls(yaml.safe_load(WORKFLOW.read_text()))
    assert calls, "the workflow calls no invoke task"
    for words in calls:
        current, i = None, 0
        while i < len(words):
            word = words[i]
            if word.startswith("--"):
                flag, has_value = word[2:].split("=", 1)[0], "=" in word
                assert current is not None, f"option {word} before any task"
                args = {a.name.replace("_", "-"): a for a in ns[current].get_arguments()}
                assert flag in args, f"invoke {current} has no --{flag}"
                if not has_value and args[flag].kind is not bool:
                    i += 1  # the option's value
            else:
                assert word in ns.task_names, f"the workflow calls 'invoke {word}', which is not a task"
                current = word
            i += 1
