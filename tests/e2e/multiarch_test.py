"""An arm64 image built on this machine without emulation (`platforms=["linux/arm64"]`), then run under Debian's
qemu-aarch64-static (binfmt_misc is not mounted here, so qemu is the container's entrypoint) and asked over each
interface by the real clients; its bytecode, compiled by the build machine's twin interpreter, is what the arm64
interpreter itself writes. The image index of both platforms lists those very images, is the same in another clone,
and reaches a registry whose clients pick either platform from it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tarfile
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest
import tritonclient.grpc as triton
from conftest import PODMAN, RUN_FLAGS, Clone, free_port, modzy_run_json, run, wait_for

from omi_testutil.registry import registry  # noqa: F401 - pytest fixture

ARM64 = ("examples/digits", "digits-arm64")
AMD64 = ("examples/digits", "digits")
BOTH = ("examples/digits", "digits-multiarch")
QEMU = "/usr/bin/qemu-aarch64-static"
ZERO = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
        0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
# Run inside the arm64 image: compile sources of the image again with its own interpreter, as the build's bytecode
# step does (`omi_plugin/bytecode/compile_layer.py`), and name every file whose bytes differ from the image's.
_RECOMPILE = r"""
import compileall, filecmp, os, py_compile, shutil, sys
roots = sys.argv[1:]
differ, compared = [], 0
for root in roots:
    copy = "/tmp/src" + root
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir("/tmp/src", stripdir="/tmp/src", prependdir="/", quiet=2, workers=1,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    for directory, _, files in os.walk(copy):
        for name in files:
            if name.endswith(".pyc"):
                mine = os.path.join(directory, name)
                theirs = mine[len("/tmp/src"):]
                compared += 1
                if not os.path.exists(theirs) or not filecmp.cmp(mine, theirs, shallow=False):
                    differ.append(theirs)
    shutil.rmtree("/tmp/src")
print(compared, differ)
"""


def _image(layout: Path) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    return manifest, config


@pytest.fixture(scope="module")
def arm64_image(packaged_clone: Clone) -> Iterator[str]:
    if not Path(QEMU).exists():
        pytest.fail(f"{QEMU} is missing: run tests/install-system-deps.sh")
    record = packaged_clone.record(*ARM64)
    name = f"localhost/omi-e2e-arm64:{record['tags'][0]}"
    run(["skopeo", "copy", "-q", f"oci:{packaged_clone.layout(*ARM64)}:{record['tags'][0]}",
         f"containers-storage:{name}"])
    try:
        yield name
    finally:
        subprocess.run(["podman", "rmi", "-f", name], capture_output=True)


def _qemu_argv(image: str, command: List[str], env: Dict[str, Any], detach: bool, name: str) -> List[str]:
    flags = [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]
    return [*PODMAN, "run", *(["-d"] if detach else []), "--name", name, "--arch", "arm64", *RUN_FLAGS, *flags,
            "-v", f"{QEMU}:/qemu:ro", "--entrypoint", "/qemu", image, *command]


@contextlib.contextmanager
def _served(image: str, interface: str, protocol: str) -> Iterator[int]:
    """The arm64 image serving one interface under qemu, with the image's own command."""
    port, name = free_port(), f"omi-e2e-{uuid.uuid4().hex[:8]}"
    run(_qemu_argv(image, ["/usr/bin/python3.11", "-m", "omi_runtime"],
                   {"INTERFACE": interface, "PROTOCOL": protocol, "HTTP_PORT": port}, True, name))
    try:
        yield port
    finally:
        subprocess.run([*PODMAN, "stop", "-t", "10", name], capture_output=True)
        subprocess.run(["podman", "rm", "-f", name], capture_output=True)


def test_the_image_is_arm64_and_shares_the_model_layers_with_amd64(packaged_clone: Clone) -> None:
    (arm_manifest, arm_config), (amd_manifest, amd_config) = (_image(packaged_clone.layout(*t)) for t in (ARM64, AMD64))
    assert (arm_config["architecture"], arm_config["variant"], arm_config["os"]) == ("arm64", "v8", "linux")
    assert amd_config["architecture"] == "amd64" and "variant" not in amd_config
    assert arm_config["config"]["Entrypoint"] == amd_config["config"]["Entrypoint"]

    def layers(manifest: Dict[str, Any], config: Dict[str, Any]) -> Dict[str, str]:
        return {h["created_by"]: layer["digest"] for h, layer in zip(config["history"], manifest["layers"])}

    arm, amd = layers(arm_manifest, arm_config), layers(amd_manifest, amd_config)
    # The model and the first-party code are the same blobs on both platforms; the base and the dependencies are
    # each platform's own.
    for same in ("omi: model file model.joblib", "omi: model record omi-model.json", "omi: application code",
                 "omi: bytecode for application code"):
        assert arm[same] == amd[same], same
    assert arm["omi: third-party Python packages"] != amd["omi: third-party Python packages"]
    assert arm_manifest["layers"][0]["digest"] != amd_manifest["layers"][0]["digest"]
    assert "arm64" in arm_config["history"][0]["created_by"]


EM_X86_64, EM_AARCH64 = 62, 183  # ELF e_machine


def _elf_machines(layout: Path, manifest: Dict[str, Any], config: Dict[str, Any], wanted: Dict[str, str]) -> Dict[str, int]:
    """The ELF machine of each `wanted` file (path in the image -> the history note of the layer holding it)."""
    found: Dict[str, int] = {}
    for history, layer in zip(config["history"], manifest["layers"]):
        paths = [p for p, note in wanted.items() if note == history["created_by"]]
        if not paths:
            continue
        with tarfile.open(layout / "blobs/sha256" / layer["digest"][7:]) as tar:
            for member in tar:
                name = member.name.lstrip("./")
                for path in paths:
                    if name == path or (path.endswith("*") and name.startswith(path[:-1]) and name.endswith(".so")):
                        extracted = tar.extractfile(member)
                        assert extracted is not None, name
                        header = extracted.read(20)
                        assert header[:4] == b"\x7fELF", name
                        found.setdefault(path, int.from_bytes(header[18:20], "little"))
    return found


def test_each_platforms_binaries_are_its_own_and_an_arm64_modelcar_gets_an_arm64_shell(packaged_clone: Clone,
                                                                                       clone_factory) -> None:
    arm_manifest, arm_config = _image(packaged_clone.layout(*ARM64))
    amd_manifest, amd_config = _image(packaged_clone.layout(*AMD64))
    for (manifest, config, layout), machine in (((arm_manifest, arm_config, packaged_clone.layout(*ARM64)), EM_AARCH64),
                                                ((amd_manifest, amd_config, packaged_clone.layout(*AMD64)), EM_X86_64)):
        base, deps = config["history"][0]["created_by"], "omi: third-party Python packages"
        found = _elf_machines(layout, manifest, config, {"usr/bin/python3.11": base,
                                                         "opt/omi/site-packages/numpy/_core/_multiarray_umath*": deps})
        assert found == {"usr/bin/python3.11": machine, "opt/omi/site-packages/numpy/_core/_multiarray_umath*": machine}

    clone = clone_factory("clone-arm64-modelcar")
    clone.write("examples/digits/BUILD", (clone.root / "examples/digits/BUILD").read_text() + """
omi_model(name="digits-arm64-modelcar", model_files=["model.joblib"], platforms=["linux/arm64"], modelcar=True,
          repository="examples/digits-arm64-modelcar")
""")
    clone.pants("package", "examples/digits:digits-arm64-modelcar")
    layout = clone.layout("examples/digits", "digits-arm64-modelcar")
    manifest, config = _image(layout)
    note = next(h["created_by"] for h in config["history"] if "ModelCar" in h["created_by"])
    assert _elf_machines(layout, manifest, config, {"usr/bin/busybox": note}) == {"usr/bin/busybox": EM_AARCH64}
    # The busybox runs there: KServe's sidecar command, under qemu.
    tag = clone.record("examples/digits", "digits-arm64-modelcar")["tags"][0]
    image = f"localhost/omi-e2e-arm64-modelcar:{tag}"
    run(["skopeo", "copy", "-q", f"oci:{layout}:{tag}", f"containers-storage:{image}"])
    try:
        listed = run([*PODMAN, "run", "--arch", "arm64", *RUN_FLAGS, "-v", f"{QEMU}:/qemu:ro",
                      "--entrypoint", "/qemu", image, "/usr/bin/sh", "-c", "ls /models"]).stdout.split()
        assert listed == ["digits", "model.joblib"], listed
    finally:
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True)


