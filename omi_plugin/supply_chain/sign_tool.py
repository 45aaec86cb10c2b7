"""Sign in-toto statements with the configured key: `python -m omi_plugin.supply_chain.sign_tool`.

    --statement NAME=FILE ... --out DIR      writes DIR/NAME.sigstore.json for each statement

The key comes from the environment, never the command line: OMI_SIGNING_KEY_FILE (a PEM file) or OMI_SIGNING_KEY
(the PEM itself), and OMI_SIGNING_KEY_PASSWORD when the key is encrypted. Exit 1 with one line on any error; the
key's bytes are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from omi_plugin.supply_chain.signing import SigningError, load_private_key, sign

KEY_FILE_ENV = "OMI_SIGNING_KEY_FILE"
KEY_ENV = "OMI_SIGNING_KEY"
PASSWORD_ENV = "OMI_SIGNING_KEY_PASSWORD"  # also what users set for an encrypted `[omi].signing_key`


def _key() -> object:
    path, pem = os.environ.get(KEY_FILE_ENV), os.environ.get(KEY_ENV)
    password = os.environ.get(PASSWORD_ENV)
    if path:
        try:
            with open(path, "rb") as f:
                data, where = f.read(), path
        except OSError as e:
            raise SigningError(f"{path}: cannot read the signing key ({e.strerror})") from None
    elif pem:
        data, where = pem.encode(), "the signing key in the environment"
    else:
        raise SigningError(f"no signing key: set {KEY_FILE_ENV} or {KEY_ENV}")
    return load_private_key(data, password.encode() if password else None, where)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omi_plugin.supply_chain.sign_tool")
    parser.add_argument("--statement", action="append", default=[], help="NAME=FILE")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        key = _key()
        os.makedirs(args.out, exist_ok=True)
        for item in args.statement:
            name, _, path = item.partition("=")
            with open(path, "rb") as f:
                statement = json.load(f)
            with open(os.path.join(args.out, f"{name}.sigstore.json"), "wb") as f:
                f.write(sign(statement, key))
        return 0
    except SigningError as e:
        print(f"error: {e}", file=sys.stderr)
    except (OSError, ValueError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
