"""`pants publish` to a real Distribution registry on loopback: digests match, re-publishing uploads nothing."""

from __future__ import annotations

import hashlib
import json
import re

from conftest import Clone, run

from omi_testutil.registry import registry  # noqa: F401 - pytest fixture

DIGITS = ("examples/digits", "digits")


def _publish(clone: Clone, address: str, tmp_path, name: str):
    out = tmp_path / f"{name}.json"
    result = clone.pants("publish", "examples/digits:digits", f"--publish-output={out}",
                         env={"PANTS_OMI_REGISTRIES": repr({"local": {"address": address, "default": True}})})
    return result, json.loads(out.read_text())


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
    referrers_ref = f"docker://{registry.host}/examples/digits:sha256-{record['model_digest'].split(':')[1]}"
    referrers = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "--raw", referrers_ref]).stdout)
    assert [m["digest"] for m in referrers["manifests"]] == [record["image_digest"]]

    again, _ = _publish(packaged_clone, registry.host, tmp_path, "again")
    done = [line for line in again.output.splitlines() if ": done: " in line]
    assert done and all(re.search(r"done: 0 blobs uploaded", line) for line in done), again.output[-3000:]
