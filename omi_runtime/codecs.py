"""Codecs: KServe v2 tensors <-> numpy arrays, for every v2 datatype, in each wire form.

Wire forms: gRPC `raw_*_contents` (little-endian, row-major; BYTES as 4-byte LE length + bytes; FP16 and BF16
only here), gRPC typed `contents` (the repeated field per datatype), and REST/JSON `data` (nested or flat).
This module knows no protobuf and no transport: transports hand it plain bytes, sequences or JSON values.

In memory: BYTES is an object array of `bytes`; BF16 (which numpy lacks) is float32 holding the bf16 values.
Every malformed tensor raises BadRequest naming the tensor.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from typing import Any, Sequence

import numpy as np

from omi_runtime.errors import BadRequest

# In-memory dtype per v2 datatype.
NUMPY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
    "BF16": np.dtype(np.float32),
}

# Wire dtype of raw contents (explicitly little-endian whatever the host).
RAW_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BF16": np.dtype("<u2"),
}

# The InferTensorContents field carrying each datatype (FP16/BF16 have none: raw only).
CONTENTS_FIELDS: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

_DTYPE_KIND_TO_DATATYPE = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.uint32): "UINT32",
    np.dtype(np.uint64): "UINT64",
    np.dtype(np.int8): "INT8",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
}

_LEN = struct.Struct("<I")


def check_datatype(datatype: str, name: str) -> None:
    if datatype not in NUMPY_DTYPES:
        raise BadRequest(f"tensor {name!r}: unknown datatype {datatype!r}; use one of {', '.join(NUMPY_DTYPES)}")


def element_count(shape: Sequence[int], name: str) -> int:
    count = 1
    for dim in shape:
        if dim < 0:
            raise BadRequest(f"tensor {name!r}: shape {list(shape)} has a negative dimension")
        count *= dim
    return count


def datatype_of(array: np.ndarray) -> str:
    """The v2 datatype of an array (object/str arrays are BYTES)."""
    if array.dtype.kind in "OSU":
        return "BYTES"
    try:
        return _DTYPE_KIND_TO_DATATYPE[array.dtype.newbyteorder("=")]
    except KeyError:
        raise BadRequest(f"arrays of dtype {array.dtype} have no v2 datatype") from None


def loads_json(data: bytes, what: str) -> Any:
    """A JSON document from a request (`what` names it: "request body", "file 'input'"), or BadRequest saying why."""
    try:
        return json.loads(data)
    except RecursionError:
        # The C decoder recurses once per nesting level; past the interpreter's limit it gives up mid-parse.
        raise BadRequest(f"{what} is nested deeper than the JSON parser allows (at most a few hundred levels; "
                         "tensors need one level per dimension)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"{what} is not valid JSON: {e}") from None


def as_batch(array: np.ndarray, declared: Sequence[int]) -> np.ndarray:
    """A single instance of a batched input (declared `[-1, ...]`, sent without the batch dimension) as a batch of one.

    Only when the array is exactly one dimension short of the declaration and fits it without the batch
    dimension; anything else is left for the shape check to refuse.
    """
    if len(declared) >= 1 and declared[0] == -1 and array.ndim == len(declared) - 1 \
            and shape_matches(array.shape, declared[1:]):
        return array.reshape((1, *array.shape))
    return array


def shape_matches(shape: Sequence[int], declared: Sequence[int]) -> bool:
    """True if shape fits the declared shape (-1 matches any size). An empty declaration matches scalars only."""
    if len(shape) != len(declared):
        return False
    return all(d == -1 or d == s for s, d in zip(shape, declared, strict=True))


# --- BF16 helpers -------------------------------------------------------------------------------------------


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """Round to nearest even, like every ML framework; NaN stays a quiet NaN."""
    f32 = np.ascontiguousarray(values, dtype=np.float32)
    u32 = f32.view(np.uint32)
    rounded = (u32 + np.uint32(0x7FFF) + ((u32 >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    bits = rounded.astype(np.uint16)
    nan = np.isnan(f32)
    if nan.any():
        bits[nan] = 0x7FC0
    return bits


# --- BYTES helpers ------------------------------------------------------------------------------------------


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview, np.bytes_)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return str(value).encode("utf-8")


def serialize_bytes_tensor(array: np.ndarray) -> bytes:
    """Row-major elements, each as a 4-byte little-endian length followed by the bytes."""
    parts = []
    for item in np.asarray(array, dtype=object).ravel():
        data = _as_bytes(item)
        parts.append(_LEN.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def deserialize_bytes_tensor(raw: bytes, count: int, name: str) -> list[bytes]:
    items: list[bytes] = []
    view = memoryview(raw)
    offset, end = 0, len(raw)
    while offset < end:
        if offset + 4 > end:
            raise BadRequest(f"tensor {name!r}: raw BYTES contents end inside a length prefix")
        (length,) = _LEN.unpack_from(view, offset)
        offset += 4
        if offset + length > end:
            raise BadRequest(f"tensor {name!r}: raw BYTES element {len(items)} claims {length} bytes past the end")
        items.append(bytes(view[offset:offset + length]))
        offset += length
    if len(items) != count:
        raise BadRequest(f"tensor {name!r}: raw BYTES contents hold {len(items)} elements, shape needs {count}")
    return items


def _object_array(items: list[Any], shape: Sequence[int]) -> np.ndarray:
    # np.array() on a list of bytes would build a fixed-width 'S' array; BYTES stays an object array.
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array.reshape(shape)


# --- raw contents -------------------------------------------------------------------------------------------


def decode_raw(raw: bytes, datatype: str, shape: Sequence[int], name: str) -> np.ndarray:
    check_datatype(datatype, name)
    count = element_count(shape, name)
    if datatype == "BYTES":
        return _object_array(deserialize_bytes_tensor(raw, count, name), shape)
    wire = RAW_DTYPES[datatype]
    if len(raw) != count * wire.itemsize:
        raise BadRequest(f"tensor {name!r}: raw contents are {len(raw)} bytes, but shape {list(shape)} of "
                         f"{datatype} needs {count * wire.itemsize}")
    array = np.frombuffer(raw, dtype=wire).reshape(shape)
    if datatype == "BF16":
        return bf16_bits_to_float32(array)
    # Native byte order for handlers; a no-op (no copy) on little-endian hosts.
    return array.astype(NUMPY_DTYPES[datatype], copy=False)


def encode_raw(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        return serialize_bytes_tensor(array)
    if datatype == "BF16":
        return float32_to_bf16_bits(array).astype("<u2", copy=False).tobytes()
    return np.ascontiguousarray(array, dtype=RAW_DTYPES[datatype]).tobytes()


# --- typed contents -----------------------------------------------------------------------------------------


def decode_contents(values: Sequence[Any], datatype: str, shape: Sequence[int], name: str) -> np.ndarray:
    """`values` is the repeated contents field that CONTENTS_FIELDS names for this datatype."""
    check_datatype(datatype, name)
    if datatype not in CONTENTS_FIELDS:
        raise BadRequest(f"tensor {name!r}: {datatype} data travels only as raw contents (raw_input_contents)")
    count = element_count(shape, name)
    if len(values) != count:
        raise BadRequest(f"tensor {name!r}: contents hold {len(values)} elements, shape {list(shape)} needs {count}")
    if datatype == "BYTES":
        return _object_array(list(values), shape)
    try:
        return np.array(values, dtype=NUMPY_DTYPES[datatype]).reshape(shape)
    except (OverflowError, ValueError, TypeError) as e:
        raise BadRequest(f"tensor {name!r}: contents do not fit {datatype}: {e}") from None


def encode_contents(array: np.ndarray, datatype: str) -> tuple[str, list[Any]]:
    """(contents field name, values) for an output tensor; FP16/BF16 must use raw instead."""
    if datatype not in CONTENTS_FIELDS:
        raise ValueError(f"{datatype} has no typed contents field: use raw contents")
    if datatype == "BYTES":
        return "bytes_contents", [_as_bytes(v) for v in np.asarray(array, dtype=object).ravel()]
    return CONTENTS_FIELDS[datatype], np.asarray(array, dtype=NUMPY_DTYPES[datatype]).ravel().tolist()


# --- JSON (REST) --------------------------------------------------------------------------------------------


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def json_to_bytes(value: Any, name: str) -> bytes:
    """A BYTES element from JSON: a UTF-8 string, or KServe's {"b64": "..."} for binary data."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and isinstance(value.get("b64"), str) and len(value) == 1:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"tensor {name!r}: invalid base64 in {{\"b64\": ...}}") from None
    raise BadRequest(f"tensor {name!r}: BYTES elements must be strings or {{\"b64\": \"...\"}}, got "
                     f"{type(value).__name__}")


