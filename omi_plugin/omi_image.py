"""What makes an OCI image an OMI model image: env, labels, annotations, the ModelPack artifact and the record.

Pure functions from (model metadata, base, layers) to JSON blobs; the Pants rules only move digests around them.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from omi_contract import image as contract
from omi_contract import interfaces as omi_interfaces
from omi_plugin.build_record import BuildRecord, BundledModel, RecordedAttestations, RecordedLayer
from omi_plugin.metadata.model_yaml import ModelMetadata
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.compression import algorithm_of, with_algorithm
from omi_plugin.oci.descriptor import Blob, Descriptor
from omi_plugin.oci.image import Layer, RuntimeConfig, build_config, build_image_index, build_index, build_manifest
from omi_plugin.oci.platforms import AMD64, Platform


@dataclass(frozen=True)
class BaseImageConfig:
    """What a base contributes besides its layers."""

    name: str
    manifest_digest: str
    runtime: RuntimeConfig
    python: str
    # How to start `python` from the unpacked layers on a build machine (to compile bytecode ahead of time).
    loader: str = AMD64.loader
    library_path: Tuple[str, ...] = AMD64.library_path
    platform: Platform = AMD64
    python_version: str = ""  # the Debian version of a Debian base's CPython; "" for other bases


@dataclass(frozen=True)
class AssembledImage:
    config: Blob
    manifest: Blob
    index_json: bytes
    modelpack_config: Blob
    modelpack_manifest: Blob
    modelpack_index_json: bytes
    tags: Tuple[str, ...]
    layers: Tuple[Layer, ...]


def model_dir_in_image(name: str) -> str:
    """`models/<name>`: where a model's files are in the image, as layer paths are written (relative)."""
    return posixpath.join(contract.MODELS_DIR.lstrip("/"), name)


def model_layer_path(metadata: ModelMetadata, relpath: str) -> str:
    return posixpath.join(model_dir_in_image(metadata.name), relpath)


def omi_labels(metadata: ModelMetadata, spec_version: str, http_port: str) -> Dict[str, str]:
    """The OMI labels, in the 1.0 form or the 1.1 form."""
    if spec_version == "1.0":
        return {contract.LABEL_INTERFACES: json.dumps(metadata.interfaces, separators=(",", ":"))}
    by_interface: Dict[str, List[str]] = {}
    for pair in metadata.interfaces:
        interface, protocol = pair.split(".")
        by_interface.setdefault(interface, []).append(protocol)
    return {
        contract.LABEL_INTERFACES: json.dumps(list(by_interface), separators=(",", ":")),
        contract.LABEL_PROTOCOLS: json.dumps(list(by_interface.values()), separators=(",", ":")),
        contract.LABEL_PORT: http_port,
        contract.LABEL_MODEL_NAME: metadata.name,
    }


def oci_annotations(metadata: ModelMetadata, base: BaseImageConfig, vcs_revision: Optional[str] = None) -> Dict[str, str]:
    """The manifest's annotations; `vcs_revision` (the source commit) only when the build is stamped."""
    record = metadata.record
    out = {
        mt.ANNOTATION_TITLE: metadata.name,
        mt.ANNOTATION_VERSION: metadata.version,
        contract.ANNOTATION_RUN_ID: metadata.run_id,
        mt.ANNOTATION_BASE_NAME: base.name,
        mt.ANNOTATION_BASE_DIGEST: base.manifest_digest,
    }
    if vcs_revision:
        out[mt.ANNOTATION_REVISION] = vcs_revision
    if record.description:
        out[mt.ANNOTATION_DESCRIPTION] = record.description
    if record.licenses:
        out[mt.ANNOTATION_LICENSES] = " AND ".join(record.licenses)
    if record.authors:
        out[mt.ANNOTATION_AUTHORS] = ", ".join(record.authors)
    if record.source:
        out[mt.ANNOTATION_SOURCE] = record.source
    return out


