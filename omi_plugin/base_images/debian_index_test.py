from __future__ import annotations

import pytest

from omi_plugin.base_images.debian_index import (
    PackageIndex,
    Relation,
    ResolveError,
    parse_deb822,
    parse_relations,
    resolve,
)
from omi_plugin.base_images.debian_version import compare_versions, satisfies
from omi_testutil.debs import packages_index


def index(*paragraphs, base_url="http://m/debian", suite="bookworm"):
    idx = PackageIndex()
    idx.add_index_text(packages_index(paragraphs), base_url, suite)
    return idx


def names(packages):
    return [p.name for p in packages]


@pytest.mark.parametrize("left,right,expected", [
    ("1.0", "1.0", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0", "1.0+deb12u1", -1),
    ("1:1.0", "2.0", 1),
    ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
    ("1.0a", "1.0", 1),
    ("1.0-1", "1.0", 1),
    ("3.0.11-1~deb12u2", "3.0.11-1", -1),
    ("20230311", "20230311+deb12u1", -1),
    ("1.01", "1.1", 0),
])
def test_compare_versions(left, right, expected):
    assert compare_versions(left, right) == expected
    assert compare_versions(right, left) == -expected


def test_satisfies():
    assert satisfies("2.36-9", ">=", "2.34")
    assert not satisfies("2.36-9", "<<", "2.36")
    assert satisfies("1.0", "=", "1.0")


def test_parse_deb822_continuation_and_paragraphs():
    text = "Package: a\nDescription: short\n long line\n .\n more\n\nPackage: b\n"
    paragraphs = list(parse_deb822(text))
    assert [p["Package"] for p in paragraphs] == ["a", "b"]
    assert paragraphs[0]["Description"].splitlines()[0] == "short"


def test_parse_relations():
    groups = parse_relations("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any, foo [amd64]")
    assert groups[0] == (Relation("libc6", ">=", "2.34"),)
    assert groups[1] == (Relation("debconf", ">=", "0.5"), Relation("debconf-2.0"))
    assert groups[2] == (Relation("python3"),)
    assert groups[3] == (Relation("foo"),)


def test_closure_follows_pre_depends_and_depends_not_recommends():
    idx = index(
        {"Package": "app", "Version": "1", "Pre-Depends": "libc6", "Depends": "libfoo (>= 2)", "Recommends": "extra"},
        {"Package": "libc6", "Version": "2.36"},
        {"Package": "libfoo", "Version": "2.1", "Depends": "libc6 (>= 2.34)"},
        {"Package": "extra", "Version": "1"},
    )
    assert names(resolve(idx, ["app"])) == ["app", "libc6", "libfoo"]


def test_alternatives_take_first_available_or_already_chosen():
    idx = index(
        {"Package": "app", "Version": "1", "Depends": "missing | second | third"},
        {"Package": "second", "Version": "1"},
        {"Package": "third", "Version": "1"},
        {"Package": "app2", "Version": "1", "Depends": "media-types | mime-support, mime-support"},
        {"Package": "media-types", "Version": "1"},
        {"Package": "mime-support", "Version": "1"},
    )
    assert names(resolve(idx, ["app"])) == ["app", "second"]
    # mime-support is chosen anyway, but the first alternative is still preferred for the first group.
    assert names(resolve(idx, ["app2"])) == ["app2", "media-types", "mime-support"]


def test_virtual_packages_resolve_through_provides_by_priority():
    idx = index(
        {"Package": "base-files", "Version": "12", "Pre-Depends": "awk"},
        {"Package": "gawk", "Version": "5", "Provides": "awk", "Priority": "optional"},
        {"Package": "mawk", "Version": "1.3", "Provides": "awk", "Priority": "required"},
    )
    assert names(resolve(idx, ["base-files"])) == ["base-files", "mawk"]


def test_versioned_dependency_needs_versioned_provides():
    idx = index(
        {"Package": "app", "Version": "1", "Depends": "virt (>= 2)"},
        {"Package": "unversioned", "Version": "9", "Provides": "virt"},
        {"Package": "versioned", "Version": "1", "Provides": "virt (= 2.5)"},
    )
    assert names(resolve(idx, ["app"])) == ["app", "versioned"]


def test_excludes_satisfy_dependencies_and_cut_chains():
    idx = index(
        {"Package": "tzdata", "Version": "1", "Depends": "debconf (>= 0.5) | debconf-2.0"},
        {"Package": "debconf", "Version": "1", "Depends": "perl-base"},
        {"Package": "perl-base", "Version": "5"},
    )
    assert names(resolve(idx, ["tzdata"])) == ["debconf", "perl-base", "tzdata"]
    assert names(resolve(idx, ["tzdata"], excludes=["debconf"])) == ["tzdata"]


def test_requested_and_excluded_is_an_error():
    idx = index({"Package": "debconf", "Version": "1"})
    with pytest.raises(ResolveError, match="debconf is both requested and excluded"):
        resolve(idx, ["debconf"], excludes=["debconf"])


def test_missing_dependency_names_the_package_and_who_wanted_it():
    idx = index({"Package": "app", "Version": "1", "Depends": "libgone (>= 3)"})
    with pytest.raises(ResolveError, match=r"^app depends on libgone \(>= 3\), which cannot be satisfied"):
        resolve(idx, ["app"])


def test_unmet_version_says_what_the_index_has():
    idx = index({"Package": "app", "Version": "1", "Depends": "libfoo (>= 3)"}, {"Package": "libfoo", "Version": "2"})
    with pytest.raises(ResolveError, match=r"libfoo 2 is in the index but does not satisfy \(>= 3\)"):
        resolve(idx, ["app"])


def test_missing_requested_package():
    with pytest.raises(ResolveError, match="the request depends on nope"):
        resolve(index({"Package": "app", "Version": "1"}), ["nope"])


def test_newest_version_wins_across_suites_and_keeps_its_mirror():
    idx = PackageIndex()
    idx.add_index_text(packages_index([{"Package": "libssl3", "Version": "3.0.11-1~deb12u1",
                                        "Filename": "pool/main/o/openssl/libssl3_old.deb"}]),
                       "http://m/debian", "bookworm")
    idx.add_index_text(packages_index([{"Package": "libssl3", "Version": "3.0.11-1~deb12u2",
                                        "Filename": "pool/updates/main/o/openssl/libssl3_new.deb"}]),
                       "http://m/debian-security", "bookworm-security")
    idx.add_index_text(packages_index([{"Package": "libssl3", "Version": "3.0.9-1",
                                        "Filename": "pool/main/o/openssl/libssl3_older.deb"}]),
                       "http://m/debian", "bookworm-updates")
    (package,) = resolve(idx, ["libssl3"])
    assert package.version == "3.0.11-1~deb12u2"
    assert package.url == "http://m/debian-security/pool/updates/main/o/openssl/libssl3_new.deb"


def test_index_paragraph_missing_field():
    idx = PackageIndex()
    with pytest.raises(ValueError, match="package broken in bookworm: index paragraph has no SHA256 field"):
        idx.add_index_text("Package: broken\nVersion: 1\nArchitecture: all\nFilename: x.deb\nSize: 1\n", "http://m",
                           "bookworm")
