"""Compressed layers end to end: gzip images pushed, pulled by podman and copied by skopeo keep their digest; zstd
images pass `pants check` (diff ids verified by decompressing, live smoke test) and a target can keep its model layer
uncompressed; a bad setting is one clear line."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

from conftest import Clone, run

from omi_testutil.registry import registry  # noqa: F401 - pytest fixture

DIGITS = ("examples/digits", "digits")
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def _manifest(layout, record) -> dict:
    return json.loads((layout / "blobs/sha256" / record["image_digest"].split(":")[1]).read_text())


def test_gzip_image_keeps_its_digest_through_push_pull_and_copy(packaged_clone: Clone, registry, tmp_path) -> None:  # noqa: F811
    record = packaged_clone.record(*DIGITS)
    manifest = _manifest(packaged_clone.layout(*DIGITS), record)
    assert {layer["mediaType"] for layer in manifest["layers"]} == {GZIP}
    packaged_clone.pants("publish", "examples/digits:digits",
                         env={"PANTS_OMI_REGISTRIES": repr({"local": {"address": registry.host, "default": True}})})
    ref = f"{registry.host}/examples/digits:{record['tags'][0]}"

    # podman (containers/image, Go's gzip reader) pulls it: every layer decompresses to its diff id, or it fails.
    runroot = tempfile.mkdtemp(prefix="omi-", dir="/tmp")  # podman refuses a runroot path over 50 characters
    podman = ["podman", "--root", str(tmp_path / "podman"), "--runroot", runroot]
    try:
        run([*podman, "pull", "-q", "--tls-verify=false", ref])
        digest = run([*podman, "image", "inspect", "--format", "{{.Digest}}", ref]).stdout.strip()
        assert digest == record["image_digest"]
    finally:
        subprocess.run([*podman, "system", "reset", "--force"], capture_output=True)
        shutil.rmtree(runroot, ignore_errors=True)

    # skopeo re-compresses on copy unless told not to; with --preserve-digests the copy is the same image.
    run(["skopeo", "copy", "--quiet", "--preserve-digests", "--src-tls-verify=false", f"docker://{ref}",
         f"oci:{tmp_path / 'copy'}:{record['tags'][0]}"])
    index = json.loads((tmp_path / "copy/index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [record["image_digest"]]


def test_zstd_layers_pass_check_and_a_target_keeps_its_model_uncompressed(clone_factory) -> None:
    clone = clone_factory("zstd-layers")
    build = clone.root / "examples/digits/BUILD"
    build.write_text(build.read_text().replace('omi_model(\n', 'omi_model(\n    model_compression="none",\n', 1))
    flags = ("--omi-layer-compression=zstd",)
    clone.pants(*flags, "package", "examples/digits:digits")
    record = clone.record(*DIGITS)
    types = {layer["created_by"]: layer["media_type"] for layer in record["layers"]}
    assert types.pop("omi: model file model.joblib") == "application/vnd.oci.image.layer.v1.tar"
    assert types.pop("omi: model record omi-model.json") == "application/vnd.oci.image.layer.v1.tar"
    assert set(types.values()) == {ZSTD}
    modelpack = clone.root / "dist/examples.digits/digits.modelpack.oci"
    mp_manifest = json.loads((modelpack / "blobs/sha256" / record["model_digest"].split(":")[1]).read_text())
    assert [layer["mediaType"] for layer in mp_manifest["layers"]] == [
        "application/vnd.cncf.model.weight.v1.tar", "application/vnd.cncf.model.weight.config.v1.tar"]

    # The static pass decompresses every zstd layer to verify its diff id; the smoke test runs the image.
    checked = clone.pants(*flags, "check", "examples/digits:digits")
    assert "omi succeeded" in checked.output, checked.output[-3000:]


def test_a_bad_compression_setting_is_one_clear_line(packaged_clone: Clone) -> None:
    result = packaged_clone.pants("--omi-layer-compression=xz", "package", "examples/digits:digits", check=False)
    assert result.returncode != 0
    assert "examples/digits:digits: [omi].layer_compression = 'xz' is not one of none, gzip, zstd" in result.output
    assert "Traceback (most recent call last)" not in result.output
    result = packaged_clone.pants("--omi-compression-level=13", "package", "examples/digits:digits", check=False)
    assert "examples/digits:digits: [omi].compression_level: level 13 is outside gzip's range 1-12" in result.output
