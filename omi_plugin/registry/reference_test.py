"""Reference parsing and the loopback rule for plain HTTP."""

import pytest

from omi_plugin.registry.reference import ReferenceError, is_loopback, parse

DIGEST = "sha256:" + "a" * 64


def test_parse_forms():
    assert parse(f"127.0.0.1:5000/team/app@{DIGEST}").repository == "team/app"
    ref = parse(f"ghcr.io/org/app:v1@{DIGEST}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("ghcr.io", "org/app", "v1", DIGEST)
    assert parse("localhost:5000/app:1.0").tag == "1.0"
    assert parse("python:3.11").registry == "docker.io"
    assert parse("python:3.11").repository == "library/python"
    assert str(parse(f"[::1]:5000/app@{DIGEST}")) == f"[::1]:5000/app@{DIGEST}"


@pytest.mark.parametrize("bad", ["reg.io/App:v1", "reg.io/app@sha256:xyz", "reg.io/app:-bad", "reg.io/"])
def test_parse_rejects(bad):
    with pytest.raises(ReferenceError):
        parse(bad)


@pytest.mark.parametrize("host,loop", [("localhost:5000", True), ("127.0.0.1:5000", True), ("127.3.2.1", True),
                                       ("[::1]:5000", True), ("::1", True), ("10.0.0.1:5000", False),
                                       ("registry.example.com", False), ("localhost.example.com", False)])
def test_loopback(host, loop):
    assert is_loopback(host) is loop
