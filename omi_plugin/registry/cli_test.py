"""The CLI: JSON result, progress on stderr, exit codes and one-line errors."""

import json
import os
import subprocess
import sys

from omi_plugin.omi_image import model_subject
from omi_testutil.registry import make_image, make_modelpack, make_omlmd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "omi_plugin.registry", *args], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env={**os.environ, "DOCKER_CONFIG": "/nonexistent", **(env or {})})


def test_push_and_pull(registry, tmp_path):
    model = make_modelpack(str(tmp_path / "mp"), ("model.bin", b"m" * 100))
    make_omlmd(str(tmp_path / "omlmd"), str(tmp_path / "mp"), ("model.bin", b"m" * 100))
    img = make_image(str(tmp_path / "img"), [{"a": b"a" * 100}], subject=model_subject(model))
    out = tmp_path / "result.json"
    done = run("push", "--layout", img.root, "--modelpack-layout", str(tmp_path / "mp"), "--registry", registry.host,
               "--omlmd-layout", str(tmp_path / "omlmd"), "--repository", "team/app", "--tag", "v1",
               "--tag", "latest-build", "--expect-model-digest", model.descriptor.digest, "--output", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["image_digest"] == img.manifest.descriptor.digest
    assert result["tags"] == ["v1", "latest-build", "v1-model", "latest-build-model", "v1-omlmd", "latest-build-omlmd"]
    assert result["blobs"]["uploaded"] == 2 + 2 + 3  # image config+layer; model config+layer; omlmd file+json+yaml
    assert b"uploaded" in done.stderr
    pulled = run("pull", "--reference", result["image_reference"], "--out", str(tmp_path / "pulled"))
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["manifest_digest"] == result["image_digest"]


def test_errors_are_one_line(registry, tmp_path):
    for args, expected in [
        (("push", "--layout", str(tmp_path / "none"), "--registry", registry.host, "--repository", "a", "--tag", "t"),
         "not an OCI image layout"),
        (("push", "--layout", str(tmp_path), "--registry", registry.host, "--repository", "Bad", "--tag", "t"),
         "not a valid repository name"),
        (("pull", "--reference", f"{registry.host}/a:t", "--out", str(tmp_path / "o")), "pin the base by digest"),
    ]:
        done = run(*args)
        assert done.returncode == 1
        lines = done.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
        assert b"Traceback" not in done.stderr
