"""invoke test --model: the host-side checks (model file, .npy inputs, options), the JSON-lines
protocol and its report, and the tflite-runtime twin of run_model.c run by the real interpreter
(tflite-runtime from PyPI) on the host: the project's add model and TensorFlow's own add.bin."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.ci import unavailable
from tests.shared_models import ADD_BIN_SHAPE, add_bin
from tflite_forge.errors import ConfigError, PackageError
from tflite_forge.model_run import ModelRequest, make_request, parse_run, render
from tflite_forge.pipeline import run_model_test
from tflite_forge.settings import Settings
from tflite_forge.resources import SMOKE_DIR
from tflite_forge.tflite_model import check_model_file, read_npy, write_add_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def add_model(tmp_path) -> Path:
    return write_add_model(tmp_path / "add.tflite")


# ---------------------------------------------------------------- the model file

def test_a_tflite_model_passes_the_host_check(add_model):
    assert check_model_file(add_model) == add_model


@pytest.mark.parametrize("content, says", [
    (b"# not a model\n" * 4, "no TFL3 identifier: bytes 4..8 are b't a '"),
    (b"", "no TFL3 identifier: the file is empty"),
    (b"\x10\x00", "no TFL3 identifier: it is only 2 bytes long"),
    (b"\x00\x00\x00\x00TFL3", "its root table at byte 0 lies outside its 8 bytes"),
    (b"\xff\x00\x00\x00TFL3" + bytes(24), "its root table at byte 255 lies outside its 32 bytes"),
])
def test_a_file_that_is_not_a_model_is_one_line_exit_12(tmp_path, content, says):
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(PackageError) as err:
        check_model_file(path)
    assert err.value.exit_code == 12
    assert f"{path} is not a TensorFlow Lite model (" in str(err.value) and says in str(err.value)
    assert "\n" not in str(err.value) and "; " in str(err.value)


def test_a_missing_model_or_a_folder_is_a_bad_option(tmp_path):
    with pytest.raises(ConfigError, match=r"--model .*nope.tflite does not exist; give the path of a .tflite file"):
        check_model_file(tmp_path / "nope.tflite")
    with pytest.raises(ConfigError, match="is a folder"):
        check_model_file(tmp_path)


# ---------------------------------------------------------------- .npy inputs, read without numpy

@pytest.mark.parametrize("array, type_name", [
    (np.arange(192, dtype=np.float32).reshape(1, 8, 8, 3), "float32"),
    (np.array([[1, -2], [3, 4]], dtype=np.int8), "int8"),
    (np.array([0, 255], dtype=np.uint8), "uint8"),
    (np.array([True, False, True]), "bool"),
    (np.array([2**40, -1], dtype=np.int64), "int64"),
    (np.array(2.5, dtype=np.float64), "float64"),
    (np.array([1.5], dtype=np.float16), "float16"),
    (np.zeros((0, 3), dtype=np.int32), "int32"),
])
def test_read_npy_matches_numpy(tmp_path, array, type_name):
    path = tmp_path / "a.npy"
    np.save(path, array)
    got = read_npy(path)
    assert (got.type_name, got.shape, got.data) == (type_name, array.shape, array.astype(array.dtype.newbyteorder("<")).tobytes())


def test_read_npy_format_version_2(tmp_path):
    path = tmp_path / "v2.npy"
    with path.open("wb") as fh:
        np.lib.format.write_array(fh, np.array([1.0, 3.0], dtype=np.float32), version=(2, 0))
    assert read_npy(path).shape == (2,) and read_npy(path).data == np.array([1, 3], dtype=np.float32).tobytes()


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_text("1,3\n"), "is not a .npy file (no NumPy format header); write it with numpy.save"),
    (lambda p: np.save(p, np.array(["a"], dtype=object), allow_pickle=True), "dtype '|O' has no TensorFlow Lite tensor type"),
    (lambda p: np.save(p, np.array([1, 2], dtype=">f4")), "big-endian (>f4); save it little-endian: array.astype('<f4')"),
    (lambda p: np.save(p, np.asfortranarray(np.ones((2, 3), dtype=np.float32))), "Fortran order"),
    (lambda p: p.write_bytes(_npy_bytes(np.ones(4, dtype=np.float32))[:-4]), "shape [4] of float32 needs 16 bytes, the file holds 12"),
])
def test_bad_npy_is_one_line_exit_2(tmp_path, make, says):
    path = tmp_path / "in.npy"
    make(path)
    with pytest.raises(ConfigError) as err:
        read_npy(path)
    assert err.value.exit_code == 2 and says in str(err.value) and str(err.value).startswith(f"--input {path}")


def _npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


# ---------------------------------------------------------------- options

def test_options_are_checked_before_anything_runs(tmp_path, add_model):
    np.save(tmp_path / "a.npy", np.array([1, 3], dtype=np.float32))
    np.save(tmp_path / "b.npy", np.array([7], dtype=np.int32))
    request = make_request(add_model, inputs=f"{tmp_path}/a.npy,{tmp_path}/b.npy", runs="4", resize=True)
    assert request.runs == 4 and [a.type_name for a in request.inputs] == ["float32", "int32"]
    assert request.feeds("/in") == ["0:1:2:1:/in/input-0.raw", "1:2:1:1:/in/input-1.raw"]
    request.write_inputs(tmp_path)
    assert (tmp_path / "input-1.raw").read_bytes() == np.array([7], dtype=np.int32).tobytes()
    for kwargs, says in [({"runs": 0}, "--runs 0: expected at least 1"), ({"runs": "x"}, "--runs 'x'"),
                         ({"interpreter": "tflite"}, "expected one of c-api, tflite-runtime"),
                         ({"resize": True}, "give --input FILE.npy too")]:
        with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(".", r"\.")):
            make_request(add_model, **kwargs)


# ---------------------------------------------------------------- the protocol

def _request(model: Path, *arrays: np.ndarray, tmp_path: Path, resize=False) -> ModelRequest:
    paths = []
    for i, array in enumerate(arrays):
        np.save(tmp_path / f"in{i}.npy", array)
        paths.append(str(tmp_path / f"in{i}.npy"))
    return make_request(model, inputs=",".join(paths) or None, runs=3, resize=resize)


def _lines(*events: dict) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


OK_RUN = (
    {"event": "library", "version": "2.14.0"},
    {"event": "tensor", "io": "input", "index": 0, "name": "input", "type": 1, "shape": [1, 8, 8, 3], "bytes": 768,
     "fed": "zeros"},
    {"event": "invoke", "runs": 3, "ns": [52000, 1000, 3000]},
    {"event": "tensor", "io": "output", "index": 0, "name": "output", "type": 1, "shape": [1, 8, 8, 3],
     "bytes": 768, "values": [0, 3, 6, 9, 12, 15, 18, 21], "count": 192, "sum": 55008},
    {"event": "done"},
)


def test_parse_and_render_a_run(add_model, tmp_path):
    report = parse_run(_lines(*OK_RUN), "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n", 0,
                       request=_request(add_model, tmp_path=tmp_path), arch="aarch64",
                       where="under qemu-aarch64-static", who="lib", emulated=True)
    assert [(t.name, t.type, t.shape) for t in report.inputs] == [("input", "float32", (1, 8, 8, 3))]
    assert [(t.name, t.values[:2], t.count, t.total) for t in report.outputs] == [("output", (0, 3), 192, 55008)]
    assert report.median_ns == 3000 and report.version == "2.14.0"
    lines = render(report, source="libtensorflowlite_c-2.14.0-linux-aarch64.tar.gz")
    assert lines == [
        "test: add.tflite on aarch64 through libtensorflowlite_c-2.14.0-linux-aarch64.tar.gz (TfLiteVersion 2.14.0), "
        "under qemu-aarch64-static",
        "  input  0  input   float32[1, 8, 8, 3]  768 B  fed zeros",
        "  output 0  output  float32[1, 8, 8, 3]  768 B  values 0, 3, 6, 9, 12, 15, 18, 21, ... (192 values, sum 55008)",
        "  invoke    median 3.0 µs over 3 run(s) (min 1.0 µs, max 52.0 µs; emulated: not the board's speed)",
    ]


def test_input_mismatches_are_one_line_naming_the_fix(add_model, tmp_path):
    request = _request(add_model, np.zeros((2,), dtype=np.float64), tmp_path=tmp_path)
    base = {"event": "error", "index": 0, "name": "input", "type": 1, "shape": [1], "bytes": 4, "given_type": 11,
            "given_shape": [2], "given_bytes": 16}
    cases = [
        ("input_type", r"--input .*in0.npy is float64 \[2\], but input 0 'input' of add.tflite takes float32 \[1\]; "
                       r"save it as float32 \(array.astype\('float32'\)\)"),
        ("input_shape", r"takes float32 \[1\]; save it with shape \[1\], or add --resize to resize the input to \[2\]"),
        ("input_size", r"holds 16 bytes, but input 0 'input' of add.tflite \(float32 \[1\]\) takes 4"),
        ("resize", r"--resize: input 0 'input' of add.tflite cannot be resized to \[2\]"),
    ]
    for stage, says in cases:
        with pytest.raises(ConfigError, match=says):
            parse_run(_lines(OK_RUN[0], {**base, "stage": stage}), "", 1, request=request, arch="x86_64",
                      where="natively", who="lib")
    with pytest.raises(ConfigError, match=r"--input names 1 array\(s\) but add.tflite has 0 input\(s\)"):
        parse_run(_lines({"event": "error", "stage": "feed", "index": 0, "inputs": 0}), "", 1, request=request,
                  arch="x86_64", where="natively", who="lib")


def test_library_failures_and_crashes_are_one_line(add_model, tmp_path):
    request = _request(add_model, tmp_path=tmp_path)
    kw = dict(request=request, arch="aarch64", where="under qemu-aarch64-static", who="libtensorflowlite_c 2.14.0 (aarch64)")
    with pytest.raises(PackageError, match=r"could not make an interpreter for add.tflite: Didn't find op for "
                                           r"builtin opcode 'GELU' version '1'; every operator"):
        parse_run(_lines(OK_RUN[0], {"event": "error", "stage": "interpreter", "message": "NULL"}),
                  "ERROR: Didn't find op for builtin opcode 'GELU' version '1'\nERROR: Registration failed.\n", 1, **kw)
    with pytest.raises(PackageError, match=r"stopped under qemu-aarch64-static on add.tflite \(exit -11\) before it "
                                           r"finished: qemu: uncaught target signal 11"):
        parse_run(_lines(OK_RUN[0]), "qemu: uncaught target signal 11 (Segmentation fault) - core dumped\n", -11, **kw)


# ---------------------------------------------------------------- run_model_tflite_runtime.py with the real interpreter

@pytest.fixture
def tflite_runtime_here():
    """The real interpreter on the host; CI installs it (pyproject [test]): missing there is a failure."""
    try:
        import tflite_runtime.interpreter  # noqa: F401
    except ImportError:
        unavailable("tflite_runtime is not importable: pip install 'tflite-runtime==2.14.0' 'numpy<2' "
                    "(x86_64, Python 3.11)")


def _run_script(request: ModelRequest, folder: Path):
    request.write_inputs(folder)
    proc = subprocess.run([sys.executable, str(SMOKE_DIR / "run_model_tflite_runtime.py"), str(request.model),
                           str(request.runs), *request.feeds(folder)], capture_output=True, text=True, timeout=120)
    return parse_run(proc.stdout, proc.stderr, proc.returncode, request=request, arch="x86_64", where="natively",
                     who="tflite-runtime")


def test_tflite_runtime_twin_runs_add_bin_with_zeros_and_with_values(tmp_path, tflite_runtime_here):
    model = add_bin()
    report = _run_script(_request(model, tmp_path=tmp_path), tmp_path)
    assert [(t.name, t.type, list(t.shape), t.fed) for t in report.inputs] == [("input", "float32", ADD_BIN_SHAPE, "zeros")]
    [out] = report.outputs
    assert (out.name, out.type, list(out.shape), out.count) == ("output", "float32", ADD_BIN_SHAPE, 192)
    assert out.values == (0.0,) * 8 and out.total == 0.0            # zeros in, zeros out (not the uninitialised arena)
    assert len(report.invoke_ns) == 3 and report.median_ns > 0

    x = np.arange(192, dtype=np.float32).reshape(ADD_BIN_SHAPE) - 50.5
    report = _run_script(_request(model, x, tmp_path=tmp_path), tmp_path)
    [out] = report.outputs
    assert list(out.values) == (3 * x).reshape(-1)[:8].tolist() and out.total == pytest.approx(float((3 * x).sum()))
    # The C API smoke test's sequence on the real model: resize input 0 to {2}, feed {1, 3}, get {3, 9}.
    report = _run_script(_request(model, np.array([1, 3], dtype=np.float32), tmp_path=tmp_path, resize=True), tmp_path)
    assert [list(t.shape) for t in report.inputs] == [[2]] and report.outputs[0].values == (3.0, 9.0)


def test_tflite_runtime_twin_agrees_on_the_projects_model_and_refuses_a_wrong_input(tmp_path, add_model,
                                                                                    tflite_runtime_here):
    report = _run_script(_request(add_model, np.array([1, 3], dtype=np.float32), tmp_path=tmp_path, resize=True),
                         tmp_path)
    assert report.outputs[0].values == (3.0, 9.0) and report.outputs[0].name == "output"
    with pytest.raises(ConfigError, match=r"is float32 \[2\], but input 0 'input' of add.bin takes float32 "
                                          r"\[1, 8, 8, 3\]; save it with shape \[1, 8, 8, 3\], or add --resize"):
        _run_script(_request(add_bin(), np.array([1, 3], dtype=np.float32), tmp_path=tmp_path), tmp_path)
    with pytest.raises(ConfigError, match=r"is int32 \[1, 8, 8, 3\], but input 0 'input' of add.bin takes float32"):
        _run_script(_request(add_bin(), np.zeros(ADD_BIN_SHAPE, dtype=np.int32), tmp_path=tmp_path), tmp_path)


# ---------------------------------------------------------------- the task

def test_invoke_test_model_on_a_non_model_is_one_line_and_nothing_is_packaged(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("these are not weights\n")
    proc = subprocess.run([sys.executable, "-m", "invoke", "test", f"--model={bad}", "--arch=aarch64"], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TFLITE_FORGE_DIST_DIR": str(tmp_path / "dist"),
                               "TFLITE_FORGE_WORK_DIR": str(tmp_path / "work")})
    assert proc.returncode == 12
    assert proc.stderr.strip().splitlines() == [
        f"tflite-forge: {bad} is not a TensorFlow Lite model (no TFL3 identifier: bytes 4..8 are b'e ar'); "
        "give a .tflite flatbuffer (as written by the TFLite converter)"]
    assert not (tmp_path / "dist").exists() and not (tmp_path / "work").exists()


def test_tflite_runtime_on_an_arch_without_wheels_is_refused_before_packaging(tmp_path, add_model):
    settings = Settings(arch="armhf", cache_dir=tmp_path / "cache", work_dir=tmp_path / "work",
                        dist_dir=tmp_path / "dist")
    with pytest.raises(ConfigError) as err:
        run_model_test(settings, make_request(add_model, interpreter="tflite-runtime"), log=lambda _: None)
    assert str(err.value) == ("--interpreter tflite-runtime: PyPI has tflite-runtime wheels for aarch64 and x86_64 "
                              "only, not armhf; use --interpreter c-api there")
    assert not (tmp_path / "dist").exists()


def test_invoke_help_documents_every_model_option():
    proc = subprocess.run([sys.executable, "-m", "invoke", "--help", "test"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    for flag in ("--model=STRING", "--input=STRING", "--runs=INT", "--resize", "--interpreter=STRING"):
        line = next(line for line in proc.stdout.splitlines() if line.strip().startswith(flag))
        assert len(line.strip()) > len(flag) + 10, line       # a help text, not a bare flag
