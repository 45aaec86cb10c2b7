"""`pants check`'s smoke test of an image built for another platform than the build machine's: the image's own
interpreter under Debian's qemu-user-static, asked by the same smoke test as the host run.

One typed request in (the packaged image, the platform, the smoke test's venv), one typed result out (what to print
and the exit code). The sandbox process is `omi_plugin/check/foreign_smoke.py`; its input is that platform's
image alone (the blobs its manifest names), not the rest of an index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Tuple

from pants.backend.python.util_rules.pex import VenvPex, VenvPexProcess
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths
from pants.engine.addresses import Address
from pants.engine.fs import AddPrefix, CreateDigest, Digest, DigestContents, DigestSubset, FileContent, MergeDigests, PathGlobs
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from omi_plugin.oci.layout import blob_path
from omi_plugin.oci.platforms import Platform
from omi_plugin.util_rules.model_inputs import ModelsDirectory
from omi_plugin.util_rules.sandbox_tools import CHECK_TOOLS, ToolProcessRequest

SPEC_FILE = "__foreign_smoke.json"
LAYOUT_DIR = "__platform.oci"
QEMU_SEARCH_PATH = ("/usr/bin", "/usr/local/bin", "/bin")


@dataclass(frozen=True)
class ForeignSmokeRequest:
    address: Address
    layout: Digest  # the packaged image layout (an index or one image)
    manifest_digest: str  # the platform's image manifest in it
    platform: Platform
    smoke: VenvPex  # the smoke test, on the build machine's interpreter
    models: ModelsDirectory  # the models the image carries, as the host smoke test serves them
    smoke_args: Tuple[str, ...]  # its arguments, without `--models-dir` and the command: the image gives both
    description: str


@dataclass(frozen=True)
class ForeignSmokeResult:
    exit_code: int
    output: str


@rule(desc="Smoke-test an image of another platform under qemu", level=LogLevel.DEBUG)
async def foreign_smoke(request: ForeignSmokeRequest) -> ForeignSmokeResult:
    platform = request.platform
    qemu = await Get(BinaryPaths, BinaryPathRequest(binary_name=platform.qemu, search_path=QEMU_SEARCH_PATH))
    if qemu.first_path is None:
        return ForeignSmokeResult(0, f"omi smoke: the {platform.name} image's own interpreter was not started: "
                                     f"{platform.qemu} is not installed (apt-get install qemu-user-static to run it)\n")
    manifest_path = blob_path(request.manifest_digest)
    manifest = json.loads((await Get(DigestContents, DigestSubset(request.layout, PathGlobs([manifest_path]))))[0].content)
    blobs = [manifest_path, blob_path(manifest["config"]["digest"]),
             *(blob_path(layer["digest"]) for layer in manifest["layers"])]
    platform_layout = await Get(Digest, AddPrefix(await Get(Digest, DigestSubset(request.layout, PathGlobs(blobs))),
                                                  LAYOUT_DIR))
    smoke = await Get(Process, VenvPexProcess(request.smoke, argv=request.smoke_args, description="(smoke test)"))
    # The emulator's fingerprint is in the key: another qemu runs the image anew.
    spec = {"layout": LAYOUT_DIR, "manifest": request.manifest_digest, "qemu": qemu.first_path.path,
            "qemu_fingerprint": qemu.first_path.fingerprint,
            "loader": platform.loader, "library_path": list(platform.library_path), "platform": platform.name,
            "models_dir": request.models.path, "env": dict(smoke.env)}
    spec_digest = await Get(Digest, CreateDigest([FileContent(SPEC_FILE, json.dumps(spec, sort_keys=True).encode())]))
    wrapper = await Get(Process, ToolProcessRequest(
        packages=CHECK_TOOLS,
        module="omi_plugin.check.foreign_smoke",
        args=(SPEC_FILE, "--"),
        input_digest=await Get(Digest, MergeDigests([spec_digest, platform_layout, request.models.digest])),
        description=request.description,
        with_libraries=True,  # zstd layers
    ))
    process = Process(
        argv=(*wrapper.argv, *smoke.argv),
        input_digest=await Get(Digest, MergeDigests([wrapper.input_digest, smoke.input_digest])),
        immutable_input_digests={**dict(wrapper.immutable_input_digests or {}),
                                 **dict(smoke.immutable_input_digests or {})},
        append_only_caches={**dict(wrapper.append_only_caches or {}), **dict(smoke.append_only_caches or {})},
        env=wrapper.env,
        description=request.description,
        level=LogLevel.DEBUG,
        timeout_seconds=1200,
        # The model files are links into the blob store (or the repository), named by their sha256s in the manifest
        # and in `MODEL_FILE_DIGESTS` of the models directory: the key names the bytes the run reads.
        cache_scope=ProcessCacheScope.SUCCESSFUL,
    )
    result = await Get(FallibleProcessResult, Process, process)
    return ForeignSmokeResult(result.exit_code, result.stdout.decode() + result.stderr.decode())


def rules():
    return collect_rules()
