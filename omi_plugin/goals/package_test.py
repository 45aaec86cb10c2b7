"""The package rules with real Pants (RuleRunner): placing an image under dist/, given the image.

The image build itself (`build_omi_image`) is the end-to-end suite's; here a stand-in rule supplies a small image
so that placement, blob sharing and the build record are tested in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Dict

import pytest
from pants.core.goals.package import BuiltPackage
from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, DigestContents, DigestEntries, FileContent, FileEntry, SymlinkEntry
from pants.engine.rules import Get, rule
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.blob_store.store import BlobStore
from omi_plugin.build_record import BuildRecord, RecordedLayer
from omi_plugin.goals import package
from omi_plugin.goals.package import (
    LayoutInDist,
    OmiImage,
    OmiImageRequest,
    OmiModelFieldSet,
    OmlmdFile,
    OmlmdLayout,
    OmlmdLayoutRequest,
    PlacedLayout,
)
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Blob
from omi_plugin.oci.layout import blob_path
from omi_plugin.omi_image import AssembledImage
from omi_plugin.target_types import OmiModelTarget
from omi_plugin.util_rules.stored_layers import BlobStoreLocation, store_links
from omi_testutil import rules as testutil_rules

WEIGHTS = "blobs/sha256/" + "a" * 64  # a model blob both layouts hold
CODE = "blobs/sha256/" + "b" * 64  # only the image's
RECORD = BuildRecord(
    image_digest="sha256:" + "1" * 64, model_digest="sha256:" + "2" * 64, config_digest="sha256:" + "3" * 64,
    tags=("run-7", "v1"), repository="team/m", interfaces=("kfserving.v2", "modzy.v2"), layout="m/m.oci",
    modelpack_layout="m/m.modelpack.oci", model_name="m", model_version="1", run_id="run-7", base_name="b:b",
    base_digest="sha256:" + "4" * 64, layers=(RecordedLayer("sha256:" + "a" * 64, 7, "t", "omi: model file w"),),
)


STORED_BYTES = b"a model file's layer, in the blob store"
STORED = "blobs/sha256/" + hashlib.sha256(STORED_BYTES).hexdigest()  # the image's, written to the blob store


@rule
async def stand_in_image(request: OmiImageRequest, location: BlobStoreLocation) -> OmiImage:
    digest, _, _ = BlobStore(location.root).write(lambda sink: sink.write(STORED_BYTES))
    image = await Get(Digest, CreateDigest([FileContent("index.json", b"{}"), FileContent(WEIGHTS, b"weights"),
                                            FileContent(CODE, b"code"), *store_links(location.root, [digest])]))
    modelpack = await Get(Digest, CreateDigest([FileContent("index.json", b"{}"), FileContent(WEIGHTS, b"weights")]))
    return OmiImage(image, modelpack, None, RECORD, f"team/m:run-7@{RECORD.image_digest}")


@pytest.fixture
def rule_runner(tmp_path) -> RuleRunner:
    runner = RuleRunner(
        rules=[package.package_omi_model, package.layout_in_dist, stand_in_image, *testutil_rules.blob_store_rules(),
               QueryRule(BuiltPackage, [OmiModelFieldSet]), QueryRule(DigestEntries, [Digest]),
               QueryRule(DigestContents, [Digest]), QueryRule(OmiImage, [OmiImageRequest]),
               QueryRule(PlacedLayout, [LayoutInDist]), package.omlmd_layout, package.layout_blobs,
               QueryRule(OmlmdLayout, [OmlmdLayoutRequest]), QueryRule(Digest, [CreateDigest])],
        target_types=[OmiModelTarget],
    )
    runner.write_files({"m/BUILD": 'omi_model(name="m")\n', "m/model.yaml": ""})
    runner.set_options([f"--omi-blob-store={tmp_path / 'store'}"])
    return runner


def _entries(runner: RuleRunner, digest: Digest) -> Dict[str, object]:
    out: Dict[str, object] = {}
    for entry in runner.request(DigestEntries, [digest]):
        if isinstance(entry, SymlinkEntry):
            out[entry.path] = ("->", entry.target)
        elif isinstance(entry, FileEntry):
            out[entry.path] = "file"
    return out


def test_package_places_both_layouts_and_the_record_under_the_output_path(rule_runner: RuleRunner, tmp_path) -> None:
    field_set = OmiModelFieldSet.create(rule_runner.get_target(Address("m", target_name="m")))
    built = rule_runner.request(BuiltPackage, [field_set])
    entries = _entries(rule_runner, built.digest)
    shared = lambda blob: ("->", f"../../../../omi-blobs/{blob[len('blobs/'):]}")  # noqa: E731
    assert entries == {
        "m/m.oci/index.json": "file", f"m/m.oci/{WEIGHTS}": shared(WEIGHTS), f"m/m.oci/{CODE}": shared(CODE),
        # a blob of the blob store is linked like the others, but goes to dist/ as a hard link, outside the digest
        f"m/m.oci/{STORED}": shared(STORED),
        "m/m.modelpack.oci/index.json": "file",
        # the model blob both layouts hold is stored once, under dist/omi-blobs
        f"m/m.modelpack.oci/{WEIGHTS}": shared(WEIGHTS),
        f"omi-blobs/{WEIGHTS[len('blobs/'):]}": "file", f"omi-blobs/{CODE[len('blobs/'):]}": "file",
        "m/m.omi.json": "file",
    }
    in_dist = os.path.join(rule_runner.build_root, "dist", "omi-blobs", STORED[len("blobs/"):])
    assert os.stat(in_dist).st_ino == os.stat(tmp_path / "store" / STORED).st_ino
    assert [a.relpath for a in built.artifacts] == ["m/m.oci", "m/m.modelpack.oci", "m/m.omi.json"]
    assert built.artifacts[0].extra_log_lines == (
        f"    image: team/m:run-7@{RECORD.image_digest}", "    tags: run-7, v1; interfaces: kfserving.v2, modzy.v2")
    assert built.artifacts[1].extra_log_lines == (f"    model artifact (ModelPack): {RECORD.model_digest}, the image's subject",)


def test_the_record_file_reads_back_as_the_record(rule_runner: RuleRunner) -> None:
    field_set = OmiModelFieldSet.create(rule_runner.get_target(Address("m", target_name="m")))
    built = rule_runner.request(BuiltPackage, [field_set])
    contents = {c.path: c.content for c in rule_runner.request(DigestContents, [built.digest])}
    text = contents["m/m.omi.json"]
    assert BuildRecord.from_json(text, "m/m.omi.json") == RECORD
    assert json.loads(text)["model"] == {"name": "m", "version": "1", "run_id": "run-7"}


def test_a_layout_in_dist_links_every_blob_into_the_shared_directory(rule_runner: RuleRunner) -> None:
    image = rule_runner.request(OmiImage, [OmiImageRequest(OmiModelFieldSet.create(
        rule_runner.get_target(Address("m", target_name="m"))))])
    placed_layout = rule_runner.request(PlacedLayout, [LayoutInDist(image.modelpack_layout, "deep/dir/m.modelpack.oci")])
    assert placed_layout.stored_blobs == ()
    placed = placed_layout.digest
    assert _entries(rule_runner, placed) == {
        "deep/dir/m.modelpack.oci/index.json": "file",
        f"deep/dir/m.modelpack.oci/{WEIGHTS}": ("->", f"../../../../../omi-blobs/{WEIGHTS[len('blobs/'):]}"),
        f"omi-blobs/{WEIGHTS[len('blobs/'):]}": "file",
    }
    contents = {c.path: c.content for c in rule_runner.request(DigestContents, [placed])}
    assert contents[f"omi-blobs/{WEIGHTS[len('blobs/'):]}"] == b"weights"


def test_the_omlmd_layout_holds_the_model_files_as_blobs_named_by_their_sha256(rule_runner: RuleRunner) -> None:
    import hashlib

    config = Blob.of_json(mt.MODELPACK_CONFIG, {"descriptor": {"name": "m"}, "config": {"format": "onnx"}})
    manifest = Blob.of_json(mt.MANIFEST, {"schemaVersion": 2, "config": config.descriptor.to_json(), "layers": []})
    assembled = AssembledImage(config, manifest, b"{}", config, manifest, b"{}", ("run-7",), ())
    digest_of = lambda data: f"sha256:{hashlib.sha256(data).hexdigest()}"  # noqa: E731
    # Files on disk are blobs of the blob store (absolute links); a downloaded one is the file itself.
    in_store = rule_runner.request(Digest, [CreateDigest(store_links("/store", [digest_of(b"weights")]))])
    downloaded = rule_runner.request(Digest, [CreateDigest([FileContent(blob_path(digest_of(b"extra")), b"extra")])])
    files = (OmlmdFile("a/w.bin", digest_of(b"weights"), 7, in_store),
             OmlmdFile("b/x.bin", digest_of(b"extra"), 5, downloaded),
             OmlmdFile("c/same.bin", digest_of(b"weights"), 7, in_store))
    built = rule_runner.request(OmlmdLayout, [OmlmdLayoutRequest(Address("m", target_name="m"), assembled, files)])
    entries = _entries(rule_runner, built.layout)
    assert entries[blob_path(digest_of(b"weights"))] == ("->", f"/store/{blob_path(digest_of(b'weights'))}")
    contents = {c.path: c.content for c in rule_runner.request(DigestContents, [built.layout])}
    assert contents[blob_path(digest_of(b"extra"))] == b"extra"
    omlmd_manifest = json.loads(contents[f"blobs/sha256/{built.manifest_digest.split(':')[1]}"])
    assert omlmd_manifest["subject"]["digest"] == manifest.descriptor.digest
    assert [l["annotations"][mt.ANNOTATION_TITLE] for l in omlmd_manifest["layers"]][:3] == [
        "w.bin", "x.bin", "same.bin"]
    assert json.loads(contents["index.json"])["manifests"][0]["annotations"][mt.ANNOTATION_REF_NAME] == "run-7-omlmd"


def test_a_layout_in_dist_names_its_blobs_of_the_blob_store(rule_runner: RuleRunner) -> None:
    image = rule_runner.request(OmiImage, [OmiImageRequest(OmiModelFieldSet.create(
        rule_runner.get_target(Address("m", target_name="m"))))])
    placed = rule_runner.request(PlacedLayout, [LayoutInDist(image.layout, "m/m.oci")])
    assert placed.stored_blobs == (f"sha256:{STORED[len('blobs/sha256/'):]}",)
    # its bytes stay out of the digest: dist/ gets them as a hard link
    assert f"omi-blobs/{STORED[len('blobs/'):]}" not in _entries(rule_runner, placed.digest)
