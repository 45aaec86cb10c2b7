"""Entrypoint: `python -m omi_runtime` starts the server configured by the environment."""

import sys

from omi_runtime.server import main

if __name__ == "__main__":
    sys.exit(main())
