"""The packaged image under podman: read-only root, non-root user, each OMI interface with a real client."""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from typing import Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from conftest import PODMAN, REPO, RUN_FLAGS, Clone, Container, container_gone, free_port, pulled_image, run, wait_for
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from omi_runtime.grpc_stubs import modzy_model_v2_pb2 as modzy_pb2
from omi_runtime.grpc_stubs import modzy_model_v2_pb2_grpc as modzy_grpc

ZERO = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
        0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]


@pytest.fixture(scope="module")
def image(packaged_clone: Clone) -> Iterator[str]:
    with pulled_image(packaged_clone.layout("examples/digits", "digits")) as image_id:
        yield image_id


def test_base_python_works_as_non_root(image: str) -> None:
    out = run([*PODMAN, "run", *RUN_FLAGS, "--entrypoint", "/usr/bin/python3.11", image, "-c",
               "import os, ssl, sqlite3, json; print(os.getuid(), ssl.OPENSSL_VERSION.split()[0])"]).stdout.split()
    assert out == ["65532", "OpenSSL"]


def test_kfserving_v1_rest(image: str) -> None:
    port = free_port()
    container = Container(image, {"INTERFACE": "kfserving", "PROTOCOL": "v1", "HTTP_PORT": port})
    try:
        def predict():
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/digits:predict",
                                             data=json.dumps({"instances": [ZERO]}).encode(), method="POST")
            return json.loads(urllib.request.urlopen(request, timeout=5).read())

        assert wait_for(predict) == {"predictions": [0]}
        models = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5).read())
        assert models == {"models": ["digits"]}
    finally:
        container.stop()


def test_kfserving_v2_grpc_with_triton_client(image: str) -> None:
    port = free_port()
    container = Container(image, {"INTERFACE": "kserve", "PROTOCOL": "v2", "HTTP_PORT": port})
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        wait_for(lambda: client.is_model_ready("digits"))
        tensor = triton.InferInput("input-0", [2, 64], "FP32")
        tensor.set_data_from_numpy(np.array([ZERO, ZERO], dtype=np.float32))
        result = client.infer("digits", [tensor], request_id="e2e-1")
        assert result.as_numpy("predict").tolist() == [0, 0]
        assert result.get_response().id == "e2e-1"
        metadata = client.get_model_metadata("digits")
        assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("input-0", "FP32", [-1, 64])]
    finally:
        container.stop()


def test_modzy_v2_grpc_status_run_shutdown(image: str) -> None:
    port = free_port()
    container = Container(image, {"INTERFACE": "modzy", "PROTOCOL": "v2", "HTTP_PORT": port})
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = modzy_grpc.ModzyModelStub(channel)
        status = wait_for(lambda: stub.Status(modzy_pb2.StatusRequest(), timeout=5))
        assert status.status_code == 200 and status.message == "Model Initialized Successfully."
        good = modzy_pb2.InputItem(input={"input": json.dumps([ZERO]).encode()})
        bad = modzy_pb2.InputItem(input={"input": b"not json"})
        response = stub.Run(modzy_pb2.RunRequest(inputs=[good, bad, good]), timeout=10)
        assert [item.success for item in response.outputs] == [True, False, True]
        assert json.loads(response.outputs[0].output["results.json"]) == {"predict": [0]}
        assert response.outputs[1].output["error"]

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        services = {s.name for answer in answers for s in answer.list_services_response.service}
        assert "ModzyModel" in services

        shutdown = stub.Shutdown(modzy_pb2.ShutdownRequest(), timeout=10)
        assert shutdown.status_code == 200 and shutdown.message == "Model Shutdown Successfully."
        # The process exits after answering, and --rm removes the stopped container.
        assert wait_for(lambda: container_gone(container.name), timeout=30)
    finally:
        container.stop()


def _readme_run_commands() -> list:
    """The shell commands of the README's "Run the image with podman" block, continuation lines joined."""
    text = (REPO / "README.md").read_text()
    block = text.split("Run the image with podman", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_readme_run_commands_keep_the_run_id_tag(packaged_clone: Clone, tmp_path) -> None:
    """The README's skopeo/podman/curl commands, as written, from a checkout whose path has uppercase letters."""
    skopeo, podman_run, curl = _readme_run_commands()
    assert skopeo.startswith("skopeo copy oci:") and " run " in podman_run and curl.startswith("curl ")
    checkout = tmp_path / "Team Checkout" / "Models"
    (checkout / "dist").mkdir(parents=True)
    # The layout and the shared blobs it links to, as `pants package` leaves them in dist/.
    run(["cp", "-al", str(packaged_clone.root / "dist" / "examples.digits"),
         str(packaged_clone.root / "dist" / "omi-blobs"), str(checkout / "dist")])
    image = podman_run.split()[-1]
    run_id = packaged_clone.record("examples/digits", "digits")["tags"][0]
    assert image == f"localhost/examples/digits:{run_id}"
    port = str(free_port())
    name = f"omi-e2e-{uuid.uuid4().hex[:8]}"
    try:
        run(["bash", "-c", skopeo], cwd=checkout)
        run(["podman", "image", "exists", image])
        detached = podman_run.replace(" run ", f" run -d --name {name} ", 1).replace("HTTP_PORT=8080", f"HTTP_PORT={port}")
        run(["bash", "-c", detached])
        answer = wait_for(lambda: json.loads(run(["bash", "-c", curl.replace("localhost:8080", f"localhost:{port}")])
                                             .stdout))
        assert answer == {"predictions": [0]}
    finally:
        subprocess.run([*PODMAN, "rm", "-f", name], capture_output=True)
        subprocess.run(["podman", "rmi", image], capture_output=True)
