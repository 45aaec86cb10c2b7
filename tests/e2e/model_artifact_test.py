"""Models others pushed to a registry, served by omi images: a ModelPack artifact pushed by `modelpack-client` and an
omlmd artifact pushed by `omlmd` (independent clients) on a loopback Distribution registry are each the model of an
omi_model target (`model_artifact`), packaged, checked, served under podman, and published so that the artifact's
referrers list the image; a download the registry keeps dropping fails the build in one line, and the next build,
with the registry back, gives the same image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from conftest import Clone, Container, free_port, pulled_image, run, wait_for
from signing_test import model_signing_cli  # noqa: F401 - pytest fixture

from omi_testutil.registry import RunningRegistry, proxy_factory, start_registry, stop_registry  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples/digits"
DIGITS_ONNX = REPO / "examples/digits_onnx"


def _push_modelpack(host: str, tmp: Path) -> str:
    config = tmp / "modelpack-config.json"
    config.write_text(json.dumps({"descriptor": {"name": "digits", "version": "1.0.0"},
                                  "config": {"format": "joblib"},
                                  "modelfs": {"type": "layers", "diffIds": []}}))
    done = run([sys.executable, "-m", "modelpack_client", "--insecure", "push", f"{host}/models/digits:v1",
                "--config", str(config), "--layer", f"{DIGITS / 'model.joblib'}:application/vnd.cncf.model.weight.v1.raw"])
    return str(json.loads(done.stdout)["digest"])


def _push_omlmd(host: str, tmp: Path) -> str:
    from omlmd.helpers import Helper
    from omlmd.provider import OMLMDRegistry

    work = tmp / "omlmd"
    work.mkdir()
    (work / "model.onnx").write_bytes((DIGITS_ONNX / "model.onnx").read_bytes())
    before = os.getcwd()
    os.chdir(work)  # oras pushes files below the working directory only
    try:
        Helper(OMLMDRegistry(insecure=True)).push(f"{host}/models/digits-onnx:v1", "model.onnx",
                                                   name="digits-onnx", model_format_name="onnx")
    finally:
        os.chdir(before)
    request = urllib.request.Request(f"http://{host}/v2/models/digits-onnx/manifests/v1", method="HEAD",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request) as response:
        return str(response.headers["Docker-Content-Digest"])


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[RunningRegistry, str, str]]:
    """The registry, and the digests of the two artifacts as their own clients pushed them."""
    tmp = tmp_path_factory.mktemp("artifacts")
    running = start_registry(str(tmp / "registry"))
    try:
        yield running, _push_modelpack(running.host, tmp), _push_omlmd(running.host, tmp)
    finally:
        stop_registry(running)


def _write_targets(clone: Clone, host: str, modelpack_digest: str, omlmd_digest: str) -> None:
    """Two omi_models whose files come from the artifacts; model.yaml is the examples' own (it names the files by
    their paths in the artifacts, which are the same)."""
    # Uncompressed model layers: the weights' raw layer is downloaded straight into the image's layer, the only copy.
    clone.write("served/digits/BUILD", f'omi_model(name="digits", repository="models/digits", model_compression="none",'
                                       f'\n          model_artifact="{host}/models/digits@{modelpack_digest}")\n')
    clone.write("served/digits/model.yaml", (DIGITS / "model.yaml").read_text())
    clone.write("served/digits_onnx/BUILD", f'omi_model(name="digits-onnx", repository="served/digits-onnx",\n'
                                            f'          model_artifact="{host}/models/digits-onnx@{omlmd_digest}")\n')
    clone.write("served/digits_onnx/model.yaml", (DIGITS_ONNX / "model.yaml").read_text())


def _manifest(host: str, repository: str, reference: str) -> Dict[str, Any]:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    request = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{reference}", headers={"Accept": accept})
    with urllib.request.urlopen(request) as response:
        return dict(json.loads(response.read()))


def _referrers(host: str, repository: str, digest: str) -> List[str]:
    """The subject's referrers, by the OCI 1.1 tag schema (Distribution 2.8 has no referrers API)."""
    return [m["digest"] for m in _manifest(host, repository, f"sha256-{digest.split(':')[1]}")["manifests"]]


@pytest.fixture(scope="module")
def packaged(clone_factory, pushed, tmp_path_factory: pytest.TempPathFactory) -> Tuple[Clone, Dict[str, str]]:
    registry, modelpack_digest, omlmd_digest = pushed
    clone = clone_factory("clone-artifacts", pantsd=True)
    _write_targets(clone, registry.host, modelpack_digest, omlmd_digest)
    env = {"PANTS_OMI_BLOB_STORE": str(tmp_path_factory.mktemp("blob-store"))}
    clone.pants("package", "served::", env=env)
    return clone, env


