"""What a Pex lockfile (Pants's Python lock) pins for each artifact: the sha256 and URL by file name."""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any, Dict, List, Tuple, cast
from urllib.parse import unquote, urlparse


class PythonLockError(ValueError):
    """The lockfile is not one Pants wrote (one line, naming the file)."""


def _locked_resolves(text: str) -> List[Dict[str, Any]]:
    body = "".join(line for line in text.splitlines(True) if not line.lstrip().startswith("//"))
    return cast(List[Dict[str, Any]], json.loads(body)["locked_resolves"])


def _not_a_lock(lock_path: str, e: Exception) -> PythonLockError:
    return PythonLockError(f"{lock_path}: not a Pex lockfile ({type(e).__name__}: {e}) "
                           "(regenerate it with `pants generate-lockfiles`)")


def locked_versions(text: str, lock_path: str) -> Dict[str, str]:
    """Normalised project name (PEP 503) -> the version the lockfile pins."""
    try:
        return {re.sub(r"[-_.]+", "-", requirement["project_name"]).lower(): requirement["version"]
                for resolve in _locked_resolves(text) for requirement in resolve["locked_requirements"]}
    except (ValueError, KeyError, TypeError) as e:
        raise _not_a_lock(lock_path, e) from None


def artifact_hashes(text: str, lock_path: str) -> Dict[str, Tuple[str, str]]:
    """file name -> (sha256 hex, URL) of every artifact (wheels and sdists) of every locked requirement."""
    try:
        resolves = _locked_resolves(text)
        found: Dict[str, Tuple[str, str]] = {}
        for resolve in resolves:
            for requirement in resolve["locked_requirements"]:
                for artifact in requirement["artifacts"]:
                    if artifact.get("algorithm") == "sha256":
                        name = unquote(posixpath.basename(urlparse(artifact["url"]).path))
                        found[name] = (artifact["hash"], artifact["url"])
        return found
    except (ValueError, KeyError, TypeError) as e:
        raise _not_a_lock(lock_path, e) from None
