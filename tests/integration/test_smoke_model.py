"""invoke test --model on real targets: run_model.c built against packaged tarballs (cross compilers,
qemu-user), TensorFlow's add.bin through tflite-runtime in the wheel runtime image (a real engine),
and the miniature's own build through the whole chain."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from tests.ci import need_tools, unavailable
from tests.fake_build import VERSION, make_fake_build, settings_for
from tests.shared_models import ADD_BIN_SHAPE, add_bin
from tflite_forge import image_io
from tflite_forge import tflite_model
from tflite_forge.arches import host_arch, resolve_arch
from tflite_forge.errors import ConfigError
from tflite_forge.model_run import make_request, parse_run
from tflite_forge.pipeline import run_model_test, run_package
from tflite_forge.runtime_image import image_tag
from tflite_forge.resources import SMOKE_DIR
from tflite_forge.tflite_model import write_add_model

pytestmark = pytest.mark.integration


def _npy(path, array) -> str:
    np.save(path, array)
    return str(path)


def _need_target(arch_name: str):
    arch = resolve_arch(arch_name)
    need_tools(f"{arch.triplet}-g++", "scons")
    if not arch.runs_natively():
        need_tools(arch.qemu_binary)
    return arch


@pytest.mark.parametrize("arch_name", ["aarch64", "armhf", "x86_64"])
def test_model_through_the_packaged_library_on_target(tmp_path, arch_name):
    arch = _need_target(arch_name)
    settings = settings_for(make_fake_build(tmp_path, arch_name), tmp_path / "dist")
    run_package(settings, log=lambda _: None)
    model = write_add_model(tmp_path / "add.tflite")

    lines: list[str] = []
    [zeros] = run_model_test(settings, make_request(model, runs=4), log=lines.append)
    assert zeros.version == VERSION and zeros.interpreter == "c-api" and len(zeros.invoke_ns) == 4
    assert [(t.name, t.type, t.shape, t.fed) for t in zeros.inputs] == [("input", "float32", (1,), "zeros")]
    assert [(t.name, t.values, t.total) for t in zeros.outputs] == [("output", (0,), 0)]
    assert zeros.where == ("natively" if arch.runs_natively() else f"under {arch.qemu_binary}")
    assert zeros.emulated == (not arch.runs_natively())
    assert lines[0].startswith(f"test: add.tflite on {arch_name} through libtensorflowlite_c-{VERSION}-linux-{arch_name}"
                               f".tar.gz (TfLiteVersion {VERSION})")
    assert lines[-1].startswith("  invoke    median ") and "over 4 run(s)" in lines[-1]

    request = make_request(model, inputs=_npy(tmp_path / "x.npy", np.array([1, 3], dtype=np.float32)), resize=True)
    [fed] = run_model_test(settings, request, log=lambda _: None)
    assert [(t.shape, t.fed) for t in fed.inputs] == [((2,), "file")]
    assert fed.outputs[0].values == (3, 9) and fed.outputs[0].total == 12

    wrong = make_request(model, inputs=_npy(tmp_path / "w.npy", np.array([1, 3], dtype=np.int32)), resize=True)
    with pytest.raises(ConfigError, match=r"w.npy is int32 \[2\], but input 0 'input' of add.tflite takes float32 "
                                          r"\[2\]; save it as float32"):
        run_model_test(settings, wrong, log=lambda _: None)


def test_invoke_package_test_model_prints_the_report(tmp_path, forge):
    _need_target("aarch64")
    fake = make_fake_build(tmp_path, "aarch64")
    model = write_add_model(tmp_path / "add.tflite")
    env = {"TFLITE_FORGE_WORK_DIR": str(fake.work_dir), "TFLITE_FORGE_DIST_DIR": str(tmp_path / "dist"),
           "TFLITE_FORGE_CACHE": str(tmp_path / "cache")}
    x = _npy(tmp_path / "x.npy", np.array([1, 3], dtype=np.float32))
    proc = forge("package", f"--recipe={fake.recipe_path}", "--arch=aarch64", "test", f"--model={model}",
                 f"--input={x}", "--resize", "--runs=3", env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = proc.stdout[proc.stdout.index("test: add.tflite"):].splitlines()
    assert report[0] == (f"test: add.tflite on aarch64 through libtensorflowlite_c-{VERSION}-linux-aarch64.tar.gz "
                         f"(TfLiteVersion {VERSION}), under qemu-aarch64-static")
    assert report[1].split() == ["input", "0", "input", "float32[2]", "8", "B", "fed", "file"]
    assert report[2].split()[:7] == ["output", "0", "output", "float32[2]", "8", "B", "values"]
    assert "values 3, 9 (2 values, sum 12)" in report[2]
    assert "over 3 run(s)" in report[3] and "emulated: not the board's speed" in report[3]
    # The same tarball, a wrong array: one line, exit 2, no traceback.
    bad = _npy(tmp_path / "bad.npy", np.zeros((2, 2), dtype=np.float32))
    proc = forge("test", f"--recipe={fake.recipe_path}", "--arch=aarch64", f"--model={model}", f"--input={bad}",
                 env=env, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"tflite-forge: --input {bad} is float32 [2, 2], but input 0 'input' of add.tflite takes float32 [1]; "
        "save it with shape [1], or add --resize to resize the input to [2, 2]"]


def _leftover_containers(engine) -> list[str]:
    proc = subprocess.run(engine.argv("ps", "-a", "--filter", "label=io.tflite-forge.purpose=run-model",
                                      "--format", "{{.Names}}"), capture_output=True, text=True, check=True)
    return proc.stdout.split()


def test_add_bin_through_tflite_runtime_in_the_wheel_image(tmp_path, docker_engine, base_image_docker):
    """CI's run of TensorFlow's own add.bin: the real interpreter (tflite-runtime from PyPI) in the
    host arch's wheel runtime image, the model mounted read-only, the container removed after."""
    model = add_bin()
    arch = host_arch()
    fake = make_fake_build(tmp_path, arch.name)
    settings = dataclasses.replace(settings_for(fake, tmp_path / "dist"), engine="docker")
    run_package(settings, log=lambda _: None)
    tag = image_tag(VERSION, arch.name, "wheel")
    try:
        lines: list[str] = []
        [zeros] = run_model_test(settings, make_request(model, interpreter="tflite-runtime", runs=5), log=lines.append)
        assert zeros.interpreter == "tflite-runtime" and zeros.version == "2.14.0" and zeros.where == f"in {tag}"
        assert [(t.index, t.name, t.type, list(t.shape), t.nbytes) for t in zeros.inputs] == \
            [(0, "input", "float32", ADD_BIN_SHAPE, 768)]
        assert [(t.index, t.name, t.type, list(t.shape)) for t in zeros.outputs] == \
            [(0, "output", "float32", ADD_BIN_SHAPE)]
        assert zeros.outputs[0].values == (0.0,) * 8 and zeros.outputs[0].total == 0.0 and len(zeros.invoke_ns) == 5
        assert any(line.startswith("test: add.bin on ") and "through tflite-runtime 2.14.0 (the PyPI wheel)" in line
                   for line in lines), lines

        x = np.linspace(-4, 4, 192, dtype=np.float32).reshape(ADD_BIN_SHAPE)
        request = make_request(model, inputs=_npy(tmp_path / "x.npy", x), interpreter="tflite-runtime")
        [fed] = run_model_test(settings, request, log=lambda _: None)
        assert list(fed.outputs[0].values) == pytest.approx((3 * x).reshape(-1)[:8].tolist())
        assert fed.outputs[0].total == pytest.approx(float((3 * x).astype(np.float64).sum()), abs=1e-3)

        request = make_request(model, inputs=_npy(tmp_path / "y.npy", np.array([1, 3], dtype=np.float32)),
                               resize=True, interpreter="tflite-runtime")
        [resized] = run_model_test(settings, request, log=lambda _: None)
        assert resized.inputs[0].shape == (2,) and resized.outputs[0].values == (3.0, 9.0)

        with pytest.raises(ConfigError, match=r"takes float32 \[1, 8, 8, 3\]; save it with shape \[1, 8, 8, 3\]"):
            run_model_test(settings, make_request(model, inputs=str(tmp_path / "y.npy"), interpreter="tflite-runtime"),
                           log=lambda _: None)
        assert _leftover_containers(docker_engine) == []
    finally:
        image_io.remove_images(docker_engine, [tag])


