"""Command line: push layouts to a registry, pull images by digest. Progress on stderr, a JSON result on stdout.

    python -m omi_plugin.registry push --layout DIR [--modelpack-layout DIR [--omlmd-layout DIR]
        [--attestations-layout DIR]]
        --registry HOST[:PORT] --repository NAME [--tag T ...] [--insecure] [--mount-from REPO ...]
        [--select REF ...] [--expect-digest sha256:...] [--expect-model-digest sha256:...] [--output result.json]
    python -m omi_plugin.registry pull --reference REGISTRY/REPO@sha256:... --out DIR [--platform linux/amd64]
        [--insecure] [--ref-name NAME] [--output result.json]
    python -m omi_plugin.registry fetch-model --reference REGISTRY/REPO@sha256:... --store DIR [--model-dir D]
        [--insecure]
        [--output result.json]

Exit status 0 on success, 1 on any failure with a single line on stderr (never a traceback, never a secret).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

from omi_plugin.oci.descriptor import DescriptorError
from omi_plugin.oci.layout import LayoutError
from omi_plugin.registry.errors import RegistryError
from omi_plugin.registry.reference import ReferenceError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m omi_plugin.registry",
                                     description="Push OCI layouts to a registry; pull images by digest.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    push = verbs.add_parser("push", help="push an image layout (and its model artifact)")
    push.add_argument("--layout", required=True, help="OCI image layout directory of the image")
    push.add_argument("--modelpack-layout", help="ModelPack artifact layout (the image's subject); pushed as <tag>-model")
    push.add_argument("--omlmd-layout", help="the omlmd flavour's layout (its subject: the ModelPack artifact); "
                                             "pushed as <tag>-omlmd")
    push.add_argument("--attestations-layout", help="layout of the SBOM and provenance, referrers of the image and "
                                                    "the model artifact; pushed untagged")
    push.add_argument("--registry", required=True, help="HOST[:PORT]")
    push.add_argument("--repository", required=True, help="repository path, e.g. team/model")
    push.add_argument("--tag", action="append", default=[], help="tag for the image (repeatable)")
    push.add_argument("--insecure", action="store_true", help="allow unverified TLS / plain HTTP to this registry")
    push.add_argument("--mount-from", action="append", default=[],
                      help="repository of the same registry that may hold base layers (cross-repo mount)")
    push.add_argument("--select", action="append", default=[], help="push only these ref names / digests")
    push.add_argument("--expect-digest", help="fail unless the layout's image manifest has this digest")
    push.add_argument("--expect-model-digest", help="fail unless the ModelPack layout's manifest has this digest")
    push.add_argument("--output", help="write the JSON result here (default: stdout)")
    pull = verbs.add_parser("pull", help="pull an image by digest into an OCI layout")
    pull.add_argument("--reference", required=True, help="REGISTRY/REPO@sha256:...")
    pull.add_argument("--out", required=True, help="destination OCI layout directory")
    pull.add_argument("--platform", default="linux/amd64", help="platform to choose from an index (os/arch)")
    pull.add_argument("--insecure", action="store_true", help="allow unverified TLS / plain HTTP to this registry")
    pull.add_argument("--ref-name", help="ref name to record in the layout's index.json")
    pull.add_argument("--output", help="write the JSON result here (default: stdout)")
    fetch = verbs.add_parser("fetch-model", help="fetch a model artifact by digest into the blob store")
    fetch.add_argument("--reference", required=True, help="REGISTRY/REPO@sha256:... of a ModelPack or omlmd artifact")
    fetch.add_argument("--store", required=True, help="the blob store's directory")
    fetch.add_argument("--insecure", action="store_true", help="allow unverified TLS / plain HTTP to this registry")
    fetch.add_argument("--output", help="write the JSON result here (default: stdout)")
    fetch.add_argument("--model-dir", default="", help="the model's directory in the image (models/NAME): each raw "
                       "layer is downloaded straight into the image layer of its file")
    return parser


def _emit(result: Dict[str, Any], output: Optional[str]) -> None:
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if output:
        tmp = output + ".partial"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)
    else:
        sys.stdout.write(text)


def run(argv: List[str]) -> Dict[str, Any]:
    args = _parser().parse_args(argv)
    if args.verb == "push":
        from omi_plugin.registry.push import push

        result = push(args.layout, registry=args.registry, repository=args.repository, tags=args.tag,
                      modelpack_layout=args.modelpack_layout, omlmd_layout=args.omlmd_layout,
                      attestations_layout=args.attestations_layout, insecure=args.insecure,
                      mount_from=args.mount_from, select=args.select, expect_digest=args.expect_digest,
                      expect_model_digest=args.expect_model_digest)
        _emit(result.to_json(), args.output)
        return result.to_json()
    if args.verb == "fetch-model":
        return _fetch_model(args.reference, args.store, args.insecure, args.output, args.model_dir)
    from omi_plugin.registry.pull import pull

    os_name, _, arch = args.platform.partition("/")
    pulled = pull(args.reference, args.out, platform=(os_name, arch or "amd64"), insecure=args.insecure,
                  ref_name=args.ref_name)
    _emit(pulled.to_json(), args.output)
    return pulled.to_json()


def _fetch_model(reference: str, store_root: str, insecure: bool, output: Optional[str],
                 model_dir: str = "") -> Dict[str, Any]:
    from omi_plugin.blob_store.store import BlobStore
    from omi_plugin.registry.client import Registry
    from omi_plugin.registry.model_fetch import fetch_to_store
    from omi_plugin.registry.pull import require_digest

    store = BlobStore(store_root)
    client = Registry(require_digest(reference).registry, insecure=insecure)
    try:
        found = fetch_to_store(client, reference, store, model_dir=model_dir).to_json()
    finally:
        client.close()
    found["problems"] = list(store.problems)
    _emit(found, output)
    return found


def main(argv: Optional[List[str]] = None) -> int:
    try:
        run(sys.argv[1:] if argv is None else argv)
        return 0
    except RegistryError as e:
        print(f"error: {e.line()}", file=sys.stderr)
    except (LayoutError, ReferenceError, DescriptorError) as e:
        print(f"error: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted (nothing was tagged unless the tag lines were printed)", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror or e}".replace(": : ", ": "), file=sys.stderr)
    except Exception as e:  # noqa: BLE001 — the CLI contract is one line, not a traceback
        if os.environ.get("OMI_REGISTRY_DEBUG"):
            raise
        print(f"error: internal error: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''} "
              "(set OMI_REGISTRY_DEBUG=1 for a traceback)", file=sys.stderr)
    return 1
