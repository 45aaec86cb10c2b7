"""Image config and manifest: turn layers plus a runtime configuration into the two JSON blobs of an image.

Everything that could vary between builds is pinned: `created` defaults to the epoch, history entries carry no
timestamps of their own, and tags never enter the config or manifest (they are refs in `index.json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import Blob, Descriptor
from omi_plugin.oci.platforms import AMD64, Platform

EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class Layer:
    """A layer blob as it sits in the manifest, with the digest of its uncompressed tar and a history note."""

    descriptor: Descriptor
    diff_id: str
    created_by: str = ""

    def to_json(self) -> Dict[str, Any]:
        return {"descriptor": self.descriptor.to_json(), "diff_id": self.diff_id, "created_by": self.created_by}

    @staticmethod
    def from_json(value: Mapping[str, Any]) -> "Layer":
        return Layer(Descriptor.from_json(value["descriptor"]), value["diff_id"], value.get("created_by", ""))


@dataclass(frozen=True)
class RuntimeConfig:
    """The `config` section of an image config: how a runtime starts the container."""

    user: str = ""
    env: Tuple[Tuple[str, str], ...] = ()
    entrypoint: Tuple[str, ...] = ()
    cmd: Tuple[str, ...] = ()
    working_dir: str = ""
    exposed_ports: Tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""

    def __hash__(self) -> int:
        return hash((self.user, self.env, self.entrypoint, self.cmd, self.working_dir, self.exposed_ports,
                     tuple(sorted(self.labels.items())), self.stop_signal))

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.env:
            out["Env"] = [f"{k}={v}" for k, v in self.env]
        if self.entrypoint:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.exposed_ports:
            out["ExposedPorts"] = {port: {} for port in sorted(self.exposed_ports)}
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        return out

    def with_env(self, overrides: Sequence[Tuple[str, str]]) -> "RuntimeConfig":
        """Later values win, and keep the position of the first definition, as Dockerfile ENV does."""
        merged: Dict[str, str] = dict(self.env)
        merged.update(overrides)
        return RuntimeConfig(self.user, tuple(merged.items()), self.entrypoint, self.cmd, self.working_dir,
                             self.exposed_ports, self.labels, self.stop_signal)


def parse_env(entries: Sequence[str]) -> Tuple[Tuple[str, str], ...]:
    return tuple((e.split("=", 1)[0], e.split("=", 1)[1] if "=" in e else "") for e in entries)


def build_config(layers: Sequence[Layer], runtime: RuntimeConfig, *, platform: Platform = AMD64,
                 created: str = EPOCH) -> Blob:
    config = {
        **platform.to_oci(),
        "created": created,
        "config": runtime.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": created, "created_by": layer.created_by or "omi"} for layer in layers],
    }
    return Blob.of_json(media_types.CONFIG, config)


def build_manifest(config: Descriptor, layers: Sequence[Descriptor], *,
                   annotations: Optional[Mapping[str, str]] = None, artifact_type: Optional[str] = None,
                   subject: Optional[Descriptor] = None) -> Blob:
    manifest: Dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_types.MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if artifact_type:
        manifest["artifactType"] = artifact_type
    if annotations:
        manifest["annotations"] = dict(annotations)
    if subject is not None:
        manifest["subject"] = subject.to_json()
    return Blob.of_json(media_types.MANIFEST, manifest)


def build_image_index(images: Sequence[Tuple[Descriptor, Platform]], *,
                      annotations: Optional[Mapping[str, str]] = None,
                      subject: Optional[Descriptor] = None) -> Blob:
    """An image index (a blob, not a layout's `index.json`): one entry per platform's image, with its `platform`."""
    index: Dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_types.INDEX,
        "manifests": [Descriptor(d.media_type, d.digest, d.size, platform=platform.to_oci()).to_json()
                      for d, platform in images],
    }
    if annotations:
        index["annotations"] = dict(annotations)
    if subject is not None:
        index["subject"] = subject.to_json()
    return Blob.of_json(media_types.INDEX, index)


def build_index(manifests: Sequence[Tuple[Descriptor, Sequence[str]]]) -> bytes:
    """An OCI layout `index.json`: one entry per (manifest, ref name), in the order given."""
    from omi_plugin.oci import canonical_json

    entries: List[Dict[str, Any]] = []
    for descriptor, refs in manifests:
        for ref in refs:
            annotated = Descriptor(descriptor.media_type, descriptor.digest, descriptor.size,
                                   {**descriptor.annotations, media_types.ANNOTATION_REF_NAME: ref},
                                   descriptor.artifact_type, descriptor.platform)
            entries.append(annotated.to_json())
    return canonical_json.dumps({"schemaVersion": 2, "mediaType": media_types.INDEX, "manifests": entries})
