"""One model file as one image layer in the blob store, its bytes read once and written once.

The source is read in a single pass that feeds the normalised tar writer, which feeds the compressor (when the
layer is compressed), which feeds the store's temporary file: the file's sha256, the tar's (the diff_id) and the
blob's are all hashed on the way. A `layers/` record remembers which blob a file's bytes became under a given
spec, so an unchanged file (by the stat cache in `sources.py`) costs one `stat` and no read on the next build.

A file of a registry artifact is downloaded straight into its layer (`write_streamed`): the layer is then the only
copy of its bytes in the store, and a `tars/` record names it by the file's sha256 and its path, so the image's layer
costs no write at all. Its bytes are read back, when something needs them, as a slice of that layer.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Dict, Iterable, List, Mapping, Optional, Tuple, cast

from omi_plugin.blob_store import sources
from omi_plugin.blob_store.store import BlobStore, read_json, write_json_atomically
from omi_plugin.oci import canonical_json, compression, media_types
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.oci.hashing import file_sha256
from omi_plugin.oci.image import Layer
from omi_plugin.oci.tar import Entry, LayerError, Segment, layer_segments, write_layer

FORMAT = 2  # of the layer records: bump when the bytes written for the same spec change
LAYERS = "layers"
TARS = "tars"  # an uncompressed one-file layer, by the file's sha256, its path and mode: compression aside
ARTIFACT_FILE_MODE = 0o644  # a file of a registry artifact (its blob is read-only: no executable bit to keep)


@dataclass(frozen=True)
class FileLayerSpec:
    source: str  # absolute path of the model file
    dest: str  # its path in the image, relative (`models/<name>/<file>`)
    created_by: str
    setting: compression.Setting
    # Bytes of the store whose sha256 is known (a file of a registry artifact, verified as it was downloaded):
    # `size` bytes of `source` from `offset`, never hashed again. Empty: `source` is a file of the repository, whole.
    file_digest: str = ""
    offset: int = 0
    size: int = -1

    def to_json(self) -> Dict[str, Any]:
        known = {"file_digest": self.file_digest, "offset": self.offset, "size": self.size} if self.file_digest else {}
        return {"source": self.source, "dest": self.dest, "created_by": self.created_by,
                "compression": self.setting.to_json(), **known}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "FileLayerSpec":
        c = data["compression"]
        return FileLayerSpec(str(data["source"]), str(data["dest"]), str(data["created_by"]),
                             compression.Setting(str(c["algorithm"]), int(c.get("level", 0)), bool(c.get("probe"))),
                             str(data.get("file_digest", "")), int(data.get("offset", 0)), int(data.get("size", -1)))

    def open(self) -> BinaryIO:
        """The file's bytes, from their first (a stream that may go on past them: readers take `size` bytes)."""
        f = open(self.source, "rb")
        if self.offset:
            f.seek(self.offset)
        return f


@dataclass(frozen=True)
class StoredFileLayer:
    layer: Layer  # its blob is `BlobStore.blob(layer.descriptor.digest)`
    file_digest: str  # "sha256:<hex>" of the model file itself
    file_size: int

    def to_json(self) -> Dict[str, Any]:
        return {"layer": self.layer.to_json(), "file_digest": self.file_digest, "file_size": self.file_size}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "StoredFileLayer":
        return StoredFileLayer(Layer.from_json(data["layer"]), str(data["file_digest"]), int(data["file_size"]))


def _mode(st: os.stat_result) -> int:
    return 0o755 if st.st_mode & 0o111 else 0o644  # as every other layer: the executable bit only


def _record_key(spec: FileLayerSpec, file_digest: str, mode: int) -> str:
    return canonical_json.dumps({"format": FORMAT, "file": file_digest, "mode": mode, "dest": spec.dest,
                                 "created_by": spec.created_by, "compression": spec.setting.to_json()}).decode()


def _recorded_layer(store: BlobStore, spec: FileLayerSpec, file_digest: str, mode: int) -> Optional[StoredFileLayer]:
    record = read_json(store.record_path(LAYERS, _record_key(spec, file_digest, mode)))
    if record is None:
        return None
    try:
        stored = StoredFileLayer.from_json(record)
    except (KeyError, TypeError, ValueError):
        return None
    return stored if store.has(stored.layer.descriptor.digest) else None


def _tar_key(file_digest: str, dest: str, mode: int) -> str:
    return canonical_json.dumps({"format": FORMAT, "file": file_digest, "mode": mode, "dest": dest}).decode()


