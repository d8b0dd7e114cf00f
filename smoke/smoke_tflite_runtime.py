"""Smoke test for the `wheel` runtime image: the prebuilt tflite-runtime wheel runs the add model.

    python3 smoke_tflite_runtime.py MODEL.tflite [STAMP]
"""

import sys

import numpy as np
from tflite_runtime.interpreter import Interpreter


def main(argv):
    interpreter = Interpreter(model_path=argv[1])
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [2])
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, np.array([1.0, 3.0], dtype=np.float32))
    interpreter.invoke()
    result = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).tolist()
    if result != [3.0, 9.0]:
        print(f"smoke-wheel: FAILED: expected [3.0, 9.0], got {result}", file=sys.stderr)
        return 1
    print(f"smoke-wheel: ok: [1.0, 3.0] -> {result}")
    if len(argv) > 2:
        with open(argv[2], "w") as stamp:
            stamp.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
