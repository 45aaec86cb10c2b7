"""What the built artifacts must agree with, derived from model.yaml even when model.yaml itself is faulty.

Image and ModelPack rules compare labels, env and tags against these; a value that cannot be derived is None
and the comparisons that need it are skipped (the metadata rules already report why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from omi_contract.interfaces import DEFAULT_INTERFACES
from omi_plugin.metadata.model_yaml import expand_files


@dataclass(frozen=True)
class Expectations:
    model_name: Optional[str] = None
    interfaces: Optional[Tuple[str, ...]] = None
    run_id: Optional[str] = None
    files: Optional[Tuple[str, ...]] = None
    spec_version: str = "1.0"

    @staticmethod
    def from_model_yaml(data: Optional[Mapping[str, Any]], run_id: Optional[str] = None,
                        spec_version: str = "1.0", model_files: Optional[Mapping[str, int]] = None) -> "Expectations":
        """`model_files` (paths relative to model.yaml's directory), when known, expands directory entries."""
        data = data or {}
        name = data.get("name") if isinstance(data.get("name"), str) else None
        raw_interfaces = data.get("interfaces", list(DEFAULT_INTERFACES))
        interfaces = tuple(raw_interfaces) if isinstance(raw_interfaces, list) and all(
            isinstance(i, str) for i in raw_interfaces) else None
        if run_id is None and isinstance(data.get("run_id"), str):
            run_id = data["run_id"]
        raw_files = data.get("files")
        files = tuple(raw_files) if isinstance(raw_files, list) and all(isinstance(f, str) for f in raw_files) \
            else None
        if files is not None and model_files is not None:
            files = tuple(rel for e in expand_files(files, model_files) for rel in (e.new if e.names else (e.entry,)))
        return Expectations(name, interfaces, run_id, files, spec_version)
