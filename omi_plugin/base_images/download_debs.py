"""Download a lock's `.deb` files, verified: `python -m omi_plugin.base_images.download_debs --lock L --out DIR`.

Pants fetches the same files itself (one pinned download per package, keyed by sha256); this CLI is for building
a base layer by hand and for checking that a lock is still downloadable. Files already present with the right
sha256 are kept; a 404 means Debian replaced the package, and the message says how to refresh the lock.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from typing import Optional, Sequence

from omi_plugin.base_images.lock import LockedPackage, LockError, load_lock, stale_package_message
from omi_plugin.oci.hashing import file_sha256, stream_sha256


class DownloadError(RuntimeError):
    """A pinned package could not be fetched or did not match the lock."""


def download(package: LockedPackage, out_dir: str, lock_path: str) -> bool:
    """Fetch one package into `out_dir` unless already there; returns True if it was downloaded."""
    dest = os.path.join(out_dir, package.filename)
    pinned = f"sha256:{package.sha256}"
    if os.path.exists(dest) and os.path.getsize(dest) == package.size and file_sha256(dest)[0] == pinned:
        return False
    tmp = dest + ".part"
    try:
        with urllib.request.urlopen(package.url, timeout=120) as response, open(tmp, "wb") as out:
            digest, _ = stream_sha256(response, copy_to=out)
    except urllib.error.HTTPError as e:
        if e.code in (404, 410):
            raise DownloadError(stale_package_message(lock_path, package)) from None
        raise DownloadError(f"GET {package.url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"GET {package.url}: {getattr(e, 'reason', e)}") from None
    if digest != pinned or os.path.getsize(tmp) != package.size:
        os.unlink(tmp)
        raise DownloadError(f"{package.url}: content does not match the sha256/size pinned in {lock_path}; "
                            + stale_package_message(lock_path, package))
    os.replace(tmp, dest)
    return True


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omi_plugin.base_images.download_debs", description=__doc__)
    parser.add_argument("--lock", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        lock = load_lock(args.lock)
        os.makedirs(args.out, exist_ok=True)
        for package in lock.packages:
            if download(package, args.out, args.lock):
                print(f"downloaded {package.filename} ({package.size} bytes)", file=sys.stderr)
    except (LockError, DownloadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
