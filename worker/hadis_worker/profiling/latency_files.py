"""Where ``hadis profile latency`` keeps its figures beside ``OUT``: the resumable partial file
(``OUT.partial.json``) and the report of every figure (``OUT.latency.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hadis_worker.profiling.errors import LatencyError
from hadis_worker.profiling.progress import say


def partial_path(out: Path) -> Path:
    return out.with_suffix(".partial.json")


def report_path(out: Path) -> Path:
    return out.with_suffix(".latency.json")


def load_partial(path: Path, resume: bool) -> dict[str, Any]:
    """The partial file's measurements by variant (with ``resume``; else nothing, saying so)."""
    if not resume:
        if path.exists():
            say(f"{path}: replaced (an earlier run's measurements; --resume keeps them)")
        return {}
    if not path.exists():
        say(f"{path}: nothing to resume, measuring everything")
        return {}
    try:
        data = json.loads(path.read_text())
        return dict(data["variants"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LatencyError(f"--resume: {path} is not a partial latency file ({e})") from None
