"""The static checker's library API: one request in, every violation out, never an exception.

    violations = run_checks(CheckRequest(target="examples/digits:digits", model_yaml="examples/digits/model.yaml",
                                         model_files={"model.joblib": 8192}, layout="dist/.../digits.oci",
                                         modelpack_layout="dist/.../digits.modelpack.oci"))

Each rule group runs on its own; if one crashes (a checker bug or an unreadable input) the crash becomes an
OMI900 violation naming the group, and the other groups still run.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Sequence, Union

from omi_contract.image import SPEC_VERSIONS
from omi_contract.violation import Collector, Violation
from omi_plugin.check.attestation_rules import check_attestations
from omi_plugin.check.expectations import Expectations
from omi_plugin.check.image_rules import check_image
from omi_plugin.check.layout_rules import LayoutScan, scan_layout
from omi_plugin.check.metadata_rules import MetadataInputs, check_metadata
from omi_plugin.check.modelpack_rules import check_modelpack
from omi_plugin.metadata import model_yaml
from omi_plugin.metadata.model_yaml import ModelYamlError


@dataclass(frozen=True)
class CheckRequest:
    """Inputs of `pants check` for one omi_model target. Optional inputs skip the rules that need them."""

    target: str
    model_yaml: str  # path of model.yaml (read when model_yaml_text is None), also its display name
    model_yaml_text: Optional[str] = None
    model_files: Optional[Mapping[str, int]] = None  # relative to model.yaml's directory -> size in bytes
    layout: Optional[str] = None  # OCI image layout directory of the serving image
    modelpack_layout: Optional[str] = None  # OCI layout of the ModelPack artifact
    spec_version: str = "1.0"
    repository: Optional[str] = None
    source_files: Optional[Sequence[str]] = None  # source-root-relative Python files shipped in the image
    mlmodel_text: Optional[Union[bytes, str]] = None  # content of model.yaml's `run_id_from` file; read from disk when None
    layout_name: Optional[str] = None  # how to name the layouts in messages (default: the paths)
    modelpack_layout_name: Optional[str] = None
    attestations_layout: Optional[str] = None  # OCI layout of the SBOM and provenance referrers
    attestations_layout_name: Optional[str] = None
    verify_key: Optional[bytes] = None  # PEM public key the signatures must verify with
    text_model_facts: Optional[str] = None  # a huggingface model's omi_contract.huggingface.DirectoryFacts as JSON
    model_artifact: Optional[str] = None  # the registry artifact the model files come from (`model_artifact`)


def _guarded(out: Collector, group: str, where: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as e:  # the contract is one line per problem, never a traceback
        out.add("OMI900", "(checker)", f"{group} crashed: {type(e).__name__}: {e}",
                "this is a bug in omi_plugin.check or an unreadable input: report it with this line", where=where)
        return None


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _mlmodel_text(request: CheckRequest, text: Union[bytes, str]) -> Optional[Union[bytes, str]]:
    """The `run_id_from` file next to model.yaml, when model.yaml names one and it exists on disk."""
    if request.mlmodel_text is not None:
        return request.mlmodel_text
    try:
        data = model_yaml.parse_yaml(text, request.model_yaml)
    except ModelYamlError:
        return None  # the metadata rules report it
    name = data.get("run_id_from")
    if not isinstance(name, str):
        return None
    path = os.path.join(os.path.dirname(request.model_yaml), *posixpath.normpath(name).split("/"))
    return _read_bytes(path) if os.path.isfile(path) else None


def _metadata(out: Collector, request: CheckRequest) -> Expectations:
    text: Union[bytes, str, None] = request.model_yaml_text
    if text is None:
        try:
            text = _read_bytes(request.model_yaml)
        except OSError as e:
            out.add("OMI100", "(file)", f"cannot be read: {getattr(e, 'strerror', None) or e}",
                    "pass the path of the target's model.yaml")
            return Expectations(spec_version=request.spec_version)
    result = check_metadata(out.target, MetadataInputs(
        file=request.model_yaml, text=text, model_files=request.model_files, repository=request.repository,
        source_files=request.source_files, mlmodel_text=_mlmodel_text(request, text),
        spec_version=request.spec_version, text_model_facts=request.text_model_facts))
    out.extend(result.violations)
    return result.expectations


def run_checks(request: CheckRequest) -> List[Violation]:
    """Every static rule (OMI1xx, OMI2xx, OMI3xx, OMI5xx) for one target, in a stable order."""
    out = Collector(request.target, request.model_yaml)
    if request.spec_version not in SPEC_VERSIONS:
        out.add("OMI900", "omi_spec", f"{request.spec_version!r} is not a supported OMI spec version",
                "use 1.0 or 1.1", where="(options)")
        return out.violations
    expect = _guarded(out, "metadata rules", request.model_yaml, lambda: _metadata(out, request)) \
        or Expectations(spec_version=request.spec_version)
    image: Optional[LayoutScan] = None
    artifact: Optional[LayoutScan] = None
    if request.layout is not None:
        name = request.layout_name or request.layout
        image = _guarded(out, "layout rules", name, lambda: scan_layout(out, request.layout or "", name))
        if image is not None:
            _guarded(out, "image rules", name, lambda: check_image(out, image, expect))  # type: ignore[arg-type]
    if request.modelpack_layout is not None:
        name = request.modelpack_layout_name or request.modelpack_layout
        artifact = _guarded(out, "layout rules", name, lambda: scan_layout(out, request.modelpack_layout or "", name))
        if artifact is not None:
            _guarded(out, "modelpack rules", name, lambda: check_modelpack(out, artifact, expect, image,
                                                                          request.model_artifact))
    if request.attestations_layout is not None:
        name = request.attestations_layout_name or request.attestations_layout
        attested = _guarded(out, "layout rules", name,
                            lambda: scan_layout(out, request.attestations_layout or "", name, tagged=False))
        if attested is not None:
            _guarded(out, "attestation rules", name, lambda: check_attestations(
                out, attested, image, None if request.model_artifact else artifact, request.verify_key,
                artifact if request.model_artifact else None))
    return out.violations
