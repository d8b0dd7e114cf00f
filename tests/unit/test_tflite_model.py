"""The project's own add model, checked by the real TFLite interpreter from PyPI."""

from __future__ import annotations


import numpy as np
import pytest

from tests.ci import ON_CI
from tflite_forge.tflite_model import FILE_IDENTIFIER, add_model_bytes, write_add_model

if ON_CI:  # CI installs it (pyproject [test]): missing there is a failure
    import tflite_runtime.interpreter as tflite_interpreter
else:
    tflite_interpreter = pytest.importorskip(
        "tflite_runtime.interpreter",
        reason="pip install 'tflite-runtime==2.14.0' 'numpy<2' (x86_64, Python 3.11): the model is checked by the real interpreter")


def test_file_identifier_and_determinism():
    data = add_model_bytes()
    assert data[4:8] == FILE_IDENTIFIER == b"TFL3"
    assert add_model_bytes() == data


def test_write_is_atomic_and_leaves_no_temp(tmp_path):
    path = write_add_model(tmp_path / "models" / "add.tflite")
    assert path.read_bytes() == add_model_bytes()
    assert [p.name for p in path.parent.iterdir()] == ["add.tflite"]


def test_real_interpreter_computes_three_times_input(tmp_path):
    path = write_add_model(tmp_path / "add.tflite")
    interp = tflite_interpreter.Interpreter(model_path=str(path))
    inputs, outputs = interp.get_input_details(), interp.get_output_details()
    assert [d["name"] for d in inputs] == ["input"]
    assert [d["name"] for d in outputs] == ["output"]
    assert inputs[0]["dtype"] == np.float32 and outputs[0]["dtype"] == np.float32
    ops = [op["op_name"] for op in interp._get_ops_details() if op["op_name"] != "DELEGATE"]
    assert ops == ["ADD", "ADD"]
    # The C API smoke test's sequence: resize input 0 to {2}, feed {1, 3}, expect {3, 9}.
    interp.resize_tensor_input(inputs[0]["index"], [2])
    interp.allocate_tensors()
    interp.set_tensor(inputs[0]["index"], np.array([1.0, 3.0], dtype=np.float32))
    interp.invoke()
    assert interp.get_tensor(outputs[0]["index"]).tolist() == [3.0, 9.0]
    interp.resize_tensor_input(inputs[0]["index"], [3])
    interp.allocate_tensors()
    interp.set_tensor(inputs[0]["index"], np.array([-2.0, 0.5, 10.0], dtype=np.float32))
    interp.invoke()
    assert interp.get_tensor(outputs[0]["index"]).tolist() == [-6.0, 1.5, 30.0]