def test_the_image_names_the_artifact_as_its_subject(packaged, pushed) -> None:
    clone, env = packaged
    registry, modelpack_digest, omlmd_digest = pushed
    for target, digest, repository in ((("served/digits", "digits")), modelpack_digest, "models/digits"), \
            ((("served/digits_onnx", "digits-onnx")), omlmd_digest, "models/digits-onnx"):
        record = clone.record(*target)
        assert record["model_digest"] == digest
        assert record["model_artifact"] == f"{registry.host}/{repository}@{digest}"
        layout = clone.layout(*target)
        index = json.loads((layout / "index.json").read_text())
        image = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
        assert image["subject"]["digest"] == digest
        # The model artifact beside the image is the pushed artifact itself, byte for byte.
        copy = layout.parent / f"{target[1]}.modelpack.oci"
        pushed_manifest = _manifest(registry.host, repository, digest)
        assert json.loads((copy / "blobs/sha256" / digest[7:]).read_bytes()) == pushed_manifest
        assert image["subject"]["artifactType"] == (pushed_manifest.get("artifactType")
                                                    or pushed_manifest["config"]["mediaType"])
        # The provenance names the artifact as a material, and each model file by the artifact and its path.
        attestations = clone.root / "dist" / record["attestations"]["layout"]
        statement_manifest = json.loads((attestations / "blobs/sha256" /
                                         record["attestations"]["provenance_digests"][0][7:]).read_text())
        statement = json.loads((attestations / "blobs/sha256" /
                                statement_manifest["layers"][0]["digest"][7:]).read_text())
        materials = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        assert {"name": "model artifact", "uri": record["model_artifact"],
                "digest": {"sha256": digest[7:]}} in materials
        assert any(m["uri"].startswith(record["model_artifact"] + "#") for m in materials if m["name"] == "model file")
        # Someone else's artifact is an input of this build, not one of its products: only the image is a subject.
        assert [s["digest"]["sha256"] for s in statement["subject"]] == [record["image_digest"][7:]]
        assert len(record["attestations"]["provenance_digests"]) == 1
    # The weights of the uncompressed digits image were written once, as the image's model layer: the raw layer is no
    # blob of the store, and the copy of the artifact leaves it to the registry.
    store = Path(env["PANTS_OMI_BLOB_STORE"])
    copy = clone.layout("served/digits", "digits").parent / "digits.modelpack.oci"
    weights = json.loads((copy / "blobs/sha256" / modelpack_digest[7:]).read_text())["layers"][0]
    assert not (copy / "blobs/sha256" / weights["digest"][7:]).exists()
    assert not (store / "blobs/sha256" / weights["digest"][7:]).exists()
    model_layers = [layer for layer in json.loads((clone.layout("served/digits", "digits") / "blobs/sha256" / json.loads(
        (clone.layout("served/digits", "digits") / "index.json").read_text())["manifests"][0]["digest"][7:]).read_text()
    )["layers"] if layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"]
    assert any(layer["size"] > weights["size"] for layer in model_layers)


def test_pants_check_is_green(packaged) -> None:
    clone, env = packaged
    result = clone.pants("check", "served::", env=env)
    assert "omi check: OK" in result.output, result.output[-3000:]


def test_served_under_podman(packaged) -> None:
    clone, _ = packaged
    for target, name, expected in ((("served/digits", "digits")), "digits", [0, 1]), \
            ((("served/digits_onnx", "digits-onnx")), "digits-onnx", [0, 1]):
        import yaml

        sample = yaml.safe_load((clone.root / target[0] / "model.yaml").read_text())["samples"][0]
        with pulled_image(clone.layout(*target)) as image:
            port = free_port()
            container = Container(image, {"INTERFACE": "kfserving", "PROTOCOL": "v1", "HTTP_PORT": port})
            try:
                def predict() -> Any:
                    body = json.dumps({"instances": sample["inputs"]["input-0"]}).encode()
                    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{name}:predict", body,
                                                     headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=10) as response:
                        return json.loads(response.read())["predictions"]
                answer = wait_for(predict, timeout=90)
                got = [row if isinstance(row, int) else row.get("predict") for row in answer]
                assert got == expected, (answer, container.logs()[-2000:])
            finally:
                container.stop()


def test_published_the_image_is_a_referrer_of_the_artifact(packaged, pushed, tmp_path: Path) -> None:
    clone, env = packaged
    registry, modelpack_digest, omlmd_digest = pushed
    clone.pants("publish", "served::", env={
        **env, "PANTS_OMI_REGISTRIES": repr({"local": {"address": registry.host, "default": True}})})
    # Into the artifact's own repository: the artifact's referrers list the image.
    digits = clone.record("served/digits", "digits")
    assert digits["image_digest"] in _referrers(registry.host, "models/digits", modelpack_digest)
    # Into another repository: the artifact is copied there first (a cross-repository mount), so the image's subject
    # resolves where the image is.
    onnx = clone.record("served/digits_onnx", "digits-onnx")
    assert _manifest(registry.host, "served/digits-onnx", omlmd_digest)["layers"]
    assert onnx["image_digest"] in _referrers(registry.host, "served/digits-onnx", omlmd_digest)
    # Into another registry: the artifact is uploaded, its raw weights layer (left out of the copy in dist/) sent from
    # the image layer that holds the file; the registry checks every digest.
    other = start_registry(str(tmp_path / "other-registry"))
    try:
        clone.pants("publish", "served/digits:digits", env={
            **env, "PANTS_OMI_REGISTRIES": repr({"other": {"address": other.host, "default": True}})})
        copied = _manifest(other.host, "models/digits", modelpack_digest)
        weights = copied["layers"][0]
        assert os.path.getsize(other.blob_data_path(weights["digest"])) == weights["size"]
        assert digits["image_digest"] in _referrers(other.host, "models/digits", modelpack_digest)
    finally:
        stop_registry(other)


