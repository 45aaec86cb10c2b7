"""Resolve Debian packages to a lock file: `python -m omi_plugin.base_images.generate_lock ...`.

This is the only step that talks to the network without a pinned hash: it downloads each source's `Release` and
`Packages.xz`, checks the index against the sha256 the `Release` file lists (so a truncated download is caught;
the Release signature itself is not checked, so a hostile mirror is not), resolves the closure and writes a
canonical lock. Everything afterwards (downloading the `.deb`s, building the layer) is verified against the lock.

    python -m omi_plugin.base_images.generate_lock --suite bookworm --arch amd64 \\
        --mirror http://deb.debian.org/debian \\
        --package python3.11-minimal --package libpython3.11-stdlib ... \\
        --output omi_plugin/base_images/locks/python3.11-bookworm.lock.json

    python -m omi_plugin.base_images.generate_lock --refresh omi_plugin/base_images/locks/python3.11-bookworm.lock.json

Locks of one base for several architectures are refreshed together (`--refresh A --refresh B`): none is written
unless they pin the same version of every package they share (Debian can publish a fix for one architecture first).
`--check LOCK ...` writes nothing and lists each package a lock pins at an older version than the archive has (a
security update it lacks); its exit status is 1 when there is one.

By default the newest version of each package across `<suite>`, `<suite>-updates` (same mirror) and
`<suite>-security` (the `debian-security` archive next to the mirror) is locked, so the image gets security fixes.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Sequence, Tuple

from omi_plugin.base_images.debian_index import DEFAULT_EXCLUDES, PackageIndex, ResolveError, parse_deb822, resolve
from omi_plugin.base_images.lock import Lock, LockedPackage, LockError, Source, dump_lock, load_lock

DEFAULT_MIRROR = "http://deb.debian.org/debian"


class GenerateError(RuntimeError):
    """Fetching or resolving failed; the message says what and where."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fetch(url: str, attempts: int = 3) -> bytes:
    """GET `url` with a few retries on transient errors (not on 404, which is an answer)."""
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            if e.code == 404 or attempt == attempts:
                raise GenerateError(f"GET {url}: HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            if attempt == attempts:
                raise GenerateError(f"GET {url}: {getattr(e, 'reason', e)}") from None
        time.sleep(2 * attempt)
    raise AssertionError("unreachable")


def release_sha256(release_text: str) -> Dict[str, str]:
    """{path: sha256} from the `SHA256:` section of a `Release` file."""
    paragraphs = list(parse_deb822(release_text))
    if not paragraphs or "SHA256" not in paragraphs[0]:
        raise GenerateError("Release file has no SHA256 section")
    table = {}
    for line in paragraphs[0]["SHA256"].splitlines():
        parts = line.split()
        if len(parts) == 3:
            table[parts[2]] = parts[0]
    return table


def load_source(index: PackageIndex, source: Source, arch: str) -> None:
    """Download one suite's indexes (every component) into `index`, verified against its Release file."""
    base = f"{source.mirror.rstrip('/')}/dists/{source.suite}"
    release_url = f"{base}/Release"
    log(f"fetching {release_url}")
    hashes = release_sha256(fetch(release_url).decode("utf-8"))
    for component in source.components:
        path = f"{component}/binary-{arch}/Packages.xz"
        url = f"{base}/{path}"
        log(f"fetching {url}")
        data = fetch(url)
        expected = hashes.get(path)
        if expected is None:
            raise GenerateError(f"{release_url} does not list {path}")
        if hashlib.sha256(data).hexdigest() != expected:
            raise GenerateError(f"{url}: sha256 does not match {release_url}; retry (the mirror may be syncing)")
        count = index.add_index_text(lzma.decompress(data).decode("utf-8"), source.mirror, source.suite)
        log(f"  {count} packages in {source.suite}/{component}")


def default_sources(mirror: str, suite: str, security_mirror: Optional[str], updates: bool) -> List[Source]:
    sources = [Source(mirror, suite)]
    if updates:
        sources.append(Source(mirror, f"{suite}-updates"))
    if security_mirror:
        sources.append(Source(security_mirror, f"{suite}-security"))
    return sources


def security_mirror_for(mirror: str) -> str:
    """`http://deb.debian.org/debian` -> `http://deb.debian.org/debian-security` (Debian's archive layout)."""
    return mirror.rstrip("/") + "-security"


def generate(suite: str, arch: str, sources: Sequence[Source], requested: Sequence[str],
             excludes: Sequence[str]) -> Lock:
    """Fetch the indexes, resolve `requested` and return the lock (not yet written)."""
    index = PackageIndex()
    for source in sources:
        load_source(index, source, arch)
    try:
        packages = resolve(index, requested, excludes)
    except ResolveError as e:
        raise GenerateError(str(e)) from None
    locked = []
    for package in packages:
        if package.architecture not in (arch, "all"):
            raise GenerateError(f"{package.name} resolved to architecture {package.architecture}, not {arch}")
        log(f"  {package.name:32} {package.version:32} {package.suite}")
        locked.append(LockedPackage(package.name, package.version, package.architecture, package.url,
                                    package.sha256, package.size))
    total = sum(p.size for p in locked)
    log(f"resolved {len(locked)} packages, {total / 1e6:.1f} MB of .deb files")
    return Lock(suite, arch, tuple(sources), tuple(requested), tuple(sorted(set(excludes))), tuple(locked))


def version_disagreements(locks: Sequence[Tuple[str, Lock]]) -> List[str]:
    """One line per package that locks of the same base pin at different versions (by name, across architectures)."""
    versions: Dict[str, Dict[str, str]] = {}
    for name, lock in locks:
        for package in lock.packages:
            versions.setdefault(package.name, {})[name] = package.version
    return [f"{package}: " + ", ".join(f"{version} in {name}" for name, version in sorted(by_lock.items()))
            for package, by_lock in sorted(versions.items()) if len(set(by_lock.values())) > 1]


def behind(old: Lock, new: Lock) -> List[str]:
    """One line per package `old` pins that the archive now has at another version (`new`: the same lock resolved
    again)."""
    now = {p.name: p.version for p in new.packages}
    return [f"{p.name} {p.version} (the archive has {now[p.name]})" for p in old.packages
            if p.name in now and now[p.name] != p.version]


def refresh(lock: Lock) -> Lock:
    return generate(lock.suite, lock.architecture, lock.sources, lock.requested, lock.excludes)


def write_lock(lock: Lock, output: str) -> None:
    """Write atomically, so an interrupted run never leaves a half-written lock behind."""
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{output}.tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(dump_lock(lock))
    os.replace(tmp, output)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omi_plugin.base_images.generate_lock", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refresh", metavar="LOCK", action="append", default=[],
                        help="re-resolve an existing lock in place from what it records (repeat for the locks of one "
                             "base for several architectures: they must then pin the same versions)")
    parser.add_argument("--check", metavar="LOCK", action="append", default=[],
                        help="write nothing; list the packages the lock pins at older versions than the archive has")
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--arch", default="amd64")
    parser.add_argument("--mirror", default=DEFAULT_MIRROR)
    parser.add_argument("--security-mirror", default=None,
                        help="archive holding <suite>-security (default: <mirror>-security; '' to skip)")
    parser.add_argument("--no-updates", action="store_true", help="do not read <suite>-updates")
    parser.add_argument("--package", action="append", default=[], help="package to install (repeat)")
    parser.add_argument("--exclude", action="append", default=[], help="package to leave out (repeat)")
    parser.add_argument("--no-default-excludes", action="store_true",
                        help="do not exclude " + ", ".join(sorted(DEFAULT_EXCLUDES)))
    parser.add_argument("--output", help="where to write the lock")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = [f"{path}: {line}" for path in args.check for line in behind(load_lock(path),
                                                                                 refresh(load_lock(path)))]
            for line in stale:
                print(line)
            log(f"{len(stale)} package(s) behind the archive" if stale else "every lock is up to date")
            return 1 if stale else 0
        if args.refresh:
            if args.output and len(args.refresh) > 1:
                parser.error("--output goes with one --refresh only")
            locks = [(path, load_lock(path)) for path in args.refresh]  # every lock readable before any fetch
            refreshed = [(path, refresh(lock)) for path, lock in locks]
            disagree = version_disagreements(refreshed)
            if disagree:
                raise GenerateError(f"the locks pin different versions of {len(disagree)} package(s), so none was "
                                    f"written: {'; '.join(disagree)} (Debian has published an update for one "
                                    "architecture first; retry once the other has it)")
            for path, lock in refreshed:
                write_lock(lock, args.output or path)
                log(f"wrote {args.output or path}")
            return 0
        else:
            if not args.package or not args.output:
                parser.error("--package (at least one) and --output are required unless --refresh is given")
            security = security_mirror_for(args.mirror) if args.security_mirror is None else args.security_mirror
            sources = default_sources(args.mirror, args.suite, security, not args.no_updates)
            excludes = list(args.exclude) + ([] if args.no_default_excludes else list(DEFAULT_EXCLUDES))
            lock = generate(args.suite, args.arch, sources, args.package, excludes)
            output = args.output
        write_lock(lock, output)
    except (GenerateError, LockError) as e:
        log(f"error: {e}")
        return 1
    log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
