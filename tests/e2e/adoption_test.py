"""omi as another repository uses it: the wheels built from this checkout, a brand-new git repository outside it
holding only what the README's "Use omi in your repository" section says to write, and a vanilla Pants 2.17.1
(pip-installed, not this repository's launcher) that installs the plugin from the wheels and there locks, packages,
checks, tests and publishes; the image serves right answers under podman, and a second copy of the repository at
another path packages to the same digest."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
from adopter import MODEL_EXAMPLE, commit, pants_env, vanilla_pants, write_adopter
from conftest import PODMAN, REPO, Clone, Container, PantsResult, free_port, run, wait_for

from omi_contract.version import OMI_VERSION
from omi_testutil.registry import registry  # noqa: F401 - pytest fixture


def _sample() -> tuple:
    """The first sample of the model's model.yaml: its inputs and the answers it expects."""
    import yaml

    sample = yaml.safe_load((MODEL_EXAMPLE / "model.yaml").read_text())["samples"][0]
    return sample["inputs"]["input-0"], sample["outputs"]["predict"]


class Adopter:
    """A repository of the adopting team's, run with the vanilla Pants."""

    def __init__(self, root: Path, pants: Path) -> None:
        self.root, self._pants = root, pants

    def pants(self, *args: str, check: bool = True, env: Optional[Dict[str, str]] = None) -> PantsResult:
        proc = subprocess.run([str(self._pants), "--no-pantsd", "--no-dynamic-ui", *args], cwd=self.root,
                              env=pants_env(env), text=True, capture_output=True, timeout=1500)
        result = PantsResult(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"pants {' '.join(args)} failed ({proc.returncode}):\n{result.output[-6000:]}")
        return result

    def record(self) -> Dict:
        return json.loads((self.root / "dist" / "models.digits" / "digits.omi.json").read_text())


@pytest.fixture(scope="module")
def wheels(clone_factory, tmp_path_factory) -> Path:
    clone: Clone = clone_factory("wheels")
    clone.pants("--filter-target-type=python_distribution", "package", "::")
    out = tmp_path_factory.mktemp("omi-wheels")
    built = sorted((clone.root / "dist").glob("*.whl"))
    assert [w.name for w in built] == [f"omi_plugin-{OMI_VERSION}-py3-none-any.whl",
                                       f"omi_runtime-{OMI_VERSION}-py3-none-any.whl"]
    for wheel in built:
        shutil.copyfile(wheel, out / wheel.name)
    # Built again without Pants's cache: the same bytes.
    for wheel in built:
        wheel.unlink()
    clone.pants("--filter-target-type=python_distribution", "--no-local-cache", "package", "::")
    for wheel in built:
        assert wheel.read_bytes() == (out / wheel.name).read_bytes(), f"{wheel.name} is not reproducible"
    return out


@pytest.fixture(scope="module")
def adopter(wheels: Path, tmp_path_factory) -> Iterator[Adopter]:
    root = tmp_path_factory.mktemp("team-repo")
    assert not str(root).startswith(str(REPO))
    write_adopter(root, wheels)
    team = Adopter(root, vanilla_pants())
    team.pants("generate-lockfiles")
    commit(root, "lock")
    team.pants("package", "::")
    yield team


def test_the_wheels_carry_what_the_plugin_reads_and_no_pants_requirement(wheels: Path) -> None:
    import zipfile

    with zipfile.ZipFile(wheels / f"omi_plugin-{OMI_VERSION}-py3-none-any.whl") as plugin:
        names = set(plugin.namelist())
        metadata = plugin.read(f"omi_plugin-{OMI_VERSION}.dist-info/METADATA").decode()
        entry_points = plugin.read(f"omi_plugin-{OMI_VERSION}.dist-info/entry_points.txt").decode()
    tree = {str(p.relative_to(REPO)) for p in (REPO / "omi_plugin").rglob("*.py")
            if not p.name.endswith("_test.py") and p.name != "conftest.py"}
    assert tree <= names  # every module, the sandboxed tools run by name included
    assert {"omi_plugin/omi_tools.lock", "omi_plugin/base_images/locks/python3.11-bookworm.lock.json",
            "omi_plugin/metadata/model.schema.json", "omi_plugin/supply_chain/spdx-2.3.schema.json",
            "omi_contract/formats.py", f"omi_plugin-{OMI_VERSION}.dist-info/LICENSE"} <= names
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert not any("pants" in r or "deflate" in r or "zstandard" in r for r in requires), requires
    assert "rules = omi_plugin.register:rules" in entry_points
    with zipfile.ZipFile(wheels / f"omi_runtime-{OMI_VERSION}-py3-none-any.whl") as runtime:
        names = set(runtime.namelist())
        metadata = runtime.read(f"omi_runtime-{OMI_VERSION}.dist-info/METADATA").decode()
    assert {"omi_runtime/smoke/__main__.py", "omi_runtime/handlers/onnx.py", "omi_contract/record.py"} <= names
    server_requires = {line.split(":", 1)[1].split()[0] for line in metadata.splitlines()
                       if line.startswith("Requires-Dist:")}
    # The server's own libraries only: a format's library is the model resolve's choice.
    assert server_requires == {"aiohttp", "grpcio", "grpcio-health-checking", "grpcio-reflection", "numpy", "protobuf"}


