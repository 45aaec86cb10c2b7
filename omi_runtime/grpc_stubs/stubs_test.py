"""The committed stubs must be exactly what protos/generate.py produces from protos/*.proto."""

from __future__ import annotations

import importlib.util
from pathlib import Path

STUBS_DIR = Path(__file__).resolve().parent
GENERATE = STUBS_DIR.parent.parent / "protos" / "generate.py"


def test_committed_stubs_are_up_to_date(tmp_path):
    spec = importlib.util.spec_from_file_location("omi_protos_generate", GENERATE)
    assert spec and spec.loader, f"{GENERATE} is missing"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.generate(tmp_path)
    assert fresh
    stale = [p.name for p in fresh if not (STUBS_DIR / p.name).is_file()
             or (STUBS_DIR / p.name).read_text() != p.read_text()]
    assert not stale, f"stale generated stubs {stale}: run `python protos/generate.py` and commit the result"


def test_generated_imports_are_package_relative():
    for path in STUBS_DIR.glob("*_pb2_grpc.py"):
        text = path.read_text()
        assert "\nimport " not in text.replace("\nimport grpc\n", "\n").replace("\nimport warnings\n", "\n"), path
