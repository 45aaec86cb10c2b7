"""Pull an image by digest into an OCI image layout, verifying every byte against its digest.

Only `registry/repo@sha256:…` is accepted: a base image named by tag could change under the build. OCI and Docker
schema 2 manifests are accepted; from an index or manifest list the requested platform (linux/amd64) is chosen.
Each blob streams to a temporary file while its size and sha256 are checked, and is renamed into
`blobs/sha256/` only once verified, so a layout never holds a blob that is not what its name says.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from omi_plugin.oci import canonical_json, media_types
from omi_plugin.oci.descriptor import Descriptor, sha256_digest
from omi_plugin.oci.hashing import file_sha256
from omi_plugin.oci.layout import INDEX_FILE, OCI_LAYOUT_FILE, blob_path, oci_layout_bytes
from omi_plugin.registry.client import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Manifest, Registry, iter_verified
from omi_plugin.registry.errors import RegistryError, TransientError
from omi_plugin.registry.reference import Reference, parse
from omi_plugin.registry.transport import Backoff, describe_exception

Log = Callable[[str], None]
_INDEXES = (media_types.INDEX, DOCKER_MANIFEST_LIST)
_MANIFESTS = (media_types.MANIFEST, DOCKER_MANIFEST)
_STREAM_ERRORS = (ConnectionError, http.client.HTTPException, socket.timeout, TimeoutError)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class PullResult:
    reference: str
    layout: str
    manifest_digest: str
    media_type: str
    index_digest: Optional[str] = None
    config_digest: Optional[str] = None
    layers: List[Dict[str, Any]] = field(default_factory=list)
    downloaded_bytes: int = 0
    reused_bytes: int = 0

    def to_json(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def require_digest(text: str) -> Reference:
    reference = parse(text)
    if not reference.digest:
        raise RegistryError(reference.where, f"refusing to pull {text!r} by tag",
                            f"pin the base by digest: {reference.where}@sha256:...")
    return reference


def verified_manifest(client: Registry, ref: Reference, digest: str) -> Manifest:
    manifest = client.get_manifest(ref.repository, digest)
    if manifest is None:
        raise RegistryError(ref.where, f"manifest {digest} not found", "check the reference and the repository")
    if manifest.digest != digest:
        raise RegistryError(ref.where, f"manifest {digest} failed verification: its content hashes to "
                            f"{manifest.digest}", "the registry returned different bytes; do not trust it")
    return manifest


def choose_platform(index: Dict[str, Any], os_name: str, architecture: str, where: str) -> Descriptor:
    available = []
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        available.append(f"{platform.get('os', '?')}/{platform.get('architecture', '?')}")
        if platform.get("os") == os_name and platform.get("architecture") == architecture:
            return Descriptor.from_json(entry)
    raise RegistryError(where, f"the index has no {os_name}/{architecture} manifest "
                        f"(it has: {', '.join(available) or 'none'})", "pin the digest of a suitable image")


def _file_matches(path: str, descriptor: Descriptor) -> bool:
    """A blob already in the destination counts only if it still hashes to its name."""
    try:
        if os.stat(path).st_size != descriptor.size:
            return False
    except FileNotFoundError:
        return False
    return file_sha256(path)[0] == descriptor.digest


def _write_atomic(path: str, data: bytes) -> None:
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def with_retries(client: Registry, ref: Reference, descriptor: Descriptor, attempt: Callable[[], None]) -> None:
    """Run one download attempt until it succeeds: a cut download restarts from the beginning (the verification
    covers the whole stream), within the client's retry budget."""
    backoff = Backoff(client.transport.retry, client.transport.sleep)
    while True:
        try:
            attempt()
            return
        except _STREAM_ERRORS as e:
            if not backoff.wait():
                raise TransientError(ref.where, f"downloading blob {descriptor.digest} failed: "
                                     f"{describe_exception(e)}", "retry later") from None


