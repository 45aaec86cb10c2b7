"""The build record: what `pants package` reports about one model image, written to `dist/<...>.omi.json`.

Deploy tooling reads it instead of parsing OCI; `pants publish` and `pants check` read it to know what was built.
Rules pass it as this typed value; it becomes JSON only when written to, or read back from, the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from omi_plugin.oci import canonical_json


class BuildRecordError(ValueError):
    """A build record file that is not one: `<file>: <what is wrong> (rebuild it)`."""


@dataclass(frozen=True)
class RecordedLayer:
    digest: str
    size: int
    media_type: str
    created_by: str


@dataclass(frozen=True)
class BundledModel:
    """A model the image carries besides its own (`bundled_models`), served when `MODEL_NAME` names it."""

    name: str
    version: str
    run_id: str
    interfaces: Tuple[str, ...]

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "version": self.version, "run_id": self.run_id,
                "interfaces": list(self.interfaces)}


@dataclass(frozen=True)
class RecordedAttestations:
    """The referrers `pants package` wrote beside the image: SBOM and provenance, in their own layout."""

    layout: str  # dist/-relative path of the referrers layout
    sbom: str  # dist/-relative path of the SPDX document
    sbom_digest: str  # the SBOM referrer's manifest (subject: the image)
    provenance_digests: Tuple[str, ...]  # the provenance referrers' manifests (subjects: the image, the model)
    signature_digests: Tuple[str, ...] = ()  # with a signing key: the image's and the model files' signatures
    model_signature: Optional[str] = None  # dist/-relative path of the model files' `model_signing` bundle

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"layout": self.layout, "sbom": self.sbom, "sbom_digest": self.sbom_digest,
                               "provenance_digests": list(self.provenance_digests)}
        if self.signature_digests:
            out.update(signature_digests=list(self.signature_digests), model_signature=self.model_signature)
        return out

    @staticmethod
    def from_dict(doc: Dict[str, Any]) -> "RecordedAttestations":
        return RecordedAttestations(doc["layout"], doc["sbom"], doc["sbom_digest"], tuple(doc["provenance_digests"]),
                                    tuple(doc.get("signature_digests", ())), doc.get("model_signature"))


@dataclass(frozen=True)
class PlatformImage:
    """One platform's image of an image index, with its own SBOM."""

    platform: str  # linux/amd64, linux/arm64
    image_digest: str
    config_digest: str
    base_digest: str
    sbom: Optional[str] = None  # dist/-relative path of its SPDX document
    sbom_digest: Optional[str] = None  # its SBOM referrer's manifest

    def to_dict(self) -> Dict[str, Any]:
        return {"platform": self.platform, "image_digest": self.image_digest, "config_digest": self.config_digest,
                "base_digest": self.base_digest,
                **({"sbom": self.sbom, "sbom_digest": self.sbom_digest} if self.sbom else {})}

    @staticmethod
    def from_dict(doc: Dict[str, Any]) -> "PlatformImage":
        return PlatformImage(doc["platform"], doc["image_digest"], doc["config_digest"], doc["base_digest"],
                             doc.get("sbom"), doc.get("sbom_digest"))


@dataclass(frozen=True)
class BuildRecord:
    # What the registry serves under `tags`: the image manifest's digest, or with several platforms the image index's
    # (`platform_images` then lists each platform's image; `config_digest`, `base_*` and `layers` are the first's).
    image_digest: str
    model_digest: str  # the ModelPack manifest's digest: the image manifest's `subject`
    config_digest: str
    tags: Tuple[str, ...]  # the run id first
    repository: str
    interfaces: Tuple[str, ...]
    layout: str  # dist/-relative path of the image layout
    modelpack_layout: str
    model_name: str
    model_version: str
    run_id: str
    base_name: str
    base_digest: str
    layers: Tuple[RecordedLayer, ...]
    bundled_models: Tuple[BundledModel, ...] = ()
    omlmd_digest: Optional[str] = None  # the omlmd flavour's manifest, when `[omi].omlmd_artifact` is on
    omlmd_layout: Optional[str] = None
    attestations: Optional[RecordedAttestations] = None
    model_artifact: Optional[str] = None  # the registry artifact the model files came from (`model_digest` names it)
    platform_images: Tuple[PlatformImage, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        return {
            "image_digest": self.image_digest,
            "model_digest": self.model_digest,
            "config_digest": self.config_digest,
            "tags": list(self.tags),
            "repository": self.repository,
            "interfaces": list(self.interfaces),
            "layout": self.layout,
            "modelpack_layout": self.modelpack_layout,
            "model": {"name": self.model_name, "version": self.model_version, "run_id": self.run_id},
            "base": {"name": self.base_name, "digest": self.base_digest},
            **({"bundled_models": [m.to_dict() for m in self.bundled_models]} if self.bundled_models else {}),
            **({"omlmd_digest": self.omlmd_digest, "omlmd_layout": self.omlmd_layout} if self.omlmd_digest else {}),
            **({"attestations": self.attestations.to_dict()} if self.attestations else {}),
            **({"model_artifact": self.model_artifact} if self.model_artifact else {}),
            **({"platform_images": [p.to_dict() for p in self.platform_images]} if self.platform_images else {}),
            "layers": [{"digest": layer.digest, "size": layer.size, "media_type": layer.media_type,
                        "created_by": layer.created_by} for layer in self.layers],
        }

    def to_json(self) -> str:
        return canonical_json.dumps_pretty(self.to_dict())

    @staticmethod
    def from_json(text: bytes, file: str) -> "BuildRecord":
        """Read a record written by `to_json`; BuildRecordError names the file when it is anything else."""
        try:
            doc = json.loads(text)
            return BuildRecord(
                image_digest=doc["image_digest"], model_digest=doc["model_digest"],
                config_digest=doc["config_digest"], tags=tuple(doc["tags"]), repository=doc["repository"],
                interfaces=tuple(doc["interfaces"]), layout=doc["layout"], modelpack_layout=doc["modelpack_layout"],
                model_name=doc["model"]["name"], model_version=doc["model"]["version"],
                run_id=doc["model"]["run_id"], base_name=doc["base"]["name"], base_digest=doc["base"]["digest"],
                layers=tuple(RecordedLayer(l["digest"], l["size"], l["media_type"], l["created_by"])
                             for l in doc["layers"]),
                bundled_models=tuple(BundledModel(m["name"], m["version"], m["run_id"], tuple(m["interfaces"]))
                                     for m in doc.get("bundled_models", [])),
                omlmd_digest=doc.get("omlmd_digest"), omlmd_layout=doc.get("omlmd_layout"),
                attestations=RecordedAttestations.from_dict(doc["attestations"]) if "attestations" in doc else None,
                model_artifact=doc.get("model_artifact"),
                platform_images=tuple(PlatformImage.from_dict(p) for p in doc.get("platform_images", [])),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise BuildRecordError(f"{file}: not an omi build record ({type(e).__name__}: {e}) "
                                   "(run `pants package` for the target again)") from None
