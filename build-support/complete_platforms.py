"""Writes the complete-platform files omi resolves each platform's Python dependencies with, from the default base's
own interpreter: `python3 build-support/complete_platforms.py`.

For each architecture's Debian lock (`omi_plugin/base_images/locks/python3.11-bookworm*.lock.json`), the locked
`.deb` files are downloaded (verified) and unpacked, and the base's CPython 3.11 runs Pex's `pex3 interpreter inspect
--markers --tags` through its own dynamic loader: natively for the build machine's architecture, under Debian's
`qemu-aarch64-static` for arm64 (no binfmt_misc needed). What describes the machine that ran it rather than the
image (the kernel's `platform_release` and `platform_version`, the interpreter's path here) is dropped, so the files
are the same on every machine; they are committed, and regenerated when a lock's Python changes.

Needs `dpkg-deb`, `pip` (to fetch the pex wheel Pants 2.17 runs) and, for arm64 on another machine,
`qemu-user-static`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from omi_plugin.base_images import download_debs  # noqa: E402
from omi_plugin.base_images.lock import load_lock  # noqa: E402
from omi_plugin.oci import platforms  # noqa: E402

LOCKS = REPO / "omi_plugin/base_images/locks"
OUT = REPO / "omi_plugin/base_images/complete_platforms"
PEX_VERSION = "2.1.137"  # the Pex Pants 2.17.1 runs
MACHINE_FIELDS = ("platform_release", "platform_version")
QEMU = {"arm64": "/usr/bin/qemu-aarch64-static"}


def file_name(platform_: platforms.Platform) -> str:
    return f"{platform_.os}_{platform_.architecture}-cp311-bookworm.json"


def inspect(root: Path, platform_: platforms.Platform, pex_site: Path) -> dict:
    libraries = ":".join(str(root / d) for d in (f"lib/{platform_.multiarch}", *platform_.library_path))
    argv = [str(root / platform_.loader), "--library-path", libraries, str(root / "usr/bin/python3.11"), "-I", "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); sys.argv = ['pex3', 'interpreter', 'inspect', '--markers', "
            "'--tags']; from pex.cli.pex import main; main()", str(pex_site)]
    if platform_ != platforms.build_machine():
        qemu = QEMU.get(platform_.debian_architecture)
        if qemu is None or not os.path.exists(qemu):
            raise SystemExit(f"{platform_.name}: needs {qemu or 'an emulator'} (apt-get install qemu-user-static)")
        argv.insert(0, qemu)
    found = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True, env={}).stdout)
    found.pop("path", None)
    for field in MACHINE_FIELDS:
        found["marker_environment"].pop(field, None)
    return found


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="omi-complete-platforms-") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp),
                        f"pex=={PEX_VERSION}"], check=True, env={**os.environ, "PIP_CONFIG_FILE": "/dev/null"})
        pex_site = tmp / "pex"
        with zipfile.ZipFile(next(tmp.glob("pex-*.whl"))) as wheel:
            wheel.extractall(pex_site)
        OUT.mkdir(exist_ok=True)
        for lock_path in sorted(LOCKS.glob("python3.11-bookworm*.lock.json")):
            lock = load_lock(str(lock_path))
            platform_ = platforms.for_debian_architecture(lock.architecture)
            debs, root = tmp / f"debs-{lock.architecture}", tmp / f"root-{lock.architecture}"
            debs.mkdir()
            root.mkdir()
            for package in lock.packages:
                download_debs.download(package, str(debs), str(lock_path))
                subprocess.run(["dpkg-deb", "-x", str(debs / package.filename), str(root)], check=True)
            found = inspect(root, platform_, pex_site)
            out = OUT / file_name(platform_)
            out.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            print(f"wrote {out.relative_to(REPO)} ({len(found['compatible_tags'])} tags, "
                  f"{found['marker_environment']['python_full_version']}, on {platform.machine()})")


if __name__ == "__main__":
    main()
