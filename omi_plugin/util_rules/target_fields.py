"""Judges an omi target's BUILD fields, for that target alone, as one-line problems naming target, BUILD file and field.

Fields accept any well-typed value when BUILD files are parsed: Pants constructs every target of the repository
for dependency inference, so a field that raised there would break every goal of every target. The rules here
refuse a bad value only when the target itself is packaged, checked, published or run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from pants.engine.addresses import Address, AddressInput, BuildFileAddress, BuildFileAddressRequest
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import AllTargets, WrappedTarget, WrappedTargetRequest

from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.target_types import (
    BaseImageField,
    ExtraTagsField,
    FieldProblem,
    HttpPortField,
    OciImageReferenceField,
    OmiModelOutputPathField,
    OmiModelTarget,
    OmiSpecVersionField,
    RepositoryField,
)

# Fields whose `problem` judges the value alone.
_VALUE_FIELDS: Tuple[Any, ...] = (RepositoryField, ExtraTagsField, HttpPortField, OmiSpecVersionField,
                                  OmiModelOutputPathField, OciImageReferenceField)


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
    address: Optional[Address]
    problem: Optional[FieldProblem]


@dataclass(frozen=True)
class ResolveBaseImageRequest:
    address: Address
    spec: str


@rule(desc="Resolve a model's base image address")
async def resolve_base_image(request: ResolveBaseImageRequest) -> ResolvedBaseImage:
    try:
        address_input = AddressInput.parse(request.spec, relative_to=request.address.spec_path,
                                           description_of_origin=f"{request.address} base_image")
        address = await Get(Address, AddressInput, address_input)
    except Exception as e:  # noqa: BLE001 - a malformed or unknown address, in whichever form Pants words it
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        return ResolvedBaseImage(None, (f"{request.spec!r} does not resolve to a target: {first}",
                                        "point it at an `omi_debian_base`, `omi_oci_base` or `omi_oci_archive_base` "
                                        "target, e.g. `base_image=\"//3rdparty/debian:python3.11-bookworm\"`"))
    return ResolvedBaseImage(address, None)


@rule(desc="Check an omi target's fields")
async def target_field_problems(request: TargetFieldsRequest, omi: OmiSubsystem) -> TargetFieldProblems:
    wrapped, build_file = await MultiGet(
        Get(WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="omi")),
        Get(BuildFileAddress, BuildFileAddressRequest(request.address, description_of_origin="omi")),
    )
    target = wrapped.target
    found = []
    for field_type in _VALUE_FIELDS:
        if target.has_field(field_type):
            problem = field_type.problem(target[field_type].value)
            if problem:
                found.append((field_type.alias, problem))
    if target.has_field(BaseImageField):
        spec = target[BaseImageField].value
        resolved = await Get(ResolvedBaseImage, ResolveBaseImageRequest(
            request.address, spec or omi.default_base_image))
        if resolved.problem:
            found.append(("base_image" if spec else "base_image ([omi].default_base_image)", resolved.problem))
    if target.has_field(OmiModelOutputPathField):
        # Two omi_models writing to one place under dist/ would fail deep in Pants, merging their outputs.
        mine = target[OmiModelOutputPathField].value_or_default(file_ending=None)
        everything = await Get(AllTargets)
        others = sorted(str(t.address) for t in everything
                        if isinstance(t, OmiModelTarget) and t.address != target.address
                        and t[OmiModelOutputPathField].value_or_default(file_ending=None) == mine)
        if others:
            found.append(("output_path", (f"{mine!r} is also the output of {', '.join(others)}",
                                          "give each omi_model its own output_path")))
    return TargetFieldProblems(tuple(f"{request.address}: {build_file.rel_path}: {name}: {what} ({fix})"
                                     for name, (what, fix) in found))


def rules():
    return collect_rules()
