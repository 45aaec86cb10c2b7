"""Strict YAML for model files: UTF-8 only, JSON values only, no repeated keys, no alias bombs.

PyYAML's `safe_load` accepts things a model author never means and that end up in an image's annotations: a key
written twice (the last one silently wins), a few lines of anchors and aliases that expand to millions of values,
bytes in another encoding, dates and sets that JSON cannot carry. `load` refuses each of them with a `YamlProblem`
naming where it is; unquoted dates stay the strings they were written as.

Pure Python (PyYAML only), no Pants imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# Values the composed document may expand to, past the nodes written out in the file: generous for real reuse of
# anchors (shared tensor specs), far below a billion-laughs document.
MAX_EXPANDED_NODES = 10_000
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True)
class YamlProblem(Exception):
    """Where (`line L, column C` or a field path) and what is wrong, with the fix."""

    where: str
    problem: str
    fix: str


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without the implicit timestamp type: `version: 2024-01-01` is the string the author wrote."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _at(node: Node) -> str:
    return f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}"


def decode(data: Union[bytes, str]) -> str:
    """The text of a UTF-8 file (a UTF-8 byte-order mark is allowed); any other encoding is refused."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise YamlProblem(f"line {line}", f"is not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
                          "save the file as UTF-8") from None


def _check_keys(node: MappingNode) -> None:
    seen: Dict[str, Node] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode):
            continue  # a non-scalar key is refused as a non-string key after construction
        if key.value in seen and key.tag == seen[key.value].tag:
            raise YamlProblem(_at(key), f"key {key.value!r} is repeated (first at {_at(seen[key.value])})",
                              "keep one of them: YAML would silently use the last")
        seen[key.value] = key


def _expanded_size(root: Node) -> int:
    """Nodes the document stands for once every alias is expanded, refusing early past the bound.

    The same walk refuses a mapping that repeats a key, so the composed graph is visited once."""
    sizes: Dict[int, int] = {}
    active: set = set()

    def size(node: Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise YamlProblem(_at(node), "an alias refers to a node that contains it", "write the value out")
        active.add(id(node))
        total = 1
        if isinstance(node, MappingNode):
            _check_keys(node)
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, SequenceNode):
            total += sum(size(item) for item in node.value)
        active.discard(id(node))
        if total > MAX_EXPANDED_NODES:
            raise YamlProblem(_at(root), f"anchors and aliases expand to more than {MAX_EXPANDED_NODES} values",
                              "write the values out instead of nesting aliases")
        sizes[id(node)] = total
        return total

    return size(root)


def _json_problem(value: Any, path: str) -> Optional[YamlProblem]:
    """The first value JSON cannot carry as written (dates are strings already), with its field path."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return YamlProblem(path or "(top level)", f"key {key!r} is a {type(key).__name__}, not a string",
                                   f"quote it: '{key}'")
            found = _json_problem(item, f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _json_problem(item, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return YamlProblem(path, f"{value} is not a JSON number", "write a finite number, or quote it as a string")
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    return YamlProblem(path, f"a YAML {type(value).__name__} is not a JSON value", "write a string, number, list or mapping")


def load(data: Union[bytes, str]) -> Any:
    """Parse one YAML document strictly; raises `YamlProblem` or `yaml.YAMLError` (malformed syntax)."""
    loader = _StrictLoader(decode(data))
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        value = loader.construct_document(node)
    finally:
        loader.dispose()
    found = _json_problem(value, "")
    if found:
        raise found
    return value


def control_character_problems(value: Any, path: str, free_text: List[str]) -> Optional[YamlProblem]:
    """The first string holding a control character (a trailing newline from `|`, a tab), outside free-text fields.

    Names, tags, versions and paths become OCI references, labels and directory names, where such characters are
    either invalid or invisible; `free_text` lists the dotted fields (e.g. `description`) where they are prose.
    """
    if path in free_text or path.rsplit(".", 1)[-1] in free_text:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = control_character_problems(item, f"{path}.{key}" if path else str(key), free_text)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = control_character_problems(item, f"{path}[{i}]", free_text)
            if found:
                return found
    elif isinstance(value, str):
        bad = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F), None)
        if bad is not None:
            return YamlProblem(path, f"{value!r} contains the control character {bad!r}",
                               "write the value on one line without it (a `|` block keeps a trailing newline)")
    return None
