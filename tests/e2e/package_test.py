"""`pants package` of the examples: layouts that independent OCI tools accept, and reproducible digests."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import tarfile

from conftest import Clone, pulled_image, run

DIGITS = ("examples/digits", "digits")
DIGITS_ONNX = ("examples/digits_onnx", "digits-onnx")
DIGITS_XGBOOST = ("examples/digits_xgboost", "digits-xgboost")
DIGITS_LIGHTGBM = ("examples/digits_lightgbm", "digits-lightgbm")
DIGITS_MLFLOW = ("examples/digits_mlflow", "digits-mlflow")


def test_layout_and_record(packaged_clone: Clone) -> None:
    record = packaged_clone.record(*DIGITS)
    assert record["image_digest"].startswith("sha256:") and record["model_digest"].startswith("sha256:")
    assert record["tags"][0] == "digits-lr-20261123-d227f2f2"
    assert record["repository"] == "examples/digits"
    assert record["interfaces"] == ["kfserving.v1", "kfserving.v2", "modzy.v2"]
    layout = packaged_clone.layout(*DIGITS)
    index = json.loads((layout / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [record["image_digest"]]
    assert (layout / "blobs" / "sha256" / record["image_digest"].split(":")[1]).exists()


def _site_packages(clone: Clone, target: tuple) -> set:
    """Top-level names under /opt/omi/site-packages in an image's third-party layer."""
    record = clone.record(*target)
    layer = next(layer for layer in record["layers"] if layer["created_by"] == "omi: third-party Python packages")
    with tarfile.open(clone.layout(*target) / "blobs" / "sha256" / layer["digest"].split(":")[1]) as tar:
        return {name.split("/")[3] for name in tar.getnames() if name.count("/") >= 3}


def test_each_image_carries_only_its_formats_libraries(packaged_clone: Clone) -> None:
    sklearn_image, onnx_image = _site_packages(packaged_clone, DIGITS), _site_packages(packaged_clone, DIGITS_ONNX)
    assert {"sklearn", "scipy", "joblib", "grpc", "numpy"} <= sklearn_image
    assert not {"onnxruntime", "sympy"} & sklearn_image
    assert {"onnxruntime", "grpc", "numpy"} <= onnx_image
    assert not {"sklearn", "scipy", "joblib"} & onnx_image
    xgboost_image = _site_packages(packaged_clone, DIGITS_XGBOOST)
    lightgbm_image = _site_packages(packaged_clone, DIGITS_LIGHTGBM)
    assert {"xgboost", "scipy", "grpc", "numpy"} <= xgboost_image
    assert not {"sklearn", "onnxruntime", "lightgbm", "nvidia"} & xgboost_image
    assert {"lightgbm", "scipy", "grpc", "numpy"} <= lightgbm_image
    assert not {"sklearn", "onnxruntime", "xgboost"} & lightgbm_image
    mlflow_image = _site_packages(packaged_clone, DIGITS_MLFLOW)
    assert {"mlflow", "pandas", "sklearn", "cloudpickle", "grpc", "numpy"} <= mlflow_image
    assert not {"onnxruntime", "xgboost", "lightgbm"} & mlflow_image


def test_package_prints_the_digest(packaged_clone: Clone) -> None:
    result = packaged_clone.pants("package", "examples/digits:digits")
    assert packaged_clone.record(*DIGITS)["image_digest"] in result.output


def test_skopeo_and_umoci_accept_the_layout(packaged_clone: Clone, tmp_path) -> None:
    layout = packaged_clone.layout(*DIGITS)
    record = packaged_clone.record(*DIGITS)
    inspect = json.loads(run(["skopeo", "inspect", f"oci:{layout}:{record['tags'][0]}"]).stdout)
    assert inspect["Digest"] == record["image_digest"]
    assert json.loads(inspect["Labels"]["ml.openmodel.interfaces"]) == record["interfaces"]
    bundle = tmp_path / "bundle"
    run(["umoci", "unpack", "--rootless", "--image", f"{layout}:{record['tags'][0]}", str(bundle)])
    rootfs = bundle / "rootfs"
    assert (rootfs / "models/digits/model.joblib").stat().st_size > 0
    assert (rootfs / "models/digits/omi-model.json").exists()
    assert (rootfs / "opt/omi/app/omi_runtime/__main__.py").exists()
    assert (rootfs / "usr/bin/python3.11").exists()


def test_podman_loads_the_layout(packaged_clone: Clone) -> None:
    layout = packaged_clone.layout(*DIGITS)
    record = packaged_clone.record(*DIGITS)
    with pulled_image(layout) as image_id:
        digest = run(["podman", "image", "inspect", "--format", "{{.Digest}}", image_id]).stdout.strip()
    assert digest == record["image_digest"]


