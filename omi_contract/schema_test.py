"""model.yaml's JSON schema (omi_plugin/metadata/model.schema.json) states the contract's tables as enums."""

import json
import pkgutil

from omi_contract import formats, interfaces, record


def _schema() -> dict:
    data = pkgutil.get_data("omi_plugin.metadata", "model.schema.json")
    assert data is not None
    return json.loads(data)


def test_format_enum_is_the_format_table() -> None:
    assert _schema()["properties"]["format"]["enum"] == list(formats.NAMES)


def test_interfaces_enum_is_the_interface_table() -> None:
    assert _schema()["properties"]["interfaces"]["items"]["enum"] == list(interfaces.OMI_NAMES)


def test_datatype_enum_is_the_record_datatypes() -> None:
    assert _schema()["definitions"]["tensor"]["properties"]["datatype"]["enum"] == list(record.DATATYPES)
