import json

from omi_plugin.oci import media_types
from omi_plugin.oci.descriptor import Descriptor, sha256_digest
from omi_plugin.oci.image import Layer, RuntimeConfig, build_config, build_index, build_manifest

LAYER = Layer(Descriptor(media_types.LAYER_TAR, sha256_digest(b"layer"), 5), sha256_digest(b"layer"), "test")


def test_config_is_canonical_and_time_free() -> None:
    runtime = RuntimeConfig(user="65532:65532", env=(("A", "1"),), entrypoint=("python3",), exposed_ports=("8080/tcp",))
    first, second = build_config([LAYER], runtime), build_config([LAYER], runtime)
    assert first == second
    config = json.loads(first.data)
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert config["rootfs"] == {"type": "layers", "diff_ids": [LAYER.diff_id]}
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert first.data == json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def test_env_override_keeps_position() -> None:
    runtime = RuntimeConfig(env=(("PATH", "/bin"), ("X", "1"))).with_env([("X", "2"), ("Y", "3"), ("PATH", "/usr/bin")])
    assert runtime.env == (("PATH", "/usr/bin"), ("X", "2"), ("Y", "3"))


def test_manifest_and_index() -> None:
    config = build_config([LAYER], RuntimeConfig())
    manifest = build_manifest(config.descriptor, [LAYER.descriptor], annotations={"k": "v"})
    body = json.loads(manifest.data)
    assert body["schemaVersion"] == 2 and body["config"]["digest"] == config.descriptor.digest
    assert manifest.descriptor.digest == sha256_digest(manifest.data)
    index = json.loads(build_index([(manifest.descriptor, ["run1", "v1"])]))
    assert [m["annotations"][media_types.ANNOTATION_REF_NAME] for m in index["manifests"]] == ["run1", "v1"]
    assert {m["digest"] for m in index["manifests"]} == {manifest.descriptor.digest}
