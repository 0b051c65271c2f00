"""Progress lines of the profiling commands (stderr, flushed: stdout carries their results)."""

from __future__ import annotations

import sys


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