def test_arm64_image_answers_each_interface_under_qemu(arm64_image: str) -> None:
    with _served(arm64_image, "kfserving", "v1") as port:
        def predict() -> Any:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/digits:predict",
                                             data=json.dumps({"instances": [ZERO]}).encode(), method="POST")
            return json.loads(urllib.request.urlopen(request, timeout=10).read())

        assert wait_for(predict, timeout=120) == {"predictions": [0]}
    with _served(arm64_image, "kserve", "v2") as port:
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        wait_for(lambda: client.is_model_ready("digits"), timeout=120)
        tensor = triton.InferInput("input-0", [2, 64], "FP32")
        tensor.set_data_from_numpy(np.array([ZERO, ZERO], dtype=np.float32))
        assert client.infer("digits", [tensor]).as_numpy("predict").tolist() == [0, 0]
    with _served(arm64_image, "modzy", "v2") as port:
        status, results = modzy_run_json(port, [ZERO])
        assert status.status_code == 200 and results["predict"] == [0]


def test_the_twin_wrote_the_bytecode_the_arm64_interpreter_writes(arm64_image: str) -> None:
    name = f"omi-e2e-{uuid.uuid4().hex[:8]}"
    roots = ["/usr/lib/python3.11/json", "/usr/lib/python3.11/asyncio", "/opt/omi/site-packages/numpy/_core",
             "/opt/omi/site-packages/sklearn/linear_model"]
    done = run(_qemu_argv(arm64_image, ["/usr/bin/python3.11", "-c", _RECOMPILE, *roots], {}, False, name),
               timeout=600)
    subprocess.run(["podman", "rm", "-f", name], capture_output=True)
    compared, differ = done.stdout.strip().split(" ", 1)
    assert int(compared) > 100 and differ == "[]", done.stdout[-2000:]