def test_miniature_build_runs_a_model_through_the_chain(miniature, base_image_docker, docker_engine, forge, tmp_path):
    """The miniature's real build (container, cross compiler) packaged and run under qemu by
    `invoke fetch build package test --model`; a model it refuses (schema 4) is one line."""
    need_tools("aarch64-linux-gnu-gcc", "qemu-aarch64-static", "scons")
    model = write_add_model(tmp_path / "add.tflite")
    x = _npy(tmp_path / "x.npy", np.array([1, 3], dtype=np.float32))
    env = {**miniature.env, "TFLITE_FORGE_DIST_DIR": str(tmp_path / "dist")}
    proc = forge("fetch", "build", "package", "test", "--arch=aarch64", "--engine=docker", *miniature.args,
                 f"--model={model}", f"--input={x}", "--resize", env=env, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    report = proc.stdout[proc.stdout.index("test: add.tflite"):].splitlines()
    assert "under qemu-aarch64-static" in report[0] and "(TfLiteVersion " in report[0]
    assert report[1].split()[:4] == ["input", "0", "input", "float32[2]"]
    assert "values 3, 9 (2 values, sum 12)" in report[2]

    original = tflite_model.SCHEMA_VERSION
    tflite_model.SCHEMA_VERSION = 4
    try:
        newer = tmp_path / "schema4.tflite"
        newer.write_bytes(tflite_model.add_model_bytes())
    finally:
        tflite_model.SCHEMA_VERSION = original
    proc = forge("test", "--arch=aarch64", *miniature.args, f"--model={newer}", env=env, timeout=600)
    assert proc.returncode == 12 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("tflite-forge: libtensorflowlite_c ") and "(aarch64) could not load schema4.tflite: " \
        "the model's schema version is 4, expected 3; check that it is a complete .tflite file" in line


def test_run_model_c_and_its_tflite_runtime_twin_report_the_same(tmp_path):
    """The two interpreters, one protocol: run_model.c against a packaged x86_64 library and
    run_model_tflite_runtime.py on the host's real tflite-runtime give the same tensors and values."""
    _need_target("x86_64")
    try:
        import tflite_runtime.interpreter  # noqa: F401
    except ImportError:
        unavailable("tflite_runtime is not importable: pip install 'tflite-runtime==2.14.0' 'numpy<2'")
    settings = settings_for(make_fake_build(tmp_path, "x86_64"), tmp_path / "dist")
    run_package(settings, log=lambda _: None)
    model = write_add_model(tmp_path / "add.tflite")
    request = make_request(model, inputs=_npy(tmp_path / "x.npy", np.array([1, -3, 0.5], dtype=np.float32)),
                           resize=True, runs=2)
    [c_api] = run_model_test(settings, request, log=lambda _: None)
    request.write_inputs(tmp_path)
    proc = subprocess.run([sys.executable, str(SMOKE_DIR / "run_model_tflite_runtime.py"), str(model), "2",
                           *request.feeds(tmp_path)], capture_output=True, text=True, timeout=120)
    twin = parse_run(proc.stdout, proc.stderr, proc.returncode, request=request, arch="x86_64", where="natively",
                     who="tflite-runtime")

    def facts(report):
        return [(t.io, t.index, t.name, t.type, t.shape, t.nbytes, t.fed, t.values, t.count, t.total)
                for t in (*report.inputs, *report.outputs)]
    assert facts(c_api) == facts(twin)
    assert c_api.outputs[0].values == (3, -9, 1.5)
