"""Sandbox entry point: compile the Python sources of one layer into a layer of `__pycache__/*.pyc` files.

    python -m omi_plugin.bytecode.compile_layer SPEC.json OUT_DIR

SPEC: {"interpreter_layers": [{"path": "base.tar", "media_type": "..."}], "python": "usr/bin/python3.11",
       "loader": "lib64/ld-linux-x86-64.so.2", "library_path": ["usr/lib/x86_64-linux-gnu"],
       "source_layer": "deps.tar", "created_by": "..."}

The compiler is the image's own interpreter, run from the unpacked base layers through their own dynamic loader, so
the bytecode matches the Python that will import it, and depends on the locked base alone, not on the build
machine's Python. Hash-based, unchecked `.pyc` files (PEP 552) carry no source mtimes, so they are reproducible,
and the image's read-only root filesystem never needs a write at import time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Iterator, List, Mapping

from omi_plugin.oci.image import Layer
from omi_plugin.oci.layer_output import run_spec_tool, write_layer_output
from omi_plugin.oci.rootfs import RootfsError, interpreter_argv, unpack_layer
from omi_plugin.oci.tar import Entry

# Runs inside the image's interpreter. Sorted traversal and a fixed hash seed keep the output byte-stable.
_COMPILE = r"""
import compileall, py_compile, sys
ok = compileall.compile_dir(sys.argv[1], stripdir=sys.argv[1], prependdir="/", quiet=2, workers=1,
                            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


class BytecodeError(RuntimeError):
    """The interpreter could not be started from the base layers."""


def _pyc_entries(stage: str) -> Iterator[Entry]:
    for dirpath, _, files in os.walk(stage):
        if os.path.basename(dirpath) != "__pycache__":
            continue
        for name in files:
            if name.endswith(".pyc"):
                full = os.path.join(dirpath, name)
                yield Entry.file(os.path.relpath(full, stage).replace(os.sep, "/"), full, mode=0o644)


def compile_layer(spec: Mapping[str, Any], out_dir: str, work: str) -> Layer:
    rootfs, stage = os.path.join(work, "rootfs"), os.path.join(work, "stage")
    os.makedirs(rootfs)
    os.makedirs(stage)
    for layer in spec["interpreter_layers"]:
        unpack_layer(layer, rootfs)
    unpack_layer(spec["source_layer"], stage, only_python=True)
    try:
        interpreter = interpreter_argv(rootfs, spec["loader"], spec["library_path"], spec["python"])
    except RootfsError as e:
        raise BytecodeError(f"the base image cannot compile bytecode: {e}") from None
    argv = [*interpreter, "-I", "-S", "-c", _COMPILE, stage]
    result = subprocess.run(argv, env={"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"}, capture_output=True, text=True)
    if result.returncode != 0:
        raise BytecodeError(f"compiling with {spec['python']} from the base image failed: "
                            f"{(result.stderr or result.stdout).strip()[-2000:]}")

    return write_layer_output(_pyc_entries(stage), out_dir, str(spec.get("created_by", "")))


def main(argv: List[str]) -> int:
    return run_spec_tool(argv, __doc__ or "", lambda spec, out: compile_layer(spec, out, work="__bytecode_work"),
                         errors=(BytecodeError,))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
