"""What a model file's first bytes say it is, and which files a format refuses before anything loads them."""

from __future__ import annotations

import json
import struct

import pytest

from omi_contract import formats, model_files

LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 1234\n"
# An ONNX ModelProto as exporters write it: ir_version, producer_name, then the graph (field 7) of 40 bytes.
ONNX = b"\x08\x08\x12\x08skl2onnx" + b"\x3a\x28" + b"\x00" * 40
LIGHTGBM_HEADER = (b"tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=3\n"
                   b"objective=regression\nfeature_names=a b c d\nfeature_infos=none\ntree_sizes=20\n\n")
LIGHTGBM = (LIGHTGBM_HEADER + b"Tree=0\n" + b"x" * 13 + b"end of trees\n\nfeature_importances:\na=1\n\nparameters:\n"
            b"[boosting: gbdt]\n\nend of parameters\n\npandas_categorical:null\n")


def _whole(data: bytes) -> model_files.Sample:
    return model_files.Sample(data, len(data))


@pytest.mark.parametrize(("head", "kind"), [
    (b"\x80\x04\x95\x10\x02", "pickle"), (b"x\x9c\x01\x02", "zlib"), (b"\x1f\x8b\x08\x00", "gzip"),
    (b"BZh91AY", "bz2"), (b"\xfd7zXZ\x00\x00", "xz"), (b"]\x00\x00\x80\x00", "lzma"), (b"\x04\x22\x4d\x18", "lz4"),
    (b"PK\x03\x04\x14\x00", "zip"), (b"\x89HDF\r\n\x1a\n\x00", "hdf5"),
    (struct.pack("<Q", 20) + b'{"w":{"dtype":"F32"}}', "safetensors"), (b"\x1c\x00\x00\x00ORTM\x00\x00", "ort"),
    (b'{"learner":{"attributes":{}}}', "xgboost-json"), (b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{", "xgboost-ubj"),
    (json.dumps({"weights": [1, 2]}).encode(), "json"), (LIGHTGBM, "lightgbm"), (ONNX, "onnx"), (LFS, "lfs"),
    (b"feature,label\n1,2\n", "text"), (b"\x00\x01\x02\xff\xfe\xfd", "unknown"),
])
def test_first_bytes_identify_the_kind(head: bytes, kind: str) -> None:
    assert model_files.identify(head, len(head) + 100).id == kind


def test_an_empty_file_is_empty() -> None:
    assert model_files.identify(b"", 0).id == "empty"


def test_every_kind_a_format_accepts_is_one_the_files_can_be() -> None:
    for fmt in formats.FORMATS:
        assert set(fmt.accepts) <= set(model_files.KINDS), fmt.name
        assert bool(fmt.accepts) == bool(fmt.model_file) == bool(fmt.model_suffixes), fmt.name


def test_a_format_refuses_another_format_file_in_one_line_naming_both() -> None:
    assert model_files.problems("xgboost", {"model.json": model_files.Sample(b"\x80\x04\x95", 3000)}) == [
        "model.json: format xgboost: is not an XGBoost model (expected a Booster saved with save_model as JSON or "
        "UBJSON): it is a Python pickle (package the file the format loads, or declare the model's format in "
        "model.yaml)"]
    assert model_files.problems("onnx", {"model.onnx": model_files.Sample(b"tree\nversion=v4\n", 3000)})[0].endswith(
        "it is a LightGBM text model (package the file the format loads, or declare the model's format in "
        "model.yaml)")


def test_the_format_judges_the_file_its_handler_loads_and_every_file_for_lfs_pointers() -> None:
    heads = {"README.md": _whole(b"# notes\n"), "vocab.txt": _whole(LFS), "model.json": _whole(b'{"learner":{}}')}
    assert model_files.problems("xgboost", heads) == [
        "vocab.txt: is a git LFS pointer, not the file itself (run `git lfs pull`, or fetch the weights another way)"]
    # A custom handler's files are its own business, except for LFS pointers.
    assert model_files.problems("custom", {"m.bin": _whole(b"\x00\x01"), "w.bin": _whole(LFS)}) == [
        "w.bin: is a git LFS pointer, not the file itself (run `git lfs pull`, or fetch the weights another way)"]


def test_model_file_is_the_first_with_the_format_suffix() -> None:
    assert model_files.model_file(formats.lookup("onnx"), ["labels.txt", "model.ONNX", "b.onnx"]) == "model.ONNX"  # type: ignore[arg-type]
    assert model_files.model_file(formats.lookup("onnx"), ["weights.bin"]) == "weights.bin"  # type: ignore[arg-type]


def test_truncated_files_of_the_right_kind() -> None:
    onnx = formats.lookup("onnx")
    lightgbm = formats.lookup("lightgbm")
    assert onnx is not None and lightgbm is not None
    assert model_files.file_problem(onnx, "m.onnx", _whole(ONNX)) is None
    assert model_files.file_problem(onnx, "m.onnx", _whole(ONNX[:30])) == (
        "m.onnx: format onnx: is not a whole ONNX model: field 7 at byte 14 runs 24 bytes past the end of the file "
        "(truncated?) (copy or export the model file again)")
    assert model_files.file_problem(lightgbm, "m.txt", _whole(LIGHTGBM)) is None
    trees_end = LIGHTGBM.index(b"end of trees") + len("end of trees")
    assert model_files.file_problem(lightgbm, "m.txt", _whole(LIGHTGBM[:trees_end - 10])) == (
        "m.txt: format lightgbm: is not a whole LightGBM model: it ends 10 bytes before the end of its trees "
        "(truncated?) (copy or export the model file again)")
    in_parameters = LIGHTGBM[:LIGHTGBM.index(b"[boosting") + 5]
    assert model_files.file_problem(lightgbm, "m.txt", _whole(in_parameters)) == (
        "m.txt: format lightgbm: is not a whole LightGBM model: it ends inside its parameters section (truncated?) "
        "(copy or export the model file again)")
    # A big file: its head and its tail are read, not what lies between.
    big = model_files.Sample(LIGHTGBM_HEADER[:40], 10**9, tail=b"x" * 100)
    assert model_files.file_problem(lightgbm, "m.txt", big) is None
    cut_big = model_files.Sample(LIGHTGBM_HEADER[:40], 10**9, tail=b"x=1\n\nparameters:\n[boosting: gb")
    assert "ends inside its parameters section" in str(model_files.file_problem(lightgbm, "m.txt", cut_big))


def test_read_sample_reads_the_tail_of_a_file_its_head_does_not_cover(tmp_path) -> None:
    path = tmp_path / "m.txt"
    path.write_bytes(b"a" * model_files.HEAD_BYTES + b"b" * model_files.TAIL_BYTES * 2 + b"end")
    sample = model_files.read_sample(str(path))
    assert sample.head == b"a" * model_files.HEAD_BYTES and sample.tail.endswith(b"b" * 100 + b"end")
    assert len(sample.tail) == model_files.TAIL_BYTES and not sample.whole
    small = model_files.read_sample(str(path), model_files.LFS_HEAD)
    assert small.tail == b"" and small.size == model_files.HEAD_BYTES + model_files.TAIL_BYTES * 2 + 3


def test_a_load_failure_of_a_file_of_the_right_kind_is_the_library_reason_in_one_line() -> None:
    error = RuntimeError("bad\n  tree at line 3\n" + "x" * 500)
    line = model_files.load_failure("lightgbm", "m.txt", _whole(LIGHTGBM), error)
    assert line.startswith("m.txt: format lightgbm: LightGBM could not load it: RuntimeError: bad tree at line 3 x")
    assert "\n" not in line and line.endswith("...")
