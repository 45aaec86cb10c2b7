"""The broken-fixture corpus (tests/check_fixtures): each file breaks one rule and names the exact lines expected.

metadata/*.yaml give a model.yaml (plus optional model files, sources, repository); image/ and modelpack/ give
tampering ops applied to a fresh copy of a valid layout built by `omi_testutil.check_layouts`. `{name}` in expectations and ops
stands for values read from the layouts (digests, `where` names), so the corpus survives unrelated changes to
how images are assembled.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
from typing import Any, Dict, List, Mapping, Tuple

import pytest
import yaml

from omi_contract.violation import Violation
from omi_plugin.check.catalog import RULES
from omi_plugin.check.checker import CheckRequest, run_checks
from omi_plugin.oci.platforms import parse as parse_platform
from omi_testutil import check_layouts as testutil

_PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")


def _fixtures(kind: str) -> List[str]:
    return sorted(glob.glob(os.path.join(testutil.FIXTURES_DIR, kind, "*.yaml")))


def _load(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def substitute(value: Any, values: Mapping[str, str]) -> Any:
    """Replace known {name} placeholders in strings (recursively); unknown braces stay as they are."""
    if isinstance(value, str):
        return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {substitute(k, values): substitute(v, values) for k, v in value.items()}
    return value


def run_metadata_fixture(spec: Mapping[str, Any]) -> List[Violation]:
    sizes = {rel: len(data) for rel, data in testutil.MODEL_FILES.items()}
    return run_checks(CheckRequest(
        target=testutil.TARGET, model_yaml=testutil.MODEL_YAML_PATH, model_yaml_text=spec["model_yaml"],
        model_files=spec.get("model_files", sizes), repository=spec.get("repository", "tests/tiny"),
        source_files=spec.get("source_files", testutil.SOURCE_FILES),
        text_model_facts=json.dumps(spec["text_model"]) if "text_model" in spec else None))


_PRISTINE: Dict[str, Tuple[str, str]] = {}


def run_layout_fixture(spec: Mapping[str, Any], directory: str) -> Tuple[List[Violation], Dict[str, str]]:
    version = str(spec.get("spec", "1.0"))
    platforms = tuple(spec.get("platforms") or ())  # an image index of these platforms' images
    key = f"{version}-{'-'.join(p.replace('/', '_') for p in platforms)}"
    if key not in _PRISTINE:
        _PRISTINE[key] = testutil.build_layouts(os.path.join(directory, f"pristine-{key}"), version,
                                                tuple(parse_platform(p) for p in platforms))
    image, modelpack = (os.path.join(directory, "case", os.path.basename(p)) for p in _PRISTINE[key])
    shutil.copytree(_PRISTINE[key][0], image)
    shutil.copytree(_PRISTINE[key][1], modelpack)
    layouts = testutil.Layouts(image, modelpack)
    for op in spec.get("tamper") or []:
        testutil.apply(layouts, substitute(op, testutil.placeholders(layouts)))
    model_artifact = substitute(spec.get("model_artifact"), testutil.placeholders(layouts))
    violations = run_checks(CheckRequest(
        target=testutil.TARGET, model_yaml=testutil.MODEL_YAML_PATH, model_yaml_text=testutil.MODEL_YAML,
        model_files={rel: len(data) for rel, data in testutil.MODEL_FILES.items()}, layout=image,
        modelpack_layout=modelpack, spec_version=version, repository="tests/tiny",
        source_files=testutil.SOURCE_FILES, layout_name=testutil.IMAGE_NAME,
        modelpack_layout_name=testutil.MODELPACK_NAME, model_artifact=model_artifact))
    return violations, testutil.placeholders(layouts)


def _assert_lines(spec: Mapping[str, Any], violations: List[Violation], values: Mapping[str, str]) -> None:
    expected = [substitute(line, values) for line in spec.get("expect") or []]
    assert [str(v) for v in violations] == expected
    assert not [v for v in violations if v.rule == "OMI900"], "the checker crashed"
    assert all("Traceback" not in str(v) and "\n" not in str(v) for v in violations)
    if spec.get("rule"):
        assert spec["rule"] in {v.rule for v in violations}


def test_corpus_covers_every_static_rule() -> None:
    covered = {_load(p).get("rule") for kind in ("metadata", "image", "modelpack") for p in _fixtures(kind)}
    static = {rule for rule in RULES if rule[3] in "123"}
    assert static - covered == set()
    assert len(_fixtures("metadata") + _fixtures("image") + _fixtures("modelpack")) >= 25


@pytest.mark.parametrize("path", _fixtures("metadata"), ids=os.path.basename)
def test_metadata_fixture(path: str) -> None:
    spec = _load(path)
    _assert_lines(spec, run_metadata_fixture(spec), {"target": testutil.TARGET, "model_yaml": testutil.MODEL_YAML_PATH})


@pytest.mark.parametrize("path", _fixtures("image") + _fixtures("modelpack"), ids=os.path.basename)
def test_layout_fixture(path: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    spec = _load(path)
    violations, values = run_layout_fixture(spec, str(tmp_path_factory.mktemp("layouts")))
    _assert_lines(spec, violations, values)
