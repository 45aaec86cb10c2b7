"""What a model file is, judged from its first bytes, and the one line saying it is not what its format needs.

The plugin refuses at package time what can be known without loading (a git LFS pointer committed instead of the
weights, an ONNX file that is not a protobuf, a LightGBM or XGBoost file whose header is not theirs); the runtime
words a load failure with the same facts (`load_failure`), so `pants check`, `pants run` and the container log name
the file, the declared format and what was found instead. The formats' expectations are rows of
`omi_contract.formats`. Standard library only, Python 3.9.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable, List, Mapping, Optional, Sequence, Tuple

from omi_contract import formats

HEAD_BYTES = 64 * 1024  # how much of the format's model file is read to judge it; every other file gives LFS_HEAD
TAIL_BYTES = 16 * 1024  # and of its end (LightGBM's training parameters, a few KB, end a text model)
LFS_HEAD = 200  # a git LFS pointer is about 130 bytes
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


@dataclass(frozen=True)
class Sample:
    """What is read of a file to judge it: its first bytes, its size, and its last bytes when the first do not
    reach them."""

    head: bytes
    size: int
    tail: bytes = b""

    @property
    def whole(self) -> bool:
        return len(self.head) >= self.size

    @property
    def last(self) -> bytes:
        """The end of the file as far as it was read (the whole file when it is small)."""
        return self.head if self.whole else self.tail


@dataclass(frozen=True)
class Kind:
    """What the first bytes of a file show it to be."""

    id: str  # what `formats.Format.accepts` lists
    description: str  # "a Python pickle"


KINDS: Mapping[str, str] = {
    "empty": "an empty file",
    "lfs": "a git LFS pointer, not the file itself",
    "pickle": "a Python pickle",
    "zlib": "zlib-compressed data", "gzip": "gzip-compressed data", "bz2": "bzip2-compressed data",
    "xz": "xz-compressed data", "lzma": "lzma-compressed data", "lz4": "lz4-compressed data",
    "zip": "a zip archive (a PyTorch checkpoint, a Keras file or a zipped directory?)",
    "hdf5": "an HDF5 file (a Keras .h5 model?)",
    "safetensors": "a safetensors file",
    "ort": "an ONNX Runtime (.ort) model",
    "onnx": "an ONNX model (protobuf)",
    "xgboost-json": "an XGBoost JSON model",
    "xgboost-ubj": "an XGBoost UBJSON model",
    "json": "JSON, but not an XGBoost model (no \"learner\" key at its start)",
    "lightgbm": "a LightGBM text model",
    "text": "a text file",
    "unknown": "binary data of no known model format",
}

# ONNX ModelProto's fields (onnx.proto3): number -> wire type. Serialisers write fields in number order.
_MODEL_PROTO_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_LIGHTGBM_HEADER = ("version=", "num_class=", "max_feature_idx=", "objective=", "feature_names=")


def _kind(kind_id: str, detail: str = "") -> Kind:
    return Kind(kind_id, KINDS[kind_id] + detail)


def _varint(data: bytes, at: int) -> Tuple[int, int]:
    """(value, next offset); raises IndexError at the end of the data, ValueError past 10 bytes."""
    value = shift = 0
    for i in range(10):
        byte = data[at + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at + i + 1
    raise ValueError("varint longer than 10 bytes")


def _onnx_walk(head: bytes, size: int) -> Tuple[int, Optional[str]]:
    """How many ModelProto fields the bytes hold before anything breaks the message, and what breaks it (None when
    what was read is consistent as far as it goes)."""
    at = seen = 0
    try:
        while at < len(head):
            tag, at = _varint(head, at)
            number, wire = tag >> 3, tag & 7
            if _MODEL_PROTO_FIELDS.get(number) != wire:
                return seen, f"field {number} (wire type {wire}) before byte {at} is not one of an ONNX ModelProto"
            if wire == 0:
                _, at = _varint(head, at)
            else:
                length, at = _varint(head, at)
                if at + length > size:
                    return seen, f"field {number} at byte {at} runs {at + length - size} bytes past the end of the file"
                at += length
            seen += 1
    except IndexError:  # the head ends inside a field
        pass
    except ValueError as e:
        return seen, str(e)
    return seen, None if seen or at else "no protobuf field"


def _looks_like_text(head: bytes) -> bool:
    sample = head[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(sample) - 4:  # not just a character cut at the end of the sample
            return False
        text = sample[:e.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def identify(head: bytes, size: int) -> Kind:
    """What a file of `size` bytes starting with `head` is, as far as its first bytes tell."""
    if size == 0:
        return _kind("empty")
    if head.startswith(LFS_POINTER):
        return _kind("lfs")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return _kind("pickle")
    if head.startswith((b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")):
        return _kind("zlib")
    for prefix, kind_id in ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"),
                            (b"]\x00\x00", "lzma"), (b"\x04\x22\x4d\x18", "lz4"), (b"PK\x03\x04", "zip"),
                            (b"\x89HDF\r\n\x1a\n", "hdf5")):
        if head.startswith(prefix):
            return _kind(kind_id)
    if head[4:8] == b"ORTM":
        return _kind("ort")
    if len(head) >= 10 and head[8:10] == b'{"' and struct.unpack("<Q", head[:8])[0] < size:
        return _kind("safetensors")
    if head.startswith(b"{L") or head.startswith(b"{i") or head.startswith(b"{U"):
        if b"learner" in head[:32]:
            return _kind("xgboost-ubj")
    stripped = head.lstrip()
    if stripped.startswith((b"{", b"[")) and _looks_like_text(head):
        return _kind("xgboost-json" if stripped.startswith(b"{") and b'"learner"' in stripped[:64] else "json")
    if head.startswith((b"tree\n", b"tree\r\n")):
        return _kind("lightgbm")
    seen, broken = _onnx_walk(head, size)
    if seen >= 2 or (seen and broken is None):  # a truncated model still starts as one
        return _kind("onnx")
    if _looks_like_text(head):
        first = head.split(b"\n", 1)[0][:40].decode("utf-8", "replace").strip()
        return _kind("text", f" starting {first!r}" if first else "")
    return _kind("unknown", f", first bytes {head[:8].hex(' ')}")


def _lightgbm_problem(sample: Sample) -> Optional[str]:
    head, size = sample.head, sample.size
    header = head.split(b"\nTree=", 1)[0].decode("utf-8", "replace")
    complete = sample.whole or b"\nTree=" in head
    keys = {line.split("=", 1)[0] + "=" for line in header.splitlines()}
    missing = [k for k in _LIGHTGBM_HEADER if k not in keys]
    if complete and missing:
        return f"its header has no {missing[0][:-1]} line (truncated, or not written by save_model?)"
    if sample.whole and b"\nTree=" not in head:
        return "it ends before its first tree (truncated?)"
    if b"\nTree=" in head:
        # `tree_sizes` gives each tree's length in bytes: the trees end where "end of trees" must start.
        sizes = next((line[len("tree_sizes="):].split() for line in header.splitlines()
                      if line.startswith("tree_sizes=")), None)
        if sizes and all(n.isdigit() for n in sizes):
            end = len(header) + 1 + sum(int(n) for n in sizes) + len("end of trees")
            if size < end:
                return f"it ends {end - size} bytes before the end of its trees (truncated?)"
    # After the trees come the feature importances, then the training parameters, which LightGBM 4 reads up to
    # "end of parameters": a file cut inside them crashes it (a segmentation fault), so it never gets one.
    last = sample.last
    parameters = last.rfind(b"\nparameters:")
    if parameters >= 0 and b"end of parameters" not in last[parameters:]:
        return "it ends inside its parameters section (truncated?)"
    return None


def _header_problem(fmt: formats.Format, sample: Sample, kind: Kind) -> Optional[str]:
    """Within an accepted kind, what its header (or its end) shows to be wrong."""
    if fmt.name == "onnx" and kind.id == "onnx":
        broken = _onnx_walk(sample.head, sample.size)[1]
        return f"{broken} (truncated?)" if broken else None
    if fmt.name == "lightgbm":
        return _lightgbm_problem(sample)
    return None


def first_with_suffix(files: Sequence[str], suffixes: Sequence[str]) -> Optional[str]:
    """The first of `files` whose name ends with one of `suffixes` (any case), else the first file: how a handler
    picks its model file among the declared ones."""
    if not files:
        return None
    return next((f for f in files if f.lower().endswith(tuple(suffixes))), files[0])


def model_file(fmt: formats.Format, files: Sequence[str]) -> Optional[str]:
    """The file the format's handler loads among the declared files (relative paths, directories expanded)."""
    return first_with_suffix(files, fmt.model_suffixes)


