"""Shared options: flag > TFLITE_FORGE_* env > invoke.yaml > default."""

from pathlib import Path

import pytest

from tflite_forge.errors import ConfigError
from tflite_forge.settings import check_cache_dir, check_file_mirrors, parse_rewrite, resolve


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


def test_mirrors_and_rewrites_from_env_and_flags(tmp_path):
    m1 = tmp_path.as_uri()
    s = resolve({}, {}, {"TFLITE_FORGE_MIRRORS": f"{m1} http://m2/", "TFLITE_FORGE_REWRITES": "https://a/=http://b/"})
    assert s.mirrors == (m1, "http://m2/")
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
    ({"jobs": "0"}, {}, "positive whole number"),            # 0 used to mean "the default" silently
    ({"jobs": 0}, {}, "positive whole number"),
    ({}, {"TFLITE_FORGE_JOBS": "0"}, "TFLITE_FORGE_JOBS|positive whole number"),
    ({"arch": "sparc"}, {}, r"--arch 'sparc': unknown architecture"),
    ({}, {"TFLITE_FORGE_ARCH": "sparc"}, r"TFLITE_FORGE_ARCH 'sparc': unknown architecture"),
    ({"mirror": ["http://"]}, {}, r"--mirror 'http://': no host name"),
    ({"mirror": ["http://mirror.example:99999/"]}, {}, r"port|out of range"),
    ({"mirror": ["http://mirror.example:http/"]}, {}, r"not a valid URL"),
    ({"mirror": ["file://relative/path"]}, {}, r"'relative' would be a host name"),
    ({}, {"TFLITE_FORGE_MIRRORS": "http://[::1"}, r"TFLITE_FORGE_MIRRORS 'http://\[::1': not a valid URL"),
])
def test_bad_values_are_config_errors(flags, env, message):
    with pytest.raises(ConfigError, match=message):
        resolve(flags, {}, env)


def test_unknown_config_key_suggests():
    with pytest.raises(ConfigError, match="perhaps you meant 'mirrors'"):
        resolve({}, {"mirror": ["x"]}, {})


def test_parse_rewrite_keeps_equals_in_target():
    assert parse_rewrite("https://github.com/=http://h/?a=b") == ("https://github.com/", "http://h/?a=b")


def test_cache_dir_that_is_a_file_or_below_one_is_refused(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"--cache-dir .*afile: is a file, not a folder"):
        check_cache_dir(afile)
    with pytest.raises(ConfigError, match=r"afile/below/it: cannot be created: .*afile is a file"):
        check_cache_dir(afile / "below" / "it")
    assert afile.read_text() == "not a folder"
    check_cache_dir(tmp_path / "new" / "cache")   # missing folders are fine: they are created
    assert not (tmp_path / "new").exists()


def test_file_mirror_must_be_an_existing_folder(tmp_path):
    check_file_mirrors([tmp_path.as_uri(), "http://mirror.example/"])
    with pytest.raises(ConfigError, match=r"--mirror 'file:///nonexistent-forge-mirror': .* is not a folder"):
        check_file_mirrors(["file:///nonexistent-forge-mirror"])
