"""The project's tasks.py, imported afresh for a test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from invoke import Collection

ROOT = Path(__file__).resolve().parents[1]


def load_tasks() -> Collection:
    """A fresh import of tasks.py each call: invoke's Task.get_arguments() consumes a task's help
    dict, so a collection is good for one program."""
    spec = importlib.util.spec_from_file_location("tflite_forge_tasks_under_test", ROOT / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Collection.from_module(module)
