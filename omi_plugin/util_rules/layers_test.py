"""The layer compression rule with real Pants (RuleRunner) and the real pinned compressors."""

from __future__ import annotations

import gzip
import hashlib
import os

import pytest
from pants.core.util_rules import adhoc_binaries, external_tool, system_binaries
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.oci import compression
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.descriptor import Descriptor
from omi_plugin.oci.image import Layer
from omi_plugin.oci.layout import blob_path
from omi_plugin.util_rules import layers, sandbox_tools
from omi_plugin.util_rules.layers import BuiltLayer, CompressLayerRequest
from omi_testutil import rules as testutil_rules


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(rules=[
        *layers.rules(), *sandbox_tools.rules(), *testutil_rules.rules(), *adhoc_binaries.rules(),
        *system_binaries.rules(), *external_tool.rules(),
        QueryRule(BuiltLayer, [CompressLayerRequest]), QueryRule(Digest, [CreateDigest]),
        QueryRule(DigestContents, [Digest]),
    ])


def _layer(runner: RuleRunner, data: bytes) -> tuple:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs = runner.request(Digest, [CreateDigest([FileContent(blob_path(digest), data)])])
    return Layer(Descriptor(mt.LAYER_TAR, digest, len(data)), digest, "omi: test layer"), blobs


def _compress(runner: RuleRunner, data: bytes, setting: compression.Setting) -> tuple:
    layer, blobs = _layer(runner, data)
    built = runner.request(BuiltLayer, [CompressLayerRequest(layer, blobs, setting, "compress a test layer")])
    contents = {fc.path: fc.content for fc in runner.request(DigestContents, [built.blobs])}
    return layer, built, contents


def test_a_layer_is_compressed_with_its_diff_id_kept(rule_runner: RuleRunner) -> None:
    data = b"source code, compressible\n" * 20_000
    layer, built, contents = _compress(rule_runner, data, compression.Setting(compression.GZIP))
    assert built.layer.descriptor.media_type == mt.LAYER_TAR_GZIP and built.layer.diff_id == layer.diff_id
    assert list(contents) == [blob_path(built.layer.descriptor.digest)]
    assert gzip.decompress(contents[blob_path(built.layer.descriptor.digest)]) == data


def test_an_incompressible_probed_layer_keeps_its_own_blob(rule_runner: RuleRunner) -> None:
    data = os.urandom(1 << 20)
    layer, built, contents = _compress(rule_runner, data, compression.Setting(compression.ZSTD, probe=True))
    assert built.layer == layer and contents == {blob_path(layer.descriptor.digest): data}


def test_none_is_no_process_and_the_same_layer(rule_runner: RuleRunner) -> None:
    layer, built, contents = _compress(rule_runner, b"x" * 10, compression.Setting(compression.NONE))
    assert built.layer == layer and list(contents) == [blob_path(layer.descriptor.digest)]
