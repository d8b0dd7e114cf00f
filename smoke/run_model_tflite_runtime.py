"""run_model.c's twin on the tflite-runtime wheel from PyPI: same arguments, same JSON lines.

    python3 run_model_tflite_runtime.py MODEL RUNS [INDEX:TYPE:SHAPE:RESIZE:FILE ...]

Runs in the `wheel` runtime image (or wherever tflite-runtime and numpy are installed), so a
model can be checked against the real interpreter on the target arch. tflite_forge.smoke
renders the output; see smoke/run_model.c for the protocol.
"""

import json
import sys
import time

import numpy as np
import tflite_runtime
from tflite_runtime.interpreter import Interpreter

# numpy dtype name -> TfLiteType (c_api_types.h)
TYPES = {"float32": 1, "int32": 2, "uint8": 3, "int64": 4, "object_": 5, "bytes_": 5, "bool_": 6, "bool": 6,
         "int16": 7, "complex64": 8, "int8": 9, "float16": 10, "float64": 11, "complex128": 12, "uint64": 13,
         "uint32": 16, "uint16": 17}
HEAD = 8
NUMERIC = (1, 2, 3, 4, 6, 7, 9, 11, 13, 16, 17)   # what run_model.c prints values for


def emit(**fields):
    print(json.dumps(fields, separators=(",", ":")), flush=True)


def number(v):
    v = float(v)
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    return v


def type_code(dtype):
    return TYPES.get(np.dtype(dtype).name, TYPES.get(getattr(dtype, "__name__", ""), 0))


def describe(io, index, detail, tensor=None):
    shape = [int(d) for d in detail["shape"]]
    code = type_code(detail["dtype"])
    count = int(np.prod(shape)) if shape else 1
    itemsize = np.dtype(detail["dtype"]).itemsize if code != 5 else 0
    line = {"event": "tensor", "io": io, "index": index, "name": detail["name"], "type": code, "shape": shape,
            "bytes": count * itemsize}
    if tensor is not None and code in NUMERIC:
        flat = np.asarray(tensor).reshape(-1)
        line.update(values=[number(v) for v in flat[:HEAD]], count=int(flat.size),
                    sum=number(flat.astype(np.float64).sum()))
    return line


def parse_feed(spec):
    index, code, shape, resize, path = spec.split(":", 4)
    return {"index": int(index), "type": int(code), "shape": [int(d) for d in shape.split(",") if d],
            "resize": resize == "1", "file": path}


def fail_input(stage, index, detail, feed, given_bytes):
    line = describe("input", index, detail)
    line.update(event="error", stage=stage, given_type=feed["type"], given_shape=feed["shape"],
                given_bytes=given_bytes)
    del line["io"]
    emit(**line)
    return 1


def main(argv):
    if len(argv) < 3 or not argv[2].isdigit() or int(argv[2]) < 1:
        print(f"usage: {argv[0]} MODEL RUNS [INDEX:TYPE:SHAPE:RESIZE:FILE ...]", file=sys.stderr)
        return 2
    runs, feeds = int(argv[2]), [parse_feed(spec) for spec in argv[3:]]
    emit(event="library", version=tflite_runtime.__version__)
    try:
        interpreter = Interpreter(model_path=argv[1], num_threads=1)
    except (ValueError, RuntimeError) as err:
        emit(event="error", stage="model", message=(str(err).strip().splitlines() or ["(no message)"])[-1])
        return 1
    inputs = interpreter.get_input_details()
    for feed in feeds:
        if feed["index"] >= len(inputs):
            emit(event="error", stage="feed", index=feed["index"], inputs=len(inputs), message="no such input")
            return 1
        if feed["resize"]:
            try:
                interpreter.resize_tensor_input(inputs[feed["index"]]["index"], feed["shape"])
            except (ValueError, RuntimeError):
                return fail_input("resize", feed["index"], inputs[feed["index"]], feed, -1)
    try:
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        emit(event="error", stage="allocate", message=(str(err).strip().splitlines() or ["(no message)"])[-1])
        return 1
    inputs = interpreter.get_input_details()
    by_index = {feed["index"]: feed for feed in feeds}
    for i, detail in enumerate(inputs):
        feed, line = by_index.get(i), describe("input", i, detail)
        code, shape = line["type"], line["shape"]
        if feed is not None:
            with open(feed["file"], "rb") as fh:
                raw = fh.read()
            if feed["type"] != code:
                return fail_input("input_type", i, detail, feed, len(raw))
            if feed["shape"] != shape:
                return fail_input("input_shape", i, detail, feed, len(raw))
            if len(raw) != line["bytes"]:
                return fail_input("input_size", i, detail, feed, len(raw))
            interpreter.set_tensor(detail["index"], np.frombuffer(raw, dtype=np.dtype(detail["dtype"])).reshape(shape))
            line["fed"] = "file"
        elif code == 5:
            line["fed"] = "none"
        else:
            interpreter.set_tensor(detail["index"], np.zeros(shape, dtype=detail["dtype"]))
            line["fed"] = "zeros"
        emit(**line)
    times = []
    for run in range(runs):
        start = time.perf_counter_ns()
        try:
            interpreter.invoke()
        except (ValueError, RuntimeError) as err:
            last = (str(err).strip().splitlines() or ["(no message)"])[-1]
            emit(event="error", stage="invoke", message=f"invoke failed on run {run + 1}: {last}")
            return 1
        times.append(time.perf_counter_ns() - start)
    emit(event="invoke", runs=runs, ns=times)
    for o, detail in enumerate(interpreter.get_output_details()):
        emit(**describe("output", o, detail, interpreter.get_tensor(detail["index"])))
    emit(event="done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
