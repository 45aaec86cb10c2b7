"""`modelcar=True`: the image works as a KServe ModelCar sidecar, with KServe's exact command, under podman."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid

from conftest import PODMAN, REPO, RUN_FLAGS, Clone, pulled_image, run, wait_for

DIGITS = ("examples/digits", "digits")
MODELCAR = ("examples/digits", "digits-modelcar")
# What KServe runs in the model image's container (`storageUri: oci://...`), as the container's `args`.
KSERVE_SIDECAR = ["sh", "-c", "ln -sf /proc/$$/root/models /mnt/models && sleep infinity"]


def test_the_kserve_sidecar_command_serves_the_model_files(packaged_clone: Clone, clone_factory) -> None:
    clone = clone_factory("clone-modelcar")
    clone.write("examples/digits/BUILD", (clone.root / "examples/digits/BUILD").read_text() +
                'omi_model(name="digits-modelcar", model_files=["model.joblib"], modelcar=True)\n')
    clone.pants("package", ":".join(MODELCAR))

    # The same image plus one layer, right after the base: nothing else moves.
    plain = [layer["digest"] for layer in packaged_clone.record(*DIGITS)["layers"]]
    layers = clone.record(*MODELCAR)["layers"]
    added = [layer for layer in layers if layer["digest"] not in plain]
    assert len(layers) == len(plain) + 1 and len(added) == 1
    assert added[0]["created_by"].startswith("omi: KServe ModelCar (busybox-static ")
    layout = clone.layout(*MODELCAR)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"].split(":")[1]).read_text())["config"]
    # The server is the Cmd, which KServe's `args` replace; run without arguments, the image serves OMI as ever.
    assert "Entrypoint" not in config and config["Cmd"] == ["/usr/bin/python3.11", "-m", "omi_runtime"]

    expected = hashlib.sha256((REPO / "examples/digits/model.joblib").read_bytes()).hexdigest()
    name, volume = f"omi-e2e-{uuid.uuid4().hex[:8]}", f"omi-e2e-{uuid.uuid4().hex[:8]}"
    with pulled_image(clone.layout(*MODELCAR)) as image:
        run(["podman", "volume", "create", volume])
        try:
            # As KServe starts it: the command as `args` only, no entrypoint override.
            run([*PODMAN, "run", "-d", "--name", name, *RUN_FLAGS, "-v", f"{volume}:/mnt", image, *KSERVE_SIDECAR])
            # A second container in the sidecar's PID namespace reads the files through /mnt/models, as the
            # model server of an InferenceService does.
            reader = [*PODMAN, "run", "--rm", "--read-only", "--net=host", "--ulimit", "nofile=1024:1024",
                      "--ulimit", "nproc=1000:1000", "--pid", f"container:{name}", "-v", f"{volume}:/mnt",
                      "--entrypoint", "/usr/bin/python3.11", image, "-c",
                      "import hashlib, json; print(hashlib.sha256(open('/mnt/models/model.joblib', 'rb').read())"
                      ".hexdigest(), json.load(open('/mnt/models/digits/omi-model.json'))['name'])"]
            assert wait_for(lambda: run(reader).stdout.split()) == [expected, "digits"]
            state = run(["podman", "inspect", "-f", "{{.State.Running}}", name]).stdout.strip()
            assert state == "true"  # `sleep infinity` keeps the sidecar up
        finally:
            subprocess.run([*PODMAN, "rm", "-f", "-t", "0", name], capture_output=True)
            subprocess.run(["podman", "volume", "rm", "-f", volume], capture_output=True)
