import pytest

from omi_plugin.goals.publish import DEFAULT_REGISTRIES, RegistryConfigError, select_registries

CONFIGURED = {
    "local": {"address": "127.0.0.1:5000", "default": True},
    "lab": {"address": "lab.example.com", "insecure": True},
    "prod": {"address": "registry.example.com", "default": True},
}


def test_defaults_aliases_and_addresses() -> None:
    assert select_registries((DEFAULT_REGISTRIES,), CONFIGURED, "a:b") == [
        ("127.0.0.1:5000", False), ("registry.example.com", False)]
    assert select_registries(("@lab", "other.example.com"), CONFIGURED, "a:b") == [
        ("lab.example.com", True), ("other.example.com", False)]
    assert select_registries((DEFAULT_REGISTRIES,), {}, "a:b") == []


def test_unknown_alias_is_a_clear_error() -> None:
    with pytest.raises(RegistryConfigError, match=r"^a:b: registries: unknown registry alias '@nope' .*known: lab, "
                                                  r"local, prod\)$"):
        select_registries(("@nope",), CONFIGURED, "a:b")


# --- the publish rule with real Pants (RuleRunner), given a packaged layout --------------------------------------

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact  # noqa: E402
from pants.core.goals.publish import PublishProcesses  # noqa: E402
from pants.engine.addresses import Address  # noqa: E402
from pants.engine.fs import CreateDigest, Digest, DigestEntries, FileContent, SymlinkEntry  # noqa: E402
from pants.testutil.rule_runner import QueryRule, RuleRunner  # noqa: E402

from omi_plugin.build_record import BuildRecord  # noqa: E402
from omi_plugin.goals import publish  # noqa: E402
from omi_plugin.goals.publish import PublishOmiModelFieldSet, PublishOmiModelRequest  # noqa: E402
from omi_plugin.target_types import OmiModelTarget  # noqa: E402
from omi_testutil import rules as testutil_rules  # noqa: E402

RECORD = BuildRecord(
    image_digest="sha256:" + "1" * 64, model_digest="sha256:" + "2" * 64, config_digest="sha256:" + "3" * 64,
    tags=("run-7", "v1"), repository="team/m", interfaces=("kfserving.v2",), layout="m/m.oci",
    modelpack_layout="m/m.modelpack.oci", model_name="m", model_version="1", run_id="run-7", base_name="b:b",
    base_digest="sha256:" + "4" * 64, layers=(),
)
REGISTRIES = "{'local': {'address': '127.0.0.1:5000', 'default': True}, 'lab': {'address': 'lab.example.com', " \
             "'insecure': True}}"


@pytest.fixture
def rule_runner(tmp_path) -> RuleRunner:
    runner = RuleRunner(
        rules=[*publish.rules(), *testutil_rules.blob_store_rules(),
               QueryRule(PublishProcesses, [PublishOmiModelRequest]),
               QueryRule(Digest, [CreateDigest]), QueryRule(DigestEntries, [Digest])],
        target_types=[OmiModelTarget],
    )
    runner.set_options([f"--omi-registries={REGISTRIES}", f"--omi-blob-store={tmp_path / 'store'}"])
    return runner


def _publish(runner: RuleRunner, build: str) -> PublishProcesses:
    runner.write_files({"m/BUILD": build, "m/model.yaml": ""})
    field_set = PublishOmiModelFieldSet.create(runner.get_target(Address("m", target_name="m")))
    digest = runner.request(Digest, [CreateDigest([FileContent("m/m.omi.json", RECORD.to_json().encode())])])
    package = BuiltPackage(digest, (BuiltPackageArtifact("m/m.omi.json"),))
    return runner.request(PublishProcesses, [PublishOmiModelRequest(field_set, (package,))])


def test_each_chosen_registry_gets_one_push_of_the_recorded_digest_and_tags(rule_runner: RuleRunner) -> None:
    processes = _publish(rule_runner, 'omi_model(name="m", output_path="m/m", registries=["<all default '
                                      'registries>", "@lab"])\n')
    assert [p.names for p in processes] == [
        ("127.0.0.1:5000/team/m:run-7", "127.0.0.1:5000/team/m:v1"), ("lab.example.com/team/m:run-7",
                                                                      "lab.example.com/team/m:v1")]
    local, lab = (p.process for p in processes)
    assert local is not None and lab is not None
    argv = list(local.process.argv)
    assert argv[1:4] == ["-m", "omi_plugin.registry", "push"]
    assert argv[argv.index("--layout") + 1] == "m/m.oci" and argv[argv.index("--registry") + 1] == "127.0.0.1:5000"
    assert argv[argv.index("--expect-digest") + 1] == RECORD.image_digest
    assert argv[argv.index("--expect-model-digest") + 1] == RECORD.model_digest and "--omlmd-layout" not in argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--tag"] == ["run-7", "v1"]
    assert "--insecure" not in argv
    assert list(lab.process.argv)[-1] == "--insecure"
    assert dict(processes[0].data) == {"registry": "127.0.0.1:5000", "repository": "team/m", "tags": ("run-7", "v1"),
                                       "image_digest": RECORD.image_digest, "model_digest": RECORD.model_digest}


def test_skip_push_and_no_registry_push_nothing_and_say_why(rule_runner: RuleRunner) -> None:
    skipped = _publish(rule_runner, 'omi_model(name="m", output_path="m/m", skip_push=True)\n')
    assert [(p.process, p.description) for p in skipped] == [(None, "(by `skip_push` on m:m)")]
    rule_runner.set_options(["--omi-registries={}"])
    unset = _publish(rule_runner, 'omi_model(name="m", output_path="m/m")\n')
    assert unset[0].process is None and "no registry" in (unset[0].description or "")


def test_the_push_sandbox_links_the_blobs_that_are_in_the_blob_store(rule_runner: RuleRunner, tmp_path) -> None:
    """`pants package` hard-links the blob store's blobs into dist/ outside the package digest: the push gets them as
    links into the store, and the blobs the digest holds as they are."""
    stored, held = "a" * 64, "b" * 64
    rule_runner.write_files({"m/BUILD": 'omi_model(name="m", output_path="m/m", registries=["@lab"])\n',
                             "m/model.yaml": ""})
    field_set = PublishOmiModelFieldSet.create(rule_runner.get_target(Address("m", target_name="m")))
    digest = rule_runner.request(Digest, [CreateDigest([
        FileContent("m/m.omi.json", RECORD.to_json().encode()), FileContent(f"omi-blobs/sha256/{held}", b"held"),
        *(SymlinkEntry(f"m/m.oci/blobs/sha256/{h}", f"../../../../omi-blobs/sha256/{h}") for h in (stored, held)),
    ])])
    package = BuiltPackage(digest, (BuiltPackageArtifact("m/m.omi.json"),))
    [push] = rule_runner.request(PublishProcesses, [PublishOmiModelRequest(field_set, (package,))])
    assert push.process is not None
    entries = {e.path: e for e in rule_runner.request(DigestEntries, [push.process.process.input_digest])}
    link = entries[f"omi-blobs/sha256/{stored}"]
    assert isinstance(link, SymlinkEntry) and link.target == str(tmp_path / "store" / "blobs" / "sha256" / stored)
    assert not isinstance(entries[f"omi-blobs/sha256/{held}"], SymlinkEntry)
