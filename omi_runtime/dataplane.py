"""The dataplane: what a request means, independent of the wire.

`ModelRuntime` owns one model: its metadata, handler, load state, worker thread and batcher. `DataPlane` answers
the protocol-neutral questions every transport asks (live? ready? metadata? infer, explain, process items),
validates requests against the declared inputs/outputs and raises `omi_runtime.errors` types on bad ones.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from omi_contract import formats
from omi_contract.record import ModelRecord
from omi_runtime import __version__, codecs
from omi_runtime.batching import Batcher
from omi_runtime.errors import (
    BadRequest,
    ConfigError,
    InferenceError,
    ModelError,
    ModelNotFound,
    ModelNotReady,
    NotSupported,
)
from omi_runtime.handlers.base import ModelContext, has_method
from omi_runtime.logs import log
from omi_runtime.tensors import InferRequest, InferResponse, Tensor

SERVER_NAME = "omi_runtime"
# Rows coalesced per call for built-in handlers when model.yaml sets no max_batch_size.
DEFAULT_BUILTIN_BATCH = 32

Arrays = dict[str, np.ndarray]
ItemResult = Mapping[str, bytes] | Exception


def _platform(format_name: str) -> str:
    row = formats.lookup(format_name)
    return row.platform if row is not None and row.platform else format_name


def handler_failure(error: BaseException) -> InferenceError:
    """Map an exception raised by handler code to a request error."""
    if isinstance(error, InferenceError):
        return error
    if isinstance(error, (ValueError, TypeError)):
        return BadRequest(f"model rejected the input: {error}")
    return ModelError(f"model failed: {type(error).__name__}: {error}")


class ModelRuntime:
    """One model: loads its handler once (lazily or at start-up) and runs it on a dedicated worker thread."""

    def __init__(self, metadata: ModelRecord, model_dir: Path) -> None:
        self.metadata = metadata
        self.model_dir = model_dir
        self.handler: Any = None
        self.load_error: str | None = None
        self.load_seconds: float | None = None
        # One thread per model: handlers need not be thread-safe, and the event loop never runs model code.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"omi-{metadata.name}")
        self._lock: asyncio.Lock | None = None
        self._batcher: Batcher | None = None
        self.can_predict = self.can_process = self.can_explain = False

    @property
    def ready(self) -> bool:
        return self.handler is not None

    async def load(self) -> bool:
        """Load once; returns readiness. A failed load is retried on the next call (e.g. next Modzy Status)."""
        if self.handler is not None:
            return True
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.handler is not None:
                return True
            started = time.monotonic()
            loop = asyncio.get_running_loop()
            try:
                handler = await loop.run_in_executor(self.executor, self._create_and_load)
            except Exception as e:  # reported, not raised: the transports decide what a failed load means
                self.load_error = str(e) if isinstance(e, ConfigError) else f"{type(e).__name__}: {e}"
                log("model_load_failed", level="error", model=self.metadata.name, error=self.load_error)
                return False
            self.load_seconds = time.monotonic() - started
            self.can_predict = has_method(handler, "predict")
            self.can_process = has_method(handler, "process")
            self.can_explain = has_method(handler, "explain")
            max_batch = self.metadata.max_batch_size
            if max_batch is None:
                max_batch = DEFAULT_BUILTIN_BATCH if self.metadata.handler is None else 1
            if not getattr(handler, "batchable", False):
                max_batch = 1
            inline = bool(getattr(handler, "thread_agnostic", False))
            self._batcher = Batcher(handler.predict, self.executor, max_batch, inline) if self.can_predict else None
            self.handler, self.load_error = handler, None
            log("model_loaded", model=self.metadata.name, version=self.metadata.version,
                format=self.metadata.format, seconds=round(self.load_seconds, 3), max_batch_size=max_batch)
            return True

    def _create_and_load(self) -> Any:
        from omi_runtime.handlers import create_handler

        handler = create_handler(self.metadata, self.model_dir)
        load = getattr(handler, "load", None)
        if callable(load):
            load(ModelContext(model_dir=self.model_dir, metadata=self.metadata))
        return handler

    def _require_ready(self) -> None:
        if self.handler is None:
            detail = f": {self.load_error}" if self.load_error else ""
            raise ModelNotReady(f"model {self.metadata.name} is not loaded{detail}")

    async def predict(self, inputs: Arrays) -> Arrays:
        """Run the tensor handler (batched) on validated inputs."""
        self._require_ready()
        if self._batcher is None:
            return await self._predict_via_process(inputs)
        try:
            return await self._batcher.submit(inputs)
        except Exception as e:
            raise handler_failure(e) from None

    async def _predict_via_process(self, inputs: Arrays) -> Arrays:
        # A bytes-only handler behind a tensor protocol: one BYTES element per item, in and out.
        spec = self.metadata.inputs[0]
        if len(self.metadata.inputs) != 1 or spec.datatype != "BYTES":
            raise NotSupported(f"model {self.metadata.name} only processes bytes: declare one BYTES input")
        elements = inputs[spec.name].ravel()
        key, out_key = self.metadata.input_filename(), self.metadata.output_filename()
        results = await self.process([{key: codecs._as_bytes(e)} for e in elements])
        values = []
        for index, result in enumerate(results):
            if isinstance(result, Exception):
                raise BadRequest(f"item {index}: {result}")
            if out_key not in result:
                raise ModelError(f"model returned no {out_key!r} for item {index}")
            values.append(result[out_key])
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return {self.metadata.outputs[0].name: array}

    async def explain(self, inputs: Arrays) -> Any:
        self._require_ready()
        if not self.can_explain:
            raise NotSupported(f"model {self.metadata.name} does not provide explanations (its handler has no "
                               f"explain method)")
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self.handler.explain, inputs)
        except Exception as e:
            raise handler_failure(e) from None

    async def process(self, items: Sequence[Mapping[str, bytes]]) -> list[ItemResult]:
        """Run the bytes handler; a failing batch is retried item by item so only bad items fail."""
        self._require_ready()
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.executor, self._process_checked, items)
            return results
        except Exception as batch_error:
            if len(items) == 1:
                return [handler_failure(batch_error)]
        outcome: list[ItemResult] = []
        for item in items:
            try:
                outcome.extend(await loop.run_in_executor(self.executor, self._process_checked, [item]))
            except Exception as e:
                outcome.append(handler_failure(e))
        return outcome

    def _process_checked(self, items: Sequence[Mapping[str, bytes]]) -> list[ItemResult]:
        results = list(self.handler.process(items))
        if len(results) != len(items):
            raise ModelError(f"process() returned {len(results)} results for {len(items)} items")
        return results

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class DataPlane:
    """Protocol-neutral operations over the served model(s)."""

    def __init__(self, models: Sequence[ModelRuntime]) -> None:
        self.models = {m.metadata.name: m for m in models}

    # --- health and metadata ---

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return all(m.ready for m in self.models.values())

    def get_model(self, name: str, version: str = "") -> ModelRuntime:
        model = self.models.get(name)
        if model is None:
            raise ModelNotFound(f"model {name!r} is not served here; served: {', '.join(self.models)}")
        if version and version != model.metadata.version:
            raise ModelNotFound(f"model {name!r} has no version {version!r}; served: {model.metadata.version}")
        return model

    def model_ready(self, name: str, version: str = "") -> bool:
        return self.get_model(name, version).ready

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": []}

    def model_metadata(self, name: str, version: str = "") -> dict[str, Any]:
        meta = self.get_model(name, version).metadata
        return {
            "name": meta.name,
            "versions": [meta.version],
            "platform": _platform(meta.format),
            "inputs": [t.to_dict() for t in meta.inputs],
            "outputs": [t.to_dict() for t in meta.outputs],
        }

    # --- inference ---

    async def infer(self, request: InferRequest) -> InferResponse:
        model = self.get_model(request.model_name, request.model_version)
        meta = model.metadata
        declared = {t.name: t for t in meta.inputs}
        inputs: Arrays = {}
        for tensor in request.inputs:
            spec = declared.get(tensor.name)
            if spec is None:
                raise BadRequest(f"unknown input {tensor.name!r}: model {meta.name} takes "
                                 f"{', '.join(declared)}")
            if tensor.name in inputs:
                raise BadRequest(f"input {tensor.name!r} is given twice")
            if tensor.datatype != spec.datatype:
                raise BadRequest(f"input {tensor.name!r}: datatype {tensor.datatype} does not match the declared "
                                 f"{spec.datatype}")
            inputs[tensor.name] = tensor.data
        requested = self._requested_outputs(meta, request.outputs)
        outputs = await self.predict(meta.name, inputs, version=request.model_version)
        return InferResponse(
            model_name=meta.name,
            model_version=meta.version,
            id=request.id,
            parameters=dict(request.parameters),
            outputs=[Tensor(name, dt, list(outputs[name].shape), outputs[name]) for name, dt in requested],
        )

    @staticmethod
    def _requested_outputs(meta: ModelRecord, names: Sequence[str]) -> list[tuple[str, str]]:
        declared = {t.name: t.datatype for t in meta.outputs}
        if not names:
            return list(declared.items())
        for name in names:
            if name not in declared:
                raise BadRequest(f"unknown output {name!r}: model {meta.name} produces {', '.join(declared)}")
        return [(name, declared[name]) for name in names]

    def check_inputs(self, meta: ModelRecord, inputs: Mapping[str, np.ndarray]) -> None:
        """All declared inputs present, and each shape fits its declaration."""
        for spec in meta.inputs:
            array = inputs.get(spec.name)
            if array is None:
                raise BadRequest(f"missing input {spec.name!r}: model {meta.name} takes "
                                 f"{', '.join(t.name for t in meta.inputs)}")
            if not codecs.shape_matches(array.shape, spec.shape):
                raise BadRequest(f"input {spec.name!r}: shape {list(array.shape)} does not match the declared "
                                 f"{list(spec.shape)} (-1 = any size)")
        extra = set(inputs) - {t.name for t in meta.inputs}
        if extra:
            raise BadRequest(f"unknown input {sorted(extra)[0]!r}: model {meta.name} takes "
                             f"{', '.join(t.name for t in meta.inputs)}")

    async def predict(self, name: str, inputs: Arrays, version: str = "") -> Arrays:
        """Validated tensor prediction: declared-datatype arrays in, every declared output (cast) out."""
        model = self.get_model(name, version)
        meta = model.metadata
        self.check_inputs(meta, inputs)
        raw = await model.predict(inputs)
        if not isinstance(raw, Mapping):
            raise ModelError(f"predict() returned {type(raw).__name__}, expected a dict of arrays by output name")
        outputs: Arrays = {}
        for spec in meta.outputs:
            if spec.name not in raw:
                raise ModelError(f"predict() returned no output {spec.name!r} (got {', '.join(map(str, raw))})")
            try:
                outputs[spec.name] = codecs.cast(raw[spec.name], spec.datatype, spec.name)
            except BadRequest as e:  # the model's output, not the request, is wrong
                raise ModelError(str(e)) from None
        return outputs

    async def explain(self, name: str, inputs: Arrays, version: str = "") -> Any:
        model = self.get_model(name, version)
        self.check_inputs(model.metadata, inputs)
        return await model.explain(inputs)

    async def process(self, name: str, items: Sequence[Mapping[str, bytes]]) -> list[ItemResult]:
        return await self.get_model(name).process(items)
