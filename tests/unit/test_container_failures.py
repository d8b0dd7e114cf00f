"""An engine that hangs or refuses: every case is one EngineError line, never a hang or a silent success.

The engine is a real executable (a shell script named docker) run as a real subprocess; it plays a
daemon that hangs on `exec`/`load` or answers `permission denied` to the listing and removal commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tflite_forge import container as ct
from tflite_forge import engine as eng
from tflite_forge import image_io
from tflite_forge.errors import EngineError

ROOT = Path(__file__).resolve().parents[2]
DENIED = "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock"


def fake_docker(tmp_path: Path) -> eng.EngineConfig:
    script = tmp_path / "bin" / "docker"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$1" in
          version) echo 24.0.5 ;;
          run) exec cat >/dev/null ;;                    # the keeper: lives while its stdin is open
          exec) exec sleep 600 ;;                         # a hung daemon: the readiness probe never returns
          load) cat >/dev/null; exec sleep 600 ;;         # reads the archive, then never finishes
          rm) exit 0 ;;
          rmi) echo "Error: No such image: gone:1" >&2
               echo "Error response from daemon: conflict: unable to remove repository reference" \\
                    "\\"tflite-forge/builder:x\\" (must force) - container abc is using its referenced image" >&2
               exit 1 ;;
          *) echo "{DENIED}" >&2; exit 1 ;;
        esac
        """))
    script.chmod(0o755)
    return eng.EngineConfig(name="docker", binary=str(script), version="24.0.5")


def test_a_hung_readiness_probe_is_bounded_and_one_line(tmp_path):
    # In a child process, so a regression fails the test instead of hanging the suite.
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[2])
        from pathlib import Path
        from tests.unit.test_container_failures import fake_docker
        from tflite_forge import container as ct
        from tflite_forge.errors import EngineError
        engine = fake_docker(Path(sys.argv[1]))
        try:
            with ct.Container(engine, ct.ContainerSpec(image="img:1", purpose="probe"), ready_timeout=1):
                print("entered")
        except EngineError as err:
            print(f"EngineError: {err}")
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(ROOT)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    [line] = proc.stdout.splitlines()
    assert line.startswith("EngineError: container tflite-forge-probe-") and "did not answer within 1 s" in line


def test_a_load_that_never_finishes_is_stopped_with_one_line(tmp_path):
    engine = fake_docker(tmp_path)
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(b"\0" * 10240)
    with pytest.raises(EngineError, match=r"docker load of .*rootfs\.tar as base:arm64 did not finish within 1 s") as err:
        image_io.load_rootfs(engine, rootfs, "base:arm64", platform="linux/arm64", timeout=1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("call, what", [
    (lambda e: ct.list_volumes(e, (("io.tflite-forge.kind", "build"),)), "list volumes"),
    (lambda e: image_io.list_images(e), "list images"),
    (lambda e: ct.list_containers(e), "list containers"),
])
def test_a_refused_listing_is_an_error_not_an_empty_list(tmp_path, call, what):
    with pytest.raises(EngineError, match=rf"docker refused to {what}: permission denied while trying to connect"):
        call(fake_docker(tmp_path))


def test_a_refused_image_removal_is_an_error_but_an_image_already_gone_is_not(tmp_path):
    engine = fake_docker(tmp_path)
    with pytest.raises(EngineError, match=r"refused to remove image\(s\) tflite-forge/builder:x, gone:1: .*conflict"):
        image_io.remove_images(engine, ["tflite-forge/builder:x", "gone:1"])
    gone_only = Path(engine.binary)
    gone_only.write_text('#!/bin/sh\necho "Error: No such image: gone:1" >&2\nexit 1\n')
    image_io.remove_images(engine, ["gone:1"])


def test_invoke_clean_fails_when_the_engine_refuses(tmp_path):
    engine = fake_docker(tmp_path)
    work = tmp_path / "work"
    (work / "out" / "kept").mkdir(parents=True)
    env = {**os.environ, "TFLITE_FORGE_WORK_DIR": str(work), "TFLITE_FORGE_ENGINE": engine.binary}
    proc = subprocess.run([sys.executable, "-m", "invoke", "clean"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == EngineError.exit_code, proc.stdout + proc.stderr
    assert "removed" not in proc.stdout and "Traceback" not in proc.stderr
    assert "docker refused to list volumes: permission denied" in proc.stderr
    assert (work / "out" / "kept").is_dir()
