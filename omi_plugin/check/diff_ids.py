"""The one diff-id check, for the image config's `rootfs.diff_ids` and the ModelPack config's `modelfs.diffIds`:
one entry per layer, each the sha256 of its layer uncompressed. Callers give their rule id and their own words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Sequence

from omi_contract.violation import Collector
from omi_plugin.check.blobs import SHA256_DIGEST_RE, UnsupportedCompression
from omi_plugin.check.layout_rules import LayoutScan


@dataclass(frozen=True)
class DiffIdWording:
    rule: str
    field: str  # e.g. "rootfs.diff_ids"
    count_fix: str
    compression_fix: str
    mismatch_fix: str


def check_diff_ids(out: Collector, scan: LayoutScan, layers: Sequence[Mapping[str, Any]], present: Sequence[bool],
                   diff_ids: List[Any], words: DiffIdWording, where: str) -> None:
    if len(diff_ids) != len(layers):
        out.add(words.rule, words.field, f"has {len(diff_ids)} entries for {len(layers)} layers", words.count_fix,
                where=where)
    for i, (layer, diff_id) in enumerate(zip(layers, diff_ids)):
        if not present[i] or not isinstance(layer.get("digest"), str) or not isinstance(diff_id, str) \
                or not SHA256_DIGEST_RE.match(diff_id):
            continue  # a missing blob or a malformed digest is reported by its own rule
        field = f"{words.field}[{i}]"
        try:
            actual = scan.store.uncompressed(str(layer["digest"]), str(layer.get("mediaType", "")))
        except UnsupportedCompression as e:
            out.add(words.rule, field, f"cannot verify: {e}", words.compression_fix, where=where)
            continue
        except (OSError, EOFError) as e:
            out.add(words.rule, field, f"layer {i} does not decompress: {e}", "rebuild the layer", where=where)
            continue
        if diff_id != actual:
            out.add(words.rule, field, f"is {diff_id}, but layer {i} uncompressed has sha256 {actual}",
                    words.mismatch_fix, where=where)
