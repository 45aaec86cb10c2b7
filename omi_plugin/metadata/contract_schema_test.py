"""model.yaml's JSON schema (omi_plugin/metadata/model.schema.json) agrees with the contract's tables."""

import json
import pkgutil

from omi_contract import formats, interfaces, record
from omi_plugin.metadata.model_yaml import model_schema


def _schema_file() -> dict:
    data = pkgutil.get_data("omi_plugin.metadata", "model.schema.json")
    assert data is not None
    return json.loads(data)


def test_the_format_enum_is_the_format_table_and_written_nowhere_else() -> None:
    assert "enum" not in _schema_file()["properties"]["format"]  # adding a format is one row, not two
    assert model_schema()["properties"]["format"]["enum"] == list(formats.NAMES)


def test_interfaces_enum_is_the_interface_table() -> None:
    assert _schema_file()["properties"]["interfaces"]["items"]["enum"] == list(interfaces.OMI_NAMES)


def test_datatype_enum_is_the_record_datatypes() -> None:
    assert _schema_file()["definitions"]["tensor"]["properties"]["datatype"]["enum"] == list(record.DATATYPES)
