"""Content descriptors: the (media type, digest, size) triple that links every OCI object to the next."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from omi_plugin.oci import canonical_json

DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")


class DescriptorError(ValueError):
    """A descriptor or digest is malformed."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise DescriptorError(f"not a sha256 digest: {digest!r}")
    return digest.split(":", 1)[1]


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: Optional[str] = None
    platform: Optional[Mapping[str, str]] = None

    def __hash__(self) -> int:
        # Annotations are a dict; the digest already identifies the content.
        return hash((self.media_type, self.digest, self.size))

    def __post_init__(self) -> None:
        digest_hex(self.digest)
        if self.size < 0:
            raise DescriptorError(f"negative size for {self.digest}")

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.platform:
            out["platform"] = dict(self.platform)
        return out

    @staticmethod
    def from_json(value: Mapping[str, Any]) -> "Descriptor":
        try:
            return Descriptor(
                media_type=value["mediaType"],
                digest=value["digest"],
                size=int(value["size"]),
                annotations=dict(value.get("annotations") or {}),
                artifact_type=value.get("artifactType"),
                platform=value.get("platform"),
            )
        except (KeyError, TypeError) as e:
            raise DescriptorError(f"malformed descriptor {value!r}: {e}") from None


@dataclass(frozen=True)
class Blob:
    """A small JSON blob (config, manifest, index) held in memory with its descriptor."""

    descriptor: Descriptor
    data: bytes

    @staticmethod
    def of_json(media_type: str, value: Any, **descriptor_fields: Any) -> "Blob":
        data = canonical_json.dumps(value)
        return Blob(Descriptor(media_type, sha256_digest(data), len(data), **descriptor_fields), data)