LFS_FIX = "(run `git lfs pull`, or fetch the weights another way)"
REFETCH_FIX = "(copy or export the model file again)"


def file_problem(fmt: formats.Format, relpath: str, sample: Sample) -> Optional[str]:
    """Why the format's model file is not what the format loads, if its first (and last) bytes show it; one line
    with its fix."""
    kind = identify(sample.head, sample.size)
    title = f"{fmt.article} {fmt.title} model"
    if kind.id == "lfs":
        return f"{relpath}: format {fmt.name}: is not {title}: it is {kind.description} {LFS_FIX}"
    if fmt.accepts and kind.id not in fmt.accepts:
        return (f"{relpath}: format {fmt.name}: is not {title} (expected {fmt.model_file}): it is {kind.description} "
                "(package the file the format loads, or declare the model's format in model.yaml)")
    header = _header_problem(fmt, sample, kind) if fmt.accepts else None
    if header is not None:
        return f"{relpath}: format {fmt.name}: is not a whole {fmt.title} model: {header} {REFETCH_FIX}"
    return None


def problems(format_name: str, samples: Mapping[str, Sample]) -> List[str]:
    """Every model file that cannot be what `format_name` loads: `samples` maps each declared file (relative, in
    declared order) to what was read of it (`read_sample`). Any file that is a git LFS pointer is one; so is the
    format's model file if its first or last bytes show another kind, or a cut file."""
    fmt = formats.lookup(format_name)
    out = []
    chosen = model_file(fmt, list(samples)) if fmt is not None and fmt.accepts else None
    for relpath, sample in samples.items():
        if relpath == chosen and fmt is not None:
            found = file_problem(fmt, relpath, sample)
        elif identify(sample.head[:LFS_HEAD], sample.size).id == "lfs":
            found = f"{relpath}: is {KINDS['lfs']} {LFS_FIX}"
        else:
            found = None
        if found:
            out.append(found)
    return out


