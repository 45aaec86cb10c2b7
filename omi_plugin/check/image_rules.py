"""Image rules (OMI203, OMI207-213, OMI216-220): what makes the serving image an OMI model image.

Runs on a layout already scanned by `layout_rules`: config schema, media types, diff ids against the actual
(uncompressed) layers, the `ml.openmodel.*` annotation and label, the OMI environment, exposed port, user, and
the origin tag. `spec_version` "1.1" checks the 1.1 labels (interfaces + protocols + port + model_name).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from omi_contract import image as contract
from omi_contract.interfaces import INTERFACE_ALIASES, PROTOCOLS
from omi_contract.violation import Collector
from omi_plugin.check import schemas
from omi_plugin.check.diff_ids import DiffIdWording, check_diff_ids
from omi_plugin.check.expectations import Expectations
from omi_plugin.check.json_fields import object_field
from omi_plugin.check.layout_rules import LayoutScan, ManifestEntry, verify_blob
from omi_plugin.oci import media_types as mt

LAYER_MEDIA_TYPES = (mt.LAYER_TAR, mt.LAYER_TAR_GZIP, mt.LAYER_TAR_ZSTD)
ROOT_USERS = ("", "0", "root")


def check_image(out: Collector, scan: LayoutScan, expect: Expectations) -> None:
    """Every image rule on every image manifest of the layout."""
    for entry in scan.manifests:
        if entry.manifest is not None:
            _check_manifest(out, scan, entry, expect)


def _check_manifest(out: Collector, scan: LayoutScan, entry: ManifestEntry, expect: Expectations) -> None:
    manifest, where = entry.manifest or {}, entry.where
    if manifest.get("mediaType", mt.MANIFEST) != mt.MANIFEST:
        out.add("OMI207", "mediaType", f"{manifest.get('mediaType')!r} is not the OCI image manifest type",
                f"use {mt.MANIFEST}", where=where)
    config_descriptor = object_field(manifest, "config")
    if config_descriptor.get("mediaType") != mt.CONFIG:
        out.add("OMI207", "config.mediaType",
                f"{config_descriptor.get('mediaType')!r} is not the OCI image config type (this is not a runnable "
                f"image)", f"use {mt.CONFIG}", where=where)
    layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
    for i, layer in enumerate(layers):
        if layer.get("mediaType") not in LAYER_MEDIA_TYPES:
            out.add("OMI207", f"layers[{i}].mediaType", f"{layer.get('mediaType')!r} is not an OCI layer type",
                    "use " + " or ".join(LAYER_MEDIA_TYPES), where=where)
    present = [verify_blob(out, scan, layer, where, f"layers[{i}]") for i, layer in enumerate(layers)]
    annotations = object_field(manifest, "annotations")
    check_run_id_annotation(out, annotations, expect, where)

    if not verify_blob(out, scan, config_descriptor, where, "config"):
        _check_omi_keys(out, "OMI209", annotations, "annotations", where, expect, None)
        return
    config_where = scan.where("config", str(config_descriptor["digest"]))
    config = scan.read_json(out, "OMI203", str(config_descriptor["digest"]), config_where)
    if config is None:
        return
    for field_path, problem, fix in schemas.schema_errors(schemas.IMAGE_CONFIG, config):
        out.add("OMI203", field_path, problem, fix, where=config_where)
    runtime = object_field(config, "config")
    env = _env(runtime.get("Env"))
    labels = object_field(runtime, "Labels")

    _check_diff_ids(out, scan, layers, present, config, config_where)
    _check_platform(out, entry, config)
    _check_omi_keys(out, "OMI209", annotations, "annotations", where, expect, env)
    _check_omi_keys(out, "OMI210", labels, "config.Labels", config_where, expect, env)
    _check_env(out, env, config_where, expect)
    _check_ports(out, runtime, env, config_where)
    _check_user(out, runtime, config_where)
    if expect.run_id and expect.run_id not in entry.refs:
        tags = ", ".join(entry.refs) or "none"
        out.add("OMI216", "manifests[].annotations[org.opencontainers.image.ref.name]",
                f"the run id {expect.run_id!r} is not among the image's tags: {tags}",
                "tag the image with the model's run id, its OMI origin tag", where=f"{scan.name}/index.json")


def _check_platform(out: Collector, entry: ManifestEntry, config: Mapping[str, Any]) -> None:
    """OMI221: an image index says of each image the platform its config says (runtimes pick by the index's)."""
    if entry.platform is None:
        return
    listed = {k: entry.platform.get(k) for k in ("os", "architecture", "variant") if entry.platform.get(k)}
    actual = {k: config.get(k) for k in ("os", "architecture", "variant") if config.get(k)}
    if listed != actual:
        shown = lambda p: "/".join(str(p.get(k)) for k in ("os", "architecture", "variant") if p.get(k))  # noqa: E731
        out.add("OMI221", "manifests[].platform", f"lists {entry.digest} as {shown(listed) or 'no platform'}, "
                f"but its config says {shown(actual) or 'none'}", "list each image under its own platform "
                "(rebuild the index)", where=entry.index_where)


def check_run_id_annotation(out: Collector, annotations: Mapping[str, Any], expect: Expectations, where: str) -> None:
    """OMI220, on the image and the ModelPack manifest: omi's run-id annotation, where present, is the run id."""
    recorded = annotations.get(contract.ANNOTATION_RUN_ID)
    if expect.run_id and recorded is not None and recorded != expect.run_id:
        out.add("OMI220", f"annotations[{contract.ANNOTATION_RUN_ID}]",
                f"is {recorded!r} but the model's run id is {expect.run_id!r}",
                "rebuild the image and the artifact from this model.yaml", where=where)


def _env(entries: Any) -> Dict[str, str]:
    if not isinstance(entries, list):
        return {}
    out: Dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, str):
            key, _, value = entry.partition("=")
            out[key] = value  # later definitions win, as the runtime sees them
    return out


