"""Unit tests of the tensor codecs: every datatype through raw, typed contents and JSON."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from omi_runtime import codecs
from omi_runtime.errors import BadRequest

NUMERIC = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"]


def sample(datatype: str, shape=(2, 3)) -> np.ndarray:
    n = int(np.prod(shape))
    if datatype == "BOOL":
        return (np.arange(n) % 2 == 0).reshape(shape)
    if datatype == "BYTES":
        values = [b"", b"abc", b"\x00\xff", "é".encode(), b"x" * 300, b"z"][:n]
        return codecs._object_array(values, shape)
    if datatype == "BF16":
        return np.array([1.0, -2.5, 0.0, 3.140625, 65280.0, -0.0078125][:n], np.float32).reshape(shape)
    dtype = codecs.NUMPY_DTYPES[datatype]
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.array([info.min, info.max, 0, 1, 2, info.max - 1][:n], dtype).reshape(shape)
    return np.array([0.5, -1.25, 3.0, 1e3, -0.0, 7.75][:n], dtype).reshape(shape)


@pytest.mark.parametrize("datatype", NUMERIC + ["BYTES", "BF16"])
def test_raw_round_trip(datatype):
    array = sample(datatype)
    raw = codecs.encode_raw(array, datatype)
    back = codecs.decode_raw(raw, datatype, [2, 3], "t")
    assert back.shape == (2, 3) and back.dtype == codecs.NUMPY_DTYPES[datatype]
    if datatype == "BYTES":
        assert back.tolist() == array.tolist()
    else:
        np.testing.assert_array_equal(back, array)


def test_raw_is_little_endian_row_major():
    assert codecs.encode_raw(np.array([[1, 2], [3, 4]], np.int32), "INT32") == struct.pack("<4i", 1, 2, 3, 4)
    assert codecs.encode_raw(np.array([1.0], np.float16), "FP16") == b"\x00\x3c"


def test_bytes_raw_has_length_prefix():
    raw = codecs.encode_raw(codecs._object_array([b"ab", b""], [2]), "BYTES")
    assert raw == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"
    assert codecs.encode_raw(np.array(["hé"], dtype=object), "BYTES") == b"\x03\x00\x00\x00h\xc3\xa9"


def test_bf16_bits_and_rounding():
    # 1.0 is 0x3F80 in bf16; 1 + 2**-8 rounds to even (1.0); 1 + 3 * 2**-8 rounds up.
    values = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, np.nan], np.float32)
    bits = np.frombuffer(codecs.encode_raw(values, "BF16"), "<u2")
    assert bits[0] == 0x3F80 and bits[1] == 0x3F80 and bits[2] == 0x3F82 and bits[3] == 0x7FC0
    back = codecs.decode_raw(bits.tobytes(), "BF16", [4], "t")
    assert back[0] == 1.0 and np.isnan(back[3])


@pytest.mark.parametrize("datatype, raw, shape, needle", [
    ("FP32", b"\x00" * 7, [2], "needs 8"),
    ("INT64", b"\x00" * 8, [2, -1], "negative"),
    ("BYTES", b"\x05\x00\x00\x00ab", [1], "past the end"),
    ("BYTES", b"\x01\x00", [1], "length prefix"),
    ("BYTES", b"\x01\x00\x00\x00a", [2], "shape needs 2"),
    ("FP8", b"", [0], "unknown datatype"),
])
def test_raw_errors(datatype, raw, shape, needle):
    with pytest.raises(BadRequest, match=needle):
        codecs.decode_raw(raw, datatype, shape, "t")


@pytest.mark.parametrize("datatype", [d for d in NUMERIC if d != "FP16"] + ["BYTES"])
def test_contents_round_trip(datatype):
    array = sample(datatype)
    field, values = codecs.encode_contents(array, datatype)
    assert field == codecs.CONTENTS_FIELDS[datatype]
    back = codecs.decode_contents(values, datatype, [2, 3], "t")
    assert back.dtype == codecs.NUMPY_DTYPES[datatype]
    assert back.tolist() == array.tolist()


def test_contents_errors():
    with pytest.raises(BadRequest, match="raw"):
        codecs.decode_contents([], "FP16", [0], "t")
    with pytest.raises(BadRequest, match="raw"):
        codecs.decode_contents([], "BF16", [0], "t")
    with pytest.raises(BadRequest, match="hold 2 elements"):
        codecs.decode_contents([1, 2], "INT32", [3], "t")
    with pytest.raises(BadRequest, match="INT8"):
        codecs.decode_contents([1000], "INT8", [1], "t")
    with pytest.raises(ValueError):
        codecs.encode_contents(np.zeros(1, np.float16), "FP16")


@pytest.mark.parametrize("datatype", NUMERIC + ["BF16"])
def test_json_round_trip(datatype):
    array = sample(datatype)
    flat = codecs.encode_json(array, datatype)
    np.testing.assert_array_equal(codecs.decode_json(flat, datatype, [2, 3], "t"), array)
    nested = codecs.nested_json(array, datatype)
    np.testing.assert_array_equal(codecs.decode_json(nested, datatype, [2, 3], "t"), array)


def test_json_bytes_and_b64():
    array = codecs.decode_json([["text", {"b64": "AP8="}]], "BYTES", [1, 2], "t")
    assert array.tolist() == [[b"text", b"\x00\xff"]]
    assert codecs.encode_json(array, "BYTES") == ["text", {"b64": "AP8="}]
    inferred = codecs.decode_json([{"b64": "YQ=="}, "b"], "BYTES", None, "t")
    assert inferred.shape == (2,) and inferred.tolist() == [b"a", b"b"]
    with pytest.raises(BadRequest, match="base64"):
        codecs.decode_json([{"b64": "!!"}], "BYTES", [1], "t")
    with pytest.raises(BadRequest, match="strings"):
        codecs.decode_json([1], "BYTES", [1], "t")


def test_json_errors_and_non_finite():
    with pytest.raises(BadRequest, match="rectangular"):
        codecs.decode_json([[1, 2], [3]], "FP32", None, "t")
    with pytest.raises(BadRequest, match="FP32"):
        codecs.decode_json(["a"], "FP32", [1], "t")
    with pytest.raises(BadRequest, match="needs 4"):
        codecs.decode_json([1, 2, 3], "INT32", [2, 2], "t")
    assert codecs.nested_json(np.array([[np.nan, 1.0]]), "FP64") == [[None, 1.0]]


def test_datatype_of_and_shape_matches():
    assert codecs.datatype_of(np.zeros(1, np.int16)) == "INT16"
    assert codecs.datatype_of(np.array(["a"])) == "BYTES"
    assert codecs.datatype_of(np.zeros(1, ">f8")) == "FP64"
    assert codecs.shape_matches([5, 64], [-1, 64])
    assert not codecs.shape_matches([5, 63], [-1, 64])
    assert not codecs.shape_matches([5], [-1, 64])
    assert codecs.shape_matches([], [])
