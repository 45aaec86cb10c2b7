"""The files a runtime base image needs besides its packages' contents.

On a normal Debian system these come from debootstrap and from maintainer scripts (`base-passwd`,
`update-ca-certificates`, dpkg's own database). A hermetic build runs no scripts, so they are generated here from
the package files themselves, in the shape distroless images use:
- `etc/passwd`, `etc/group`: root, nobody and `nonroot` (65532, home `/home/nonroot`), the user images run as.
- `tmp` (1777), `root` (0700), `home/nonroot` (0700, owned by nonroot).
- `etc/ssl/certs/ca-certificates.crt`: the Mozilla CA certificates shipped by ca-certificates, concatenated in
  sorted order (what `update-ca-certificates` would produce), and `usr/lib/ssl/{cert.pem,certs}` pointing at it so
  OpenSSL's default verify paths (Python's `ssl.create_default_context()`) find it without the openssl package.
- `etc/os-release` (synthesised only when base-files is not installed), `etc/nsswitch.conf` (files first).
- `var/lib/dpkg/status.d/<package>` (+ `.md5sums`): each package's control record, so that scanners such as trivy
  and syft can list the installed packages and match them against Debian's security tracker.
- `usr/bin/python3 -> python3.11` when python3-minimal (which normally provides it) is not installed.
Generated entries replace package entries of the same path: they are what the maintainer scripts would have left.
"""

from __future__ import annotations

import posixpath
from typing import Dict, List, Optional, Sequence

from omi_plugin.base_images.deb import Deb
from omi_plugin.base_images.layout import read_entry
from omi_plugin.oci.tar import FILE, Entry

# The user OMI images run as (omi_contract.image.NONROOT_UID; rootfs_test holds the two equal). Kept here so that
# the base-image tool's sandbox, and so every cached base layer, does not depend on the OMI contract.
NONROOT_UID = 65532
NOBODY_UID = 65534
MOZILLA_CERTS = "usr/share/ca-certificates/mozilla/"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    f"nobody:x:{NOBODY_UID}:{NOBODY_UID}:nobody:/nonexistent:/sbin/nologin\n"
    f"nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = (
    "root:x:0:\n"
    f"nobody:x:{NOBODY_UID}:\n"
    f"nonroot:x:{NONROOT_UID}:\n"
)
# glibc's built-in default puts DNS before /etc/hosts; containers expect files first (e.g. `localhost`).
NSSWITCH = (
    "passwd: files\n"
    "group: files\n"
    "shadow: files\n"
    "hosts: files dns\n"
    "networks: files\n"
    "protocols: files\n"
    "services: files\n"
    "ethers: files\n"
    "rpc: files\n"
)
# Debian release numbers for suites, for a synthesised os-release (scanners key vulnerability data on VERSION_ID).
SUITE_VERSIONS = {"bullseye": "11", "bookworm": "12", "trixie": "13"}


def ca_bundle(files: Dict[str, Entry]) -> Optional[bytes]:
    """The concatenated Mozilla CA certificates, or None if ca-certificates is not installed."""
    names = sorted(p for p, e in files.items() if p.startswith(MOZILLA_CERTS) and p.endswith(".crt")
                   and e.kind == FILE)
    if not names:
        return None
    parts = []
    for name in names:
        pem = read_entry(files[name])
        parts.append(pem if pem.endswith(b"\n") else pem + b"\n")
    return b"".join(parts)


def os_release(suite: str) -> bytes:
    version = SUITE_VERSIONS.get(suite, "")
    lines = [
        f'PRETTY_NAME="Debian GNU/Linux {version} ({suite})"' if version else f'PRETTY_NAME="Debian GNU/Linux {suite}"',
        'NAME="Debian GNU/Linux"',
        f'VERSION_ID="{version}"' if version else "",
        f"VERSION_CODENAME={suite}",
        "ID=debian",
        'HOME_URL="https://www.debian.org/"',
    ]
    return "".join(line + "\n" for line in lines if line).encode()


def status_record(deb: Deb) -> bytes:
    """The package's control paragraph with `Status: install ok installed`, as in dpkg's status database."""
    lines = [line for line in deb.control_text.rstrip("\n").split("\n") if not line.startswith("Status:")]
    out = []
    for line in lines:
        out.append(line)
        if line.startswith("Package:"):
            out.append("Status: install ok installed")
    return ("\n".join(out) + "\n").encode("utf-8")


def _exists(files: Dict[str, Entry], path: str) -> bool:
    """Does `path` exist in the image, following the merged-/usr and other symlinks of its parents?"""
    seen = 0
    while seen < 40:
        if path in files:
            return True
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = files.get("/".join(parts[:i]))
            if parent is not None and parent.kind == "symlink":
                target = parent.linkname
                base = "" if target.startswith("/") else posixpath.dirname("/".join(parts[:i]))
                path = posixpath.normpath(posixpath.join(base, target.lstrip("/"), *parts[i:])).lstrip("/")
                break
        else:
            return False
        seen += 1
    return False


def rootfs_entries(files: Dict[str, Entry], debs: Sequence[Deb], suite: str) -> List[Entry]:
    """The generated entries, given the merged package entries (`files`, by path) and the packages."""
    entries = [
        Entry.file("etc/passwd", PASSWD.encode()),
        Entry.file("etc/group", GROUP.encode()),
        Entry.directory("tmp", mode=0o1777),
        Entry.directory("root", mode=0o700),
        Entry.directory("home/nonroot", mode=0o700, uid=NONROOT_UID, gid=NONROOT_UID),
    ]
    bundle = ca_bundle(files)
    if bundle is not None:
        entries.append(Entry.file(CA_BUNDLE, bundle))
        if not _exists(files, "usr/lib/ssl/cert.pem"):
            entries.append(Entry.symlink("usr/lib/ssl/cert.pem", f"/{CA_BUNDLE}"))
        if not _exists(files, "usr/lib/ssl/certs"):
            entries.append(Entry.symlink("usr/lib/ssl/certs", "/etc/ssl/certs"))
    if not _exists(files, "etc/os-release"):
        entries.append(Entry.file("etc/os-release", os_release(suite)))
    if not _exists(files, "etc/nsswitch.conf"):
        entries.append(Entry.file("etc/nsswitch.conf", NSSWITCH.encode()))
    for deb in sorted(debs, key=lambda d: d.name):
        entries.append(Entry.file(f"var/lib/dpkg/status.d/{deb.name}", status_record(deb)))
        if deb.md5sums:
            entries.append(Entry.file(f"var/lib/dpkg/status.d/{deb.name}.md5sums", deb.md5sums))
    if _exists(files, "usr/bin/python3.11") and not _exists(files, "usr/bin/python3"):
        entries.append(Entry.symlink("usr/bin/python3", "python3.11"))
    return entries


def apply(files: Dict[str, Entry], generated: Sequence[Entry]) -> List[Entry]:
    """Package entries with the generated ones laid over them (a generated path replaces a package's)."""
    merged = dict(files)
    for entry in generated:
        merged[entry.path] = entry
    return [merged[p] for p in sorted(merged)]
