"""Rule-test stand-in for `sandbox_tools.libraries_process`: runs a tool with the test's own interpreter, which has
the same pinned compressors (the pants-plugins resolve pins what the `[omi-tools]` lockfile does), instead of
building the tools' venv (which needs PyPI and the pex tool)."""

from __future__ import annotations

import sys

from pants.engine.process import Process
from pants.engine.rules import collect_rules, rule

from omi_plugin.util_rules.sandbox_tools import LibrariesProcessRequest


@rule
async def libraries_in_test_interpreter(request: LibrariesProcessRequest) -> Process:
    return Process(
        argv=(sys.executable, *request.argv),
        input_digest=request.input_digest,
        description=request.description,
        output_directories=request.output_directories,
        output_files=request.output_files,
        env={"PYTHONPATH": ":".join([".", *sys.path]), **dict(request.env)},
        level=request.level,
    )


def rules():
    return collect_rules()


def blob_store_rules():
    """What the blob store rules need in a RuleRunner: the tool processes (with the stand-in above) and dist/."""
    from pants.core.util_rules import adhoc_binaries, distdir, external_tool, system_binaries

    from omi_plugin.util_rules import sandbox_tools, stored_layers

    return [*stored_layers.rules(), *sandbox_tools.rules(), *collect_rules(), *adhoc_binaries.rules(),
            *system_binaries.rules(), *external_tool.rules(), *distdir.rules()]
