"""The image's SBOM: an SPDX 2.3 JSON document of everything a model image holds, from what the build pinned.

Debian packages come from the base's lock (name, version, architecture, the `.deb`'s sha256 and URL), Python
distributions from the wheels in the dependency layer with the sha256 the lockfile pins for each wheel, and every
model file with the sha256 of its bytes. Nothing here reads an image: the document is a pure function of those
inputs, so it is as reproducible as the image (its `created` is the image's, the epoch).
"""

from __future__ import annotations

import json
import pkgutil
import re
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote, unquote

from omi_plugin.oci import canonical_json
from omi_plugin.oci.image import EPOCH

SCHEMA_FILE = "spdx-2.3.schema.json"  # the SPDX project's JSON schema for 2.3 (tag v2.3), shipped as data
NOASSERTION = "NOASSERTION"
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9.-]+")


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    architecture: str
    sha256: str  # of the .deb
    url: str
    distro: str  # the lock's suite, e.g. bookworm


@dataclass(frozen=True)
class PythonDistribution:
    name: str
    version: str
    wheel: str  # the wheel's file name
    sha256: Optional[str] = None  # of the wheel, as the lockfile pins it
    url: Optional[str] = None


@dataclass(frozen=True)
class ModelFile:
    path: str  # inside the image
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelContents:
    name: str
    version: str
    run_id: str
    format: str
    files: Tuple[ModelFile, ...]


@dataclass(frozen=True)
class ImageContents:
    repository: str
    tag: str  # the run id
    image_digest: str
    base_name: str
    base_digest: str
    debian: Tuple[DebianPackage, ...]
    python: Tuple[PythonDistribution, ...]
    models: Tuple[ModelContents, ...]
    app_version: str  # omi's own code in the image


def _id(*parts: str) -> str:
    return "SPDXRef-" + "-".join(_ID_UNSAFE.sub(".", p).strip(".") or "x" for p in parts)


def _sha256(hex_or_digest: str) -> List[Dict[str, str]]:
    return [{"algorithm": "SHA256", "checksumValue": hex_or_digest.split(":")[-1]}]


