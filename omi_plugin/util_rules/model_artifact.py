"""The Pants side of a model taken from a registry artifact (`omi_model(model_artifact=...)`): the artifact whole in
the blob store, by digest.

The store is asked first, in the rule (a record and a `stat` per blob): a model fetched by an earlier build needs no
network. Otherwise a sandboxed `fetch-model` process downloads it into the store; it is never cached by Pants, since
what it leaves is in the store, not in its output. Pants-free logic lives in `omi_plugin/registry/model_fetch.py`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestContents
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, _uncacheable_rule, collect_rules
from pants.util.logging import LogLevel

from omi_plugin.blob_store.store import BlobStore
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.model_fetch import StoredArtifact, find_stored
from omi_plugin.registry.pull import require_digest
from omi_plugin.registry.reference import ReferenceError
from omi_plugin.subsystem import OmiSubsystem
from omi_plugin.util_rules.sandbox_tools import REGISTRY_TOOLS, ToolProcessRequest, last_error_line
from omi_plugin.util_rules.stored_layers import BlobStoreLocation, report

_RESULT = "__fetched.json"


class ModelArtifactError(ValueError):
    """One line: `<target>: model_artifact: <reference>: <what is wrong> (<how to fix it>)`."""


@dataclass(frozen=True)
class StoredModelArtifactRequest:
    address: Address
    reference: str  # digest-pinned (the field's problem is judged before this is asked)
    model_dir: str = ""  # the model's directory in the image: raw layers are downloaded into their image layers


@_uncacheable_rule(desc="Fetch a model artifact into the blob store", level=LogLevel.DEBUG)
async def stored_model_artifact(request: StoredModelArtifactRequest, location: BlobStoreLocation,
                                omi: OmiSubsystem) -> StoredArtifact:
    store = BlobStore(location.root)
    where = f"{request.address}: model_artifact"
    try:
        found = find_stored(store, request.reference)
        insecure = omi.insecure_registry(require_digest(request.reference).registry)
    except (RegistryError, ReferenceError) as e:
        raise ModelArtifactError(f"{where}: {e}") from None
    except OSError as e:
        raise ModelArtifactError(f"{where}: the blob store cannot be read ({e})") from None
    report(store)
    if found is not None:
        return found
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(["DOCKER_CONFIG", "HOME"]))
    process = await Get(Process, ToolProcessRequest(
        packages=REGISTRY_TOOLS,
        module="omi_plugin.registry",
        args=("fetch-model", "--reference", request.reference, "--store", store.root, "--output", _RESULT,
              *(("--model-dir", request.model_dir) if request.model_dir else ()),
              *(("--insecure",) if insecure else ())),
        input_digest=EMPTY_DIGEST,
        description=f"Fetch model artifact {request.reference} (into the blob store)",
        output_files=(_RESULT,),
        level=LogLevel.INFO,
        extra_env=tuple(sorted((k, v) for k, v in env.items() if v)),  # registry credentials
        with_libraries=True,  # zstd tar layers
    ))
    result = await Get(FallibleProcessResult, Process,
                       dataclasses.replace(process, cache_scope=ProcessCacheScope.PER_SESSION))
    if result.exit_code != 0:
        raise ModelArtifactError(f"{where}: {last_error_line(result, 'the fetch failed')}")
    contents = await Get(DigestContents, Digest, result.output_digest)
    answer = json.loads(contents[0].content)
    store.problems.extend(str(problem) for problem in answer.pop("problems", []))
    report(store)
    return StoredArtifact.from_json(answer)


def rules():
    return collect_rules()
