"""Bases from outside: pulled by digest from a loopback registry (`omi_oci_base`), a tag-only base refused, and
a vendored OCI layout archive (`omi_oci_archive_base`)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from typing import Tuple

from conftest import REPO, Clone

from omi_testutil.registry import registry  # noqa: F401 - pytest fixture

DIGITS = ("examples/digits", "digits")
MULTIARCH = ("examples/digits", "digits-multiarch")


def _push_as_base(clone: Clone, host: str, target: Tuple[str, str] = DIGITS, repository: str = "bases/python") -> str:
    """Push a packaged digits image (or index) to the registry: any image with Python 3.11 can serve as a base."""
    layout = clone.layout(*target)
    result = subprocess.run([sys.executable, "-m", "omi_plugin.registry", "push", "--layout", str(layout),
                             "--registry", host, "--repository", repository, "--tag", "v1"],
                            cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["image_digest"]


def test_model_on_a_base_pulled_by_digest(packaged_clone: Clone, clone_factory, registry) -> None:  # noqa: F811
    digest = _push_as_base(packaged_clone, registry.host)
    clone = clone_factory("clone-pulled-base")
    clone.write("examples/digits/BUILD", (clone.root / "examples/digits/BUILD").read_text() + f'''
omi_oci_base(name="pulled", image="{registry.host}/bases/python@{digest}")

omi_model(name="digits-on-pulled", model_files=["model.joblib"], base_image=":pulled")
''')
    clone.pants("package", "examples/digits:digits-on-pulled")
    record = clone.record("examples/digits", "digits-on-pulled")
    base_record = packaged_clone.record(*DIGITS)
    assert record["base"] == {"name": f"{registry.host}/bases/python", "digest": digest}
    base_layers = [layer["digest"] for layer in base_record["layers"]]
    assert [layer["digest"] for layer in record["layers"][: len(base_layers)]] == base_layers


def test_a_base_pulled_by_index_digest_gives_each_platform_its_manifest(packaged_clone: Clone, clone_factory,
                                                                        registry) -> None:  # noqa: F811
    index = _push_as_base(packaged_clone, registry.host, MULTIARCH, "bases/python-multi")
    amd64_only = _push_as_base(packaged_clone, registry.host)
    clone = clone_factory("clone-pulled-index-base")
    clone.write("examples/digits/BUILD", (clone.root / "examples/digits/BUILD").read_text() + f'''
omi_oci_base(name="pulled-index", image="{registry.host}/bases/python-multi@{index}")
omi_oci_base(name="pulled-amd64", image="{registry.host}/bases/python@{amd64_only}")

omi_model(name="both-on-index", model_files=["model.joblib"], base_image=":pulled-index",
          platforms=["linux/amd64", "linux/arm64"])
omi_model(name="arm64-on-amd64", model_files=["model.joblib"], base_image=":pulled-amd64", platforms=["linux/arm64"])
''')
    clone.pants("package", "examples/digits:both-on-index")
    record = clone.record("examples/digits", "both-on-index")
    pushed = {p["platform"]: p["image_digest"] for p in packaged_clone.record(*MULTIARCH)["platform_images"]}
    assert {p["platform"]: p["base_digest"] for p in record["platform_images"]} == pushed
    result = clone.pants("package", "examples/digits:arm64-on-amd64", check=False)
    assert result.returncode != 0
    assert (f"examples/digits:arm64-on-amd64: platforms: the base image {registry.host}/bases/python is linux/amd64, "
            "not linux/arm64") in result.output, result.output[-3000:]
    assert "Traceback (most recent call last)" not in result.output


def test_tag_only_base_is_refused(clone_factory, registry) -> None:  # noqa: F811
    clone = clone_factory("clone-tag-base")
    clone.write("examples/digits/BUILD", (clone.root / "examples/digits/BUILD").read_text() + f'''
omi_oci_base(name="tagged", image="{registry.host}/bases/python:v1")

omi_model(name="digits-on-tag", model_files=["model.joblib"], base_image=":tagged")
''')
    result = clone.pants("package", "examples/digits:digits-on-tag", check=False)
    assert result.returncode != 0
    assert (f"examples/digits:tagged: examples/digits/BUILD: image: '{registry.host}/bases/python:v1' is not pinned by digest "
            "(pin the base by digest") in result.output, result.output[-3000:]
    assert "Traceback (most recent call last)" not in result.output


def test_model_on_a_base_from_an_oci_archive(packaged_clone: Clone, clone_factory) -> None:
    clone = clone_factory("clone-archive-base")
    record = packaged_clone.record(*DIGITS)
    archive = clone.root / "examples/digits/base.oci.tar"
    subprocess.run(["skopeo", "copy", f"oci:{packaged_clone.layout(*DIGITS)}:{record['tags'][0]}",
                    f"oci-archive:{archive}"], check=True, capture_output=True)
    with tarfile.open(archive) as tar:
        index = tar.extractfile("index.json")
        assert index is not None
        digest = json.load(index)["manifests"][0]["digest"]
    clone.write("examples/digits/BUILD", (clone.root / "examples/digits/BUILD").read_text() + '''
omi_oci_archive_base(name="vendored", source="base.oci.tar")

omi_model(name="digits-on-archive", model_files=["model.joblib"], base_image=":vendored")
''')
    clone.pants("package", "examples/digits:digits-on-archive")
    assert clone.record("examples/digits", "digits-on-archive")["base"]["digest"] == digest
