"""An ONNX graph's inputs and outputs read from protobuf bytes written here field by field, as exporters lay them
out (the weights before the inputs, older exporters listing the weights among the inputs too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from omi_contract.onnx_graph import OnnxGraphError, graph_io


def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _value_info(name: str) -> bytes:
    return _field(1, name.encode()) + _field(2, b"\x0a\x02\x08\x07")  # name, then a type (tensor of int64)


def _tensor(name: str, size: int) -> bytes:
    # dims (packed), data_type = 1 (float), name, raw_data: the name comes before the weights' bytes
    return _field(1, _varint(size)) + b"\x10\x01" + _field(8, name.encode()) + _field(9, b"\x00" * size * 4)


def _model(*graph_fields: bytes) -> bytes:
    return b"\x08\x08" + _field(2, b"pytorch") + _field(7, b"".join(graph_fields)) + _field(8, b"\x0a\x00\x10\x11")


def test_inputs_and_outputs_leave_the_weights_out(tmp_path: Path) -> None:
    node = _field(1, _field(1, b"input_ids") + _field(2, b"hidden") + _field(4, b"Gather"))
    path = tmp_path / "model.onnx"
    path.write_bytes(_model(node, _field(2, b"main"), _field(5, _tensor("embeddings.weight", 50_000)),
                            _field(11, _value_info("input_ids")), _field(11, _value_info("attention_mask")),
                            _field(11, _value_info("embeddings.weight")), _field(12, _value_info("last_hidden_state"))))
    assert graph_io(str(path)) == (["input_ids", "attention_mask"], ["last_hidden_state"])


@pytest.mark.parametrize(("data", "message"), [
    (b"\x80\x04\x95\x10\x00\x00", "a protobuf field numbered 0 at byte 4"),  # a pickle
    (b"\x00" * 4096, "a protobuf field numbered 0 at byte 0"),
    (b"\x08\x08\x11\x00\x00", "field 2 at byte 2 runs past its message"),
    (b"\x08\x08" + _varint(7 << 3 | 2) + _varint(1000) + b"\x00" * 10, "runs past its message"),
    (b"\x08\x08" + _field(2, b"exporter"), "no graph"),
    (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "malformed protobuf varint"),
])
def test_what_is_not_an_onnx_graph_is_one_error(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    with pytest.raises(OnnxGraphError, match=message):
        graph_io(str(path))
