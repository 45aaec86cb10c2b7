"""Entrypoint: `python -m omi_runtime` starts the server configured by the environment."""

import os
import sys

from omi_runtime.server import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit now, without joining worker threads: a model call still running after the drain period must not keep
    # the process alive past its bounded shutdown.
    os._exit(code)
