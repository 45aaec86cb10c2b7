"""Base images from Debian locks: an `omi_debian_base` target's, and omi's default base from the lock the plugin
ships (download the locked .debs, verified, and build the base layer and its bytecode)."""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from typing import Tuple

from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DownloadFile,
    FileContent,
    MergeDigests,
)
from pants.engine.internals.native_engine import FileDigest
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import HydratedSources, HydrateSourcesRequest
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from omi_contract.image import NONROOT_USER
from omi_plugin.base_images.lock import LockError, parse_lock, stale_package_message
from omi_plugin.base_images.shipped_locks import default_base, shipped_lock, stale_shipped_lock_message
from omi_plugin.oci import platforms
from omi_plugin.oci.image import RuntimeConfig, build_config, build_manifest
from omi_plugin.oci.platforms import Platform
from omi_plugin.omi_image import BaseImageConfig
from omi_plugin.supply_chain.sbom import DebianPackage
from omi_plugin.target_types import DebianLockfileField
from omi_plugin.util_rules.base_image import BaseImage, BaseImageError, BaseImageFieldSet, DefaultBaseImageRequest
from omi_plugin.util_rules.layers import LAYER_OUT, BuiltLayer, CompileBytecodeRequest, LayerToolRequest
from omi_plugin.util_rules.sandbox_tools import BASE_IMAGE_TOOLS

PYTHON = "/usr/bin/python3.11"
BASE_ENV = (
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("LANG", "C.UTF-8"),
    ("HOME", "/home/nonroot"),
    ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
)


@dataclass(frozen=True)
class LockedDebsRequest:
    """The `.deb` files a Debian lock pins, downloaded and verified; `owner` names who needs them in errors."""

    owner: str
    lock_path: str
    lock_content: bytes
    shipped: str = ""  # the name of a lock the plugin ships, which the user cannot refresh in place


@dataclass(frozen=True)
class LockedDebs:
    """`debs/<file>.deb` for every locked package, and the lock itself under its base name."""

    digest: Digest
    lock_name: str
    packages: Tuple[DebianPackage, ...]
    lock: Tuple[str, str]  # (repository path, sha256 of its bytes)

    @property
    def package_count(self) -> int:
        return len(self.packages)


@rule(desc="Download locked Debian packages", level=LogLevel.DEBUG)
async def download_locked_debs(request: LockedDebsRequest) -> LockedDebs:
    try:
        lock = parse_lock(request.lock_content.decode("utf-8", errors="replace"), request.lock_path)
    except LockError as e:
        raise BaseImageError(f"{request.owner}: {e}") from None
    packages = lock.packages
    try:
        downloads = await MultiGet(
            Get(Digest, DownloadFile(p.url, FileDigest(p.sha256, p.size))) for p in packages
        )
    except Exception as e:  # the engine reports a failed download as a bare exception with the URL in it
        gone = next((p for p in packages if p.url in str(e)), None)
        if gone is None:
            raise
        message = (stale_shipped_lock_message(request.shipped, f"{gone.name} {gone.version} ({gone.url})")
                   if request.shipped else stale_package_message(request.lock_path, gone))
        raise BaseImageError(f"{request.owner}: {message} ({_first_line(e)})") from None
    debs = await Get(Digest, AddPrefix(await Get(Digest, MergeDigests(downloads)), "debs"))
    lock_name = posixpath.basename(request.lock_path)  # the layer's history names the lock file
    lock_digest = await Get(Digest, CreateDigest([FileContent(lock_name, request.lock_content)]))
    return LockedDebs(await Get(Digest, MergeDigests([debs, lock_digest])), lock_name,
                      tuple(DebianPackage(p.name, p.version, p.architecture, p.sha256, p.url, lock.suite)
                            for p in packages),
                      (request.lock_path, hashlib.sha256(request.lock_content).hexdigest()))


@dataclass(frozen=True)
class DebianBaseFieldSet(BaseImageFieldSet):
    required_fields = (DebianLockfileField,)

    lockfile: DebianLockfileField


@dataclass(frozen=True)
class DebianLockBaseRequest:
    """A base image assembled from the packages a Debian lock pins."""

    name: str  # what the image calls its base, and errors its owner
    locked: LockedDebsRequest


@rule(desc="Build omi's default base image", level=LogLevel.DEBUG)
async def default_base_image(request: DefaultBaseImageRequest) -> BaseImage:
    platform = platforms.or_build_machine(request.platform)
    lock = shipped_lock(default_base(platform.debian_architecture))
    return await Get(BaseImage, DebianLockBaseRequest(lock.image_name, LockedDebsRequest(
        f"the default base image ({lock.image_name})", lock.origin, lock.content, shipped=lock.name)))


