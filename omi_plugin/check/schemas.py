"""The JSON schemas the checker validates against (OCI image-spec v1.1, ModelPack v0.0.7), loaded offline.

Image-spec schemas `$ref` each other by file name (`defs.json#/definitions/int64`). Rather than depend on
jsonschema's reference machinery, which changed between 4.17 (Pants's venv) and 4.18+ (the runtime's), the
cross-file references are inlined once at load time, so validation never touches the network.
Format checks use our own FormatChecker: jsonschema silently skips `date-time` without rfc3339-validator.
"""

from __future__ import annotations

import functools
import json
import pkgutil
import re
from typing import Any, Dict, Iterator, List, Tuple

import jsonschema

from omi_plugin.check.rfc3339 import is_date_time
from omi_plugin.metadata import model_yaml

IMAGE_MANIFEST = "image-manifest-schema.json"
IMAGE_INDEX = "image-index-schema.json"
IMAGE_CONFIG = "config-schema.json"
MODELPACK_CONFIG = "modelpack-config-schema.json"

_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*\Z")


def _load(name: str) -> Dict[str, Any]:
    data = pkgutil.get_data("omi_plugin.check", f"schemas/{name}")
    if data is None:
        raise FileNotFoundError(f"schema {name} is not packaged with omi_plugin.check")
    return json.loads(data)


def _inline(node: Any, current: str, stack: Tuple[str, ...] = ()) -> Any:
    """Replace every `$ref` by the schema it points to, resolved relative to the file it appears in."""
    if isinstance(node, list):
        return [_inline(item, current, stack) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        file, _, pointer = ref.partition("#")
        file = file or current
        key = f"{file}#{pointer}"
        if key in stack:
            raise ValueError(f"recursive $ref {ref} in {current}: cannot inline")
        target: Any = _load(file)
        for part in [p for p in pointer.split("/") if p]:
            target = target[part.replace("~1", "/").replace("~0", "~")]
        resolved = _inline(target, file, stack + (key,))
        # Sibling keywords of $ref (descriptions) are ignored in draft 4; ids of inlined parts would only
        # shift the base URI, which no longer matters once nothing is referenced.
        return {k: v for k, v in resolved.items() if k not in ("id", "$id", "$schema")} \
            if isinstance(resolved, dict) else resolved
    return {k: _inline(v, current, stack) for k, v in node.items()}


def format_checker() -> jsonschema.FormatChecker:
    """Only the formats these schemas use, each really checked."""
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time")(is_date_time)
    checker.checks("uri")(lambda value: not isinstance(value, str) or bool(_URI_RE.match(value)))
    return checker


@functools.lru_cache(maxsize=None)
def validator(name: str) -> Any:
    """A validator for one packaged schema: image-spec ones are draft 4, ModelPack's is draft 2020-12."""
    if name == MODELPACK_CONFIG:
        schema = _load(name)  # only local `#/$defs/...` references: every jsonschema version resolves those
        return jsonschema.Draft202012Validator(schema, format_checker=format_checker())
    return jsonschema.Draft4Validator(_inline(_load(name), name), format_checker=format_checker())


def field_path(path: List[Any]) -> str:
    """`layers[0].digest`, the same notation model.yaml errors use."""
    return model_yaml._field_path(path)


def _leaf_errors(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    """For oneOf/anyOf, the errors of the alternative whose type fits say more than "not valid under any"."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        branches: Dict[Any, List[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0], []).append(sub)
        fitting = [errs for errs in branches.values()
                   if not any(e.validator == "type" and not e.relative_path for e in errs)]
        if len(fitting) == 1:
            for sub in fitting[0]:
                yield from _leaf_errors(sub)
            return
    yield error


def explain_json(error: jsonschema.ValidationError) -> Tuple[str, str, str]:
    """(field, problem, fix) for a JSON document (OCI or ModelPack), reusing model.yaml's wording where it fits."""
    validator_name = error.validator
    field = field_path(list(error.absolute_path))
    if validator_name == "format":
        return field, f"{error.instance!r} is not a valid {error.validator_value}", _FORMAT_FIXES.get(
            str(error.validator_value), f"write a valid {error.validator_value}")
    if validator_name in ("minimum", "maximum"):
        return field, f"{error.instance!r} is out of range, {validator_name} {error.validator_value}", \
            f"use a value {'>=' if validator_name == 'minimum' else '<='} {error.validator_value}"
    if validator_name == "exclusiveMinimum":
        return field, f"{error.instance!r} is out of range, it must be above {error.validator_value}", \
            f"use a value > {error.validator_value}"
    if validator_name == "type":
        return field, f"expected {error.validator_value}, got {type(error.instance).__name__}", \
            f"write {_article(str(error.validator_value))} {error.validator_value} here"
    if validator_name in ("oneOf", "anyOf"):
        types = [str(e.validator_value) for e in error.context or () if e.validator == "type"]
        if types:
            return field, f"expected {' or '.join(types)}, got {type(error.instance).__name__}", \
                f"write {_article(types[0])} {' or '.join(types)} here"
    field, problem, fix = model_yaml._explain(error)
    if validator_name == "required":
        fix = f"add the `{field.rsplit('.', 1)[-1]}` field"
    elif validator_name == "additionalProperties":
        fix = fix.replace("remove it or use one of", "remove it; allowed fields are")
    elif validator_name not in ("enum", "pattern", "type", "minItems", "minLength", "minProperties", "uniqueItems"):
        fix = "see the specification this schema comes from"
    return field, problem, fix


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def explain_model_yaml(error: jsonschema.ValidationError) -> Tuple[str, str, str]:
    """model_yaml's own wording, plus the keywords it does not word (ranges, formats)."""
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "format"):
        return explain_json(error)
    return model_yaml._explain(error)


_FORMAT_FIXES = {
    "date-time": "write an RFC 3339 date-time such as 1970-01-01T00:00:00Z",
    "uri": "write an absolute URI such as https://example.com/blob",
}


def schema_errors(name: str, document: Any) -> List[Tuple[str, str, str]]:
    """Every violation of schema `name` by `document`, as sorted (field, problem, fix) triples, deduplicated."""
    out: List[Tuple[str, str, str]] = []
    for error in validator(name).iter_errors(document):
        for leaf in _leaf_errors(error):
            triple = explain_json(leaf)
            if triple not in out:
                out.append(triple)
    return sorted(out)


def model_yaml_errors(document: Any) -> List[jsonschema.ValidationError]:
    """Every model.yaml schema violation (not just the first, as load_model_yaml raises), in a stable order."""
    checker = jsonschema.Draft7Validator(model_yaml.model_schema(), format_checker=format_checker())
    return sorted(checker.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), str(e.validator)))
