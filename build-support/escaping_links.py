"""Finds the symlinks in the repository that point outside it, for `./pants` to hand to Pants as ignored.

Pants 2.17 reads every symlink it meets while expanding a recursive glob, and fails the whole glob on one that is
absolute or climbs out of the build root (`fs/src/lib.rs` `read_link`: "Absolute symlink"; `glob_matching.rs`:
"Globs may not traverse outside of the buildroot"; pantsbuild/pants#13122). Every goal expands `**/BUILD*` (to find
targets for dependency inference), so one such link anywhere broke every target. Ignored, the link is invisible
to Pants, the rest of the repository builds, and the omi plugin, told of it through `OMI_ESCAPING_LINKS`, refuses
the one target whose model files it is.

Prints the shell `export` lines; prints nothing when there are no such links. Lists files with git when the
repository is a git work tree (tracked and untracked-but-not-ignored files, read from git's index), else walks it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Dict, Iterator

# Directories Pants never reads here (see pants.toml's pants_ignore) and that may hold links of their own.
# The plugin reads what this prints as OMI_ESCAPING_LINKS (omi_plugin/util_rules/target_fields.py).
SKIPPED_DIRS = {".git", "dist", ".pants.d", ".pids", "__pycache__"}


def _candidates(root: str) -> Iterator[str]:
    try:
        listed = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                check=True, capture_output=True).stdout
        yield from (p for p in listed.decode("utf-8", "surrogateescape").split("\0") if p)
        return
    except (OSError, subprocess.CalledProcessError):
        pass
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith(".venv")]
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            yield name if rel_dir == "." else f"{rel_dir}/{name}"


def escaping_links(root: str) -> Dict[str, str]:
    """Repository-relative path of each symlink that is absolute or resolves outside `root` -> where it points."""
    found = {}
    for rel in _candidates(root):
        path = os.path.join(root, rel)
        if not os.path.islink(path):
            continue
        pointee = os.readlink(path)
        resolved = os.path.normpath(os.path.join(os.path.dirname(rel), pointee))
        if os.path.isabs(pointee) or resolved == ".." or resolved.startswith("../"):
            found[rel] = pointee
    return dict(sorted(found.items()))


def _gitignore_literal(rel: str) -> str:
    """An anchored pants_ignore (gitignore syntax) entry matching exactly this path."""
    escaped = "".join("\\" + c if c in "\\*?[]!# " else c for c in rel)
    return "/" + escaped


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def main() -> int:
    links = escaping_links(sys.argv[1])
    if links and "PANTS_PANTS_IGNORE" not in os.environ:  # a user's own setting wins
        ignores = json.dumps([_gitignore_literal(rel) for rel in links])
        print(f"export PANTS_PANTS_IGNORE={_shell_quote('+' + ignores)}")
        print(f"export OMI_ESCAPING_LINKS={_shell_quote(json.dumps(links, sort_keys=True))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