def test_model_artifact_shares_model_blobs(packaged_clone: Clone) -> None:
    record = packaged_clone.record(*DIGITS)
    root = packaged_clone.root / "dist"
    image_layers = {l["digest"] for l in record["layers"]}
    mp = root / record["modelpack_layout"]
    manifest = json.loads((mp / "blobs/sha256" / record["model_digest"].split(":")[1]).read_text())
    assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert {l["digest"] for l in manifest["layers"]} <= image_layers
    model_layer = next(l for l in manifest["layers"] if l["mediaType"].startswith("application/vnd.cncf.model.weight.v1"))
    with tarfile.open(mp / "blobs/sha256" / model_layer["digest"].split(":")[1]) as tar:
        assert "models/digits/model.joblib" in tar.getnames()
    # Shared on disk too: both layouts' blobs are relative links to one file under dist/omi-blobs, and every blob of
    # the ModelPack layout, links followed, holds the bytes its name promises.
    image_blobs = packaged_clone.layout(*DIGITS) / "blobs/sha256"
    for layer in manifest["layers"]:
        blob = mp / "blobs/sha256" / layer["digest"].split(":")[1]
        assert blob.is_symlink() and not os.path.isabs(os.readlink(blob))
        assert blob.resolve() == (image_blobs / blob.name).resolve() == (root / "omi-blobs/sha256" / blob.name)
    for blob in (mp / "blobs/sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_images_that_share_layers_share_their_files_in_dist(packaged_clone: Clone) -> None:
    """`pants package examples::` writes the base and runtime layers every example shares once."""
    root = packaged_clone.root / "dist"
    records = [json.loads(p.read_text()) for p in sorted(root.glob("*/*.omi.json"))]
    # The amd64 base, which most examples share (`digits-arm64` has its platform's own).
    base = collections.Counter(r["layers"][0]["digest"] for r in records).most_common(1)[0][0]
    sharing = [r for r in records if r["layers"][0]["digest"] == base]
    assert len(sharing) >= 3
    files = {(root / r["layout"] / "blobs/sha256" / base.split(":")[1]).resolve() for r in sharing}
    assert files == {root / "omi-blobs/sha256" / base.split(":")[1]}
    # Each distinct layer is one file, however many images hold it.
    distinct = {layer["digest"]: layer["size"] for r in records for layer in r["layers"]}
    on_disk = {f.name: f.stat().st_size for f in (root / "omi-blobs/sha256").iterdir()}
    assert all(on_disk[d.split(":")[1]] == size for d, size in distinct.items())
    assert sum(distinct.values()) < sum(layer["size"] for r in records for layer in r["layers"])


def test_same_digest_in_another_clone_with_other_umask_tz_and_no_cache(packaged_clone: Clone, clone_factory) -> None:
    other = clone_factory("clone-b-at-another-path")
    other.pants("--no-local-cache", "package", "examples/digits:digits", umask=0o077,
                env={"TZ": "Pacific/Kiritimati", "LANG": "C", "SOURCE_DATE_EPOCH": "1234567890"})
    assert other.record(*DIGITS)["image_digest"] == packaged_clone.record(*DIGITS)["image_digest"]
    assert other.record(*DIGITS)["model_digest"] == packaged_clone.record(*DIGITS)["model_digest"]


def test_changing_only_the_model_changes_only_its_layer(packaged_clone: Clone, clone_factory) -> None:
    other = clone_factory("clone-c-retrained")
    model = other.root / "examples/digits/model.joblib"
    model.write_bytes(model.read_bytes() + b"\0retrained")
    other.pants("package", "examples/digits:digits")
    before, after = packaged_clone.record(*DIGITS), other.record(*DIGITS)
    assert before["image_digest"] != after["image_digest"]
    changed = [(a["created_by"], b["created_by"]) for a, b in zip(before["layers"], after["layers"])
               if a["digest"] != b["digest"]]
    assert changed == [("omi: model file model.joblib", "omi: model file model.joblib")]


def test_stamping_writes_the_git_commit_as_revision(clone_factory) -> None:
    clone = clone_factory("clone-stamp")
    unstamped = clone.pants("--omi-stamp-vcs-revision", "package", "examples/digits:digits", check=False)
    assert unstamped.returncode != 0
    assert "examples/digits:digits: [omi].stamp_vcs_revision: the repository is not a git worktree" in unstamped.output
    for argv in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x"]):
        run(["git", *argv], cwd=clone.root)
    commit = run(["git", "rev-parse", "HEAD"], cwd=clone.root).stdout.strip()
    clone.pants("--omi-stamp-vcs-revision", "package", "examples/digits:digits")
    layout = clone.layout(*DIGITS)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    assert manifest["annotations"]["org.opencontainers.image.revision"] == commit
    assert manifest["annotations"]["dev.omi.model.run-id"] == clone.record(*DIGITS)["tags"][0]
    clone.write("examples/digits/NOTES.txt", "not committed\n")
    dirty = clone.pants("--omi-stamp-vcs-revision", "package", "examples/digits:digits", check=False)
    assert dirty.returncode != 0
    assert ("examples/digits:digits: [omi].stamp_vcs_revision: the worktree has uncommitted changes "
            "(examples/digits/NOTES.txt; commit them, or turn stamping off)") in dirty.output

