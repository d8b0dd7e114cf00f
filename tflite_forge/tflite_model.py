"""The smoke model, written by the project itself.

The C API smoke test in TensorFlow (CApiSimple.Smoke) uses `add.bin`: one float32
input "input", one output "output", two ADD nodes, output = 3 * input. This module
writes an equivalent .tflite file with the `flatbuffers` builder API, field by field
from the TFLite schema (tables Model, OperatorCode, SubGraph, Tensor, Operator,
Buffer, AddOptions; file identifier "TFL3"), so no TensorFlow checkout is needed:

    input ──ADD(input, input)──> doubled ──ADD(doubled, input)──> output

Field slots below are the schema's field order (0-based), which is the wire contract.

For `invoke test --model` it also knows any model file from the outside: `check_model_file`
(the "TFL3" identifier and a root table inside the file), `TENSOR_TYPES` (the C API's TfLiteType
values) and `read_npy` (a NumPy .npy input as a TfLiteType, a shape and raw bytes, without NumPy).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

import flatbuffers

from .errors import ConfigError, PackageError
from .fsutil import write_atomic

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
TENSOR_FLOAT32 = 0          # TensorType.FLOAT32
BUILTIN_ADD = 0             # BuiltinOperator.ADD
OPTIONS_ADD = 11            # BuiltinOptions.AddOptions (union type tag)
ACTIVATION_NONE = 0         # ActivationFunctionType.NONE

# (name, shape) of every tensor; indices are what operators and the subgraph refer to.
TENSORS = (("input", (1,)), ("doubled", (1,)), ("output", (1,)))
INPUT, DOUBLED, OUTPUT = 0, 1, 2
# Each ADD node: (input tensor indices, output tensor indices).
NODES = (((INPUT, INPUT), (DOUBLED,)), ((DOUBLED, INPUT), (OUTPUT,)))


def _int_vector(b: flatbuffers.Builder, values: tuple[int, ...]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def _offset_vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def add_model_bytes() -> bytes:
    """The add model as .tflite bytes (deterministic: same bytes on every call)."""
    b = flatbuffers.Builder(1024)

    # Buffer 0 is the schema's "no data" sentinel; every tensor here is computed, so all use it.
    b.StartObject(3)                      # Buffer { data, offset, size }
    empty_buffer = b.EndObject()

    tensors = []
    for name, shape in TENSORS:
        name_off = b.CreateString(name)
        shape_off = _int_vector(b, shape)
        b.StartObject(8)                  # Tensor
        b.PrependUOffsetTRelativeSlot(0, shape_off, 0)        # shape
        b.PrependInt8Slot(1, TENSOR_FLOAT32, -1)             # type (written even though it is the default)
        b.PrependUint32Slot(2, 0, 1)                         # buffer = 0 (written explicitly)
        b.PrependUOffsetTRelativeSlot(3, name_off, 0)         # name
        tensors.append(b.EndObject())

    operators = []
    for inputs, outputs in NODES:
        b.StartObject(2)                  # AddOptions { fused_activation_function, pot_scale_int16 }
        b.PrependInt8Slot(0, ACTIVATION_NONE, -1)
        options = b.EndObject()
        in_off = _int_vector(b, inputs)
        out_off = _int_vector(b, outputs)
        b.StartObject(5)                  # Operator
        b.PrependUint32Slot(0, 0, 1)                          # opcode_index -> operator_codes[0] (ADD)
        b.PrependUOffsetTRelativeSlot(1, in_off, 0)            # inputs
        b.PrependUOffsetTRelativeSlot(2, out_off, 0)           # outputs
        b.PrependUint8Slot(3, OPTIONS_ADD, 0)                  # builtin_options_type
        b.PrependUOffsetTRelativeSlot(4, options, 0)           # builtin_options
        operators.append(b.EndObject())

    tensors_vec = _offset_vector(b, tensors)
    inputs_vec = _int_vector(b, (INPUT,))
    outputs_vec = _int_vector(b, (OUTPUT,))
    ops_vec = _offset_vector(b, operators)
    sg_name = b.CreateString("main")
    b.StartObject(5)                      # SubGraph
    b.PrependUOffsetTRelativeSlot(0, tensors_vec, 0)
    b.PrependUOffsetTRelativeSlot(1, inputs_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, ops_vec, 0)
    b.PrependUOffsetTRelativeSlot(4, sg_name, 0)
    subgraph = b.EndObject()

    b.StartObject(4)                      # OperatorCode
    b.PrependInt8Slot(0, BUILTIN_ADD, -1)                     # deprecated_builtin_code (old readers)
    b.PrependInt32Slot(2, 1, 0)                               # version
    b.PrependInt32Slot(3, BUILTIN_ADD, -1)                    # builtin_code (new readers)
    opcode = b.EndObject()

    opcodes_vec = _offset_vector(b, [opcode])
    subgraphs_vec = _offset_vector(b, [subgraph])
    buffers_vec = _offset_vector(b, [empty_buffer])
    description = b.CreateString("tflite-forge add model: output = 3 * input")
    b.StartObject(5)                      # Model
    b.PrependUint32Slot(0, SCHEMA_VERSION, 0)
    b.PrependUOffsetTRelativeSlot(1, opcodes_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, description, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers_vec, 0)
    model = b.EndObject()
    b.Finish(model, file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def write_add_model(dest: str | os.PathLike[str]) -> Path:
    """Write the add model to `dest` atomically (temp file + rename); return the path."""
    return write_atomic(dest, add_model_bytes())


# ---------------------------------------------------------------- any model file (invoke test --model)

# TfLiteType (c_api_types.h) -> (name, .npy descr without byte order, itemsize). The C API's enum
# values are the wire contract between the run-model programs and this side.
TENSOR_TYPES: dict[int, tuple[str, str | None, int]] = {
    0: ("notype", None, 0), 1: ("float32", "f4", 4), 2: ("int32", "i4", 4), 3: ("uint8", "u1", 1),
    4: ("int64", "i8", 8), 5: ("string", None, 0), 6: ("bool", "b1", 1), 7: ("int16", "i2", 2),
    8: ("complex64", "c8", 8), 9: ("int8", "i1", 1), 10: ("float16", "f2", 2), 11: ("float64", "f8", 8),
    12: ("complex128", "c16", 16), 13: ("uint64", "u8", 8), 14: ("resource", None, 0), 15: ("variant", None, 0),
    16: ("uint32", "u4", 4), 17: ("uint16", "u2", 2), 18: ("int4", None, 0),
}
TYPE_BY_DESCR = {descr: code for code, (_, descr, _) in TENSOR_TYPES.items() if descr}
MIN_MODEL_SIZE = 16        # root offset, "TFL3", and at least a vtable offset and a field


def type_name(code: int) -> str:
    return TENSOR_TYPES.get(code, (f"type {code}", None, 0))[0]


def check_model_file(path: str | os.PathLike[str]) -> Path:
    """The file is there and looks like a TFLite flatbuffer ("TFL3" at bytes 4..8, root table inside
    the file); otherwise one line saying so. Cheap: runs before anything is built or packaged."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"--model {path} {what}; give the path of a .tflite file")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
        size = path.stat().st_size
    except OSError as err:
        raise ConfigError(f"--model {path}: cannot read it ({err.strerror}); check its permissions") from None
    if len(head) < 8 or head[4:8] != FILE_IDENTIFIER:
        found = "the file is empty" if not head else \
            f"bytes 4..8 are {head[4:8]!r}" if len(head) == 8 else f"it is only {size} bytes long"
        raise PackageError(f"{path} is not a TensorFlow Lite model (no {FILE_IDENTIFIER.decode()} identifier: {found}); "
                           "give a .tflite flatbuffer (as written by the TFLite converter)")
    root = int.from_bytes(head[:4], "little")
    if size < MIN_MODEL_SIZE or root + 4 > size:
        raise PackageError(f"{path} is not a TensorFlow Lite model (it has the {FILE_IDENTIFIER.decode()} identifier, "
                           f"but its root table at byte {root} lies outside its {size} bytes: truncated?); "
                           "copy the .tflite file again")
    return path


