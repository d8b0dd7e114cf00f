"""invoke doctor: every failing row names a fix; reachable things are reported ok."""

from tflite_forge.doctor import FAIL, OK, check_cache, check_engine, check_network, run_checks
from tflite_forge.loopback import serve_directory
from tflite_forge.settings import resolve


def closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_upstream_is_checked_through_rewrites(tmp_path):
    with serve_directory(tmp_path) as base:
        rows = list(check_network(resolve({"rewrite": [f"https://={base}"]}, {}, {}), timeout=2))
    assert rows[0].status == OK and base in rows[0].detail


def test_unreachable_upstream_says_how_to_use_a_mirror():
    settings = resolve({"rewrite": [f"https://=http://127.0.0.1:{closed_port()}/"]}, {}, {})
    (row,) = check_network(settings, timeout=2)
    assert row.status == FAIL and "--mirror" in row.fix and "invoke mirror --dest" in row.fix


def test_mirrors_are_checked(tmp_path):
    settings = resolve({"mirror": [f"file://{tmp_path}", f"file://{tmp_path}/absent"], "offline": True}, {}, {})
    rows = list(check_network(settings, timeout=2))
    assert [r.status for r in rows] == [OK, OK, FAIL]
    assert rows[2].fix


def test_unwritable_cache_is_a_failing_row(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    (row,) = check_cache(resolve({"cache_dir": str(blocker / "cache")}, {}, {}))
    assert row.status == FAIL and "--cache-dir" in row.fix


def test_missing_engine_is_a_failing_row_with_a_fix(tmp_path):
    (row,) = check_engine(resolve({"engine": str(tmp_path / "podman")}, {}, {}))
    assert row.status == FAIL and "setup-host.sh" in row.fix


def test_every_failing_row_has_a_fix(tmp_path):
    settings = resolve({"engine": str(tmp_path / "docker"), "cache_dir": str(tmp_path / "c"),
                        "rewrite": [f"https://=http://127.0.0.1:{closed_port()}/"]}, {}, {})
    rows = run_checks(settings)
    assert any(r.status == FAIL for r in rows)
    assert all(r.fix for r in rows if r.status == FAIL)


def test_disk_rows_use_the_rules_that_use_each_folder(tmp_path, monkeypatch):
    """The work dir is judged by the build's own floor (it refuses below it), and the engine's data
    root, where build trees and ccache live, has a row of its own (issue 12: doctor said 10 GiB for
    the work dir while the build wanted 2, and checked no engine disk)."""
    from tflite_forge.doctor import check_disk
    from tflite_forge import engine as eng
    from tests.ci import unavailable
    def settings_with(min_free_gib: str):
        return resolve({"engine": "docker", "cache_dir": str(tmp_path / "cache")},
                       {"work_dir": str(tmp_path / "work")}, {"TFLITE_FORGE_MIN_FREE_GIB": min_free_gib})
    rows = {row.name: row for row in check_disk(settings_with("0.5"))}
    assert rows["disk (work dir)"].status == OK and "needs 0.5 GiB" in rows["disk (work dir)"].detail
    rows = {row.name: row for row in check_disk(settings_with("1000000"))}
    assert rows["disk (work dir)"].status == FAIL and "TFLITE_FORGE_MIN_FREE_GIB" in rows["disk (work dir)"].fix
    try:
        root = eng.engine_data_root(eng.resolve_engine("docker"))
    except Exception as err:  # no engine here: nothing to say about its disk
        unavailable(f"docker is not usable here ({err}); run ci/setup-host.sh")
    assert rows["disk (engine data root)"].detail.endswith(f"at {root} (needs 10 GiB)")
