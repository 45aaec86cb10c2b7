"""Bundled models with real Pants (RuleRunner): what cannot share one image is one line naming both targets."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from pants.backend.python import target_types_rules
from pants.backend.python.dependency_inference import module_mapper
from pants.core.util_rules import stripped_source_files
from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, DigestContents, DigestEntries, SymlinkEntry
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from omi_plugin.target_types import OmiDebianBaseTarget, OmiModelTarget
from omi_plugin.util_rules import image_models, model_artifact, model_inputs, runtime_library, target_fields
from omi_plugin.util_rules.image_models import ImageModels, ImageModelsRequest
from omi_plugin.util_rules.model_inputs import ModelsDirectory
from omi_testutil import rules as testutil_rules


def _yaml(name: str, interfaces: str = "[kfserving.v1, modzy.v2]") -> str:
    return (f"name: {name}\nversion: '1'\nrun_id: {name}-1\nformat: custom\nhandler: h:H\nfiles: [w.bin]\n"
            f"interfaces: {interfaces}\n")


@pytest.fixture
def rule_runner(tmp_path) -> RuleRunner:
    runner = RuleRunner(
        rules=[*image_models.rules(), *model_inputs.rules(), *model_artifact.rules(), *target_fields.rules(),
               *testutil_rules.blob_store_rules(),
               *runtime_library.rules(), *module_mapper.rules(), *stripped_source_files.rules(),
               *target_types_rules.rules(),
               QueryRule(ImageModels, [ImageModelsRequest]), QueryRule(ModelsDirectory, [ImageModels]),
               QueryRule(DigestEntries, [Digest]),
               QueryRule(Digest, [CreateDigest]), QueryRule(DigestContents, [Digest])],
        target_types=[OmiModelTarget, OmiDebianBaseTarget],
    )
    runner.write_files({"base/BUILD": 'omi_debian_base(name="base", lockfile="base.lock.json")\n',
                        "base/base.lock.json": "{}", "rt/BUILD": ""})
    runner.set_options(["--omi-default-base-image=base:base", "--omi-runtime=rt:rt",
                        f"--omi-blob-store={tmp_path / 'store'}"])
    for name in ("a", "b", "c"):
        runner.write_files({f"{name}/model.yaml": _yaml(name), f"{name}/w.bin": name})
    runner.write_files({"c/model.yaml": _yaml("c", "[kfserving.v1]")})
    return runner


def _build(runner: RuleRunner, own: str, bundled: str) -> None:
    runner.write_files({f"{own}/BUILD": f'omi_model(name="{own}", model_files=["w.bin"], bundled_models={bundled})\n'})


def _models(runner: RuleRunner, path: str) -> ImageModels:
    return runner.request(ImageModels, [ImageModelsRequest(Address(path, target_name=path))])


def _error(runner: RuleRunner, path: str) -> str:
    with pytest.raises(ExecutionError) as info:
        _models(runner, path)
    return str(info.value)


def test_bundled_models_share_one_models_directory(rule_runner: RuleRunner) -> None:
    _build(rule_runner, "a", '["b:b"]')
    _build(rule_runner, "b", "[]")
    models = _models(rule_runner, "a")
    assert [m.metadata.name for m in models.all] == ["a", "b"]
    directory = rule_runner.request(ModelsDirectory, [models])
    entries = {e.path: e for e in rule_runner.request(DigestEntries, [directory.digest])}
    assert sorted(entries) == ["__model_file_digests/a.json", "__model_file_digests/b.json", "models/a/omi-model.json",
                               "models/a/w.bin", "models/b/omi-model.json", "models/b/w.bin"]
    # Model files are links to them, and their sha256s are in the digest: a process reading them is keyed by them.
    for name in ("a", "b"):
        link = entries[f"models/{name}/w.bin"]
        assert isinstance(link, SymlinkEntry) and link.target == os.path.join(rule_runner.build_root, f"{name}/w.bin")
        key = rule_runner.request(DigestContents, [rule_runner.request(Digest, [CreateDigest([
            entries[f"__model_file_digests/{name}.json"]])])])[0].content
        assert json.loads(key) == {"w.bin": "sha256:" + hashlib.sha256(name.encode()).hexdigest()}


def test_a_bundled_model_must_serve_every_interface_of_the_image(rule_runner: RuleRunner) -> None:
    _build(rule_runner, "a", '["c:c"]')
    _build(rule_runner, "c", "[]")
    assert ("a:a: bundled_models: c:c does not serve modzy.v2, which the image declares for every model it carries "
            "(add it to `interfaces` in c/model.yaml, or remove it from a/model.yaml)") in _error(rule_runner, "a")


def test_names_must_differ_and_bundles_do_not_nest(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"b/model.yaml": _yaml("a")})
    _build(rule_runner, "a", '["b:b"]')
    _build(rule_runner, "b", "[]")
    assert ("a:a: bundled_models: b:b and a:a both name their model 'a' (/models/a can hold one; rename one in its "
            "model.yaml)") in _error(rule_runner, "a")
    _build(rule_runner, "b", '["c:c"]')
    assert "a:a: bundled_models: b:b bundles models itself (list the models it bundles here instead)" in _error(
        rule_runner, "a")
    _build(rule_runner, "a", '["a:a"]')
    assert "a:a: bundled_models: lists the target itself" in _error(rule_runner, "a")
    rule_runner.write_files({"d/BUILD": 'omi_debian_base(name="d", lockfile="x.json")\n', "d/x.json": "{}"})
    _build(rule_runner, "a", '["d:d"]')
    assert "a:a: bundled_models: d:d is a `omi_debian_base`, not an omi_model" in _error(rule_runner, "a")
