"""OCI 1.1 artifacts that refer to another manifest by `subject`: one JSON document as the single layer, the empty
config, an `artifactType` naming what it is. The layout holding them lists each under no tag: registries and
`oras discover` find them through the subject, not by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from omi_plugin.oci import canonical_json
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Blob, Descriptor, sha256_digest
from omi_plugin.oci.image import build_manifest
from omi_plugin.oci.layout import blob_path

EMPTY_CONFIG_DATA = b"{}"
EMPTY_CONFIG = Descriptor(mt.EMPTY_JSON, sha256_digest(EMPTY_CONFIG_DATA), len(EMPTY_CONFIG_DATA))


@dataclass(frozen=True)
class Referrer:
    manifest: Blob
    payload: Blob
    artifact_type: str


def referrer(artifact_type: str, payload: bytes, subject: Descriptor, *, payload_media_type: Optional[str] = None,
             annotations: Optional[Mapping[str, str]] = None) -> Referrer:
    layer = Blob(Descriptor(payload_media_type or artifact_type, sha256_digest(payload), len(payload)), payload)
    manifest = build_manifest(EMPTY_CONFIG, [layer.descriptor], artifact_type=artifact_type,
                              annotations=dict(annotations or {}) or None, subject=subject)
    return Referrer(manifest, layer, artifact_type)


def layout_index(referrers: Sequence[Referrer], listed: Sequence[Mapping[str, Any]] = ()) -> bytes:
    """index.json of a layout of referrers: each manifest with its artifactType, and no ref name; after the entries
    of `listed` (another such layout's), each digest once."""
    entries: List[Dict[str, Any]] = []
    for entry in listed:
        if all(e["digest"] != entry["digest"] for e in entries):
            entries.append(dict(entry))
    for r in referrers:
        d = r.manifest.descriptor
        entries.append(Descriptor(d.media_type, d.digest, d.size, artifact_type=r.artifact_type).to_json())
    return canonical_json.dumps({"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": entries})


def layout_files(referrers: Sequence[Referrer]) -> Tuple[Tuple[str, bytes], ...]:
    """(path, bytes) of every blob of the layout (manifests, payloads, the empty config), each once."""
    blobs: Dict[str, bytes] = {blob_path(EMPTY_CONFIG.digest): EMPTY_CONFIG_DATA}
    for r in referrers:
        blobs[blob_path(r.manifest.descriptor.digest)] = r.manifest.data
        blobs[blob_path(r.payload.descriptor.digest)] = r.payload.data
    return tuple(sorted(blobs.items()))