@rule(desc="Build a Debian base image layer", level=LogLevel.DEBUG)
async def debian_base_image(request: DebianBaseFieldSet) -> BaseImage:
    sources = await Get(HydratedSources, HydrateSourcesRequest(request.lockfile))
    lock_contents = await Get(DigestContents, Digest, sources.snapshot.digest)
    return await Get(BaseImage, DebianLockBaseRequest(str(request.address), LockedDebsRequest(
        str(request.address), lock_contents[0].path, lock_contents[0].content)))


@rule(desc="Assemble a base image from Debian packages", level=LogLevel.DEBUG)
async def debian_lock_base_image(request: DebianLockBaseRequest) -> BaseImage:
    platform, python_version = _lock_platform(request)
    locked = await Get(LockedDebs, LockedDebsRequest, request.locked)
    built = await Get(BuiltLayer, LayerToolRequest(
        BASE_IMAGE_TOOLS, "omi_plugin.base_images.build_layer",
        ("--lock", locked.lock_name, "--debs", "debs", "--out", LAYER_OUT), locked.digest,
        f"Assemble base layer from {locked.package_count} Debian packages ({request.name})",
    ))
    layer, blobs = built.layer, built.blobs
    # The standard library's bytecode, compiled by the base's own interpreter: Debian does this in a maintainer
    # script, which an image assembled without a package manager never runs. A base of another platform than the
    # build machine's is compiled by its twin, the build machine's default base: CPython's bytecode does not depend
    # on the machine (`bytecode/twin_test.py` holds the two interpreters to the same bytes).
    host = platforms.build_machine()
    if host is None:
        raise BaseImageError(f"{request.locked.owner}: omi builds images on x86_64 and aarch64 machines, not on "
                             f"{platforms.machine_name()}")
    interpreter = await Get(BaseImage, DefaultBaseImageRequest()) if platform != host else None
    if interpreter is not None and interpreter.config.python_version != python_version:
        raise BaseImageError(f"{request.locked.owner}: {request.locked.lock_path}: python3.11-minimal: "
                             f"{python_version} differs from the build machine's default base "
                             f"({interpreter.config.python_version}), whose interpreter compiles its bytecode (lock "
                             "the same version, `generate_lock --refresh` both locks together)")
    bytecode = await Get(BuiltLayer, CompileBytecodeRequest(
        interpreter_layers=interpreter.layers if interpreter else (layer,),
        interpreter_blobs=interpreter.blobs if interpreter else blobs,
        python=PYTHON, loader=(interpreter.config if interpreter else platform).loader,
        library_path=(interpreter.config if interpreter else platform).library_path, source=BuiltLayer(layer, blobs),
        description=f"Compile the standard library of {request.name}",
    ))
    layers = (layer, bytecode.layer)
    runtime = RuntimeConfig(user=NONROOT_USER, env=BASE_ENV, cmd=(PYTHON,), working_dir="/home/nonroot")
    config = build_config(layers, runtime, platform=platform)
    manifest = build_manifest(config.descriptor, [l.descriptor for l in layers])
    base = BaseImageConfig(name=request.name, manifest_digest=manifest.descriptor.digest, runtime=runtime,
                           python=PYTHON, loader=platform.loader, library_path=platform.library_path,
                           platform=platform, python_version=python_version)
    return BaseImage(base, layers, await Get(Digest, MergeDigests([blobs, bytecode.blobs])),
                     packages=locked.packages, locks=(locked.lock,))


def _lock_platform(request: DebianLockBaseRequest) -> Tuple[Platform, str]:
    """The platform the lock's packages are built for, and the Debian version of its CPython ("" when it pins
    none)."""
    try:
        lock = parse_lock(request.locked.lock_content.decode("utf-8", errors="replace"), request.locked.lock_path)
        platform = platforms.for_debian_architecture(lock.architecture)
    except LockError as e:
        raise BaseImageError(f"{request.locked.owner}: {e}") from None
    except platforms.PlatformError as e:
        raise BaseImageError(f"{request.locked.owner}: {request.locked.lock_path}: architecture: {e}") from None
    python = lock.package("python3.11-minimal")
    return platform, python.version if python is not None else ""


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def rules():
    return [*collect_rules(), UnionRule(BaseImageFieldSet, DebianBaseFieldSet)]