def bytes_to_json(value: Any) -> Any:
    data = _as_bytes(value)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode("ascii")}


def decode_json(data: Any, datatype: str, shape: Sequence[int] | None, name: str) -> np.ndarray:
    """JSON `data` (nested or flat, row-major) to an array; shape None means take the nesting as the shape."""
    check_datatype(datatype, name)
    if datatype == "BYTES":
        if shape is None:
            shape = list(np.shape(np.empty(0) if data == [] else np.asarray(data, dtype=object)))
        flat = [json_to_bytes(v, name) for v in _flatten(data)]
        count = element_count(shape, name)
        if len(flat) != count:
            raise BadRequest(f"tensor {name!r}: data holds {len(flat)} elements, shape {list(shape)} needs {count}")
        return _object_array(flat, shape)
    try:
        array = np.asarray(data, dtype=NUMPY_DTYPES[datatype])
    except (OverflowError, ValueError, TypeError) as e:
        raise BadRequest(f"tensor {name!r}: data is not a (rectangular) array of {datatype}: {e}") from None
    if shape is None:
        return array
    count = element_count(shape, name)
    if array.size != count:
        raise BadRequest(f"tensor {name!r}: data holds {array.size} elements, shape {list(shape)} needs {count}")
    return array.reshape(shape)


def encode_json(array: np.ndarray, datatype: str) -> list[Any]:
    """Flat row-major JSON values; non-finite floats become null (JSON has no NaN)."""
    if datatype == "BYTES":
        return [bytes_to_json(v) for v in np.asarray(array, dtype=object).ravel()]
    values = np.asarray(array).ravel().tolist()
    if datatype in ("FP16", "FP32", "FP64", "BF16"):
        return [v if math.isfinite(v) else None for v in values]
    return values


def nested_json(array: np.ndarray, datatype: str) -> Any:
    """Nested lists shaped like the array (KServe v1 `predictions`, Modzy results)."""
    array = np.asarray(array)
    if datatype not in ("BYTES", "FP16", "FP32", "FP64", "BF16") or (
        datatype != "BYTES" and bool(np.isfinite(array).all())
    ):
        return array.tolist()
    flat = encode_json(array, datatype)
    holder = np.empty(len(flat), dtype=object)
    holder[:] = flat
    return holder.reshape(array.shape).tolist()


def cast(array: Any, datatype: str, name: str) -> np.ndarray:
    """Bring a handler's output to the declared datatype."""
    if datatype == "BYTES":
        arr = np.asarray(array, dtype=object)
        return arr
    try:
        return np.asarray(array).astype(NUMPY_DTYPES[datatype], copy=False)
    except (ValueError, TypeError) as e:
        raise BadRequest(f"tensor {name!r}: cannot convert to {datatype}: {e}") from None
