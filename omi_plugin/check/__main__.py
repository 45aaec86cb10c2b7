"""CLI of the static checker (what `pants check` runs in its sandbox, on CPython 3.9):

    python -m omi_plugin.check --target ADDR --model-yaml PATH [--model-files-json F] [--layout DIR]
        [--modelpack-layout DIR] [--omi-spec 1.0|1.1] [--repository R] [--source-files-json F] [--rule-ids]
    python -m omi_plugin.check --list-rules

Prints every violation on its own line, then a summary line. Exit 0: compliant; 1: violations; 2: bad usage.
`--model-files-json` holds {"relative/path": size, ...}; `--source-files-json` a list of source-root-relative
Python files shipped in the image.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from omi_contract.image import SPEC_VERSIONS
from omi_contract.violation import report, run_cli
from omi_plugin.check.catalog import RULES
from omi_plugin.check.checker import CheckRequest, run_checks


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m omi_plugin.check", description="OMI / ModelPack compliance checker")
    p.add_argument("--target", help="the omi_model target's address, prefixed to every line")
    p.add_argument("--model-yaml", help="path of the target's model.yaml")
    p.add_argument("--model-files-json", help='JSON file: {"path relative to model.yaml": size in bytes}')
    p.add_argument("--layout", help="OCI image layout directory of the serving image")
    p.add_argument("--modelpack-layout", help="OCI layout directory of the ModelPack artifact")
    p.add_argument("--omi-spec", default="1.0", choices=SPEC_VERSIONS, help="OMI spec version of the labels")
    p.add_argument("--repository", help="the target's repository name")
    p.add_argument("--source-files-json", help="JSON file: list of source-root-relative Python files in the image")
    p.add_argument("--text-model-json", help="JSON file: what package time read of a huggingface model's files "
                   "(omi_contract.huggingface.DirectoryFacts)")
    p.add_argument("--layout-name", help="name of the image layout in messages (default: its path)")
    p.add_argument("--modelpack-layout-name", help="name of the ModelPack layout in messages (default: its path)")
    p.add_argument("--attestations-layout", help="OCI layout of the SBOM and provenance referrers")
    p.add_argument("--attestations-layout-name", help="name of the attestations layout in messages")
    p.add_argument("--model-artifact", help="REGISTRY/REPO@sha256:... the model files come from (the layout of the "
                                            "model artifact is a copy of it)")
    p.add_argument("--verify-key", help="PEM public key every signature must verify with")
    p.add_argument("--rule-ids", action="store_true", help="append [OMIxxx] to each line")
    p.add_argument("--list-rules", action="store_true", help="print every rule id and exit")
    return p


def _load_json(path: Optional[str], kind: type, what: str) -> Any:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError) as e:
        raise _UsageError(f"{path}: cannot read {what}: {e}") from None
    if not isinstance(value, kind):
        raise _UsageError(f"{path}: {what} must be a JSON {kind.__name__}")
    return value


def _read_key(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise _UsageError(f"{path}: cannot read the verify key: {e.strerror}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.list_rules:
        for rule, text in RULES.items():
            print(f"{rule}  {text}")
        return 0
    if not args.target or not args.model_yaml:
        print("omi check: error: --target and --model-yaml are required", file=sys.stderr)
        return 2
    try:
        model_files = _load_json(args.model_files_json, dict, "model files")
        source_files = _load_json(args.source_files_json, list, "source files")
        verify_key = _read_key(args.verify_key)
        text_model = _load_json(args.text_model_json, dict, "huggingface model facts")
    except _UsageError as e:
        print(f"omi check: error: {e}", file=sys.stderr)
        return 2
    request = CheckRequest(
        target=args.target, model_yaml=args.model_yaml,
        model_files={str(k): int(v) if isinstance(v, int) else -1 for k, v in model_files.items()}
        if model_files is not None else None,
        layout=args.layout, modelpack_layout=args.modelpack_layout, spec_version=args.omi_spec,
        repository=args.repository, source_files=[str(s) for s in source_files] if source_files is not None else None,
        layout_name=args.layout_name, modelpack_layout_name=args.modelpack_layout_name,
        attestations_layout=args.attestations_layout, attestations_layout_name=args.attestations_layout_name,
        verify_key=verify_key, text_model_facts=json.dumps(text_model) if text_model is not None else None,
        model_artifact=args.model_artifact)
    return report(run_checks(request), "omi check", args.rule_ids)


if __name__ == "__main__":
    run_cli(main, "omi check", "the checker crashed")
