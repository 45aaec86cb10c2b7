"""The `[omi]` options: where the server and handlers come from, the default base image, naming, compression and signing."""

from __future__ import annotations

from pants.option.option_types import (
    BoolOption,
    DictOption,
    IntOption,
    MemorySizeOption,
    StrListOption,
    StrOption,
)
from pants.option.subsystem import Subsystem
from pants.util.strutil import help_text

from omi_plugin.oci.compression import ALGORITHMS, DEFAULT_LEVEL, GZIP, LEVEL_RANGE, WORTH_IT, ZSTD


class OmiSubsystem(Subsystem):
    options_scope = "omi"
    help = "Options for building Open Model Interface (OMI) model images with `omi_model` targets."

    runtime = StrOption(
        default="",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Address of the Python target that provides the `omi_runtime` server, started as `python -m omi_runtime`.
            Empty: the target that provides the module `omi_runtime` in the model's resolve, normally the
            `omi-runtime` requirement (locked at this plugin's version).
            """
        ),
    )
    builtin_handlers = DictOption[str](
        default={},
        help=help_text(
            """
            Address of the Python target providing the built-in handler of a model `format`, with the libraries it
            needs, by format. A format not named here gets its handler (`omi_runtime.handlers.<format>`) and its
            libraries (scikit-learn, onnxruntime, ...) from the targets that provide them in the model's resolve,
            so an image carries only its own format's libraries (no onnxruntime in a scikit-learn image).
            """
        ),
    )
    default_base_image = StrOption(
        default="",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Address of the base image target used by `omi_model` targets that set no `base_image`. Empty: omi's own
            base, CPython 3.11 and the C/C++ runtime libraries from Debian 12 (bookworm) packages pinned by the lock
            the plugin ships, assembled without a package manager.
            """
        ),
    )
    platforms = StrListOption(
        default=["linux/amd64"],
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            The platforms `omi_model` targets that set no `platforms` build their image for: `linux/amd64`,
            `linux/arm64` or both, from any build machine and without emulation (the Debian base from that
            architecture's lock, the Python dependencies resolved for it, bytecode compiled by the build machine's
            twin interpreter). Two platforms make one OCI image index of the two images.
            """
        ),
    )
    registries = DictOption[dict](
        help=help_text(
            """
            Registries to publish to, by alias: in pants.toml a table per registry, e.g. `[omi.registries.local]`
            with `address = "127.0.0.1:5000"` and `default = true`; on the command line a Python dict, e.g.
            `--omi-registries="{'local': {'address': '127.0.0.1:5000', 'default': True}}"`.
            `insecure: true` allows plain HTTP for a non-loopback registry (loopback always may use it), for publishing
            to it and for fetching a `model_artifact` from it. Credentials come from the Docker config
            (`DOCKER_CONFIG` or `~/.docker/config.json`).
            """
        ),
    )

    def insecure_registry(self, address: str) -> bool:
        """Whether `[omi].registries` marks the registry at `address` (host[:port]) `insecure`."""
        return any(isinstance(c, dict) and c.get("address") == address and bool(c.get("insecure"))
                   for c in self.registries.values())
    smoke_checker = StrOption(
        default="",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Address of the Python target providing `omi_runtime.smoke`, the live test `pants check` runs. Empty: the
            target providing that module in the model's resolve (the `omi-runtime` requirement ships it).
            """
        ),
    )
    modelcar = BoolOption(
        default=False,
        help="Make every `omi_model` image also a KServe ModelCar unless its `modelcar` field says otherwise.",
    )
    signing_key = StrOption(
        default="",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            ECDSA private key (P-256, P-384 or P-521, PEM) that signs what `pants package` builds: the model files
            (a signature OpenSSF's `model_signing verify key` accepts on the files as unpacked from the ModelPack
            artifact, also written as `<name>.model.sig`), the image manifest digest, and the provenance. Either a
            path (absolute, or relative to the build root) or `env:NAME` to read the PEM from environment variable
            NAME; an encrypted key's password comes from `OMI_SIGNING_KEY_PASSWORD`. The key only ever reaches a
            process that is never cached, and is never printed. Empty: nothing is signed.
            """
        ),
    )
    verify_key = StrOption(
        default="",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            PEM public key (a path relative to the build root) with which `pants check` verifies every signature
            of an `omi_model`'s build, and requires that there are signatures. Empty: signatures are not checked.
            """
        ),
    )
    omlmd_artifact = BoolOption(
        default=False,
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Also write the model in the form omlmd clients read (`<name>.omlmd.oci` in dist/, pushed as
            `<tag>-omlmd`, its `subject` the ModelPack artifact). Off by default: its layers are the raw model
            files, so it holds a second copy of every model byte, on disk and in the registry.
            """
        ),
    )
    modelcar_lockfile = StrOption(
        default="",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Debian lock (repository-relative path) pinning `busybox-static`, whose static busybox gives ModelCar
            images their shell, for one architecture: ModelCar images of another platform are refused in one line.
            Empty: the locks the plugin ships, one per platform (amd64, arm64). Create your own with
            `python -m omi_plugin.base_images.generate_lock --arch <amd64|arm64>`.
            """
        ),
    )
    layer_compression = StrOption(
        default=GZIP,
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            f"""
            Compression of every image's base, dependency and code layers unless its `layer_compression` field says
            otherwise: one of {', '.join(ALGORITHMS)}. gzip is read by every registry and runtime; zstd is smaller and
            faster to unpack (podman, containerd 1.5+, CRI-O). `rootfs.diff_ids` stay the uncompressed digests.
            """
        ),
    )
    model_compression = StrOption(
        default="auto",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            f"""
            Compression of the model file layers unless a target's `model_compression` says otherwise: `auto`
            (the `layer_compression` algorithm, for files whose samples shrink to {WORTH_IT:.0%} or less) or one of
            {', '.join(ALGORITHMS)}.
            """
        ),
    )
    compression_level = IntOption(
        default=0,
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            f"""
            Compression level for gzip ({LEVEL_RANGE[GZIP][0]}-{LEVEL_RANGE[GZIP][1]}, libdeflate's scale) and zstd
            ({LEVEL_RANGE[ZSTD][0]}-{LEVEL_RANGE[ZSTD][1]}); 0 means the default: {DEFAULT_LEVEL[GZIP]} for gzip
            (smaller than `gzip -6`), {DEFAULT_LEVEL[ZSTD]} for zstd.
            """
        ),
    )
    stamp_vcs_revision = BoolOption(
        default=False,
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Write the git commit of the repository as the images' `org.opencontainers.image.revision` annotation.
            Off by default: it changes every image digest with every commit, even when nothing in the image did.
            The model's run id is always written, as `dev.omi.model.run-id`.
            """
        ),
    )
    default_repository = StrOption(
        default="{name}",
        help="Repository name for targets that set no `repository`; `{name}` is the model name from model.yaml.",
    )
    blob_store = StrOption(
        default="",
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Directory of the machine-wide blob store that model file layers are written to, once, in one pass
            over each model file; `dist/omi-blobs` hard-links them. Empty: `store/` in omi's cache directory
            (`$OMI_CACHE_DIR`, else `$XDG_CACHE_HOME/omi`, else `~/.cache/omi`, as `./pants` uses). Two builds may
            share it at once. Deleting it is safe (the next build writes what it needs again); a layout already in
            dist/ keeps its own links.
            """
        ),
    )
    blob_store_max_size = MemorySizeOption(
        default=64 * 1024**3,
        help=help_text(  # type: ignore[arg-type]  # Pants types help_text as str-or-callable
            """
            Size bound of the blob store, e.g. `64GiB`. After each `pants package`, the least recently used blobs
            are removed until it fits; a blob used in the last hour is never removed.
            """
        ),
    )