def remember_tar(store: BlobStore, file_digest: str, dest: str, mode: int, blob: Descriptor) -> None:
    """Record an uncompressed one-file layer (its digest is its diff_id), whatever history note a build gives it."""
    write_json_atomically(store.record_path(TARS, _tar_key(file_digest, dest, mode)), blob.to_json())


def find_tar(store: BlobStore, file_digest: str, dest: str, mode: int) -> Optional[Descriptor]:
    """The uncompressed one-file layer of these bytes at `dest`, when the store has it."""
    record = read_json(store.record_path(TARS, _tar_key(file_digest, dest, mode)))
    try:
        found = Descriptor.from_json(record) if record is not None else None
    except (KeyError, TypeError, ValueError):
        return None
    return found if found is not None and found.media_type == media_types.LAYER_TAR and store.has(found.digest) \
        else None


def data_offset(dest: str, size: int, mode: int = ARTIFACT_FILE_MODE) -> int:
    """Where a file's bytes start in its one-file layer: after the headers of its parent directories and its own."""
    offset = 0
    for segment in layer_segments([Entry.file(dest, b"", size=size, mode=mode)]):
        if not isinstance(segment, bytes):
            return offset
        offset += len(segment)
    return offset  # an empty file: no bytes anywhere


def write_streamed(store: BlobStore, dest: str, size: int, chunks: Iterable[bytes]) -> Descriptor:
    """Write the uncompressed one-file layer of a file that arrives as `chunks` (a download), without the file ever
    being a blob of its own: one write. `chunks` must give exactly `size` bytes and raise when they are not the bytes
    the caller expects (a digest checked as they stream); then nothing is left in the store."""
    def tar(sink: BinaryIO) -> Tuple[str, int]:
        # The caller hashes the file's bytes as they arrive; the tar's hash runs beside it, on the other core.
        sha256, total, content = _BackgroundSha256(), 0, 0
        try:
            for segment in layer_segments([Entry.file(dest, b"", size=size, mode=ARTIFACT_FILE_MODE)]):
                for data in (segment,) if isinstance(segment, bytes) else chunks:
                    sink.write(data)
                    sha256.update(data)
                    total += len(data)
                    content += 0 if isinstance(segment, bytes) else len(data)
            content += sum(len(rest) for rest in chunks)  # an empty file has no data segment: its check runs here
            if content != size:
                raise LayerError(f"{dest}: {content} bytes arrived, {size} were announced")
            return sha256.digest(), total
        finally:
            sha256.close()

    digest, total = store.write_hashed(tar)
    return Descriptor(media_types.LAYER_TAR, digest, total)


def find(store: BlobStore, spec: FileLayerSpec) -> Optional[StoredFileLayer]:
    """The layer, when the store has it for the file as it is now, without reading the file (a racy file is hashed,
    never rewritten). None: the layer must be written."""
    if spec.file_digest:
        # Whether `auto` compresses a layer is the layer writer's to judge (the probe runs in its process).
        return _recorded_layer(store, spec, spec.file_digest, ARTIFACT_FILE_MODE) or \
            (_downloaded_into(store, spec) if spec.setting.algorithm == compression.NONE else None)
    st = os.stat(spec.source)
    known = sources.known_digest(store, spec.source)
    if known is None:
        return None
    stored = _recorded_layer(store, spec, known.digest, _mode(st))
    if stored is None or known.trusted:
        return stored
    before = sources.Identity.of(st)
    digest, _ = file_sha256(spec.source)
    if digest != known.digest:
        return None
    sources.remember(store, spec.source, before, digest)
    return stored


def _layer_ratio(entry: Entry, source_offset: int = 0) -> float:
    """The probe's estimate over the layer's tar, as the sandboxed compressor probes a built layer, from the file and
    the tar's structure, without writing the tar (the file's bytes start at `source_offset` of `entry.content`)."""
    spans: List[Tuple[int, int, Segment]] = []
    end = 0
    for segment in layer_segments([entry]):
        length = len(segment) if isinstance(segment, bytes) else segment.size
        spans.append((end, length, segment))
        end += length
    with open(cast(str, entry.content), "rb") as f:
        def read_at(offset: int, n: int) -> bytes:
            out = bytearray()
            for start, length, segment in spans:
                low, high = max(offset, start), min(offset + n, start + length)
                if low >= high:
                    continue
                if isinstance(segment, bytes):
                    out += segment[low - start:high - start]
                else:
                    f.seek(source_offset + low - start)
                    out += f.read(high - low)
            return bytes(out)

        return compression.estimated_ratio_of(read_at, end)


