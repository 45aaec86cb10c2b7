"""Debian `Packages` indexes and dependency resolution, without apt.

A suite's index (`dists/<suite>/<component>/binary-<arch>/Packages.xz`) is a list of deb822 paragraphs, one per
binary package, each with the `Filename`, `Size`, `SHA256` and relations we need. `PackageIndex` merges the
indexes of several suites (e.g. `bookworm`, `bookworm-updates`, `bookworm-security`) keeping the newest version of
each package, and `resolve` walks `Pre-Depends` + `Depends` from the requested names to the full closure.

Only what a runtime image needs is followed: `Recommends`/`Suggests` are ignored, and `DEFAULT_EXCLUDES` cuts the
chains that exist only to run maintainer scripts (which a hermetic image build never runs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from omi_plugin.base_images.debian_version import compare_versions, satisfies

# Packages that dependency chains drag in but a runtime base image does not need, and why. Excluding a package
# also satisfies any dependency (or alternative) that names it, so its own dependencies are not pulled either.
DEFAULT_EXCLUDES: Dict[str, str] = {
    "debconf": "configuration front-end for maintainer scripts (tzdata, ca-certificates); no scripts run here",
    "debconf-2.0": "virtual package provided by debconf, see above",
    "perl-base": "needed by debconf and maintainer scripts only; ~7 MB the Python runtime never uses",
    "dpkg": "the package manager itself (wanted by readline-common's `dpkg | install-info`); images are never "
            "modified with dpkg",
    "install-info": "the alternative to dpkg above: maintains the info directory, which is not shipped",
    "awk": "virtual package base-files pre-depends on for its maintainer scripts; no scripts run here",
    "openssl": "the command-line tool, wanted by ca-certificates to run update-ca-certificates; the bundle is "
               "generated at build time instead and Python links libssl3 directly",
}

_RELATION = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?"
                       r"\s*(?:\[[^\]]*\])?\s*(?:<[^>]*>\s*)*$")


_PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}


class ResolveError(ValueError):
    """The requested packages cannot be resolved from the index (missing package, unmet version, bad field)."""


@dataclass(frozen=True)
class Relation:
    """One alternative of a dependency: `name (op version)`; op and version are empty when unversioned."""

    name: str
    op: str = ""
    version: str = ""

    def __str__(self) -> str:
        return f"{self.name} ({self.op} {self.version})" if self.op else self.name


@dataclass(frozen=True)
class Package:
    """One binary package as listed in an index, with where it came from (`base_url` + `filename`)."""

    name: str
    version: str
    architecture: str
    filename: str
    sha256: str
    size: int
    base_url: str
    suite: str
    depends: Tuple[Tuple[Relation, ...], ...] = ()
    provides: Tuple[Relation, ...] = ()
    fields: Dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.filename}"


def parse_deb822(text: str) -> Iterator[Dict[str, str]]:
    """Yield the paragraphs of a deb822 document as {field: value}; continuation lines are joined with newlines."""
    paragraph: Dict[str, str] = {}
    last: Optional[str] = None
    for line in text.splitlines():
        if not line.strip():
            if paragraph:
                yield paragraph
            paragraph, last = {}, None
        elif line[0] in " \t":
            if last is None:
                raise ValueError(f"continuation line before any field: {line!r}")
            paragraph[last] += "\n" + line
        elif line.startswith("#"):
            continue
        else:
            key, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"not a `Field: value` line: {line!r}")
            last = key.strip()
            paragraph[last] = value.strip()
    if paragraph:
        yield paragraph


def parse_relation(text: str) -> Relation:
    """`libc6 (>= 2.34)` -> Relation; architecture qualifiers (`:any`) and restrictions are dropped."""
    match = _RELATION.match(text)
    if not match:
        raise ValueError(f"cannot parse relation {text!r}")
    name, op, version = match.group(1), match.group(2) or "", match.group(3) or ""
    # `<` and `>` are obsolete spellings of `<=` and `>=`.
    op = {"<": "<=", ">": ">="}.get(op, op)
    return Relation(name, op, version)


def parse_relations(value: str) -> Tuple[Tuple[Relation, ...], ...]:
    """`a, b | c (>= 1)` -> ((a,), (b, c>=1)): a conjunction of alternatives."""
    groups = []
    for group in value.replace("\n", " ").split(","):
        if group.strip():
            groups.append(tuple(parse_relation(alt) for alt in group.split("|")))
    return tuple(groups)


def package_from_paragraph(paragraph: Dict[str, str], base_url: str, suite: str) -> Package:
    """Build a `Package` from an index paragraph; raises ValueError naming the field that is missing or bad."""
    name = paragraph.get("Package", "?")
    try:
        depends = parse_relations(paragraph.get("Pre-Depends", "")) + parse_relations(paragraph.get("Depends", ""))
        provides = tuple(parse_relation(p) for p in paragraph.get("Provides", "").split(",") if p.strip())
        return Package(
            name=paragraph["Package"],
            version=paragraph["Version"],
            architecture=paragraph["Architecture"],
            filename=paragraph["Filename"],
            sha256=paragraph["SHA256"],
            size=int(paragraph["Size"]),
            base_url=base_url,
            suite=suite,
            depends=depends,
            provides=provides,
            fields=paragraph,
        )
    except KeyError as missing:
        raise ValueError(f"package {name} in {suite}: index paragraph has no {missing.args[0]} field") from None


class PackageIndex:
    """The newest version of every package across the indexes added, plus who provides each virtual name."""

    def __init__(self) -> None:
        self.packages: Dict[str, Package] = {}
        self._providers: Dict[str, List[Package]] = {}

    def add(self, packages: Iterable[Package]) -> None:
        for package in packages:
            current = self.packages.get(package.name)
            if current is None or compare_versions(package.version, current.version) > 0:
                self.packages[package.name] = package
        self._providers = {}
        # Like apt, prefer the provider of higher Priority (mawk, `required`, over gawk, `optional`), then by name.
        ranked = sorted(self.packages.values(), key=lambda p: (_PRIORITY_RANK.get(p.fields.get("Priority", ""), 9),
                                                               p.name))
        for package in ranked:
            for provided in package.provides:
                self._providers.setdefault(provided.name, []).append(package)

    def add_index_text(self, text: str, base_url: str, suite: str) -> int:
        """Parse one `Packages` file and add it; returns how many paragraphs it had."""
        packages = [package_from_paragraph(p, base_url, suite) for p in parse_deb822(text)]
        self.add(packages)
        return len(packages)

    def candidates(self, relation: Relation) -> List[Package]:
        """Packages satisfying `relation`: the real package if its version fits, else providers of the name."""
        found = []
        real = self.packages.get(relation.name)
        if real is not None and (not relation.op or satisfies(real.version, relation.op, relation.version)):
            found.append(real)
        for provider in self._providers.get(relation.name, []):
            for provided in provider.provides:
                if provided.name != relation.name:
                    continue
                # Policy 7.5: an unversioned Provides satisfies only unversioned dependencies.
                if not relation.op or (provided.op == "=" and satisfies(provided.version, relation.op,
                                                                        relation.version)):
                    found.append(provider)
                    break
        return found


def resolve(index: PackageIndex, requested: Sequence[str], excludes: Iterable[str] = ()) -> List[Package]:
    """The dependency closure of `requested` (Pre-Depends + Depends), sorted by name.

    For `a | b` the first alternative that is already chosen, excluded or available wins (in that order of
    preference, so a second path to an already-chosen package does not add a sibling). Excluded names satisfy
    any dependency on them and are never added, even when requested explicitly (which is an error).
    """
    excluded = set(excludes)
    for name in requested:
        if name in excluded:
            raise ResolveError(f"package {name} is both requested and excluded")
    chosen: Dict[str, Package] = {}
    provided_by_chosen: Dict[str, str] = {}
    queue: List[Tuple[Relation, str]] = [(parse_relation(name), "the request") for name in requested]
    while queue:
        relation, wanted_by = queue.pop(0)
        target = _pick(index, (relation,), chosen, provided_by_chosen, excluded, wanted_by)
        if target is None:
            continue
        if target.name in chosen:
            continue
        chosen[target.name] = target
        for provided in target.provides:
            provided_by_chosen.setdefault(provided.name, target.name)
        for group in target.depends:
            picked = _pick(index, group, chosen, provided_by_chosen, excluded, target.name)
            if picked is not None and picked.name not in chosen:
                queue.append((Relation(picked.name), target.name))
    return [chosen[name] for name in sorted(chosen)]


def _pick(index: PackageIndex, group: Tuple[Relation, ...], chosen: Dict[str, Package],
          provided_by_chosen: Dict[str, str], excluded: set, wanted_by: str) -> Optional[Package]:
    # Already satisfied by a chosen package (directly or via Provides) or by an exclusion: nothing to add.
    for alt in group:
        if alt.name in excluded:
            return None
        existing = chosen.get(alt.name)
        if existing is not None and (not alt.op or satisfies(existing.version, alt.op, alt.version)):
            return None
        if not alt.op and alt.name in provided_by_chosen:
            return None
    for alt in group:
        found = index.candidates(alt)
        if found:
            return found[0]
    wanted = " | ".join(str(alt) for alt in group)
    reasons = []
    for alt in group:
        real = index.packages.get(alt.name)
        if real is not None:
            reasons.append(f"{alt.name} {real.version} is in the index but does not satisfy ({alt.op} {alt.version})")
    detail = "; ".join(reasons) if reasons else "no package of that name or providing it is in the index"
    raise ResolveError(f"{wanted_by} depends on {wanted}, which cannot be satisfied: {detail}")