# ---------------------------------------------------------------- .npy inputs (the NumPy format, read without NumPy)

NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class NpyArray:
    path: Path
    type_code: int               # TfLiteType of its dtype
    shape: tuple[int, ...]
    data: bytes                  # little-endian, C order

    @property
    def type_name(self) -> str:
        return type_name(self.type_code)


def read_npy(path: str | os.PathLike[str]) -> NpyArray:
    """A .npy file (format versions 1-3, as numpy.save writes) as a TfLiteType, a shape and raw
    little-endian C-order bytes, or one line saying what is wrong with it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"--input {path}: cannot read it ({err.strerror or err}); give a .npy file "
                          "(numpy.save(path, array))") from None
    bad = f"--input {path} is not a .npy file"
    if not raw.startswith(NPY_MAGIC) or len(raw) < 10 or raw[6] not in (1, 2, 3):
        raise ConfigError(f"{bad} (no NumPy format header); write it with numpy.save(path, array)")
    if raw[6] == 1:
        start, length = 10, int.from_bytes(raw[8:10], "little")
    else:
        start, length = 12, int.from_bytes(raw[8:12], "little")
    try:
        header = ast.literal_eval(raw[start:start + length].decode("latin1" if raw[6] < 3 else "utf-8"))
        descr, fortran, shape = header["descr"], header["fortran_order"], tuple(header["shape"])
        if not isinstance(descr, str) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(descr)
    except (ValueError, SyntaxError, KeyError, TypeError, UnicodeDecodeError):
        raise ConfigError(f"{bad} (its header is not a NumPy array header); write it with numpy.save(path, array)") \
            from None
    order, kind = (descr[0], descr[1:]) if descr[:1] in "<>|=" else ("=", descr)
    if kind not in TYPE_BY_DESCR:
        raise ConfigError(f"--input {path}: dtype {descr!r} has no TensorFlow Lite tensor type; save a numeric "
                          "array (e.g. array.astype('float32'))")
    code = TYPE_BY_DESCR[kind]
    itemsize = TENSOR_TYPES[code][2]
    if order == ">" and itemsize > 1:
        raise ConfigError(f"--input {path}: the array is big-endian ({descr}); save it little-endian: "
                          f"array.astype('<{kind}')")
    if fortran and sum(1 for d in shape if d > 1) > 1:
        raise ConfigError(f"--input {path}: the array is in Fortran order; save numpy.ascontiguousarray(array)")
    count = 1
    for d in shape:
        count *= d
    data = raw[start + length:]
    if len(data) != count * itemsize:
        raise ConfigError(f"--input {path}: shape {list(shape)} of {type_name(code)} needs {count * itemsize} bytes, "
                          f"the file holds {len(data)}; write it again with numpy.save")
    return NpyArray(path=path, type_code=code, shape=shape, data=data)
