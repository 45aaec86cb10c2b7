"""Bad input to `pants package`: one line naming target, file and field, no traceback, nothing written."""

from __future__ import annotations

import json

import pytest
from conftest import Clone

MODEL_YAML = """name: broken
version: "1"
run_id: run-1
format: sklearn
files: [model.joblib]
"""
BUILD = 'omi_model(name="broken", model_files=["*.joblib"])\n'

CASES = {
    "malformed-yaml": (MODEL_YAML + "inputs: [\n", BUILD,
                       "bad/malformed-yaml:broken: bad/malformed-yaml/model.yaml: line 7, column 1: malformed YAML"),
    "schema": (MODEL_YAML.replace("format: sklearn", "format: tensorflow"), BUILD,
               "bad/schema:broken: bad/schema/model.yaml: format: 'tensorflow' is not allowed (use one of: sklearn, onnx, custom)"),
    "missing-file": (MODEL_YAML.replace("[model.joblib]", "[model.joblib, weights.bin]"), BUILD,
                     "bad/missing-file:broken: bad/missing-file/model.yaml: files[1]: model file 'weights.bin' is not provided"),
    "latest": (MODEL_YAML.replace("run-1", "latest"), BUILD,
               "bad/latest:broken: bad/latest/model.yaml: run_id: 'latest' is not allowed as a tag"),
    "invalid-tag": (MODEL_YAML.replace("run-1", "'-run/1'"), BUILD,
                    "bad/invalid-tag:broken: bad/invalid-tag/model.yaml: run_id: '-run/1' is not a valid OCI tag"),
    "unknown-interface": (MODEL_YAML + "interfaces: [kfserving.v2, triton.v2]\n", BUILD,
                          "bad/unknown-interface:broken: bad/unknown-interface/model.yaml: interfaces[1]: 'triton.v2' is not allowed"),
    "latest-extra-tag": (MODEL_YAML, 'omi_model(name="broken", model_files=["*.joblib"], extra_tags=["latest"])\n',
                         "bad/latest-extra-tag:broken: extra_tags: 'latest' is not allowed"),
    "empty-model": (MODEL_YAML, BUILD, "bad/empty-model/model.joblib: files[0]: model file is empty"),
}


@pytest.fixture(scope="module")
def bad_clone(clone_factory) -> Clone:
    clone = clone_factory("clone-bad-input", pantsd=True)
    for case, (model_yaml, build, _) in CASES.items():
        clone.write(f"bad/{case}/model.yaml", model_yaml)
        clone.write(f"bad/{case}/BUILD", build)
        clone.write(f"bad/{case}/model.joblib", "" if case == "empty-model" else "not really a model")
    return clone


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_line_error_and_no_artifact(bad_clone: Clone, case: str) -> None:
    result = bad_clone.pants("package", f"bad/{case}:broken", check=False)
    assert result.returncode != 0
    expected = CASES[case][2]
    lines = [line for line in result.output.splitlines() if expected in line]
    assert lines, f"expected {expected!r} in:\n{result.output[-3000:]}"
    assert "Traceback (most recent call last)" not in result.output
    assert not (bad_clone.root / "dist" / f"bad.{case}").exists()


def test_stale_debian_lock_says_how_to_refresh(bad_clone: Clone) -> None:
    lock = json.loads((bad_clone.root / "3rdparty/debian/python3.11-bookworm.lock.json").read_text())
    gone = lock["packages"][0]
    gone["url"] = gone["url"].rsplit("/", 1)[0] + f"/{gone['name']}_0.0-gone_amd64.deb"
    bad_clone.write("bad/stale-lock/stale.lock.json", json.dumps(lock, indent=2))
    bad_clone.write("bad/stale-lock/model.yaml", MODEL_YAML)
    bad_clone.write("bad/stale-lock/model.joblib", "not really a model")
    bad_clone.write("bad/stale-lock/BUILD", 'omi_debian_base(name="stale", lockfile="stale.lock.json")\n'
                                            'omi_model(name="broken", model_files=["*.joblib"], base_image=":stale")\n')
    result = bad_clone.pants("package", "bad/stale-lock:broken", check=False)
    assert result.returncode != 0
    expected = (f"bad/stale-lock:stale: bad/stale-lock/stale.lock.json: the pinned Debian package {gone['name']} "
                f"{gone['version']} ({gone['url']}) is no longer on the mirror")
    assert expected in result.output, result.output[-3000:]
    assert "python -m omi_plugin.base_images.generate_lock --refresh bad/stale-lock/stale.lock.json" in result.output
    assert "Traceback (most recent call last)" not in result.output