IMAGE_DIFF_IDS = DiffIdWording("OMI208", "rootfs.diff_ids", "give one diff id per manifest layer, in layer order",
                               "use uncompressed or gzip layers",
                               "rebuild the image so the config's diff ids match its layers")


def _check_diff_ids(out: Collector, scan: LayoutScan, layers: Sequence[Mapping[str, Any]], present: Sequence[bool],
                    config: Mapping[str, Any], where: str) -> None:
    diff_ids = object_field(config, "rootfs").get("diff_ids")
    if isinstance(diff_ids, list):  # else the config schema rule reports it
        check_diff_ids(out, scan, layers, present, diff_ids, IMAGE_DIFF_IDS, where)


def _json_list(out: Collector, rule: str, values: Mapping[str, Any], key: str, field_path: str,
               where: str) -> Optional[List[Any]]:
    raw = values.get(key)
    if raw is None:
        out.add(rule, field_path, "is missing", f"add {key} with a JSON list, as OMI requires",
                where=where)
        return None
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, list) or not all(isinstance(p, (str, list)) for p in parsed):
        out.add(rule, field_path, f"{raw!r} is not a JSON list", 'write a JSON list, e.g. ["kfserving.v2","modzy.v2"]',
                where=where)
        return None
    return parsed


def _pairs_1_1(interfaces: Sequence[Any], protocols: Sequence[Any]) -> Optional[List[str]]:
    if len(interfaces) != len(protocols) or not all(isinstance(p, list) for p in protocols):
        return None
    return [f"{i}.{p}" for i, ps in zip(interfaces, protocols) for p in ps]


def _grouped(pairs: Sequence[str]) -> Tuple[List[str], List[List[str]]]:
    by_interface: Dict[str, List[str]] = {}
    for pair in pairs:
        interface, _, protocol = pair.partition(".")
        by_interface.setdefault(interface, []).append(protocol)
    return list(by_interface), list(by_interface.values())


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _check_omi_keys(out: Collector, rule: str, values: Mapping[str, Any], prefix: str, where: str,
                    expect: Expectations, env: Optional[Mapping[str, str]]) -> None:
    """The OMI keys of one annotation/label map, in the 1.0 or the 1.1 form."""
    key_field = f"{prefix}[{contract.LABEL_INTERFACES}]"
    declared = list(expect.interfaces) if expect.interfaces is not None else None
    interfaces = _json_list(out, rule, values, contract.LABEL_INTERFACES, key_field, where)
    if expect.spec_version != "1.1":
        if interfaces is not None and declared is not None and sorted(map(str, interfaces)) != sorted(declared):
            out.add(rule, key_field, f"declares {_compact(interfaces)} but model.yaml declares {_compact(declared)}",
                    "rebuild the image so the label lists exactly the declared interfaces", where=where)
        return
    names, protocols_expected = _grouped(declared or [])
    if interfaces is not None and declared is not None and sorted(map(str, interfaces)) != sorted(names):
        out.add(rule, key_field, f"declares {_compact(interfaces)} but model.yaml declares {_compact(names)}",
                "rebuild the image so the label lists exactly the declared interfaces, in the OMI 1.1 form",
                where=where)
    protocols_field = f"{prefix}[{contract.LABEL_PROTOCOLS}]"
    protocols = _json_list(out, "OMI217", values, contract.LABEL_PROTOCOLS, protocols_field, where)
    if interfaces is not None and protocols is not None:
        pairs = _pairs_1_1(interfaces, protocols)
        if pairs is None:
            out.add("OMI217", protocols_field, f"{_compact(protocols)} is not indexed like {_compact(interfaces)}",
                    "give one list of protocols per interface, in the same order", where=where)
        elif declared is not None and sorted(pairs) != sorted(declared):
            out.add("OMI217", protocols_field, f"declares {_compact(sorted(pairs))} but model.yaml declares "
                    f"{_compact(sorted(declared))}", f"write {_compact(protocols_expected)}", where=where)
    port_field = f"{prefix}[{contract.LABEL_PORT}]"
    port = values.get(contract.LABEL_PORT)
    if port is None:
        out.add("OMI218", port_field, "is missing", "add the HTTP port as a string, e.g. \"8080\", as OMI 1.1 requires",
                where=where)
    elif env is not None and env.get(contract.ENV_HTTP_PORT) and str(port) != env[contract.ENV_HTTP_PORT]:
        out.add("OMI218", port_field, f"is {port!r} but HTTP_PORT is {env['HTTP_PORT']!r}",
                "make the label and HTTP_PORT agree", where=where)
    name_field = f"{prefix}[{contract.LABEL_MODEL_NAME}]"
    name = values.get(contract.LABEL_MODEL_NAME)
    if name is None:
        out.add("OMI219", name_field, "is missing", "add the model name, as OMI 1.1 requires", where=where)
    elif expect.model_name is not None and name != expect.model_name:
        out.add("OMI219", name_field, f"is {name!r} but the model is {expect.model_name!r}",
                "rebuild the image so the label names the model", where=where)


