import pytest

from omi_plugin.oci.references import REPOSITORY_RE, TAG_RE


@pytest.mark.parametrize("tag", ["v1", "run-1.2_3", "_x", "a" * 128])
def test_valid_tags(tag: str) -> None:
    assert TAG_RE.match(tag)


@pytest.mark.parametrize("tag", ["v1\n", "-v1", ".v1", "a" * 129, "v 1", "v1/2", ""])
def test_invalid_tags_including_a_trailing_newline(tag: str) -> None:
    assert not TAG_RE.match(tag)


@pytest.mark.parametrize("repository", ["models/digits", "a", "team__x/m-1.2"])
def test_valid_repositories(repository: str) -> None:
    assert REPOSITORY_RE.match(repository)


@pytest.mark.parametrize("repository", ["models/digits\n", "Models/digits", "a//b", "/a", "a/", "a-"])
def test_invalid_repositories_including_a_trailing_newline(repository: str) -> None:
    assert not REPOSITORY_RE.match(repository)
