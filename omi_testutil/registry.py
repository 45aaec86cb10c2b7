"""Test helpers and fixtures: a real Distribution registry on loopback (plain or htpasswd), a fault-injecting HTTP proxy in front
of it, and small OCI layouts built with `omi_plugin.oci`."""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import pytest

from omi_plugin.oci import media_types, platforms
from omi_plugin.oci.descriptor import Blob, Descriptor
from omi_plugin.oci.image import Layer, RuntimeConfig, build_config, build_index, build_manifest
from omi_plugin.oci.layout import oci_layout_bytes
from omi_plugin.oci.tar import Entry, write_layer
from omi_plugin.registry.transport import RetryPolicy

REGISTRY_BIN = shutil.which("docker-registry")
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05, total_seconds=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningRegistry:
    host: str  # 127.0.0.1:PORT
    storage: str
    process: subprocess.Popen

    def blob_data_path(self, digest: str) -> str:
        hex_ = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hex_[:2], hex_, "data")

    def tags(self, repository: str, auth: Optional[Tuple[str, str]] = None) -> List[str]:
        request = urllib.request.Request(f"http://{self.host}/v2/{repository}/tags/list")
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return json.load(r).get("tags") or []
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise


def start_registry(tmp: str, htpasswd: Optional[str] = None) -> RunningRegistry:
    if REGISTRY_BIN is None:
        pytest.fail("docker-registry is not installed: run tests/install-system-deps.sh")
    os.makedirs(tmp, exist_ok=True)
    storage = os.path.join(tmp, "storage")
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": storage}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if htpasswd:
        config["auth"] = {"htpasswd": {"realm": "omi-test", "path": htpasswd}}
    config_path = os.path.join(tmp, "config.yml")
    with open(config_path, "w") as f:
        json.dump(config, f)  # JSON is YAML
    assert REGISTRY_BIN, "docker-registry is not installed (tests/install-system-deps.sh installs it)"
    log = open(os.path.join(tmp, "registry.log"), "wb")
    process = subprocess.Popen([REGISTRY_BIN, "serve", config_path], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: see {log.name}")
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("docker-registry did not start")
    return RunningRegistry(f"127.0.0.1:{port}", storage, process)


def stop_registry(registry: RunningRegistry) -> None:
    registry.process.terminate()
    try:
        registry.process.wait(10)
    except subprocess.TimeoutExpired:
        registry.process.kill()
        registry.process.wait()


@pytest.fixture
def registry(tmp_path) -> Iterator[RunningRegistry]:
    running = start_registry(str(tmp_path / "registry"))
    try:
        yield running
    finally:
        stop_registry(running)


USER, PASSWORD = "omi-user", "s3cret-Pa55word"


@pytest.fixture
def auth_registry(tmp_path) -> Iterator[RunningRegistry]:
    if shutil.which("htpasswd") is None:
        pytest.fail("htpasswd is not installed: run tests/install-system-deps.sh")
    root = tmp_path / "registry"
    root.mkdir()
    entry = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, stdout=subprocess.PIPE).stdout
    (root / "htpasswd").write_bytes(entry)
    running = start_registry(str(root), htpasswd=str(root / "htpasswd"))
    try:
        yield running
    finally:
        stop_registry(running)


def write_docker_config(directory: str, registry: str, user: str, password: str) -> str:
    os.makedirs(directory, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"auths": {registry: {"auth": auth}}}, f)
    return directory


# -- fault-injecting proxy -------------------------------------------------------------------------------------

# A rule sees (method, path, count of requests so far matching nothing in particular) and answers:
# None (forward), an int status to answer with, or "reset" to reset the connection.
Rule = Callable[[str, str], Union[None, int, str]]


