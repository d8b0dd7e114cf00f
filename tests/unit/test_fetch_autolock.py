"""The main job in one command: fetch (and so build) locks a recipe that has no lock yet,
but never regenerates a lock that disagrees with its recipe, and never locks offline."""

from __future__ import annotations

import shutil

import pytest

from tflite_forge.errors import LockError
from tflite_forge.sources import ensure_sources, run_fetch
from tflite_forge.lockfile import load_lock
from tflite_forge.recipe import load_recipe
from tflite_forge.settings import resolve


def recipe_copy(miniature_release, tmp_path):
    recipe = tmp_path / "tensorflow-2.16.1.toml"
    shutil.copy(miniature_release.recipe_path, recipe)
    return recipe


def test_fetch_locks_a_recipe_without_a_lock(miniature_release, miniature_rewrite, tmp_path):
    recipe = recipe_copy(miniature_release, tmp_path)
    settings = resolve({"recipe": str(recipe), "rewrite": [miniature_rewrite], "cache_dir": str(tmp_path / "c")}, {}, {})
    run_fetch(settings)
    lock = load_lock(tmp_path / "tensorflow-2.16.1.toml.lock")
    assert {d.name for d in lock.dependencies} == {d.name for d in miniature_release.default_dependencies}
    sources = ensure_sources(settings, load_recipe(recipe))
    assert set(sources.dependencies) == {d.name for d in miniature_release.default_dependencies}


def test_offline_never_locks(miniature_release, tmp_path):
    recipe = recipe_copy(miniature_release, tmp_path)
    (tmp_path / "nomirror").mkdir()   # an empty mirror (a missing folder is refused as a typo)
    settings = resolve({"recipe": str(recipe), "offline": True, "cache_dir": str(tmp_path / "c"),
                        "mirror": [f"file://{tmp_path}/nomirror"]}, {}, {})
    with pytest.raises(LockError, match="has no dependency lock"):
        ensure_sources(settings, load_recipe(recipe))
    assert not (tmp_path / "tensorflow-2.16.1.toml.lock").exists()


def test_a_stale_lock_is_not_regenerated(miniature_release, miniature_rewrite, tmp_path):
    recipe = recipe_copy(miniature_release, tmp_path)
    lock = tmp_path / "tensorflow-2.16.1.toml.lock"
    settings = resolve({"recipe": str(recipe), "rewrite": [miniature_rewrite], "cache_dir": str(tmp_path / "c")}, {}, {})
    run_fetch(settings)
    text = lock.read_text().replace(miniature_release.tensorflow_sha256, "0" * 64)
    lock.write_text(text)
    with pytest.raises(LockError, match="rerun `invoke lock"):
        ensure_sources(settings, load_recipe(recipe))
    assert lock.read_text() == text
