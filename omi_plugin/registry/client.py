"""The distribution API v2 verbs on one registry: blobs (exists, mount, upload, fetch), manifests, tags, referrers.

Uploads stream from a file: chunked (`POST`, `PATCH` with `Content-Range`, `PUT ?digest=`) for large blobs, a
single `PUT` for small ones, and a monolithic fallback when a registry rejects `PATCH` (some do). A failed upload
session is abandoned and the upload restarts from a fresh `POST`: sessions are not resumable everywhere.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import IO, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import Descriptor, sha256_digest
from omi_plugin.registry.auth import Authenticator, Credentials, load_credentials, pull_scope, push_scope
from omi_plugin.registry.errors import RegistryError, TransientError
from omi_plugin.registry.transport import Backoff, Response, RetryPolicy, Transport, is_retryable_status

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (media_types.MANIFEST, media_types.INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
MAX_MANIFEST_BYTES = 4 << 20  # the distribution spec's recommended manifest size limit
DEFAULT_CHUNK_SIZE = 16 << 20
# PATCH answers that mean "this registry does not do chunked uploads" rather than "try again".
_CHUNKED_REJECTED = {400, 405, 411, 413, 416, 501}

Opener = Callable[[], IO[bytes]]


class _RestartUpload(Exception):
    """The upload session broke in a way a fresh session may fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _ChunkedRejected(Exception):
    pass


def error_detail(response: Response) -> str:
    """`<status> <CODE>: <message>` from a registry's JSON error body, without echoing anything else."""
    detail = f"HTTP {response.status}"
    try:
        errors = json.loads(response.read() or b"{}").get("errors") or []
        if errors and isinstance(errors[0], dict):
            code = str(errors[0].get("code", ""))[:60]
            message = str(errors[0].get("message", ""))[:160]
            detail += f" {code}: {message}" if code else f": {message}"
    except (ValueError, AttributeError):
        pass
    return detail


class _SliceReader:
    """Reads `length` bytes of a file from `offset`, feeding a running hash: one chunk of a chunked upload."""

    def __init__(self, stream: IO[bytes], length: int, hasher: Optional["hashlib._Hash"]) -> None:
        self._stream = stream
        self._left = length
        self._hasher = hasher

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._stream.read(size)
        if not data:
            raise IOError("file shorter than its descriptor's size")
        self._left -= len(data)
        if self._hasher is not None:
            self._hasher.update(data)
        return data

    def close(self) -> None:
        pass  # the caller owns the file


@dataclass(frozen=True)
class Manifest:
    data: bytes
    media_type: str
    digest: str


