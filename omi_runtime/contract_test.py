"""The runtime has what the contract's tables name: a transport per served interface, a handler per format."""

import importlib

import pytest

from omi_contract import formats, interfaces


@pytest.mark.parametrize("name", interfaces.SERVED)
def test_each_served_interface_has_its_transport(name: str) -> None:
    row = interfaces.served(name)
    module = importlib.import_module(f"omi_runtime.transports.{row.transport}")
    assert callable(module.create_transport)
    if row.readiness == "grpc":
        assert module.SERVICE_NAME == row.service  # the name in the generated stubs


@pytest.mark.parametrize("row", [f for f in formats.FORMATS if f.handler], ids=lambda f: f.name)
def test_each_builtin_format_has_its_handler(row: formats.Format) -> None:
    module_name, class_name = row.handler.split(":")
    assert isinstance(getattr(importlib.import_module(module_name), class_name), type)