def _blob(layout: Path, digest: str) -> Dict[str, Any]:
    return json.loads((layout / "blobs/sha256" / digest[7:]).read_text())


def test_the_index_lists_the_one_platform_images_byte_for_byte(packaged_clone: Clone) -> None:
    record, layout = packaged_clone.record(*BOTH), packaged_clone.layout(*BOTH)
    entries = json.loads((layout / "index.json").read_text())["manifests"]
    assert [(e["digest"], e["mediaType"], e["annotations"]["org.opencontainers.image.ref.name"]) for e in entries] == [
        (record["image_digest"], "application/vnd.oci.image.index.v1+json", record["tags"][0])]
    index = _blob(layout, record["image_digest"])
    one_platform = {"linux/amd64": packaged_clone.record(*AMD64)["image_digest"],
                    "linux/arm64": packaged_clone.record(*ARM64)["image_digest"]}
    assert [(m["digest"], m["platform"]) for m in index["manifests"]] == [
        (one_platform["linux/amd64"], {"architecture": "amd64", "os": "linux"}),
        (one_platform["linux/arm64"], {"architecture": "arm64", "os": "linux", "variant": "v8"})]
    assert {p["platform"]: p["image_digest"] for p in record["platform_images"]} == one_platform
    # One model artifact for both: the index and each image name it as their subject.
    assert index["subject"]["digest"] == record["model_digest"]
    assert all(_blob(layout, d)["subject"]["digest"] == record["model_digest"] for d in one_platform.values())
    assert index["annotations"]["dev.omi.model.run-id"] == record["model"]["run_id"]
    # Each platform's SBOM lists that platform's Debian packages.
    sboms = {p["platform"]: json.loads((packaged_clone.root / "dist" / p["sbom"]).read_text())
             for p in record["platform_images"]}
    for platform, document in sboms.items():
        arch, other = platform.split("/")[1], "amd64" if platform == "linux/arm64" else "arm64"
        debs = [r["referenceLocator"] for p in document["packages"] for r in p.get("externalRefs", [])
                if r["referenceLocator"].startswith("pkg:deb/")]
        assert any(f"arch={arch}&" in d for d in debs) and not any(f"arch={other}&" in d for d in debs), platform


