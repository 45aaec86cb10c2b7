"""The names of an ONNX graph's inputs and outputs, read from the file without the onnx library.

A walk over the protobuf wire format (ModelProto.graph = 7; GraphProto.initializer = 5, input = 11, output = 12;
ValueInfoProto.name = 1; TensorProto.name = 8) that seeks past nodes and weights, so a multi-GB graph costs a few
hundred small reads. Inputs that are initializers (older exporters list the weights among the inputs) are left
out: what remains is what a caller feeds. Standard library only, Python 3.9.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Callable, Iterator, List, Tuple, Union

from omi_contract.model_files import open_binary

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 5, 11, 12
_VALUE_INFO_NAME = 1
_TENSOR_NAME = 8
_LENGTH_DELIMITED = 2


class OnnxGraphError(ValueError):
    """The file is not an ONNX model this walk can read."""


def _varint(f: BinaryIO, pos: int) -> Tuple[int, int]:
    f.seek(pos)
    data = f.read(10)
    value = shift = 0
    for i, byte in enumerate(data):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise OnnxGraphError(f"a truncated or malformed protobuf varint at byte {pos}")


Field = Tuple[int, int, Union[int, Tuple[int, int]]]  # number, wire type, value or (offset, length)


def _fields(f: BinaryIO, start: int, end: int) -> Iterator[Field]:
    pos = start
    while pos < end:
        at = pos
        key, pos = _varint(f, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxGraphError(f"a protobuf field numbered 0 at byte {at}: not an ONNX model")
        if wire == 0:
            value, pos = _varint(f, pos)
            yield number, wire, value
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == _LENGTH_DELIMITED:
            length, pos = _varint(f, pos)
            if pos + length > end:
                raise OnnxGraphError(f"field {number} at byte {at} runs past its message (a cut file?)")
            yield number, wire, (pos, length)
            pos += length
        else:
            raise OnnxGraphError(f"protobuf wire type {wire} at byte {at}: not an ONNX model")
        if pos > end:
            raise OnnxGraphError(f"field {number} at byte {at} runs past its message (a cut file?)")


def _string(f: BinaryIO, start: int, end: int, number: int) -> str:
    for field, wire, value in _fields(f, start, end):
        if field == number and wire == _LENGTH_DELIMITED and isinstance(value, tuple):
            f.seek(value[0])
            return f.read(value[1]).decode("utf-8", "replace")
    return ""


def graph_io(path: str, open_file: Callable[[str], BinaryIO] = open_binary) -> Tuple[List[str], List[str]]:
    """(input names a caller feeds, output names) of the ONNX model at `path` (opened by `open_file`)."""
    with open_file(path) as f:
        size = f.seek(0, os.SEEK_END)
        graph = next((v for n, w, v in _fields(f, 0, size) if n == _MODEL_GRAPH and isinstance(v, tuple)), None)
        if graph is None:
            raise OnnxGraphError("no graph (ModelProto field 7): not an ONNX model")
        start, end = graph[0], graph[0] + graph[1]
        inputs: List[str] = []
        outputs: List[str] = []
        weights = set()
        for number, _, value in _fields(f, start, end):
            if not isinstance(value, tuple):
                continue
            if number == _GRAPH_INPUT:
                inputs.append(_string(f, value[0], value[0] + value[1], _VALUE_INFO_NAME))
            elif number == _GRAPH_OUTPUT:
                outputs.append(_string(f, value[0], value[0] + value[1], _VALUE_INFO_NAME))
            elif number == _GRAPH_INITIALIZER:
                weights.add(_string(f, value[0], value[0] + value[1], _TENSOR_NAME))
    return [name for name in inputs if name not in weights], outputs
