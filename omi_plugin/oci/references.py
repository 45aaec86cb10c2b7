r"""Registry naming rules from the OCI distribution spec: repository paths and tags.

Anchored with `\Z`, not `$`: Python's `$` also matches before a trailing newline, which would let `v1\n` through.
"""

import re

TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
REPOSITORY_RE = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\Z")