@dataclass
class Proxy:
    host: str
    log: List[Tuple[str, str, int]] = field(default_factory=list)  # (method, path, status or -1 for reset)
    rule: Optional[Rule] = None
    bearer: Optional[Tuple[str, str]] = None  # (user, password) the token endpoint accepts
    tokens_issued: List[str] = field(default_factory=list)

    def methods(self, method: str, contains: str = "") -> List[Tuple[str, str, int]]:
        return [e for e in self.log if e[0] == method and contains in e[1]]


def first_n(n: int, answer: Union[int, str], match: Callable[[str, str], bool] = lambda m, p: True) -> Rule:
    """Fail the first `n` matching requests with `answer`, then forward."""
    seen = [0]

    def rule(method: str, path: str) -> Union[None, int, str]:
        if not match(method, path):
            return None
        seen[0] += 1
        return answer if seen[0] <= n else None
    return rule


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ""
    state: Proxy

    def log_message(self, *args) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        chunks = []
        while length:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def _reply(self, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        state = self.state
        path = self.path
        if path.startswith("/token"):
            self._body()
            auth = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(":".join(state.bearer or ("", "")).encode()).decode()
            if auth != expected:
                state.log.append((self.command, path, 401))
                return self._reply(401, b'{"details":"bad credentials"}')
            token = f"tok-{len(state.tokens_issued)}"
            state.tokens_issued.append(token)
            state.log.append((self.command, path, 200))
            return self._reply(200, json.dumps({"token": token, "expires_in": 300}).encode(),
                               {"Content-Type": "application/json"})
        answer = state.rule(self.command, path) if state.rule else None
        if answer == "reset":
            state.log.append((self.command, path, -1))
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        body = self._body()
        if isinstance(answer, int):
            state.log.append((self.command, path, answer))
            return self._reply(answer, b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}',
                               {"Content-Type": "application/json"})
        if state.bearer and path.startswith("/v2/"):
            token = self.headers.get("Authorization", "")
            if not token.startswith("Bearer ") or token[7:] not in state.tokens_issued:
                state.log.append((self.command, path, 401))
                realm = f"http://{state.host}/token"
                return self._reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}', {
                    "WWW-Authenticate": f'Bearer realm="{realm}",service="omi-test",scope="repository:x:pull"'})
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "connection")}
        conn.request(self.command, path, body=body if body or self.command in ("PUT", "POST", "PATCH") else None,
                     headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        state.log.append((self.command, path, response.status))
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[RunningRegistry], Proxy]]:
    servers: List[http.server.ThreadingHTTPServer] = []

    def start(upstream: RunningRegistry) -> Proxy:
        state = Proxy("")
        handler = type("Handler", (_ProxyHandler,), {"upstream": upstream.host, "state": state})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        state.host = f"127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return state

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


# -- small layouts ------------------------------------------------------------------------------------------------

def _put_blob(root: str, data: bytes) -> None:
    path = os.path.join(root, "blobs", "sha256", hashlib.sha256(data).hexdigest())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def make_layer(root: str, files: Dict[str, bytes], created_by: str = "test") -> Layer:
    buffer = io.BytesIO()
    info = write_layer([Entry.file(path, content) for path, content in files.items()], buffer)
    _put_blob(root, buffer.getvalue())
    return Layer(Descriptor(media_types.LAYER_TAR, info.digest, info.size), info.digest, created_by)


def write_layout(root: str, manifests: List[Tuple[Descriptor, List[str]]]) -> None:
    os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "wb") as f:
        f.write(oci_layout_bytes())
    with open(os.path.join(root, "index.json"), "wb") as f:
        f.write(build_index(manifests))


@dataclass
class SmallImage:
    root: str
    manifest: Blob
    config: Blob
    layers: List[Layer]


