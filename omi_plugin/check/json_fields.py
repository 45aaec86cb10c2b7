"""Reading fields of JSON documents the checker cannot trust: a field of the wrong type reads as empty.

The schema rules report the wrong type; every other rule goes on with what is there.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping


def object_field(doc: Mapping[str, Any], key: str) -> Dict[str, Any]:
    """`doc[key]` when it is a JSON object, else an empty one."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}
