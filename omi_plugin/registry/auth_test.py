"""Credentials from docker's config and helpers; Basic (htpasswd registry) and Bearer (token proxy) flows."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys

import pytest

from omi_plugin.registry.auth import Credentials, load_credentials, merge_scopes, parse_challenge
from omi_plugin.registry.client import Registry
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.push import push
from omi_testutil.registry import FAST_RETRY, PASSWORD, USER, make_image, write_docker_config


def _config(tmp_path, value) -> dict:
    (tmp_path / "config.json").write_text(json.dumps(value))
    return {"DOCKER_CONFIG": str(tmp_path), "PATH": os.environ.get("PATH", "")}


def test_auths_entry_base64_and_fields(tmp_path):
    env = _config(tmp_path, {"auths": {
        "https://reg.example.com/v1/": {"auth": base64.b64encode(b"alice:pa:ss").decode()},
        "other.example.com": {"username": "bob", "password": "pw"}}})
    alice = load_credentials("reg.example.com", env)
    assert (alice.username, alice.password) == ("alice", "pa:ss")
    assert load_credentials("other.example.com", env).username == "bob"
    assert load_credentials("missing.example.com", env) is None
    assert "pa:ss" not in repr(alice) and "pa:ss" not in str(alice)


def test_missing_config_is_anonymous(tmp_path):
    assert load_credentials("reg.example.com", {"DOCKER_CONFIG": str(tmp_path / "nowhere")}) is None


def _helper(tmp_path, name: str, body: str) -> None:
    script = tmp_path / "bin" / f"docker-credential-{name}"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!{sys.executable}\nimport sys, json\nserver = sys.stdin.read().strip()\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_cred_helpers_and_creds_store(tmp_path):
    _helper(tmp_path, "per", "print(json.dumps({'ServerURL': server, 'Username': 'per-' + server, 'Secret': 'x'}))")
    _helper(tmp_path, "store", "if server == 'none.example.com':\n    print('credentials not found in native keychain')"
                               "\n    sys.exit(1)\nprint(json.dumps({'Username': '<token>', 'Secret': 'refresh'}))")
    env = _config(tmp_path, {"credHelpers": {"a.example.com": "per"}, "credsStore": "store",
                             "auths": {"none.example.com": {"auth": base64.b64encode(b"u:p").decode()}}})
    env["PATH"] = f"{tmp_path / 'bin'}:{env['PATH']}"
    assert load_credentials("a.example.com", env).username == "per-a.example.com"
    token = load_credentials("b.example.com", env)
    assert token.identity_token == "refresh" and token.username == ""
    # The store has nothing for this one: fall back to `auths`.
    assert load_credentials("none.example.com", env).username == "u"


def test_missing_helper_is_a_clear_error(tmp_path):
    env = _config(tmp_path, {"credsStore": "does-not-exist"})
    with pytest.raises(RegistryError, match="docker-credential-does-not-exist is not on PATH"):
        load_credentials("reg.example.com", env)


def test_parse_challenge_and_scopes():
    scheme, params = parse_challenge('Bearer realm="https://auth.example.com/token",service="reg",'
                                     'scope="repository:a/b:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example.com/token", "service": "reg", "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})
    assert merge_scopes(["repository:a:push", "repository:a:pull", "repository:b:pull"]) == (
        "repository:a:pull,push", "repository:b:pull")


def test_htpasswd_registry_with_docker_config_credentials(auth_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", write_docker_config(str(tmp_path / "docker"), auth_registry.host, USER,
                                                            PASSWORD))
    img = make_image(str(tmp_path / "img"), [{"a": b"a" * 1000}])
    result = push(img.root, registry=auth_registry.host, repository="app", tags=["v1"],
                  client=Registry(auth_registry.host, retry=FAST_RETRY), log=lambda _: None)
    assert result.image_digest == img.manifest.descriptor.digest
    assert auth_registry.tags("app", auth=(USER, PASSWORD)) == ["v1"]


def test_wrong_credentials_fail_clearly_without_leaking(auth_registry, tmp_path):
    wrong = "not-the-Pa55word"
    docker = write_docker_config(str(tmp_path / "docker"), auth_registry.host, USER, wrong)
    img = make_image(str(tmp_path / "img"), [{"a": b"a" * 1000}])
    env = {**os.environ, "DOCKER_CONFIG": docker}
    done = subprocess.run([sys.executable, "-m", "omi_plugin.registry", "push", "--layout", img.root,
                           "--registry", auth_registry.host, "--repository", "app", "--tag", "v1"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=_repo_root())
    assert done.returncode == 1
    err = done.stderr.decode()
    assert err.strip().splitlines()[-1:] == [
        f"error: {auth_registry.host}/app: authentication failed (check the credentials for {auth_registry.host} "
        f"from {os.path.join(docker, 'config.json')})"]
    encoded = base64.b64encode(f"{USER}:{wrong}".encode()).decode()
    for secret in (wrong, encoded):
        assert secret not in err and secret not in done.stdout.decode()
    assert auth_registry.tags("app", auth=(USER, PASSWORD)) == []


def test_no_credentials_says_how_to_log_in(auth_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    img = make_image(str(tmp_path / "img"), [{"a": b"a"}])
    with pytest.raises(RegistryError, match="authentication required.*docker login"):
        push(img.root, registry=auth_registry.host, repository="app", tags=["v1"],
             client=Registry(auth_registry.host, retry=FAST_RETRY), log=lambda _: None)


def test_bearer_token_challenge(registry, proxy_factory, tmp_path):
    proxy = proxy_factory(registry)
    proxy.bearer = ("tok-user", "tok-pass")
    img = make_image(str(tmp_path / "img"), [{"a": b"a" * 100}, {"b": b"b" * 100}])
    c = Registry(proxy.host, credentials=Credentials("tok-user", "tok-pass"), retry=FAST_RETRY)
    result = push(img.root, registry=proxy.host, repository="app", tags=["v1"], client=c, log=lambda _: None)
    assert result.image_digest == img.manifest.descriptor.digest
    assert registry.tags("app") == ["v1"]
    # Tokens are cached per scope set: one challenge for the push scope, not one per request.
    assert len(proxy.tokens_issued) <= 2
    assert sum(1 for e in proxy.log if e[2] == 401) <= 2


def test_bearer_with_wrong_credentials(registry, proxy_factory, tmp_path):
    proxy = proxy_factory(registry)
    proxy.bearer = ("tok-user", "tok-pass")
    img = make_image(str(tmp_path / "img"), [{"a": b"a"}])
    c = Registry(proxy.host, credentials=Credentials("tok-user", "nope", source="test"), retry=FAST_RETRY)
    with pytest.raises(RegistryError) as caught:
        push(img.root, registry=proxy.host, repository="app", tags=["v1"], client=c, log=lambda _: None)
    assert "authentication failed" in str(caught.value) and "nope" not in str(caught.value)


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
