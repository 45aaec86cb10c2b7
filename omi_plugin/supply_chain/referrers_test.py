"""Referrer artifacts: the empty config, one layer, the subject, and a layout listing them without tags."""

import hashlib
import json

from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.supply_chain import referrers

IMAGE = Descriptor(mt.MANIFEST, "sha256:" + "1" * 64, 500)


def test_a_referrer_is_an_oci_1_1_artifact_of_its_subject():
    made = referrers.referrer(mt.SPDX_JSON, b'{"spdxVersion":"SPDX-2.3"}', IMAGE)
    manifest = json.loads(made.manifest.data)
    assert manifest["artifactType"] == mt.SPDX_JSON
    assert manifest["config"] == {"mediaType": mt.EMPTY_JSON, "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
                                  "size": 2}
    assert manifest["layers"] == [made.payload.descriptor.to_json()]
    assert manifest["subject"] == IMAGE.to_json()


def test_the_layout_holds_each_blob_once_and_lists_manifests_untagged():
    a = referrers.referrer(mt.IN_TOTO_JSON, b"{}\n", IMAGE)
    b = referrers.referrer(mt.IN_TOTO_JSON, b"{}\n", Descriptor(mt.MANIFEST, "sha256:" + "2" * 64, 9))
    paths = [p for p, _ in referrers.layout_files([a, b])]
    assert len(paths) == len(set(paths)) == 4  # two manifests, one shared payload, the empty config
    index = json.loads(referrers.layout_index([a, b]))
    assert [m["artifactType"] for m in index["manifests"]] == [mt.IN_TOTO_JSON] * 2
    assert all("annotations" not in m for m in index["manifests"])
