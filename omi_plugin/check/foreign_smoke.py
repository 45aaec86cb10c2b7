"""Sandbox entry point of `pants check`'s smoke test of an image built for another platform than the machine's: the
image's own interpreter, libraries and model files, started under qemu-user and asked by the smoke test's clients.

    python -m omi_plugin.check.foreign_smoke SPEC.json -- SMOKE_ARGV...

SPEC: {"layout": "__platform.oci", "manifest": "sha256:...", "qemu": "/usr/bin/qemu-aarch64-static",
       "loader": "lib/ld-linux-aarch64.so.1", "library_path": ["usr/lib/aarch64-linux-gnu"],
       "platform": "linux/arm64", "models_dir": "models", "env": {...the smoke test's own environment...}}

The image's layers but its model files and records are unpacked into a root filesystem in the sandbox (the model
files, gigabytes for some models, are the same bytes as the build machine's `models_dir`, which the host smoke test
serves too); the smoke test (`SMOKE_ARGV`, run on the machine's own interpreter) then starts `qemu <loader>
--library-path <libraries> <the image's python> -m omi_runtime` for each interface, with the image's `PYTHONPATH`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from typing import Any, List, Mapping, Sequence

from omi_contract import image as contract
from omi_plugin.oci.image import parse_env
from omi_plugin.oci.layout import Layout, LayoutError
from omi_plugin.oci.rootfs import RootfsError, interpreter_argv, unpack_layer

ROOTFS = "__rootfs"
# Runs in the image's interpreter: the image's PYTHONPATH, read from its config, resolved inside the root filesystem.
_START = "import runpy, sys; sys.path[0:0] = sys.argv[1].split(':'); del sys.argv[1]; " \
         "runpy.run_module('omi_runtime', run_name='__main__', alter_sys=True)"


class ForeignSmokeError(RuntimeError):
    """The image cannot be started this way, in one line."""


def server_argv(spec: Mapping[str, Any], root: str) -> List[str]:
    """Unpack the image into `root` (absolute: the server runs wherever the smoke test starts it); the argv that
    serves it from there as its own entrypoint would."""
    layout = Layout(spec["layout"])
    try:
        manifest = layout.read_json_blob(spec["manifest"])
        config = layout.read_json_blob(manifest["config"]["digest"])
    except (LayoutError, KeyError) as e:
        raise ForeignSmokeError(f"the {spec['platform']} image cannot be read: {e}") from None
    runtime = config.get("config") or {}
    command = [*(runtime.get("Entrypoint") or []), *(runtime.get("Cmd") or [])]
    if command[1:3] != ["-m", "omi_runtime"]:
        raise ForeignSmokeError(f"the {spec['platform']} image does not start `python -m omi_runtime` "
                                f"({' '.join(command) or 'no command'})")
    notes = [h.get("created_by", "") for h in config.get("history") or [] if not h.get("empty_layer")]
    layers = manifest.get("layers") or []
    if len(notes) != len(layers):
        notes = [""] * len(layers)  # unpack every layer when the history does not say which is which
    try:
        for layer, note in zip(layers, notes):
            if not note.startswith((f"{contract.MODEL_FILE_LAYER_NOTE} ", f"{contract.MODEL_RECORD_LAYER_NOTE} ")):
                unpack_layer({"path": layout.blob_file(layer["digest"]), "media_type": layer["mediaType"]}, root)
    except (OSError, tarfile.TarError, ValueError, KeyError) as e:
        raise ForeignSmokeError(f"the {spec['platform']} image's layers cannot be unpacked: "
                                f"{type(e).__name__}: {e}") from None
    env = dict(parse_env(runtime.get("Env") or []))
    path = ":".join(os.path.join(root, p.lstrip("/")) for p in env.get("PYTHONPATH", "").split(":") if p)
    try:
        python = interpreter_argv(root, spec["loader"], spec["library_path"], command[0])
    except RootfsError as e:
        raise ForeignSmokeError(f"the {spec['platform']} image cannot be started: {e}") from None
    return [spec["qemu"], *python, "-c", _START, path]


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        spec = json.load(f)
    try:
        server = server_argv(spec, os.path.abspath(ROOTFS))
    except ForeignSmokeError as e:
        print(f"omi smoke: {e}")
        return 1
    models_dir = spec["models_dir"]
    print(f"omi smoke: the {spec['platform']} image's own interpreter, under {os.path.basename(spec['qemu'])}:",
          flush=True)
    done = subprocess.run([*argv[2:], "--models-dir", models_dir, "--", *server], env=spec["env"])
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
