"""Fault injection through a loopback proxy: a push either succeeds after retries or fails clearly, tagless."""

from __future__ import annotations

import os

import pytest

from omi_plugin.registry.client import Registry
from omi_plugin.registry.errors import RegistryError, TransientError
from omi_plugin.registry.push import push
from omi_testutil.registry import FAST_RETRY, first_n, make_image, make_modelpack


def client(host: str, **kwargs) -> Registry:
    return Registry(host, load_docker_config=False, retry=FAST_RETRY, **kwargs)


def image(tmp_path):
    return make_image(str(tmp_path / "img"), [{"a.bin": os.urandom(150_000)}, {"b.txt": b"b" * 5000}])


@pytest.mark.parametrize("answer", [500, 503, 429, "reset"])
def test_first_requests_fail_then_push_succeeds(registry, proxy_factory, tmp_path, answer):
    proxy = proxy_factory(registry)
    proxy.rule = first_n(3, answer)
    img = image(tmp_path)
    result = push(img.root, registry=proxy.host, repository="app", tags=["v1"],
                  client=client(proxy.host, chunk_size=64 * 1024), log=lambda _: None)
    assert result.image_digest == img.manifest.descriptor.digest
    assert registry.tags("app") == ["v1"]
    assert sum(1 for e in proxy.log if e[2] in (-1, 500, 503, 429)) == 3


@pytest.mark.parametrize("answer", [500, "reset"])
def test_faults_in_the_middle_of_a_chunked_upload_restart_it(registry, proxy_factory, tmp_path, answer):
    proxy = proxy_factory(registry)
    # The second PATCH of the upload fails twice: the session is abandoned and the upload restarts cleanly.
    patches = [0]

    def rule(method, path):
        if method != "PATCH":
            return None
        patches[0] += 1
        return answer if patches[0] in (2, 4) else None
    proxy.rule = rule
    img = image(tmp_path)
    result = push(img.root, registry=proxy.host, repository="app", tags=["v1"],
                  client=client(proxy.host, chunk_size=64 * 1024), log=lambda _: None)
    assert result.blobs.uploaded == 3
    assert len(proxy.methods("POST", "/blobs/uploads/")) >= 3 + 2  # two restarts
    assert registry.tags("app") == ["v1"]


def test_final_blob_put_failing_then_succeeding(registry, proxy_factory, tmp_path):
    proxy = proxy_factory(registry)
    proxy.rule = first_n(2, 502, lambda m, p: m == "PUT" and "digest=" in p)
    img = image(tmp_path)
    result = push(img.root, registry=proxy.host, repository="app", tags=["v1"], client=client(proxy.host),
                  log=lambda _: None)
    assert result.blobs.uploaded == 3 and registry.tags("app") == ["v1"]


def test_manifest_put_always_failing_leaves_no_tag(registry, proxy_factory, tmp_path):
    proxy = proxy_factory(registry)
    proxy.rule = lambda m, p: 500 if m == "PUT" and "/manifests/" in p else None
    img = image(tmp_path)
    with pytest.raises(TransientError) as caught:
        push(img.root, registry=proxy.host, repository="app", tags=["v1"], client=client(proxy.host),
             log=lambda _: None)
    message = str(caught.value)
    assert message.startswith(f"{proxy.host}/app: pushing manifest sha256:")
    assert "HTTP 500" in message and "\n" not in message
    assert registry.tags("app") == []


def test_model_tag_failing_leaves_no_image_tag(registry, proxy_factory, tmp_path):
    proxy = proxy_factory(registry)
    proxy.rule = lambda m, p: "reset" if m == "PUT" and p.endswith("/manifests/v1-model") else None
    img = image(tmp_path)
    make_modelpack(str(tmp_path / "mp"), ("model.onnx", b"w" * 100))
    with pytest.raises(TransientError, match="failed: connection"):
        push(img.root, registry=proxy.host, repository="app", tags=["v1"], modelpack_layout=str(tmp_path / "mp"),
             client=client(proxy.host), log=lambda _: None)
    tags = registry.tags("app")
    assert "v1" not in tags and "v1-model" not in tags


def test_blob_uploads_always_failing_fail_clearly_without_tags(registry, proxy_factory, tmp_path):
    proxy = proxy_factory(registry)
    proxy.rule = lambda m, p: "reset" if m in ("PATCH", "PUT") and "/blobs/uploads/" in p else None
    img = image(tmp_path)
    with pytest.raises(TransientError) as caught:
        push(img.root, registry=proxy.host, repository="app", tags=["v1"], client=client(proxy.host),
             log=lambda _: None)
    assert "uploading blob sha256:" in str(caught.value) and "retry the push later" in str(caught.value)
    assert registry.tags("app") == []


def test_unreachable_registry_is_a_one_line_error(tmp_path):
    from omi_testutil.registry import free_port

    img = image(tmp_path)
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError) as caught:
        push(img.root, registry=host, repository="app", tags=["v1"], client=client(host), log=lambda _: None)
    assert "connection refused" in str(caught.value)
    assert "\n" not in str(caught.value)