def test_the_adopting_repository_packages_with_its_own_library_versions(adopter: Adopter) -> None:
    record = adopter.record()
    assert record["tags"] == ["digits-lr-20261123-d227f2f2-onnx"]
    lock = (adopter.root / "3rdparty/python/default.lock").read_text()
    assert '"project_name": "omi-runtime",\n' in lock and f'"version": "{OMI_VERSION}"' in lock
    sbom = json.loads((adopter.root / "dist" / "models.digits" / "digits.spdx.json").read_text())
    versions = {p["name"]: p.get("versionInfo") for p in sbom["packages"]}
    # The team's onnxruntime, newer than the one this repository pins, and no scikit-learn in an ONNX image.
    assert versions["onnxruntime"].split(".")[:2] > ["1", "20"], versions["onnxruntime"]
    assert "scikit-learn" not in versions and "scikit_learn" not in versions


def test_check_passes_with_the_live_smoke_test(adopter: Adopter) -> None:
    result = adopter.pants("check", "::")
    assert "omi smoke: OK" in result.output, result.output[-3000:]


def test_the_teams_own_tests_still_pass(adopter: Adopter) -> None:
    result = adopter.pants("test", "::")
    assert "src/app/greeting_test.py" in result.output and "succeeded" in result.output


def test_the_image_serves_right_answers_under_podman(adopter: Adopter) -> None:
    record = adopter.record()
    rows, expected = _sample()
    layout = adopter.root / "dist" / "models.digits" / "digits.oci"
    name = f"localhost/omi-adopter:{record['tags'][0]}"
    run(["skopeo", "copy", "-q", f"oci:{layout}:{record['tags'][0]}", f"containers-storage:{name}"])
    port = free_port()
    container = Container(name, {"INTERFACE": "kfserving", "PROTOCOL": "v1", "HTTP_PORT": port})
    try:
        def predict() -> dict:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/digits:predict",
                                             data=json.dumps({"instances": rows}).encode(), method="POST")
            return json.loads(urllib.request.urlopen(request, timeout=5).read())

        answer = wait_for(predict, timeout=90)
        assert [p["predict"] if isinstance(p, dict) else p for p in answer["predictions"]] == expected, answer
    finally:
        container.stop()
        subprocess.run([*PODMAN, "rmi", name], capture_output=True)


def test_publish_pushes_the_packaged_image(adopter: Adopter, registry) -> None:  # noqa: F811
    record = adopter.record()
    out = adopter.root / "dist" / "publish.json"
    adopter.pants("publish", "::", f"--publish-output={out}",
                  env={"PANTS_OMI_REGISTRIES": repr({"local": {"address": registry.host, "default": True}})})
    published: List[Dict] = json.loads(out.read_text())
    assert published[0]["image_digest"] == record["image_digest"]
    accept = "application/vnd.oci.image.manifest.v1+json"
    request = urllib.request.Request(f"http://{registry.host}/v2/{record['repository']}/manifests/{record['tags'][0]}",
                                     headers={"Accept": accept})
    with urllib.request.urlopen(request) as response:
        assert response.headers["Docker-Content-Digest"] == record["image_digest"]


def test_a_second_copy_at_another_path_packages_to_the_same_digest(adopter: Adopter, tmp_path_factory) -> None:
    other = tmp_path_factory.mktemp("team-repo-elsewhere") / "checkout"
    run(["git", "clone", "-q", str(adopter.root), str(other)])
    second = Adopter(other, vanilla_pants())
    second.pants("package", "::")
    assert second.record()["image_digest"] == adopter.record()["image_digest"]