class _BackgroundSha256:
    """A sha256 fed on a second thread, one chunk in flight (memory stays one chunk): two hashes of the same bytes
    (a file's and its tar's) take the time of one on two cores, as hashlib releases the GIL."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._pool = ThreadPoolExecutor(1)
        self._pending: Optional["Future[None]"] = None

    def update(self, data: bytes) -> None:
        self._wait()
        self._pending = self._pool.submit(self._sha256.update, data)

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def digest(self) -> str:
        self._wait()
        return "sha256:" + self._sha256.hexdigest()

    def close(self) -> None:
        self._wait()
        self._pool.shutdown()


class _HashingReader:
    """The model file, read for the tar and hashed on a second thread."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._sha256 = _BackgroundSha256()

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._sha256.update(data)
        return data

    def digest(self) -> str:
        return self._sha256.digest()

    def __enter__(self) -> "_HashingReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self._sha256.close()
        self._stream.close()


def _compresses(spec: FileLayerSpec, size: int, mode: int) -> bool:
    setting = spec.setting
    return setting.algorithm != compression.NONE and (
        not setting.probe or _layer_ratio(Entry.file(spec.dest, spec.source, size=size, mode=mode), spec.offset)
        <= compression.WORTH_IT)


def _downloaded_into(store: BlobStore, spec: FileLayerSpec) -> Optional[StoredFileLayer]:
    """The layer a file of a registry artifact was downloaded into, when it is this very layer (at this path; the
    caller knows the layer is uncompressed): nothing to write."""
    tar_blob = find_tar(store, spec.file_digest, spec.dest, ARTIFACT_FILE_MODE)
    if tar_blob is None:
        return None
    stored = StoredFileLayer(Layer(tar_blob, tar_blob.digest, spec.created_by), spec.file_digest, spec.size)
    write_json_atomically(store.record_path(LAYERS, _record_key(spec, spec.file_digest, ARTIFACT_FILE_MODE)),
                          stored.to_json())
    return stored


def build(store: BlobStore, spec: FileLayerSpec) -> StoredFileLayer:
    """The layer of `spec.source`: found in the store, or written to it in one pass over the file."""
    found = find(store, spec)
    if found is not None:
        return found
    known = spec.file_digest
    if known:
        size, mode, before = spec.size, ARTIFACT_FILE_MODE, None
    else:
        st = os.stat(spec.source)
        size, mode, before = st.st_size, _mode(st), sources.Identity.of(st)
    setting = spec.setting
    compress = _compresses(spec, size, mode)
    reused = _downloaded_into(store, spec) if known and not compress else None
    if reused is not None:
        return reused
    readers = []

    def open_source() -> BinaryIO:
        if known:
            return spec.open()  # a verified blob of the store: its sha256 is known
        reader = _HashingReader(open(spec.source, "rb"))
        readers.append(reader)
        return reader  # type: ignore[return-value]

    entry = Entry.file(spec.dest, open_source, size=size, mode=mode)

    def tar(sink: BinaryIO) -> Tuple[str, int]:
        info = write_layer([entry], sink)
        return info.digest, info.size

    def compressed_tar(sink: Any) -> Tuple[str, int]:
        compressor = compression.StreamCompressor(sink, setting)
        info = tar(cast(BinaryIO, compressor))
        compressor.close()
        return info

    if compress:
        blob_digest, blob_size, produced = store.write(compressed_tar)
        diff_id = cast(Tuple[str, int], produced)[0]
    else:  # the blob is the tar: its digest is the diff_id, hashed once
        blob_digest, blob_size = store.write_hashed(tar)
        diff_id = blob_digest
    file_digest = known or (readers[0].digest() if readers else "sha256:" + hashlib.sha256().hexdigest())
    if before is not None:
        sources.remember(store, spec.source, before, file_digest)
    media_type = compression.with_algorithm(media_types.LAYER_TAR, setting.algorithm) if compress \
        else media_types.LAYER_TAR
    stored = StoredFileLayer(Layer(Descriptor(media_type, blob_digest, blob_size), diff_id, spec.created_by),
                             file_digest, size)
    if not compress:
        remember_tar(store, file_digest, spec.dest, mode, stored.layer.descriptor)
    write_json_atomically(store.record_path(LAYERS, _record_key(spec, file_digest, mode)), stored.to_json())
    return stored
