"""Shared options: flag > TFLITE_FORGE_* env > invoke.yaml > default."""

from pathlib import Path

import pytest

from tflite_forge.errors import ConfigError
from tflite_forge.settings import parse_rewrite, resolve


def test_precedence_flag_env_config_default():
    cfg = {"arch": "armhf", "version": "2.15.0", "cache_dir": "/cfg"}
    env = {"TFLITE_FORGE_ARCH": "x86_64", "TFLITE_FORGE_CACHE": "/env"}
    s = resolve({"arch": "aarch64"}, cfg, env)
    assert s.arch == "aarch64"            # flag wins
    assert s.cache_dir == Path("/env")    # env beats config
    assert s.version == "2.15.0"          # config beats default
    d = resolve({}, {}, {"XDG_CACHE_HOME": "/xdg"} | {})
    assert d.arch is None and d.offline is False


def test_default_cache_dir_follows_xdg(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/xdgcache")
    assert resolve({}, {}, {}).cache_dir == Path("/tmp/xdgcache/tflite-forge")


def test_mirrors_and_rewrites_from_env_and_flags():
    s = resolve({}, {}, {"TFLITE_FORGE_MIRRORS": "file:///m1 http://m2/", "TFLITE_FORGE_REWRITES": "https://a/=http://b/"})
    assert s.mirrors == ("file:///m1", "http://m2/")
    assert s.rewrites == (("https://a/", "http://b/"),)
    s = resolve({"mirror": ["http://flag/"]}, {"mirrors": ["http://cfg/"]}, {})
    assert s.mirrors == ("http://flag/",)


def test_false_flag_does_not_hide_env():
    assert resolve({"offline": False}, {}, {"TFLITE_FORGE_OFFLINE": "1"}).offline is True


@pytest.mark.parametrize("flags, env, message", [
    ({"mirror": ["ftp://x"]}, {}, "expected an http"),
    ({"rewrite": ["nonsense"]}, {}, "expected FROM=TO"),
    ({}, {"TFLITE_FORGE_OFFLINE": "maybe"}, "expected true or false"),
    ({"jobs": "-2"}, {}, "positive whole number"),
])
def test_bad_values_are_config_errors(flags, env, message):
    with pytest.raises(ConfigError, match=message):
        resolve(flags, {}, env)


def test_unknown_config_key_suggests():
    with pytest.raises(ConfigError, match="perhaps you meant 'mirrors'"):
        resolve({}, {"mirror": ["x"]}, {})


def test_parse_rewrite_keeps_equals_in_target():
    assert parse_rewrite("https://github.com/=http://h/?a=b") == ("https://github.com/", "http://h/?a=b")