def _purl(kind: str, namespace: str, name: str, version: str, qualifiers: Sequence[Tuple[str, str]] = ()) -> Dict[str, str]:
    path = "/".join(quote(p, safe="") for p in (namespace, name) if p)
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in qualifiers)
    locator = f"pkg:{kind}/{path}@{quote(version, safe='')}" + (f"?{query}" if query else "")
    return {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": locator}


def document_namespace(contents: ImageContents) -> str:
    """Unique per image and the same on every rebuild of it (a name-based UUID of the image digest)."""
    return f"https://spdx.org/spdxdocs/omi/{contents.repository}/{uuid.uuid5(uuid.NAMESPACE_URL, contents.image_digest)}"


def spdx_document(contents: ImageContents, creators: Sequence[str]) -> Dict[str, Any]:
    image_id = _id("image")
    image_name = contents.repository.rsplit("/", 1)[-1]
    packages: List[Dict[str, Any]] = [{
        "SPDXID": image_id, "name": contents.repository, "versionInfo": contents.tag,
        "downloadLocation": NOASSERTION, "filesAnalyzed": False, "primaryPackagePurpose": "CONTAINER",
        "checksums": _sha256(contents.image_digest),
        "externalRefs": [_purl("oci", "", image_name, contents.image_digest,
                               (("repository_url", contents.repository), ("tag", contents.tag)))],
    }, {
        "SPDXID": _id("base"), "name": contents.base_name, "downloadLocation": NOASSERTION,
        "filesAnalyzed": False, "primaryPackagePurpose": "CONTAINER", "checksums": _sha256(contents.base_digest),
        "comment": "the base image omi built this image on (its manifest digest)",
    }, {
        "SPDXID": _id("omi-runtime"), "name": "omi_runtime", "versionInfo": contents.app_version,
        "downloadLocation": NOASSERTION, "filesAnalyzed": False, "primaryPackagePurpose": "APPLICATION",
        "comment": "the OMI model server the image starts (python -m omi_runtime): first-party code, or the omi-runtime "
                   "wheel listed among the Python packages",
    }]
    relationships: List[Dict[str, str]] = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id},
        {"spdxElementId": image_id, "relationshipType": "DESCENDANT_OF", "relatedSpdxElement": _id("base")},
        {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": _id("omi-runtime")},
    ]
    for deb in sorted(contents.debian, key=lambda d: (d.name, d.architecture)):
        package_id = _id("deb", deb.name, deb.architecture)
        packages.append({
            "SPDXID": package_id, "name": deb.name, "versionInfo": deb.version, "downloadLocation": deb.url,
            "filesAnalyzed": False, "primaryPackagePurpose": "LIBRARY",
            "checksums": _sha256(deb.sha256), "supplier": "Organization: Debian",
            "externalRefs": [_purl("deb", "debian", deb.name, deb.version,
                                   (("arch", deb.architecture), ("distro", f"debian-{deb.distro}")))],
        })
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": package_id})
    for dist in sorted(contents.python, key=lambda d: d.name.lower()):
        package_id = _id("pypi", dist.name)
        package: Dict[str, Any] = {
            "SPDXID": package_id, "name": dist.name, "versionInfo": dist.version,
            "downloadLocation": dist.url or NOASSERTION, "filesAnalyzed": False, "primaryPackagePurpose": "LIBRARY",
            "packageFileName": dist.wheel,
            "externalRefs": [_purl("pypi", "", canonical_pypi_name(dist.name), dist.version)],
        }
        if dist.sha256:
            package["checksums"] = _sha256(dist.sha256)
        packages.append(package)
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": package_id})
    for model in contents.models:
        model_id = _id("model", model.name)
        packages.append({
            "SPDXID": model_id, "name": model.name, "versionInfo": model.version, "downloadLocation": NOASSERTION,
            "filesAnalyzed": False, "primaryPackagePurpose": "OTHER",
            "comment": f"a machine learning model: format {model.format}, run id {model.run_id}",
        })
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": model_id})
        for i, f in enumerate(model.files):
            file_id = _id("model", model.name, "file", str(i))
            packages.append({
                "SPDXID": file_id, "name": f.path, "downloadLocation": NOASSERTION, "filesAnalyzed": False,
                "primaryPackagePurpose": "FILE", "checksums": _sha256(f.sha256),
                "comment": f"{f.size} bytes",
            })
            relationships.append({"spdxElementId": model_id, "relationshipType": "CONTAINS",
                                  "relatedSpdxElement": file_id})
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{contents.repository}:{contents.tag}",
        "documentNamespace": document_namespace(contents),
        "creationInfo": {"created": EPOCH, "creators": list(creators)},
        "packages": packages,
        "relationships": relationships,
    }


def canonical_pypi_name(name: str) -> str:
    """PEP 503 normalisation, which package URLs for PyPI use."""
    return re.sub(r"[-_.]+", "-", name).lower()


def spdx_bytes(document: Dict[str, Any]) -> bytes:
    """Stable bytes (sorted keys, indented for people) for dist/ and the referrer blob alike."""
    return canonical_json.dumps_pretty(document).encode("utf-8")


def schema() -> Dict[str, Any]:
    data = pkgutil.get_data("omi_plugin.supply_chain", SCHEMA_FILE)
    if data is None:
        raise FileNotFoundError(f"{SCHEMA_FILE} is not packaged with omi_plugin.supply_chain")
    return json.loads(data)


def python_distributions_in(document: Dict[str, Any]) -> Dict[str, str]:
    """(PEP 503 name -> version) of the PyPI packages an SPDX document lists: what `pants check` compares with."""
    found: Dict[str, str] = {}
    for package in document.get("packages") or []:
        for ref in package.get("externalRefs") or []:
            locator = str(ref.get("referenceLocator", ""))
            if ref.get("referenceType") == "purl" and locator.startswith("pkg:pypi/"):
                name, _, version = locator[len("pkg:pypi/"):].partition("@")
                found[canonical_pypi_name(unquote(name))] = unquote(version.split("?")[0])
    return found
