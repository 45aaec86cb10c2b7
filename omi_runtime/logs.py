"""Structured logs: one JSON object per line on stdout, one line per event.

Kept dependency-free and cheap: the hot request path does not log; start-up, shutdown, load and failures do.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def log(event: str, level: str = "info", **fields: Any) -> None:
    """Write one event line, e.g. {"ts": ..., "level": "info", "event": "ready", "port": 8080}."""
    record = {"ts": round(time.time(), 3), "level": level, "logger": "omi_runtime", "event": event}
    record.update(fields)
    try:
        sys.stdout.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        # stdout closed by the supervisor: logging must never take the server down.
        pass