def fetch_blob(client: Registry, ref: Reference, descriptor: Descriptor, dest_root: str) -> bool:
    """Stream one blob into the layout, verified; False if a verified copy was already there."""
    final = os.path.join(dest_root, blob_path(descriptor.digest))
    if _file_matches(final, descriptor):
        return False
    tmp = final + ".partial"

    def attempt() -> None:
        response = client.open_blob(ref.repository, descriptor.digest)
        try:
            with open(tmp, "wb") as out:
                for chunk in iter_verified(response, descriptor, ref.where):
                    out.write(chunk)
        finally:
            response.close()
        os.replace(tmp, final)

    try:
        with_retries(client, ref, descriptor, attempt)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return True


def pull(reference: str, dest_layout_dir: str, *, platform: Tuple[str, str] = ("linux", "amd64"),
         insecure: bool = False, ref_name: Optional[str] = None, client: Optional[Registry] = None,
         log: Log = _stderr) -> PullResult:
    """Pull `registry/repo@sha256:…` into an OCI layout at `dest_layout_dir`; index.json names the manifest."""
    ref = require_digest(reference)
    assert ref.digest is not None
    own_client = client is None
    client = client or Registry(ref.registry, insecure=insecure)
    try:
        top = verified_manifest(client, ref, ref.digest)
        os.makedirs(os.path.join(dest_layout_dir, "blobs", "sha256"), exist_ok=True)
        result = PullResult(reference, dest_layout_dir, top.digest, top.media_type)
        manifest = top
        platform_json: Optional[Dict[str, str]] = None
        if top.media_type in _INDEXES:
            chosen = choose_platform(json.loads(top.data), platform[0], platform[1], ref.where)
            _write_atomic(os.path.join(dest_layout_dir, blob_path(top.digest)), top.data)
            manifest = verified_manifest(client, ref, chosen.digest)
            result.index_digest, result.manifest_digest = top.digest, manifest.digest
            result.media_type = manifest.media_type
            platform_json = dict(chosen.platform or {})
            log(f"{ref.where}: {top.digest[:19]} is an index; using {platform[0]}/{platform[1]} "
                f"manifest {manifest.digest[:19]}")
        if manifest.media_type not in _MANIFESTS:
            raise RegistryError(ref.where, f"{manifest.digest} has unsupported media type {manifest.media_type!r}",
                                "pin an image manifest or index")
        value = json.loads(manifest.data)
        config = Descriptor.from_json(value["config"])
        layers = [Descriptor.from_json(layer) for layer in value.get("layers") or []]
        result.config_digest = config.digest
        for descriptor in (config, *layers):
            if fetch_blob(client, ref, descriptor, dest_layout_dir):
                result.downloaded_bytes += descriptor.size
                log(f"{ref.where}: blob {descriptor.digest[:19]} {descriptor.size} bytes downloaded, verified")
            else:
                result.reused_bytes += descriptor.size
                log(f"{ref.where}: blob {descriptor.digest[:19]} already in the layout")
        result.layers = [layer.to_json() for layer in layers]
        _write_atomic(os.path.join(dest_layout_dir, blob_path(manifest.digest)), manifest.data)
        entry = Descriptor(manifest.media_type, manifest.digest, len(manifest.data),
                           {media_types.ANNOTATION_REF_NAME: ref_name} if ref_name else {},
                           platform=platform_json)
        _write_atomic(os.path.join(dest_layout_dir, OCI_LAYOUT_FILE), oci_layout_bytes())
        # index.json last: a layout is complete only once it exists.
        _write_atomic(os.path.join(dest_layout_dir, INDEX_FILE), canonical_json.dumps(
            {"schemaVersion": 2, "mediaType": media_types.INDEX, "manifests": [entry.to_json()]}))
        assert sha256_digest(manifest.data) == manifest.digest
        return result
    finally:
        if own_client:
            client.close()