def _check_env(out: Collector, env: Mapping[str, str], where: str, expect: Expectations) -> None:
    for key in contract.SPEC_ENV:
        if not env.get(key):
            out.add("OMI211", f"config.Env.{key}",
                    f"is not set; OMI requires {', '.join(contract.SPEC_ENV[:-1])} and {contract.SPEC_ENV[-1]}",
                    f"set {key} in the image environment", where=where)
    interface, protocol = env.get(contract.ENV_INTERFACE, ""), env.get(contract.ENV_PROTOCOL, "")
    if interface and interface.lower() not in INTERFACE_ALIASES:
        out.add("OMI211", "config.Env.INTERFACE", f"{interface!r} is not an OMI interface",
                "use " + " or ".join(sorted(set(INTERFACE_ALIASES.values()))), where=where)
    if protocol and protocol.lower() not in PROTOCOLS:
        out.add("OMI211", "config.Env.PROTOCOL", f"{protocol!r} is not an OMI protocol",
                "use " + " or ".join(PROTOCOLS), where=where)
    if interface.lower() in INTERFACE_ALIASES and protocol.lower() in PROTOCOLS and \
            expect.interfaces is not None:
        pair = f"{INTERFACE_ALIASES[interface.lower()]}.{protocol.lower()}"
        if pair not in expect.interfaces:
            out.add("OMI211", "config.Env.INTERFACE", f"{interface}/{protocol} ({pair}) is not a declared interface",
                    "default to one of: " + ", ".join(expect.interfaces), where=where)
    port = env.get(contract.ENV_HTTP_PORT, "")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        out.add("OMI211", "config.Env.HTTP_PORT", f"{port!r} is not a TCP port", "use an integer from 1 to 65535",
                where=where)
    model_name = env.get(contract.ENV_MODEL_NAME, "")
    if model_name and expect.model_name is not None and model_name != expect.model_name:
        out.add("OMI211", "config.Env.MODEL_NAME", f"is {model_name!r} but the model is {expect.model_name!r}",
                "rebuild the image so MODEL_NAME names the bundled model", where=where)


def _check_ports(out: Collector, runtime: Mapping[str, Any], env: Mapping[str, str], where: str) -> None:
    port = env.get(contract.ENV_HTTP_PORT, "")
    if not (port.isdigit() and 0 < int(port) < 65536):
        return  # OMI211 reports it
    exposed = object_field(runtime, "ExposedPorts")
    if f"{port}/tcp" not in exposed:
        listed = ", ".join(sorted(exposed)) or "none"
        out.add("OMI212", "config.ExposedPorts", f"does not contain {port}/tcp, the HTTP_PORT; it has {listed}",
                f"expose {port}/tcp", where=where)


def _check_user(out: Collector, runtime: Mapping[str, Any], where: str) -> None:
    user = runtime.get("User", "")
    if not isinstance(user, str):
        return  # the config schema rule reports it
    name = user.split(":", 1)[0]
    if name in ROOT_USERS:
        shown = repr(user) if user else "empty (root)"
        out.add("OMI213", "config.User", f"is {shown}: the container would run as root",
                f"run as a non-root user, e.g. {contract.NONROOT_USER}", where=where)
