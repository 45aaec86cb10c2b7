import pytest

from omi_plugin.goals.publish import DEFAULT_REGISTRIES, RegistryConfigError, select_registries

CONFIGURED = {
    "local": {"address": "127.0.0.1:5000", "default": True},
    "lab": {"address": "lab.example.com", "insecure": True},
    "prod": {"address": "registry.example.com", "default": True},
}


def test_defaults_aliases_and_addresses() -> None:
    assert select_registries((DEFAULT_REGISTRIES,), CONFIGURED, "a:b") == [
        ("127.0.0.1:5000", False), ("registry.example.com", False)]
    assert select_registries(("@lab", "other.example.com"), CONFIGURED, "a:b") == [
        ("lab.example.com", True), ("other.example.com", False)]
    assert select_registries((DEFAULT_REGISTRIES,), {}, "a:b") == []


def test_unknown_alias_is_a_clear_error() -> None:
    with pytest.raises(RegistryConfigError, match=r"^a:b: registries: unknown registry alias '@nope' .*known: lab, "
                                                  r"local, prod\)$"):
        select_registries(("@nope",), CONFIGURED, "a:b")