def runtime_config(metadata: ModelMetadata, base: BaseImageConfig, http_port: str,
                   labels: Mapping[str, str], modelcar: bool = False) -> RuntimeConfig:
    """How the container starts. A ModelCar starts the server as its `Cmd`, not its `Entrypoint`: KServe runs the
    sidecar with `args: [sh, -c, ...]` and no `command`, which replaces the `Cmd` only."""
    server = (base.python, "-m", "omi_runtime")
    default = omi_interfaces.default_pair(tuple(metadata.interfaces))
    env = base.runtime.with_env([
        ("PYTHONPATH", f"{contract.APP_DIR}:{contract.SITE_PACKAGES_DIR}"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("PYTHONUNBUFFERED", "1"),
        (contract.ENV_MODELS_DIR, contract.MODELS_DIR),
        (contract.ENV_INTERFACE, default.interface),
        (contract.ENV_PROTOCOL, default.protocol),
        (contract.ENV_HTTP_PORT, http_port),
        (contract.ENV_MODEL_NAME, metadata.name),
    ]).env
    return RuntimeConfig(
        user=contract.NONROOT_USER,
        env=env,
        entrypoint=() if modelcar else server,
        cmd=server if modelcar else (),
        working_dir=contract.WORKING_DIR,
        exposed_ports=(f"{http_port}/tcp",),
        labels=dict(labels),
        stop_signal="SIGTERM",
    )


def modelpack_config(metadata: ModelMetadata, layers: Sequence[Layer]) -> Blob:
    record = metadata.record
    descriptor: Dict[str, Any] = {"name": metadata.name, "version": metadata.version, "revision": metadata.run_id}
    if record.authors:
        descriptor["authors"] = list(record.authors)
    if record.licenses:
        descriptor["licenses"] = list(record.licenses)
    if record.description:
        descriptor["description"] = record.description
    if record.source:
        descriptor["sourceURL"] = record.source
    config = {
        "descriptor": descriptor,
        "config": {"format": record.format},
        "modelfs": {"type": "layers", "diffIds": [layer.diff_id for layer in layers]},
    }
    return Blob.of_json(mt.MODELPACK_CONFIG, config)


def modelpack_layer(layer: Layer, path_in_image: str, tar_media_type: str) -> Descriptor:
    """The same blob as the image's model layer, typed (with the layer's compression) and annotated for ModelPack
    clients."""
    media_type = with_algorithm(tar_media_type, algorithm_of(layer.descriptor.media_type))
    file_metadata = {"name": posixpath.basename(path_in_image), "mode": 0o644, "uid": 0, "gid": 0,
                     "size": 0, "mtime": "1970-01-01T00:00:00Z", "typeflag": 48}
    return Descriptor(media_type, layer.descriptor.digest, layer.descriptor.size, {
        mt.ANNOTATION_MODEL_FILEPATH: path_in_image,
        mt.ANNOTATION_MODEL_FILE_METADATA: json.dumps(file_metadata, sort_keys=True, separators=(",", ":")),
        mt.ANNOTATION_MODEL_FILE_MEDIATYPE_UNTESTED: "true",
        mt.ANNOTATION_TITLE: posixpath.basename(path_in_image),
    })


def model_artifact_tag(image_tag: str) -> str:
    """The tag of the model artifact that goes with an image tag."""
    return f"{image_tag}{contract.MODEL_ARTIFACT_TAG_SUFFIX}"


def omlmd_artifact_tag(image_tag: str) -> str:
    """The tag of the omlmd flavour of the model artifact that goes with an image tag."""
    return f"{image_tag}{contract.OMLMD_ARTIFACT_TAG_SUFFIX}"


def model_subject(modelpack_manifest: Blob) -> Descriptor:
    """The descriptor an image manifest's `subject` holds: the model artifact's manifest, with its artifact type."""
    d = modelpack_manifest.descriptor
    return Descriptor(d.media_type, d.digest, d.size, artifact_type=d.artifact_type or mt.MODELPACK_ARTIFACT)


@dataclass(frozen=True)
class SourceArtifact:
    """A model artifact of a registry the model files come from: the image's subject, instead of one omi makes."""

    reference: str  # registry/repository@sha256:...
    manifest: Blob  # its descriptor carries the artifact type
    config: Blob


def assemble(metadata: ModelMetadata, base: BaseImageConfig, base_layers: Sequence[Layer],
             runtime_layers: Sequence[Layer], model_layers: Sequence[Tuple[str, Layer]], record_layer: Layer,
             *, bundled_layers: Sequence[Layer] = (), http_port: str, spec_version: str, extra_tags: Sequence[str],
             app_layer_count: int = 1, vcs_revision: Optional[str] = None,
             modelcar: bool = False, source_artifact: Optional[SourceArtifact] = None) -> AssembledImage:
    """Image = base + runtime deps + model files + model record + bundled models' files and records + app code;
    model artifact = the registry artifact the model files came from, else a ModelPack artifact of the image's own
    model files + record."""
    tags = (metadata.run_id, *[t for t in extra_tags if t != metadata.run_id])
    if source_artifact is not None:
        mp_config, mp_manifest = source_artifact.config, source_artifact.manifest
    else:
        record_path = model_layer_path(metadata, contract.RECORD_FILE)
        mp_layers = [modelpack_layer(layer, model_layer_path(metadata, rel), mt.MODELPACK_WEIGHT_TAR)
                     for rel, layer in model_layers]
        mp_layers.append(modelpack_layer(record_layer, record_path, mt.MODELPACK_WEIGHT_CONFIG_TAR))
        mp_config = modelpack_config(metadata, [*(layer for _, layer in model_layers), record_layer])
        mp_manifest = build_manifest(mp_config.descriptor, mp_layers, artifact_type=mt.MODELPACK_ARTIFACT,
                                     annotations={mt.ANNOTATION_TITLE: metadata.name,
                                                  mt.ANNOTATION_VERSION: metadata.version,
                                                  contract.ANNOTATION_RUN_ID: metadata.run_id})
    mp_index = build_index([(mp_manifest.descriptor, tuple(model_artifact_tag(t) for t in tags))])

    labels = omi_labels(metadata, spec_version, http_port)
    annotations = {**oci_annotations(metadata, base, vcs_revision), **labels}
    # runtime_layers: dependency layers first, then the application layers (code, and its bytecode if any).
    deps_layers, app_layers = runtime_layers[:-app_layer_count], runtime_layers[-app_layer_count:]
    layers = [*base_layers, *deps_layers, *(layer for _, layer in model_layers), record_layer, *bundled_layers,
              *app_layers]
    config = build_config(layers, runtime_config(metadata, base, http_port, annotations, modelcar),
                          platform=base.platform)
    # The image refers to its model (OCI 1.1 `subject`), so the registry lists every image serving a model among
    # that model artifact's referrers; the model artifact's bytes know nothing of the images built around it.
    manifest = build_manifest(config.descriptor, [layer.descriptor for layer in layers], annotations=annotations,
                              subject=model_subject(mp_manifest))
    index_json = build_index([(manifest.descriptor, tags)])
    return AssembledImage(config, manifest, index_json, mp_config, mp_manifest, mp_index, tags, tuple(layers))


@dataclass(frozen=True)
class AssembledIndex:
    """The image index of a several-platform build: each platform's image as a one-platform build makes it."""

    index: Blob
    index_json: bytes  # the layout's, naming the index under the images' tags
    images: Tuple[Tuple[Platform, AssembledImage], ...]

    @property
    def tags(self) -> Tuple[str, ...]:
        return self.images[0][1].tags


def assemble_index(images: Sequence[Tuple[Platform, AssembledImage]]) -> AssembledIndex:
    """The index of `images` (one model artifact, one set of tags between them): its annotations are those every
    image has with the same value (the base's digest, which differs, is left to each image), and its subject is the
    model artifact, so the registry lists the index among the model's referrers as it lists each image."""
    first = images[0][1]
    for platform, image in images[1:]:
        if image.tags != first.tags or image.modelpack_manifest.descriptor != first.modelpack_manifest.descriptor:
            raise ValueError(f"the {platform.name} image serves another model artifact or tags than the "
                             f"{images[0][0].name} image")
    manifests = [json.loads(image.manifest.data).get("annotations") or {} for _, image in images]
    shared = {k: v for k, v in manifests[0].items() if all(m.get(k) == v for m in manifests[1:])}
    index = build_image_index([(image.manifest.descriptor, platform) for platform, image in images],
                              annotations=shared, subject=model_subject(first.modelpack_manifest))
    return AssembledIndex(index, build_index([(index.descriptor, first.tags)]), tuple(images))


def build_record(assembled: AssembledImage, *, repository: str, layout: str, modelpack_layout: str,
                 base: BaseImageConfig, metadata: ModelMetadata,
                 bundled: Sequence[ModelMetadata] = (), omlmd: Optional[Tuple[str, str]] = None,
                 attestations: Optional[RecordedAttestations] = None,
                 model_artifact: Optional[str] = None) -> BuildRecord:
    """The build record written next to the layout: what deploy tooling needs without parsing OCI."""
    return BuildRecord(
        image_digest=assembled.manifest.descriptor.digest,
        model_digest=assembled.modelpack_manifest.descriptor.digest,
        config_digest=assembled.config.descriptor.digest,
        tags=assembled.tags,
        repository=repository,
        interfaces=tuple(metadata.interfaces),
        layout=layout,
        modelpack_layout=modelpack_layout,
        model_name=metadata.name,
        model_version=metadata.version,
        run_id=metadata.run_id,
        base_name=base.name,
        base_digest=base.manifest_digest,
        bundled_models=tuple(BundledModel(m.name, m.version, m.run_id, tuple(m.interfaces)) for m in bundled),
        layers=tuple(RecordedLayer(l.descriptor.digest, l.descriptor.size, l.descriptor.media_type, l.created_by)
                     for l in assembled.layers),
        omlmd_digest=omlmd[0] if omlmd else None,
        omlmd_layout=omlmd[1] if omlmd else None,
        attestations=attestations,
        model_artifact=model_artifact,
    )
