"""`python -m omi_plugin.registry push|pull ...`: see `cli.py`."""

import sys

from omi_plugin.registry.cli import main

sys.exit(main())
