"""`pants publish` to a real Distribution registry on loopback: digests match, re-publishing uploads nothing."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import urllib.request
from typing import Any, Dict, List

from conftest import Clone, run

from omi_testutil.registry import registry  # noqa: F401 - pytest fixture

DIGITS = ("examples/digits", "digits")


def _publish(clone: Clone, address: str, tmp_path, name: str):
    out = tmp_path / f"{name}.json"
    result = clone.pants("publish", "examples/digits:digits", f"--publish-output={out}",
                         env={"PANTS_OMI_REGISTRIES": repr({"local": {"address": address, "default": True}})})
    return result, json.loads(out.read_text())


def _get(host: str, path: str) -> bytes:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    with urllib.request.urlopen(urllib.request.Request(f"http://{host}/v2/examples/digits/{path}",
                                                      headers={"Accept": accept})) as response:
        return response.read()


def _referrers(host: str, digest: str) -> List[Dict[str, Any]]:
    """The subject's referrers, by the OCI 1.1 tag schema (Distribution 2.8 has no referrers API)."""
    return json.loads(_get(host, f"manifests/sha256-{digest.split(':')[1]}"))["manifests"]


def _from_the_image_digest_alone(host: str, record: Dict[str, Any], commit: str) -> None:
    """From the pushed image digest, with the registry's HTTP API only: model artifact, run id, base digest, source
    revision and SBOM, each equal to what the build record says."""
    image_digest = record["image_digest"]
    image = json.loads(_get(host, f"manifests/{image_digest}"))
    assert image["subject"]["digest"] == record["model_digest"]
    assert image["annotations"]["dev.omi.model.run-id"] == record["model"]["run_id"]
    assert image["annotations"]["org.opencontainers.image.base.digest"] == record["base"]["digest"]
    model = json.loads(_get(host, f"manifests/{record['model_digest']}"))
    assert model["annotations"]["dev.omi.model.run-id"] == record["model"]["run_id"]
    by_type = {m["artifactType"]: m for m in _referrers(host, image_digest)}
    assert by_type["application/spdx+json"]["digest"] == record["attestations"]["sbom_digest"]
    assert by_type["application/vnd.in-toto+json"]["digest"] == record["attestations"]["provenance_digests"][0]
    sbom_manifest = json.loads(_get(host, f"manifests/{by_type['application/spdx+json']['digest']}"))
    sbom = json.loads(_get(host, f"blobs/{sbom_manifest['layers'][0]['digest']}"))
    assert sbom["spdxVersion"] == "SPDX-2.3"
    assert any(p.get("checksums", [{}])[0].get("checksumValue") == image_digest.split(":")[1] for p in sbom["packages"])
    provenance_manifest = json.loads(_get(host, f"manifests/{by_type['application/vnd.in-toto+json']['digest']}"))
    statement = json.loads(_get(host, f"blobs/{provenance_manifest['layers'][0]['digest']}"))
    assert [s["digest"]["sha256"] for s in statement["subject"]] == [
        image_digest.split(":")[1], record["model_digest"].split(":")[1]]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["model"]["run_id"] == record["model"]["run_id"]
    assert definition["externalParameters"]["source"] == {"revision": commit, "uncommitted_changes": False}
    assert {"name": "base image", "uri": record["base"]["name"],
            "digest": {"sha256": record["base"]["digest"].split(":")[1]}} in definition["resolvedDependencies"]


def test_from_the_pushed_image_digest_alone_every_link_is_reachable(clone_factory, registry, tmp_path) -> None:  # noqa: F811
    clone = clone_factory("clone-git")
    for argv in (["git", "init", "-q"], ["git", "add", "-A"],
                 ["git", "-c", "user.name=omi", "-c", "user.email=omi@localhost", "commit", "-qm", "snapshot"]):
        subprocess.run(argv, cwd=clone.root, check=True, capture_output=True)
    commit = run(["git", "rev-parse", "HEAD"], cwd=clone.root).stdout.strip()
    clone.pants("package", "examples/digits:digits")
    result, published = _publish(clone, registry.host, tmp_path, "git")
    record = clone.record(*DIGITS)
    assert published[0]["image_digest"] == record["image_digest"], result.output[-3000:]
    _from_the_image_digest_alone(registry.host, record, commit)
    model_referrers = _referrers(registry.host, record["model_digest"])
    assert [m["digest"] for m in model_referrers] == [record["image_digest"],
                                                     record["attestations"]["provenance_digests"][1]]


def test_publish_then_republish(packaged_clone: Clone, registry, tmp_path) -> None:  # noqa: F811
    record = packaged_clone.record(*DIGITS)
    first, published = _publish(packaged_clone, registry.host, tmp_path, "first")
    entry = published[0]
    assert entry["published"] is True, first.output[-3000:]
    assert entry["image_digest"] == record["image_digest"]
    assert entry["registry"] == registry.host and entry["repository"] == "examples/digits"

    ref = f"docker://{registry.host}/examples/digits:{record['tags'][0]}"
    inspected = json.loads(run(["skopeo", "inspect", "--tls-verify=false", ref]).stdout)
    assert inspected["Digest"] == record["image_digest"]
    tags = json.loads(run(["skopeo", "list-tags", "--tls-verify=false", f"docker://{registry.host}/examples/digits"]).stdout)
    assert record["tags"][0] in tags["Tags"] and f"{record['tags'][0]}-model" in tags["Tags"]
    assert "latest" not in tags["Tags"]

    # Every manifest the registry serves is the one the build record names: nothing is rebuilt at push time.
    assert entry["model_digest"] == record["model_digest"]
    model_ref = f"docker://{registry.host}/examples/digits:{record['tags'][0]}-model"
    model_raw = run(["skopeo", "inspect", "--tls-verify=false", "--raw", model_ref]).stdout
    assert "sha256:" + hashlib.sha256(model_raw.encode()).hexdigest() == record["model_digest"]
    assert json.loads(model_raw)["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    # From the image alone: its manifest names the model artifact; the model's referrers (tag schema, as
    # Distribution 2.8 has no referrers API) list the image.
    image_manifest = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "--raw", ref]).stdout)
    assert image_manifest["subject"]["digest"] == record["model_digest"]

    again, _ = _publish(packaged_clone, registry.host, tmp_path, "again")
    done = [line for line in again.output.splitlines() if ": done: " in line]
    assert done and all(re.search(r"done: 0 blobs uploaded", line) for line in done), again.output[-3000:]
