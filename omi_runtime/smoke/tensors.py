"""Tensor helpers for the smoke test: encode sample inputs, decode answers, and judge them against model.yaml.

Deliberately independent of omi_runtime.codecs: a checker that decoded with the server's own codec would
share its bugs. Raw tensors follow the Open Inference Protocol: little-endian, row-major; a BYTES element is a
4-byte little-endian length and the bytes.
"""

from __future__ import annotations

import math
import struct
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

RAW_DTYPES = {
    "BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "<i1", "INT16": "<i2",
    "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
INTEGER_TYPES = {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
FLOAT_TYPES = {"FP16", "FP32", "FP64", "BF16"}


def json_shape(value: Any) -> List[int]:
    """Shape of a nested JSON list (ragged lists report the first row's shape; the value check catches them)."""
    shape: List[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def shape_matches(actual: Sequence[int], declared: Sequence[int]) -> bool:
    """Same rank, and every declared dimension other than -1 equal."""
    return len(actual) == len(declared) and all(d == -1 or a == d for a, d in zip(actual, declared))


def _flat(value: Any) -> List[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _flat(item)]
    return [value]


def json_datatype_problem(value: Any, datatype: str) -> Optional[str]:
    """Why the JSON elements cannot be of `datatype`, or None."""
    for leaf in _flat(value):
        if datatype == "BOOL":
            ok = isinstance(leaf, bool)
        elif datatype in INTEGER_TYPES:
            ok = isinstance(leaf, int) and not isinstance(leaf, bool) and (leaf >= 0 or datatype[0] != "U")
        elif datatype in FLOAT_TYPES:
            ok = isinstance(leaf, (int, float)) and not isinstance(leaf, bool)
        else:  # BYTES: KServe writes text, or {"b64": ...} for binary
            ok = isinstance(leaf, str) or (isinstance(leaf, dict) and set(leaf) == {"b64"})
        if not ok:
            return f"element {leaf!r} is not {datatype}"
    return None


def encode_raw(value: Any, datatype: str) -> Tuple[bytes, List[int]]:
    """A sample tensor (nested JSON) as raw_input_contents bytes plus its shape."""
    shape = json_shape(value)
    if datatype == "BYTES":
        out = b""
        for leaf in _flat(value):
            data = leaf.encode("utf-8") if isinstance(leaf, str) else bytes(leaf)
            out += struct.pack("<I", len(data)) + data
        return out, shape
    if datatype == "BF16":
        as_fp32 = np.asarray(value, dtype="<f4")
        return (as_fp32.view("<u4") >> 16).astype("<u2").tobytes(), shape
    return np.asarray(value, dtype=RAW_DTYPES[datatype]).tobytes(), shape


def decode_raw(raw: bytes, datatype: str, shape: Sequence[int]) -> Any:
    """raw_output_contents back to nested Python values of the given shape."""
    count = int(np.prod(shape)) if shape else 1
    if datatype == "BYTES":
        items, offset = [], 0
        while offset < len(raw):
            (length,) = struct.unpack_from("<I", raw, offset)
            items.append(raw[offset + 4:offset + 4 + length].decode("utf-8", "replace"))
            offset += 4 + length
        if len(items) != count:
            raise ValueError(f"{len(items)} BYTES elements for shape {list(shape)}")
        return np.array(items, dtype=object).reshape(shape).tolist()
    if datatype == "BF16":
        halves = np.frombuffer(raw, dtype="<u2").astype("<u4") << 16
        array = halves.view("<f4")
    elif datatype in RAW_DTYPES:
        array = np.frombuffer(raw, dtype=RAW_DTYPES[datatype])
    else:
        raise ValueError(f"unknown datatype {datatype!r}")
    if array.size != count:
        raise ValueError(f"{array.size} elements for shape {list(shape)}")
    return array.reshape(shape).tolist()


def values_equal(actual: Any, expected: Any, datatype: str, tolerance: Optional[float] = None) -> bool:
    """Expected sample outputs: exact for integers, booleans and bytes; close for floats (within the sample's
    `tolerance` when it sets one)."""
    if json_shape(actual) != json_shape(expected):
        return False
    for a, e in zip(_flat(actual), _flat(expected)):
        if datatype in FLOAT_TYPES:
            if not isinstance(a, (int, float)) or not isinstance(e, (int, float)):
                return False
            if tolerance is not None:
                if not abs(float(a) - float(e)) <= tolerance:
                    return False
            elif not math.isclose(float(a), float(e), rel_tol=1e-4, abs_tol=1e-5):
                return False
        elif a != e:
            return False
    return True


def judge_output(name: str, datatype: Optional[str], shape: Sequence[int], value: Any,
                 declared: Mapping[str, Any], expected: Optional[Any], tolerance: Optional[float] = None
                 ) -> List[Tuple[str, str, str, str]]:
    """(rule, field suffix, problem, fix) for one answered output against its declaration and the sample."""
    problems: List[Tuple[str, str, str, str]] = []
    if datatype is not None and datatype != declared["datatype"]:
        problems.append(("OMI404", "datatype", f"is {datatype}, declared {declared['datatype']}",
                         f"make the handler return {name} as {declared['datatype']} or fix model.yaml"))
    if not shape_matches(shape, declared["shape"]):
        problems.append(("OMI404", "shape", f"is {list(shape)}, which does not match the declared {declared['shape']}",
                         f"make the handler return {name} with the declared shape or fix model.yaml"))
    if datatype is None:
        problem = json_datatype_problem(value, declared["datatype"])
        if problem:
            problems.append(("OMI404", "datatype", problem, f"return {name} as {declared['datatype']} values"))
    if expected is not None and not values_equal(value, expected, declared["datatype"], tolerance):
        within = f" within {tolerance}" if tolerance is not None else ""
        problems.append(("OMI405", "value", f"is {_short(value)}, the sample expects {_short(expected)}{within}",
                         "fix the model, or the sample's expected outputs (or `tolerance`) in model.yaml"))
    return problems


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