def make_image(root: str, layer_files: List[Dict[str, bytes]], tag: str = "v1",
               architecture: str = "amd64", subject: Optional[Descriptor] = None) -> SmallImage:
    """An image layout with one layer per dict of files (and a `subject`, as omi images name their model)."""
    os.makedirs(root, exist_ok=True)
    layers = [make_layer(root, files, f"layer {i}") for i, files in enumerate(layer_files)]
    config = build_config(layers, RuntimeConfig(cmd=("/bin/true",)), platform=platforms.parse(f"linux/{architecture}"))
    _put_blob(root, config.data)
    manifest = build_manifest(config.descriptor, [l.descriptor for l in layers],
                              annotations={"org.opencontainers.image.title": "test"}, subject=subject)
    _put_blob(root, manifest.data)
    write_layout(root, [(manifest.descriptor, [tag])])
    return SmallImage(root, manifest, config, layers)


def make_modelpack(root: str, model_file: Tuple[str, bytes], tag: str = "v1-model") -> Blob:
    """A ModelPack artifact layout with one weight layer holding `model_file`."""
    os.makedirs(root, exist_ok=True)
    name, content = model_file
    layer = make_layer(root, {f"models/m/{name}": content})
    weight = Descriptor(media_types.MODELPACK_WEIGHT_TAR, layer.descriptor.digest, layer.descriptor.size, {
        media_types.ANNOTATION_MODEL_FILEPATH: f"models/m/{name}", media_types.ANNOTATION_TITLE: name})
    config = Blob.of_json(media_types.MODELPACK_CONFIG, {
        "descriptor": {"name": "m", "version": "1.0.0", "authors": ["a", "b"], "description": "a test model"},
        "config": {"format": "onnx"},
        "modelfs": {"type": "layers", "diffIds": [layer.diff_id]}})
    _put_blob(root, config.data)
    manifest = build_manifest(config.descriptor, [weight], artifact_type=media_types.MODELPACK_ARTIFACT,
                              annotations={"org.opencontainers.image.title": "m"})
    _put_blob(root, manifest.data)
    write_layout(root, [(manifest.descriptor, [tag])])
    return manifest


def make_omlmd(root: str, modelpack_root: str, model_file: Tuple[str, bytes], tag: str = "v1-omlmd") -> Blob:
    """The omlmd flavour of a `make_modelpack` layout, as `pants package` writes it."""
    from omi_plugin.omi_image import model_subject
    from omi_plugin.omlmd_artifact import ModelFileBlob, build

    with open(os.path.join(modelpack_root, "index.json"), "rb") as f:
        model_descriptor = Descriptor.from_json(json.load(f)["manifests"][0])
    blob_dir = os.path.join(modelpack_root, "blobs", "sha256")
    with open(os.path.join(blob_dir, model_descriptor.digest.split(":")[1]), "rb") as f:
        model_manifest = Blob(model_descriptor, f.read())
    with open(os.path.join(blob_dir, json.loads(model_manifest.data)["config"]["digest"].split(":")[1]), "rb") as f:
        config = json.load(f)
    os.makedirs(root, exist_ok=True)
    name, content = model_file
    _put_blob(root, content)
    artifact = build(config, [ModelFileBlob(name, "sha256:" + hashlib.sha256(content).hexdigest(), len(content))],
                     model_subject(model_manifest), [tag])
    for blob in (artifact.manifest, *artifact.metadata_blobs):
        _put_blob(root, blob.data)
    write_layout(root, [(artifact.manifest.descriptor, [tag])])
    return artifact.manifest


def make_attestations(root: str, subjects: List[Descriptor]) -> List[Blob]:
    """A layout of referrers as `pants package` writes them: one small in-toto document per subject."""
    from omi_plugin.supply_chain.referrers import layout_files, layout_index, referrer

    made = [referrer(media_types.IN_TOTO_JSON, json.dumps({"subject": s.digest}).encode(), s) for s in subjects]
    os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
    for path, data in layout_files(made):
        with open(os.path.join(root, path), "wb") as f:
            f.write(data)
    with open(os.path.join(root, "oci-layout"), "wb") as f:
        f.write(oci_layout_bytes())
    with open(os.path.join(root, "index.json"), "wb") as f:
        f.write(layout_index(made))
    return [m.manifest for m in made]


def put_raw_blob(root: str, data: bytes) -> None:
    _put_blob(root, data)
