"""OMI311 on a copy of a registry artifact whose raw layer was left to the registry: accepted when the image's
layer of that file holds its very bytes, one line otherwise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from omi_contract.violation import Collector
from omi_plugin.check.expectations import Expectations
from omi_plugin.check.layout_rules import scan_layout
from omi_plugin.check.modelpack_rules import check_modelpack
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Blob, Descriptor, sha256_digest
from omi_plugin.oci.image import build_manifest
from omi_plugin.omi_image import model_subject
from omi_testutil.registry import make_image, write_layout

WEIGHTS = os.urandom(4000)


def _violations(tmp_path: Path, image_files: Dict[str, bytes]) -> List[str]:
    raw = Descriptor(mt.MODELPACK_WEIGHT_RAW, sha256_digest(WEIGHTS), len(WEIGHTS),
                     {mt.ANNOTATION_MODEL_FILEPATH: "model.bin"})
    config = Blob.of_json(mt.MODELPACK_CONFIG, {"descriptor": {}, "config": {}, "modelfs": {}})
    manifest = build_manifest(config.descriptor, [raw], artifact_type=mt.MODELPACK_ARTIFACT)
    copy = tmp_path / "copy"
    write_layout(str(copy), [(manifest.descriptor, ["v1"])])
    for blob in (config, manifest):  # the raw layer's blob is left to the registry
        (copy / "blobs/sha256" / blob.descriptor.digest[7:]).write_bytes(blob.data)
    image = make_image(str(tmp_path / "image"), [{"app/main.py": b"print()"}, image_files],
                       subject=model_subject(manifest))
    out = Collector("t:t", "copy")
    image_scan, copy_scan = scan_layout(out, image.root, "image"), scan_layout(out, str(copy), "copy")
    assert image_scan is not None and copy_scan is not None
    check_modelpack(out, copy_scan, Expectations(spec_version="1.1"), image_scan,
                    f"registry.example.com/m@{manifest.descriptor.digest}")
    return [f"{v.rule} {v}" for v in out.violations]


CASES: Dict[str, Callable[[], Dict[str, bytes]]] = {
    "held": lambda: {"models/m/model.bin": WEIGHTS},
    "no-layer": lambda: {"models/m/other.bin": WEIGHTS},
    "other-bytes": lambda: {"models/m/model.bin": bytes(reversed(WEIGHTS))},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_raw_layer_left_to_the_registry_must_be_the_images_layer_of_its_file(tmp_path: Path, case: str) -> None:
    found = _violations(tmp_path, CASES[case]())
    if case == "held":
        assert found == []
    elif case == "no-layer":
        assert len(found) == 1 and found[0].startswith("OMI311 ") and \
            "no uncompressed layer of the image holds model.bin" in found[0]
    else:
        assert len(found) == 1 and found[0].startswith("OMI311 ") and "has other bytes" in found[0]
