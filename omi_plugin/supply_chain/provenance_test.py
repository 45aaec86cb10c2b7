"""The provenance statement: an in-toto v1 Statement with the SLSA v1 predicate, naming what the build used."""

from omi_plugin.supply_chain import provenance

FACTS = provenance.BuildFacts(
    target="examples/digits:digits", run_id="run-7", model_name="digits", model_version="1.0.0",
    materials=(provenance.Material("model.yaml", "examples/digits/model.yaml", "sha256:" + "a" * 64),
               provenance.Material("base image", "3rdparty/debian:py", "sha256:" + "b" * 64)),
    parameters=(("layer_compression", "gzip"),), revision=provenance.SourceRevision("0123abc", False),
    versions=(("omi", "0.9.0"), ("pants", "2.17.1")))
SUBJECTS = [provenance.Subject("examples/digits", "sha256:" + "1" * 64),
            provenance.Subject("examples/digits (model artifact)", "sha256:" + "2" * 64)]


def test_statement_shape():
    doc = provenance.statement(SUBJECTS, FACTS)
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == "https://slsa.dev/provenance/v1"
    assert doc["subject"][0] == {"name": "examples/digits", "digest": {"sha256": "1" * 64}}
    definition = doc["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["model"]["run_id"] == "run-7"
    assert definition["externalParameters"]["source"] == {"revision": "0123abc", "uncommitted_changes": False}
    assert {"name": "source", "uri": "git", "digest": {"gitCommit": "0123abc"}} in definition["resolvedDependencies"]
    assert definition["internalParameters"] == {"layer_compression": "gzip"}
    assert doc["predicate"]["runDetails"]["builder"]["version"] == {"omi": "0.9.0", "pants": "2.17.1"}
    assert provenance.subject_digests(doc) == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]


def test_without_a_git_worktree_there_is_no_source_entry():
    facts = provenance.BuildFacts(**{**FACTS.__dict__, "revision": None})
    doc = provenance.statement(SUBJECTS, facts)
    assert "source" not in doc["predicate"]["buildDefinition"]["externalParameters"]
    assert all(d["name"] != "source" for d in doc["predicate"]["buildDefinition"]["resolvedDependencies"])


def test_an_index_statement_names_every_product_and_every_platforms_materials_once():
    arm64 = provenance.BuildFacts(**{**FACTS.__dict__, "materials": (
        FACTS.materials[0], provenance.Material("base image", "3rdparty/debian:py-arm64", "sha256:" + "c" * 64))})
    per_platform = [provenance.statement(SUBJECTS, FACTS), provenance.statement(SUBJECTS, arm64)]
    subjects = [provenance.Subject("examples/digits", "sha256:" + "9" * 64), *SUBJECTS]
    doc = provenance.index_statement(per_platform, subjects, ["linux/amd64", "linux/arm64"])
    assert provenance.subject_digests(doc) == ["sha256:" + "9" * 64, "sha256:" + "1" * 64, "sha256:" + "2" * 64]
    definition = doc["predicate"]["buildDefinition"]
    assert [d["uri"] for d in definition["resolvedDependencies"]] == [
        "examples/digits/model.yaml", "3rdparty/debian:py", "git", "3rdparty/debian:py-arm64"]
    assert definition["internalParameters"] == {"layer_compression": "gzip", "platforms": "linux/amd64,linux/arm64"}
    assert per_platform[0]["predicate"]["buildDefinition"]["internalParameters"] == {"layer_compression": "gzip"}
