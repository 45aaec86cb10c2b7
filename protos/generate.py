"""Generate the Python gRPC stubs of omi_runtime from the .proto files in this directory.

Usage: python protos/generate.py [OUTPUT_DIR]   (default: omi_runtime/grpc_stubs)

Runs grpcio-tools' protoc, then rewrites the generated top-level imports (`import x_pb2`) into package-relative
ones (`from . import x_pb2`) so the stubs live inside the omi_runtime package without touching sys.path.
The output is committed; omi_runtime/grpc_stubs/stubs_test.py fails when it is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PROTOS_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = PROTOS_DIR.parent / "omi_runtime" / "grpc_stubs"
PROTO_FILES = ("grpc_predict_v2.proto", "modzy_model_v2.proto")

_TOP_LEVEL_IMPORT = re.compile(r"^import (\w+_pb2) as (\w+)$", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Write *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto into out_dir; return the written paths."""
    from grpc_tools import protoc  # imported here so `--help`-style use needs no grpcio-tools

    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTOS_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(PROTOS_DIR / name) for name in PROTO_FILES),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {', '.join(PROTO_FILES)}")
    written = []
    for name in PROTO_FILES:
        stem = name[: -len(".proto")]
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            path = out_dir / f"{stem}{suffix}"
            text = _TOP_LEVEL_IMPORT.sub(r"from . import \1 as \2", path.read_text())
            path.write_text(text)
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    for path in generate(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
