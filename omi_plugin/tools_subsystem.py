"""The `[omi-tools]` options: the pinned third-party libraries of omi's sandboxed tools (the layer compressors, and
the checker's JSON Schema validator and YAML parser, and the signer's ECDSA).

Compressed layer bytes are a function of the compressor's implementation, not of the data alone, so the compressors
are wheels that bundle their own deflate (libdeflate) and zstd code, pinned by the lockfile shipped with the
plugin: the same lockfile gives the same layer digests on every machine.
"""

from __future__ import annotations

from pants.backend.python.subsystems.python_tool_base import LockfileRules, PythonToolRequirementsBase
from pants.engine.rules import collect_rules


class OmiToolsSubsystem(PythonToolRequirementsBase):
    options_scope = "omi-tools"
    help = (
        "The Python libraries of omi's sandboxed tools: `deflate` (libdeflate) writes gzip layers and `zstandard` "
        "writes and reads zstd layers; the checker validates with `jsonschema` and reads model.yaml with `PyYAML`; "
        "`cryptography` signs and verifies (ECDSA) when a signing key is configured. "
        "The compressors' versions fix the compressed bytes, hence the image digests: changing them changes the "
        "digest of every compressed layer."
    )

    default_version = "deflate==0.8.1"
    default_extra_requirements = ["zstandard==0.25.0", "jsonschema==4.17.3", "PyYAML==6.0.1", "cryptography==43.0.3"]
    default_requirements = [default_version, *default_extra_requirements]

    register_interpreter_constraints = True
    default_interpreter_constraints = ["CPython>=3.9,<3.14"]

    default_lockfile_resource = ("omi_plugin", "omi_tools.lock")
    lockfile_rules_type = LockfileRules.SIMPLE


def rules():
    return (*collect_rules(), *OmiToolsSubsystem.rules())