def test_a_dropped_download_fails_in_one_line_and_the_next_build_gives_the_same_image(
        clone_factory, pushed, packaged, proxy_factory, tmp_path: Path) -> None:  # noqa: F811
    registry, modelpack_digest, omlmd_digest = pushed
    proxy = proxy_factory(registry)
    proxy.rule = lambda method, path: "reset" if method == "GET" and "/blobs/" in path else None
    clone = clone_factory("clone-artifacts-faults")
    _write_targets(clone, proxy.host, modelpack_digest, omlmd_digest)
    env = {"PANTS_OMI_BLOB_STORE": str(tmp_path / "blob-store")}
    failed = clone.pants("package", "served/digits:digits", env=env, check=False)
    assert failed.returncode != 0
    line = next(l for l in failed.output.splitlines() if "served/digits:digits: model_artifact:" in l)
    assert f"{proxy.host}/models/digits" in line and "connection reset" in line and "Traceback" not in failed.output
    assert not (clone.root / "dist/served.digits/digits.oci").exists()

    proxy.rule = None
    clone.pants("package", "served/digits:digits", env=env)
    first, _ = packaged
    assert clone.record("served/digits", "digits")["image_digest"] == first.record("served/digits",
                                                                                   "digits")["image_digest"]

    # A file model.yaml names that the artifact does not hold: one line naming it and what the artifact holds.
    clone.write("served/missing/BUILD", f'omi_model(name="missing", model_artifact="{registry.host}/models/digits@'
                                        f'{modelpack_digest}")\n')
    clone.write("served/missing/model.yaml", (DIGITS / "model.yaml").read_text().replace(
        "files: [model.joblib]", "files: [weights.joblib]"))
    missing = clone.pants("package", "served/missing:missing", env=env, check=False)
    assert missing.returncode != 0 and "Traceback" not in missing.output
    assert (f"served/missing:missing: served/missing/model.yaml: files[0]: 'weights.joblib' is not in the model "
            f"artifact {registry.host}/models/digits@{modelpack_digest} (it holds model.joblib; name a path the "
            "artifact holds)") in missing.output


def test_signed_the_artifact_files_verify_with_model_signing_as_a_client_pulls_them(
        packaged, pushed, model_signing_cli, tmp_path: Path) -> None:  # noqa: F811
    clone, env = packaged
    registry, modelpack_digest, _ = pushed
    keys = clone.root / "keys"
    keys.mkdir(exist_ok=True)
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(keys / "signing.pem")])
    run(["openssl", "ec", "-in", str(keys / "signing.pem"), "-pubout", "-out", str(keys / "signing.pub.pem")])
    signed = {**env, "PANTS_OMI_SIGNING_KEY": str(keys / "signing.pem"), "PANTS_OMI_VERIFY_KEY": "keys/signing.pub.pem"}
    clone.pants("package", "served/digits:digits", env=signed)
    checked = clone.pants("check", "served/digits:digits", env=signed)
    assert "omi check: OK" in checked.output, checked.output[-3000:]
    record = clone.record("served/digits", "digits")
    # The model files are signed as the artifact holds them, and the signature refers to the artifact itself.
    attestations = clone.root / "dist" / record["attestations"]["layout"]
    index = json.loads((attestations / "index.json").read_text())
    referrers = [json.loads((attestations / "blobs/sha256" / m["digest"][7:]).read_text()) for m in index["manifests"]]
    subjects = [r["subject"]["digest"] for r in referrers if (r.get("annotations") or {}).get(
        "dev.sigstore.bundle.predicateType") == "https://model_signing/signature/v1.0"]
    assert subjects == [modelpack_digest]
    pulled = tmp_path / "pulled"
    run([sys.executable, "-m", "modelpack_client", "--insecure", "pull", f"{registry.host}/models/digits@{modelpack_digest}",
         str(pulled)])
    verify = [model_signing_cli, "verify", "key", "--signature", str(clone.root / "dist" /
              record["attestations"]["model_signature"]), "--public_key", str(keys / "signing.pub.pem"), str(pulled)]
    accepted = subprocess.run(verify, capture_output=True, text=True)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