class Registry:
    """A client for one registry host; every method takes the repository it acts on."""

    def __init__(self, registry: str, *, insecure: bool = False, credentials: Optional[Credentials] = None,
                 load_docker_config: bool = True, retry: RetryPolicy = RetryPolicy(), timeout: float = 60.0,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, ca_file: Optional[str] = None,
                 transport: Optional[Transport] = None) -> None:
        self.name = registry
        self.auth = Authenticator(registry, credentials, insecure=insecure, timeout=timeout, ca_file=ca_file,
                                  loader=load_credentials if load_docker_config else None)
        self.transport = transport or Transport(registry, insecure=insecure, timeout=timeout, retry=retry,
                                                auth=self.auth, ca_file=ca_file)
        self.transport.auth = self.auth
        self.chunk_size = chunk_size
        self.chunked = True  # set to False once the registry refuses a PATCH

    def close(self) -> None:
        self.transport.close()

    # -- helpers ---------------------------------------------------------------------------------------------

    def where(self, repository: str) -> str:
        return f"{self.name}/{repository}"

    def _request(self, method: str, path: str, repository: str, scopes: Sequence[str], **kwargs) -> Response:
        response = self.transport.request(method, path, scopes=scopes, where=self.where(repository), **kwargs)
        if response.status in (401, 403):
            response.close()
            raise self.auth.failure(self.where(repository), response.status)
        return response

    def _fail(self, repository: str, what: str, response: Response, hint: str) -> RegistryError:
        kind = TransientError if is_retryable_status(response.status) else RegistryError
        return kind(self.where(repository), f"{what}: {error_detail(response)}", hint)

    # -- blobs -----------------------------------------------------------------------------------------------

    def blob_size(self, repository: str, digest: str) -> Optional[int]:
        """Size of the blob if the repository has it, else None (`HEAD /v2/<name>/blobs/<digest>`)."""
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", repository, [pull_scope(repository)])
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._fail(repository, f"checking blob {digest}", response, "retry later")
        length = response.header("Content-Length")
        return int(length) if length and length.isdigit() else -1

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> Optional[str]:
        """Cross-repository mount. None when mounted; else the upload URL the registry opened instead."""
        query = urllib.parse.urlencode({"mount": digest, "from": from_repository})
        scopes = [push_scope(repository), pull_scope(from_repository)]
        response = self._request("POST", f"/v2/{repository}/blobs/uploads/?{query}", repository, scopes,
                                 headers={"Content-Length": "0"})
        if response.status == 201:
            return None
        if response.status == 202 and response.header("Location"):
            return response.header("Location")
        raise self._fail(repository, f"mounting blob {digest} from {from_repository}", response,
                         "check push permission on the repository")

    def _start_upload(self, repository: str) -> str:
        response = self._request("POST", f"/v2/{repository}/blobs/uploads/", repository,
                                 [push_scope(repository)], headers={"Content-Length": "0"}, retry=False)
        location = response.header("Location")
        if response.status != 202 or not location:
            raise self._fail(repository, "starting a blob upload", response, "check push permission")
        return location

    def _cancel_upload(self, repository: str, location: str) -> None:
        """Best effort: an abandoned session is garbage-collected by the registry anyway."""
        try:
            self.transport.request("DELETE", location, scopes=[push_scope(repository)], retry=False,
                                   where=self.where(repository)).close()
        except RegistryError:
            pass

    @staticmethod
    def _with_digest(location: str, digest: str) -> str:
        parts = urllib.parse.urlsplit(location)
        query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode({"digest": digest})
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))

    def _put_final(self, repository: str, location: str, descriptor: Descriptor, body, length: int) -> None:
        headers = {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
        response = self._request("PUT", self._with_digest(location, descriptor.digest), repository,
                                 [push_scope(repository)], headers=headers, body=body, retry=False)
        if response.status == 201:
            return
        if is_retryable_status(response.status) or response.status == 404:
            raise _RestartUpload(error_detail(response))
        body = response.read()
        hint = "the layout's blob does not match its digest; rebuild the layout" \
            if b"DIGEST_INVALID" in body or b"SIZE_INVALID" in body else "check the registry"
        raise self._fail(repository, f"uploading blob {descriptor.digest}", response, hint)

    def _upload_monolithic(self, repository: str, location: str, descriptor: Descriptor, opener: Opener) -> None:
        self._put_final(repository, location, descriptor, opener, descriptor.size)

    def _upload_chunked(self, repository: str, location: str, descriptor: Descriptor, opener: Opener,
                        progress: Callable[[int], None]) -> None:
        hasher = hashlib.sha256()
        with opener() as stream:
            offset = 0
            while offset < descriptor.size:
                length = min(self.chunk_size, descriptor.size - offset)
                sent: List["hashlib._Hash"] = []

                def body(start: int = offset, size: int = length, before: "hashlib._Hash" = hasher) -> _SliceReader:
                    # Re-readable: an auth challenge may make the transport send this chunk a second time.
                    stream.seek(start)
                    sent.append(before.copy())
                    return _SliceReader(stream, size, sent[-1])
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length),
                           "Content-Range": f"{offset}-{offset + length - 1}"}
                try:
                    response = self._request("PATCH", location, repository, [push_scope(repository)],
                                             headers=headers, body=body, retry=False)
                except TransientError as e:
                    raise _RestartUpload(e.what) from None
                if response.status in _CHUNKED_REJECTED and offset == 0:
                    raise _ChunkedRejected()
                if is_retryable_status(response.status) or response.status in (404, 416):
                    raise _RestartUpload(error_detail(response))
                if response.status != 202 or not response.header("Location"):
                    raise self._fail(repository, f"uploading a chunk of {descriptor.digest}", response,
                                     "check the registry")
                location = response.header("Location") or location
                hasher = sent[-1]
                offset += length
                progress(offset)
        if "sha256:" + hasher.hexdigest() != descriptor.digest:
            self._cancel_upload(repository, location)
            raise RegistryError(self.where(repository), f"blob {descriptor.digest} changed or is corrupt on disk",
                                "rebuild the layout")
        self._put_final(repository, location, descriptor, b"", 0)

    def upload_blob(self, repository: str, descriptor: Descriptor, opener: Opener, *,
                    location: Optional[str] = None, progress: Callable[[int], None] = lambda n: None) -> None:
        """Upload one blob from a file, restarting the session on transient failures within the retry budget."""
        backoff = Backoff(self.transport.retry, self.transport.sleep)
        while True:
            try:
                location = location or self._start_upload(repository)
                if self.chunked and descriptor.size > self.chunk_size:
                    try:
                        self._upload_chunked(repository, location, descriptor, opener, progress)
                    except _ChunkedRejected:
                        # Registries such as Google Artifact Registry refuse PATCH: fall back for the whole push.
                        self.chunked = False
                        self._cancel_upload(repository, location)
                        location = None
                        continue
                else:
                    self._upload_monolithic(repository, location, descriptor, opener)
                    progress(descriptor.size)
                return
            except (_RestartUpload, TransientError) as e:
                reason = e.reason if isinstance(e, _RestartUpload) else e.what
                if location:
                    self._cancel_upload(repository, location)
                location = None
                if not backoff.wait():
                    raise TransientError(self.where(repository), f"uploading blob {descriptor.digest} failed "
                                         f"after {backoff.attempt} attempt(s): {reason}",
                                         "the registry keeps failing; retry the push later") from None

    def open_blob(self, repository: str, digest: str) -> Response:
        """A streamed `GET` of a blob (following redirects to blob storage); the caller verifies and closes."""
        response = self._request("GET", f"/v2/{repository}/blobs/{digest}", repository,
                                 [pull_scope(repository)], stream=True)
        if response.status != 200:
            raise self._fail(repository, f"fetching blob {digest}", response,
                             "check that the reference exists in this registry")
        return response

    # -- manifests and tags ------------------------------------------------------------------------------------

    def manifest_digest(self, repository: str, reference: str) -> Optional[str]:
        """The digest a tag or digest resolves to (`HEAD`), or None if the registry does not have it."""
        response = self._request("HEAD", f"/v2/{repository}/manifests/{reference}", repository,
                                 [pull_scope(repository)], headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._fail(repository, f"checking manifest {reference}", response, "retry later")
        return response.header("Docker-Content-Digest") or ""

    def get_manifest(self, repository: str, reference: str,
                     accept: Sequence[str] = MANIFEST_TYPES) -> Optional[Manifest]:
        response = self._request("GET", f"/v2/{repository}/manifests/{reference}", repository,
                                 [pull_scope(repository)], headers={"Accept": ", ".join(accept)})
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._fail(repository, f"fetching manifest {reference}", response, "retry later")
        data = response.read()
        if len(data) > MAX_MANIFEST_BYTES:
            raise RegistryError(self.where(repository), f"manifest {reference} is larger than 4 MiB",
                                "refusing it")
        media_type = (response.header("Content-Type") or "").split(";")[0].strip()
        try:
            media_type = json.loads(data).get("mediaType") or media_type
        except (ValueError, AttributeError):
            raise RegistryError(self.where(repository), f"manifest {reference} is not JSON", "check the reference")
        return Manifest(data, media_type, sha256_digest(data))

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Response:
        """`PUT /v2/<name>/manifests/<reference>`; checks the registry computed the digest we did."""
        response = self._request("PUT", f"/v2/{repository}/manifests/{reference}", repository,
                                 [push_scope(repository)],
                                 headers={"Content-Type": media_type, "Content-Length": str(len(data))}, body=data)
        if response.status not in (200, 201):
            raise self._fail(repository, f"pushing manifest {reference}", response,
                             "check that every blob it references was pushed and the manifest is valid")
        expected = sha256_digest(data)
        answered = response.header("Docker-Content-Digest")
        if answered and answered != expected:
            raise RegistryError(self.where(repository), f"registry stored manifest {reference} as {answered}, "
                                f"not {expected}", "the registry rewrote the manifest; it cannot be pinned")
        return response

    def list_tags(self, repository: str) -> List[str]:
        tags: List[str] = []
        path: Optional[str] = f"/v2/{repository}/tags/list"
        while path:
            response = self._request("GET", path, repository, [pull_scope(repository)])
            if response.status == 404:
                return tags
            if response.status != 200:
                raise self._fail(repository, "listing tags", response, "retry later")
            tags += json.loads(response.read()).get("tags") or []
            link = response.header("Link") or ""
            path = link[link.find("<") + 1:link.find(">")] if link.startswith("<") else None
        return tags

    def referrers(self, repository: str, digest: str) -> Optional[List[Dict]]:
        """Referrers of `digest` via the OCI 1.1 API, or None if the registry does not implement it."""
        response = self._request("GET", f"/v2/{repository}/referrers/{digest}", repository,
                                 [pull_scope(repository)], headers={"Accept": media_types.INDEX})
        if response.status in (404, 405, 400):
            return None
        if response.status != 200:
            raise self._fail(repository, f"listing referrers of {digest}", response, "retry later")
        try:
            index = json.loads(response.read())
        except ValueError:
            return None
        if not isinstance(index, dict) or index.get("mediaType") != media_types.INDEX:
            return None
        return list(index.get("manifests") or [])


def iter_verified(response: Response, descriptor: Descriptor, where: str) -> Iterator[bytes]:
    """Yield a blob's bytes while checking its size and sha256; raise at the first sign it is not the blob."""
    hasher = hashlib.sha256()
    seen = 0
    for chunk in response.chunks():
        seen += len(chunk)
        if seen > descriptor.size:
            raise RegistryError(where, f"blob {descriptor.digest} is larger than its descriptor's "
                                f"{descriptor.size} bytes", "the registry's copy is corrupt; re-push it")
        hasher.update(chunk)
        yield chunk
    if seen != descriptor.size:
        raise RegistryError(where, f"blob {descriptor.digest} is {seen} bytes, expected {descriptor.size}",
                            "the registry's copy is corrupt or the download was cut; retry")
    actual = "sha256:" + hasher.hexdigest()
    if actual != descriptor.digest:
        raise RegistryError(where, f"blob {descriptor.digest} failed verification: its content hashes to {actual}",
                            "the registry's copy is corrupt; re-push it or tell the registry operator")


def descriptors_of(manifest: Dict) -> Tuple[Optional[Descriptor], List[Descriptor]]:
    """(config, layers) of an image manifest."""
    config = Descriptor.from_json(manifest["config"]) if manifest.get("config") else None
    return config, [Descriptor.from_json(layer) for layer in manifest.get("layers") or []]
