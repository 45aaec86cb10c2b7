"""Judges an omi target's BUILD fields, for that target alone, as one-line problems naming target, BUILD file and field.

Fields accept any well-typed value when BUILD files are parsed: Pants constructs every target of the repository
for dependency inference, so a field that raised there would break every goal of every target. The rules here
refuse a bad value only when the target itself is packaged, checked, published or run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from pants.engine.addresses import Address, AddressInput, BuildFileAddress, BuildFileAddressRequest
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import AllTargets, WrappedTarget, WrappedTargetRequest

from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.target_types import (
    BaseImageField,
    ExtraTagsField,
    FieldProblem,
    HttpPortField,
    ModelArtifactField,
    ModelFilesField,
    OciImageReferenceField,
    OmiModelOutputPathField,
    OmiModelTarget,
    OmiRegistriesField,
    OmiSpecVersionField,
    PlatformsField,
    RepositoryField,
)

# Set by `./pants` (build-support/escaping_links.py): symlinks out of the repository it hides from Pants, as JSON
# {repository-relative path: where it points}.
ESCAPING_LINKS_ENV = "OMI_ESCAPING_LINKS"

# Fields whose `problem` judges the value alone.
_VALUE_FIELDS: Tuple[Any, ...] = (RepositoryField, ExtraTagsField, HttpPortField, OmiSpecVersionField,
                                  OmiModelOutputPathField, OmiRegistriesField, OciImageReferenceField,
                                  ModelArtifactField, PlatformsField)


class OmiFieldError(Exception):
    """A target's BUILD field is wrong: `<target>: <BUILD file>: <field>: <what> (<fix>)`, one line per problem."""


@dataclass(frozen=True)
class TargetFieldsRequest:
    address: Address


@dataclass(frozen=True)
class TargetFieldProblems:
    """Every problem of the target's fields, each a complete one-line message; empty when the fields are sound."""

    lines: Tuple[str, ...]

    def raise_first(self) -> None:
        if self.lines:
            raise OmiFieldError(self.lines[0])


@dataclass(frozen=True)
class ResolvedBaseImage:
    address: Optional[Address]  # None: omi's default base (no spec), or a spec that does not resolve
    problem: Optional[FieldProblem]


@dataclass(frozen=True)
class ResolveBaseImageRequest:
    address: Address
    spec: str


@rule(desc="Resolve a model's base image address")
async def resolve_base_image(request: ResolveBaseImageRequest) -> ResolvedBaseImage:
    if not request.spec:
        return ResolvedBaseImage(None, None)
    try:
        address_input = AddressInput.parse(request.spec, relative_to=request.address.spec_path,
                                           description_of_origin=f"{request.address} base_image")
        address = await Get(Address, AddressInput, address_input)
        # An address in an existing directory resolves whether or not its target exists: wrapping it checks that.
        await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin=f"{request.address} base_image"))
    except Exception as e:  # noqa: BLE001 - a malformed or unknown address, in whichever form Pants words it
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        return ResolvedBaseImage(None, (f"{request.spec!r} does not resolve to a target: {first}",
                                        "point it at an `omi_debian_base`, `omi_oci_base` or `omi_oci_archive_base` "
                                        "target (e.g. `base_image=\"//base:python\"`), or unset it for omi's default base"))
    return ResolvedBaseImage(address, None)


@rule(desc="Check an omi target's fields")
async def target_field_problems(request: TargetFieldsRequest, omi: OmiSubsystem) -> TargetFieldProblems:
    wrapped, build_file = await MultiGet(
        Get(WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="omi")),
        Get(BuildFileAddress, BuildFileAddressRequest(request.address, description_of_origin="omi")),
    )
    target = wrapped.target
    build = build_file.rel_path
    found: List[Tuple[str, str, FieldProblem]] = []  # (file, field, problem)
    for field_type in _VALUE_FIELDS:
        if target.has_field(field_type):
            problem = field_type.problem(target[field_type].value)
            if problem:
                found.append((build, field_type.alias, problem))
    if target.has_field(ModelFilesField):
        env = await Get(EnvironmentVars, EnvironmentVarsRequest([ESCAPING_LINKS_ENV]))
        links: Dict[str, str] = json.loads(env.get(ESCAPING_LINKS_ENV) or "{}")
        for path in target[ModelFilesField].filespec_matcher.matches(sorted(links)):
            found.append((path, "model_files", (
                f"is a symlink to {links[path]}, outside the repository (Pants cannot read the repository with it, "
                "so `./pants` hides it from Pants)",
                "copy the file into the repository, or provide it with an `http_source` pinned by sha256")))
    if target.has_field(ModelArtifactField) and target[ModelArtifactField].value and \
            target[ModelFilesField].value:
        found.append((build, "model_artifact", ("is set together with model_files",
                                                "take the model files from the artifact or from the repository, "
                                                "not both: remove one of the two fields")))
    if target.has_field(BaseImageField):
        spec = target[BaseImageField].value
        resolved = await Get(ResolvedBaseImage, ResolveBaseImageRequest(
            request.address, spec or omi.default_base_image))
        if resolved.problem:
            found.append((build, "base_image" if spec else "base_image ([omi].default_base_image)", resolved.problem))
    if target.has_field(OmiModelOutputPathField):
        # Two omi_models writing to one place under dist/ would fail deep in Pants, merging their outputs.
        mine = target[OmiModelOutputPathField].value_or_default(file_ending=None)
        everything = await Get(AllTargets)
        others = sorted(str(t.address) for t in everything
                        if isinstance(t, OmiModelTarget) and t.address != target.address
                        and t[OmiModelOutputPathField].value_or_default(file_ending=None) == mine)
        if others:
            found.append((build, "output_path", (f"{mine!r} is also the output of {', '.join(others)}",
                                                 "give each omi_model its own output_path")))
    return TargetFieldProblems(tuple(f"{request.address}: {file}: {name}: {what} ({fix})"
                                     for file, name, (what, fix) in found))


def rules():
    return collect_rules()