def load_failure(format_name: str, relpath: str, sample: Sample, error: BaseException) -> str:
    """The runtime's one line for a model file its format's library could not load, though `file_problem` found
    nothing wrong with it."""
    fmt = formats.lookup(format_name)
    title = fmt.title if fmt is not None else format_name
    kind = identify(sample.head, sample.size) if sample.size >= 0 else None
    what = f" ({kind.description})" if kind is not None and kind.id in ("text", "unknown") else ""
    text = " ".join(str(error).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return (f"{relpath}: format {format_name}: {title} could not load it{what}: {type(error).__name__}"
            + (f": {text}" if text else ""))


def open_binary(path: str) -> BinaryIO:
    """A model file on disk. Readers take another opener for a file that is a slice of a blob (a file of a registry
    artifact kept inside its image layer)."""
    return open(path, "rb")


def read_sample(path: str, head_bytes: int = HEAD_BYTES, open_file: Callable[[str], BinaryIO] = open_binary) -> Sample:
    """The first `head_bytes` of a file, its size, and its last TAIL_BYTES when the head does not reach them."""
    with open_file(path) as f:
        head = f.read(head_bytes)
        size = f.seek(0, os.SEEK_END)
        tail = b""
        if size > len(head) and head_bytes >= HEAD_BYTES:
            f.seek(max(len(head), size - TAIL_BYTES))
            tail = f.read(TAIL_BYTES)
    return Sample(head, size, tail)
