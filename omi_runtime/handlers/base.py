"""The handler API: how omi_runtime talks to a model's code.

A handler is any class with a no-argument constructor and some of these methods (subclassing `Handler` is
optional; it only documents the shape):

- `load(self, context: ModelContext) -> None` (optional): called once, in a worker thread, before any request.
  `context.model_dir` is the model's directory; `context.path(rel)` resolves one of its declared `files`;
  `context.load_model_file(loader)` calls `loader(path)` and turns its failure into one line naming the file.
- Tensor-oriented: `predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]`, keyed by the declared
  input/output names. Arrays carry the declared datatypes (BYTES: object arrays of `bytes`; BF16: float32).
  Outputs not returned are an error; extra keys are ignored; values are cast to the declared datatype.
  Input arrays may be read-only views of the request bytes (no copy): copy before modifying them in place.
- `explain(self, inputs: dict[str, np.ndarray]) -> Any` (optional): JSON-able explanations (numpy allowed),
  served by KServe v1 `:explain`.
- Bytes-oriented (Chassis style): `process(self, items: Sequence[Mapping[str, bytes]]) -> Sequence[Mapping[str,
  bytes]]`: one mapping per input item keyed by file name (`input` unless declared), one result per item keyed by
  output file name (`results.json` unless declared). A result may be an Exception instance to fail only that
  item. Used by modzy.v2, by kfserving.v1 (base64 instances) and by kfserving.v2 (a BYTES tensor, one element
  per item) when the handler has no `predict`. With both methods, modzy.v2 uses `process`, the rest `predict`.
- `thread_agnostic = True` (class attribute, optional): `predict` keeps no per-thread state (no thread-local
  settings such as torch's grad mode), so the server may call it on its event loop's thread when it is fast (under
  a millisecond), saving the hop to the model's worker thread. Calls never overlap either way.
- `batchable = True` (class attribute, optional): inputs have a leading batch dimension and rows are independent,
  so the server may concatenate concurrent requests (up to `max_batch_size` rows) into one `predict` call.

Raise `omi_runtime.errors.BadRequest` for inputs the model rejects; ValueError/TypeError are treated the same;
any other exception is a model failure (HTTP 500 / INTERNAL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np

from omi_contract import formats, model_files
from omi_contract.record import ModelRecord
from omi_runtime.errors import ModelFileError

Loaded = TypeVar("Loaded")


@dataclass(frozen=True)
class ModelContext:
    """What a handler gets at load time."""

    model_dir: Path
    metadata: ModelRecord

    def path(self, relative: str) -> Path:
        return self.model_dir / relative

    def model_files(self) -> list[Path]:
        """The declared files in order, a directory entry standing for its files (sorted)."""
        out: list[Path] = []
        for rel in self.metadata.files:
            path = self.path(rel)
            out.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
        return out

    def first_file(self, suffixes: Sequence[str] = ()) -> Path:
        """The first declared file with one of the suffixes (or the first file at all)."""
        files = self.model_files()
        if not files:
            raise FileNotFoundError(f"model {self.metadata.name} declares no files")
        by_name = {str(path): path for path in files}
        return by_name[model_files.first_with_suffix(list(by_name), suffixes) or str(files[0])]

    def model_file(self) -> Path:
        """The file a built-in format loads: the first declared file with one of the format's suffixes."""
        fmt = formats.lookup(self.metadata.format)
        return self.first_file(fmt.model_suffixes if fmt is not None else ())

    def load_model_file(self, loader: Callable[[Path], Loaded], path: Path | None = None) -> Loaded:
        """`loader(path)` (the format's model file by default), once its first bytes show it is what the format loads
        (a truncated file can crash a library outright); a refusal or a failure is one line naming the file, the
        declared format and what the file is instead (`omi_contract.model_files`), not the library's exception."""
        path = path if path is not None else self.model_file()
        relative = path.relative_to(self.model_dir).as_posix() if path.is_relative_to(self.model_dir) else str(path)
        fmt = formats.lookup(self.metadata.format)
        sample = model_files.read_sample(str(path)) if path.is_file() else model_files.Sample(b"", -1)
        problem = model_files.file_problem(fmt, relative, sample) if fmt is not None and sample.size >= 0 else None
        if problem is not None:
            raise ModelFileError(problem)
        try:
            return loader(path)
        except Exception as e:  # noqa: BLE001 - whatever the library raises, the model file is what is wrong
            raise ModelFileError(model_files.load_failure(self.metadata.format, relative, sample, e)) from None


class Handler:
    """Optional base class; see the module docstring for the methods omi_runtime looks for."""

    batchable: bool = False
    thread_agnostic: bool = False

    def load(self, context: ModelContext) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # `explain` and `process` are looked up with getattr; define them only when supported.


def feature_matrix(inputs: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """The built-in handlers' model input: the one declared input, or several concatenated column-wise in order."""
    if len(names) == 1:
        return inputs[names[0]]
    return np.concatenate([inputs[n].reshape(len(inputs[n]), -1) for n in names], axis=1)


def has_method(handler: object, name: str) -> bool:
    attr = getattr(handler, name, None)
    if not callable(attr):
        return False
    # The base class's predict is a placeholder, not an implementation.
    return getattr(type(handler), name, None) is not getattr(Handler, name, object())


BytesItems = Sequence[Mapping[str, bytes]]
Explanation = Any
