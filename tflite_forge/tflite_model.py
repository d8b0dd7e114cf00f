"""The smoke model, written by the project itself.

The C API smoke test in TensorFlow (CApiSimple.Smoke) uses `add.bin`: one float32
input "input", one output "output", two ADD nodes, output = 3 * input. This module
writes an equivalent .tflite file with the `flatbuffers` builder API, field by field
from the TFLite schema (tables Model, OperatorCode, SubGraph, Tensor, Operator,
Buffer, AddOptions; file identifier "TFL3"), so no TensorFlow checkout is needed:

    input ──ADD(input, input)──> doubled ──ADD(doubled, input)──> output

Field slots below are the schema's field order (0-based), which is the wire contract.
"""

from __future__ import annotations

import os
from pathlib import Path

import flatbuffers

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