def test_the_index_is_the_same_in_another_clone_built_cold(packaged_clone: Clone, clone_factory) -> None:
    other = clone_factory("clone-multiarch")
    other.pants("--no-local-cache", "package", ":".join(BOTH), umask=0o077, env={"TZ": "Asia/Kathmandu"})
    assert other.record(*BOTH)["image_digest"] == packaged_clone.record(*BOTH)["image_digest"]


def test_published_index_gives_each_platform_its_image(packaged_clone: Clone, registry, tmp_path) -> None:  # noqa: F811
    record = packaged_clone.record(*BOTH)
    out = tmp_path / "published.json"
    result = packaged_clone.pants("publish", ":".join(BOTH), f"--publish-output={out}", env={
        "PANTS_OMI_REGISTRIES": repr({"local": {"address": registry.host, "default": True}})})
    published = json.loads(out.read_text())
    assert published[0]["published"] is True and published[0]["image_digest"] == record["image_digest"], \
        result.output[-3000:]
    ref = f"{registry.host}/examples/digits-multiarch:{record['tags'][0]}"
    platforms = {p["platform"]: p for p in record["platform_images"]}
    raw = run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"]).stdout
    assert json.loads(raw)["mediaType"] == "application/vnd.oci.image.index.v1+json"
    for arch in ("amd64", "arm64"):
        inspected = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "--override-arch", arch,
                                    f"docker://{ref}"]).stdout)
        manifest = _blob(packaged_clone.layout(*BOTH), platforms[f"linux/{arch}"]["image_digest"])
        assert inspected["Architecture"] == arch
        assert inspected["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    name = f"{ref}-pulled"
    try:
        run([*PODMAN, "pull", "-q", "--tls-verify=false", "--arch", "arm64", ref])
        image = json.loads(run([*PODMAN, "image", "inspect", ref]).stdout)[0]
        assert image["Architecture"] == "arm64"
        assert f"sha256:{image['Id']}" == platforms["linux/arm64"]["config_digest"]
    finally:
        subprocess.run([*PODMAN, "rmi", "-f", ref, name], capture_output=True)
    # The model artifact's referrers list the index and both images; the index's, its own provenance.
    model_referrers = _registry_json(registry.host, f"manifests/sha256-{record['model_digest'][7:]}")["manifests"]
    assert {record["image_digest"], *(p["image_digest"] for p in platforms.values())} <= {
        m["digest"] for m in model_referrers}
    index_referrers = _registry_json(registry.host, f"manifests/sha256-{record['image_digest'][7:]}")["manifests"]
    assert [m["artifactType"] for m in index_referrers] == ["application/vnd.in-toto+json"]
    statement_manifest = _registry_json(registry.host, f"manifests/{index_referrers[0]['digest']}")
    statement = _registry_json(registry.host, f"blobs/{statement_manifest['layers'][0]['digest']}")
    assert {f"sha256:{s['digest']['sha256']}" for s in statement["subject"]} == {
        record["image_digest"], record["model_digest"], *(p["image_digest"] for p in platforms.values())}


def _registry_json(host: str, path: str) -> Dict[str, Any]:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    request = urllib.request.Request(f"http://{host}/v2/examples/digits-multiarch/{path}", headers={"Accept": accept})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())
