"""What a Pex lockfile (Pants's Python lock) pins for each artifact: the sha256 and URL by file name."""

from __future__ import annotations

import json
import posixpath
from typing import Dict, Tuple
from urllib.parse import unquote, urlparse


class PythonLockError(ValueError):
    """The lockfile is not one Pants wrote (one line, naming the file)."""


def artifact_hashes(text: str, lock_path: str) -> Dict[str, Tuple[str, str]]:
    """file name -> (sha256 hex, URL) of every artifact (wheels and sdists) of every locked requirement."""
    body = "".join(line for line in text.splitlines(True) if not line.lstrip().startswith("//"))
    try:
        resolves = json.loads(body)["locked_resolves"]
        found: Dict[str, Tuple[str, str]] = {}
        for resolve in resolves:
            for requirement in resolve["locked_requirements"]:
                for artifact in requirement["artifacts"]:
                    if artifact.get("algorithm") == "sha256":
                        name = unquote(posixpath.basename(urlparse(artifact["url"]).path))
                        found[name] = (artifact["hash"], artifact["url"])
        return found
    except (ValueError, KeyError, TypeError) as e:
        raise PythonLockError(f"{lock_path}: not a Pex lockfile ({type(e).__name__}: {e}) "
                              "(regenerate it with `pants generate-lockfiles`)") from None
