import pytest

from omi_contract import formats, interfaces
from omi_contract.record import DEFAULT_INPUTS, ModelRecord, RecordError, model_problems, record_problems

GOOD = {"name": "digits", "version": "1", "format": "sklearn", "files": ["model.joblib"], "run_id": "r1",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64], "filename": "in.json"}],
        "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}], "licenses": ["MIT"]}


def test_a_record_reads_with_defaults_for_what_it_leaves_out() -> None:
    record = ModelRecord.from_json(dict(GOOD), "omi-model.json")
    assert (record.name, record.format, record.files, record.licenses) == ("digits", "sklearn", ("model.joblib",),
                                                                             ("MIT",))
    assert record.interfaces == interfaces.DEFAULT_INTERFACES
    assert record.inputs[0].shape == (-1, 64) and record.input_filename() == "in.json"
    assert record.output_filename() == "results.json"
    bare = ModelRecord.from_json({"name": "m", "version": "1", "format": "onnx", "files": []}, "f")
    assert [t.to_dict() for t in bare.inputs] == [dict(t) for t in DEFAULT_INPUTS]


def test_equal_records_hash_equal_though_they_hold_dicts() -> None:
    a, b = ModelRecord.from_json(dict(GOOD), "a"), ModelRecord.from_json(dict(GOOD), "b")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


@pytest.mark.parametrize("change, field, words", [
    ({"format": "tensorflow"}, "format", "'tensorflow' is not allowed"),
    ({"name": ""}, "name", "is missing or not a string"),
    ({"files": "model.joblib"}, "files", "must be a list of paths"),
    ({"inputs": []}, "inputs", "must list at least one tensor"),
    ({"inputs": [{"name": "x", "datatype": "FLOAT", "shape": [1]}]}, "inputs[0].datatype", "'FLOAT' is not allowed"),
    ({"outputs": [{"name": "y", "datatype": "FP32", "shape": [-2]}]}, "outputs[0].shape", "integers >= -1"),
    ({"max_batch_size": 0}, "max_batch_size", "not a positive integer"),
    ({"max_batch_size": True}, "max_batch_size", "not a positive integer"),
    ({"format": "custom"}, "handler", "is required when format is custom"),
    ({"files": ["../secret"]}, "files[0]", "points outside the model directory"),
    ({"interfaces": ["modzy.v1"]}, "interfaces[0]", "omi_runtime does not serve"),
    ({"interfaces": ["grpc.v9"]}, "interfaces[0]", "not an OMI interface string"),
])
def test_the_first_problem_names_its_field(change: dict, field: str, words: str) -> None:
    with pytest.raises(RecordError) as raised:
        ModelRecord.from_json({**GOOD, **change}, "models/digits/omi-model.json")
    assert raised.value.model_problem.field == field
    assert str(raised.value).startswith(f"models/digits/omi-model.json: {field}: ") and words in str(raised.value)


def test_model_problems_reports_every_problem_in_a_fixed_order() -> None:
    data = {**GOOD, "format": "custom", "files": ["/abs", "ok"], "interfaces": ["modzy.v1", "x.v1"],
            "inputs": [{"name": "x"}, {"name": "x"}], "samples": [{"inputs": {"z": [1]}}]}
    assert [(p.rule, p.field) for p in model_problems(data)] == [
        ("OMI112", "files[0]"), ("OMI111", "handler"), ("OMI106", "interfaces[0]"), ("OMI104", "interfaces[1]"),
        ("OMI113", "inputs[1].name"), ("OMI114", "samples[0].inputs.z")]


def test_shape_problems_come_before_and_instead_of_the_rules_that_need_the_shape() -> None:
    assert [p.field for p in record_problems({**GOOD, "files": 3, "interfaces": ["modzy.v1"]})] == [
        "files"]
    assert [p.field for p in record_problems([])] == ["(top level)"]


def test_tables_agree_with_themselves() -> None:
    assert set(interfaces.SERVED) <= set(interfaces.OMI_NAMES)
    assert set(interfaces.OMI_MINIMUM) <= set(interfaces.SERVED)
    assert set(interfaces.DEFAULT_PREFERENCE) == set(interfaces.SERVED)
    assert all(interfaces.served(n).transport and interfaces.served(n).probe for n in interfaces.SERVED)
    assert set(interfaces.INTERFACE_ALIASES.values()) == {i.interface for i in interfaces.INTERFACES}
    assert interfaces.default_pair(("modzy.v2", "kfserving.v1")).name == "kfserving.v1"
    # A built-in handler's libraries are what the plugin looks up in the model's resolve besides the server.
    assert all(f.libraries and f.handler_module.startswith("omi_runtime.handlers.") for f in formats.FORMATS
               if f.handler)
    with pytest.raises(KeyError):
        interfaces.served("modzy.v1")


def test_tensors_match_by_name_only_when_every_name_does() -> None:
    from omi_contract.tensor_names import match_positions

    assert match_positions(["c", "a"], ["a", "b", "c"]) == [(0, 2), (1, 0)]
    assert match_positions(["x", "a"], ["a", "b"]) == [(0, 0), (1, 1)]
    assert match_positions(["x", "y", "z"], [None, None]) == [(0, 0), (1, 1)]
