"""The build's provenance: an in-toto Statement v1 with a SLSA Provenance v1 predicate, about the image and the
model artifact together.

It says what was built (both manifest digests), from what (the BUILD target, model.yaml, the model files, the
lockfiles, the base image, the source revision when the repository is a git worktree) and by what (omi and Pants
versions). None of it enters the image, so the source revision can be recorded here without changing the image
digest on every commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:omi:buildtype:pants-package:v1"  # what externalParameters and internalParameters mean: README
BUILDER_ID = "urn:omi:builder:pants"


@dataclass(frozen=True)
class Subject:
    name: str
    digest: str  # sha256:<hex>


@dataclass(frozen=True)
class Material:
    """A resolved dependency: a file of the repository, or an image, with its digest."""

    name: str
    uri: str
    digest: str  # sha256:<hex>


@dataclass(frozen=True)
class SourceRevision:
    commit: str
    uncommitted_changes: bool


@dataclass(frozen=True)
class BuildFacts:
    target: str
    run_id: str
    model_name: str
    model_version: str
    materials: Tuple[Material, ...]
    parameters: Tuple[Tuple[str, str], ...]  # the target's settings that shape the image (compression, ports, ...)
    revision: Optional[SourceRevision]
    versions: Tuple[Tuple[str, str], ...]  # (component, version): omi, pants


def _digest_set(digest: str) -> Dict[str, str]:
    algorithm, _, value = digest.partition(":")
    return {algorithm: value}


def statement(subjects: Sequence[Subject], facts: BuildFacts) -> Dict[str, Any]:
    external: Dict[str, Any] = {"target": facts.target,
                                "model": {"name": facts.model_name, "version": facts.model_version,
                                          "run_id": facts.run_id}}
    dependencies: List[Dict[str, Any]] = [
        {"name": m.name, "uri": m.uri, "digest": _digest_set(m.digest)} for m in facts.materials]
    if facts.revision is not None:
        external["source"] = {"revision": facts.revision.commit,
                              "uncommitted_changes": facts.revision.uncommitted_changes}
        dependencies.append({"name": "source", "uri": "git", "digest": {"gitCommit": facts.revision.commit}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": s.name, "digest": _digest_set(s.digest)} for s in subjects],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": dict(facts.parameters),
                "resolvedDependencies": dependencies,
            },
            "runDetails": {"builder": {"id": BUILDER_ID, "version": dict(facts.versions)}},
        },
    }


def index_statement(statements: Sequence[Mapping[str, Any]], subjects: Sequence[Subject],
                    platforms: Sequence[str]) -> Dict[str, Any]:
    """The statement about an image index: the platforms' statements made one, naming `subjects` (the index, each
    platform's image, the model artifact) and every material any platform's image was built from, each once."""
    first = statements[0]
    dependencies: List[Dict[str, Any]] = []
    for document in statements:
        for dependency in document["predicate"]["buildDefinition"]["resolvedDependencies"]:
            if dependency not in dependencies:
                dependencies.append(dependency)
    definition = first["predicate"]["buildDefinition"]
    return {
        **first,
        "subject": [{"name": s.name, "digest": _digest_set(s.digest)} for s in subjects],
        "predicate": {
            **first["predicate"],
            "buildDefinition": {
                **definition,
                "internalParameters": {**definition["internalParameters"], "platforms": ",".join(platforms)},
                "resolvedDependencies": dependencies,
            },
        },
    }


def subject_digests(document: Mapping[str, Any]) -> List[str]:
    """`sha256:<hex>` of each subject of a statement, for checking them against the layouts."""
    out = []
    for subject in document.get("subject") or []:
        digest = (subject.get("digest") or {}).get("sha256") if isinstance(subject, dict) else None
        if isinstance(digest, str):
            out.append(f"sha256:{digest}")
    return out
