"""Drive libtensorflowlite_c through ctypes, as a Python user of the C library would.

    python3 smoke_ctypes.py LIBTENSORFLOWLITE_C.so MODEL.tflite [STAMP]

Same sequence as smoke.c: load the add model, resize input 0 to {2}, feed {1, 3},
invoke, expect {3, 9}. Standard library only (ctypes), so it runs on a bare python3.
"""

import ctypes
import sys

OK = 0  # kTfLiteOk


def main(argv):
    if len(argv) < 3:
        print(f"usage: {argv[0]} LIBTENSORFLOWLITE_C.so MODEL.tflite [STAMP]", file=sys.stderr)
        return 2
    lib = ctypes.CDLL(argv[1])
    lib.TfLiteVersion.restype = ctypes.c_char_p
    lib.TfLiteModelCreateFromFile.restype = ctypes.c_void_p
    lib.TfLiteModelCreateFromFile.argtypes = [ctypes.c_char_p]
    lib.TfLiteInterpreterOptionsCreate.restype = ctypes.c_void_p
    lib.TfLiteInterpreterCreate.restype = ctypes.c_void_p
    lib.TfLiteInterpreterCreate.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.TfLiteInterpreterResizeInputTensor.argtypes = [ctypes.c_void_p, ctypes.c_int32,
                                                       ctypes.POINTER(ctypes.c_int), ctypes.c_int32]
    lib.TfLiteInterpreterAllocateTensors.argtypes = [ctypes.c_void_p]
    lib.TfLiteInterpreterInvoke.argtypes = [ctypes.c_void_p]
    lib.TfLiteInterpreterGetInputTensor.restype = ctypes.c_void_p
    lib.TfLiteInterpreterGetInputTensor.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.TfLiteInterpreterGetOutputTensor.restype = ctypes.c_void_p
    lib.TfLiteInterpreterGetOutputTensor.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.TfLiteTensorCopyFromBuffer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.TfLiteTensorCopyToBuffer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    for name in ("TfLiteInterpreterDelete", "TfLiteInterpreterOptionsDelete", "TfLiteModelDelete"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]

    print(f"smoke-ctypes: TensorFlow Lite C API {lib.TfLiteVersion().decode()}")
    model = lib.TfLiteModelCreateFromFile(argv[2].encode())
    if not model:
        print("smoke-ctypes: FAILED: TfLiteModelCreateFromFile", file=sys.stderr)
        return 1
    options = lib.TfLiteInterpreterOptionsCreate()
    interpreter = lib.TfLiteInterpreterCreate(model, options)
    dims = (ctypes.c_int * 1)(2)
    steps = [
        ("resize input 0 to {2}", lambda: lib.TfLiteInterpreterResizeInputTensor(interpreter, 0, dims, 1)),
        ("allocate tensors", lambda: lib.TfLiteInterpreterAllocateTensors(interpreter)),
    ]
    for what, call in steps:
        if call() != OK:
            print(f"smoke-ctypes: FAILED: {what}", file=sys.stderr)
            return 1
    data_in = (ctypes.c_float * 2)(1.0, 3.0)
    data_out = (ctypes.c_float * 2)()
    tensor_in = lib.TfLiteInterpreterGetInputTensor(interpreter, 0)
    if lib.TfLiteTensorCopyFromBuffer(tensor_in, data_in, ctypes.sizeof(data_in)) != OK or \
            lib.TfLiteInterpreterInvoke(interpreter) != OK or \
            lib.TfLiteTensorCopyToBuffer(lib.TfLiteInterpreterGetOutputTensor(interpreter, 0), data_out,
                                         ctypes.sizeof(data_out)) != OK:
        print("smoke-ctypes: FAILED: copy in / invoke / copy out", file=sys.stderr)
        return 1
    result = list(data_out)
    lib.TfLiteInterpreterDelete(interpreter)
    lib.TfLiteInterpreterOptionsDelete(options)
    lib.TfLiteModelDelete(model)
    if result != [3.0, 9.0]:
        print(f"smoke-ctypes: FAILED: expected [3.0, 9.0], got {result}", file=sys.stderr)
        return 1
    print(f"smoke-ctypes: ok: [1.0, 3.0] -> {result}")
    if len(argv) > 3:
        with open(argv[3], "w") as stamp:
            stamp.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
