import json

from omi_plugin.check import schemas


def test_image_spec_schemas_are_fully_inlined_and_offline() -> None:
    for name in (schemas.IMAGE_MANIFEST, schemas.IMAGE_INDEX, schemas.IMAGE_CONFIG):
        assert "$ref" not in json.dumps(schemas.validator(name).schema)


def test_date_time_formats_are_really_checked() -> None:
    # Without our FormatChecker jsonschema passes these silently when rfc3339-validator is absent.
    config = {"architecture": "amd64", "os": "linux", "created": "not a date",
              "rootfs": {"type": "layers", "diff_ids": []}}
    assert schemas.schema_errors(schemas.IMAGE_CONFIG, config) == [
        ("created", "'not a date' is not a valid date-time",
         "write an RFC 3339 date-time such as 1970-01-01T00:00:00Z")]
    modelpack = {"descriptor": {"createdAt": "2025-02-30T00:00:00Z"}, "config": {},
                 "modelfs": {"type": "layers", "diffIds": ["sha256:" + "0" * 64]}}
    assert [e[0] for e in schemas.schema_errors(schemas.MODELPACK_CONFIG, modelpack)] == ["descriptor.createdAt"]


def test_modelpack_schema_forbids_additional_properties_and_requires_all_sections() -> None:
    errors = schemas.schema_errors(schemas.MODELPACK_CONFIG, {"descriptor": {}, "extra": 1})
    assert [e[:2] for e in errors] == [("config", "is required"), ("extra", "unknown field"),
                                        ("modelfs", "is required")]


def test_one_of_reports_the_fitting_alternative() -> None:
    config = {"architecture": "a", "os": "l", "rootfs": {"type": "layers", "diff_ids": []},
              "config": {"Labels": {"a": 1}, "Cmd": 5}}
    assert schemas.schema_errors(schemas.IMAGE_CONFIG, config) == [
        ("config.Cmd", "expected array or null, got int", "write an array or null here"),
        ("config.Labels.a", "expected string, got int", "write a string here")]


def test_descriptor_urls_must_be_uris() -> None:
    manifest = {"schemaVersion": 2, "config": {"mediaType": "a/b", "size": 1, "digest": "sha256:00",
                                               "urls": ["not a uri"]}, "layers": []}
    assert schemas.schema_errors(schemas.IMAGE_MANIFEST, manifest)[0][:2] == (
        "config.urls[0]", "'not a uri' is not a valid uri")
