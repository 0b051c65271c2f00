"""Watching the cascade configuration file (the gateway's and every worker's view of the control plane).

The control plane rewrites the file (a mounted ConfigMap in Kubernetes; the control loop in local
mode); readers poll it and apply a change without a restart. A file that cannot be read, is not
JSON or fails validation never replaces the last good configuration: the problem is logged once,
naming the field, kept in ``last_error`` and passed to ``on_error``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from hadis.api.base import describe_validation_error
from hadis.api.wire import CascadeConfig
from hadis.errors import InputFileError

log = logging.getLogger("hadis.cascade_watch")


def parse_cascade_config(raw: bytes | str, source: str) -> CascadeConfig:
    """Parse a cascade configuration; every problem is an :class:`InputFileError` naming the field."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputFileError(f"{source}: not valid JSON: {e}") from None
    try:
        return CascadeConfig.model_validate(data)
    except ValidationError as e:
        raise InputFileError(describe_validation_error(e, source)) from None


class CascadeConfigWatcher:
    """Polls ``path``; every time its content changes and parses, calls ``on_change(config)``."""

    def __init__(
        self,
        path: Path,
        on_change: Callable[[CascadeConfig], None],
        *,
        poll_s: float = 1.0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.poll_s = poll_s
        self.current: CascadeConfig | None = None
        self.last_error: str | None = None
        self._on_change = on_change
        self._on_error = on_error
        self._seen: bytes | None = None

    def poll(self) -> bool:
        """Read the (small) file once; ``True`` when a new configuration was applied. The content is
        compared, not the mtime, so a rewrite within the filesystem's mtime granularity is seen."""
        try:
            raw = self.path.read_bytes()
        except OSError as e:
            return self._fail(f"{self.path}: cannot read cascade config: {e.strerror}", None)
        if raw == self._seen:
            return False
        try:
            config = parse_cascade_config(raw, str(self.path))
        except InputFileError as e:
            return self._fail(str(e), raw)
        self._seen, self.last_error, self.current = raw, None, config
        self._on_change(config)
        log.info("cascade config generation %d applied (policy %s)", config.generation, config.policy)
        return True

    def _fail(self, message: str, raw: bytes | None) -> bool:
        if raw is not None and raw == self._seen:
            return False
        if message != self.last_error:
            kept = "none yet" if self.current is None else f"generation {self.current.generation}"
            log.error("%s; keeping the last good config (%s)", message, kept)
            if self._on_error is not None:
                self._on_error(message)
        self.last_error, self._seen = message, raw
        return False

    async def run(self) -> None:
        """Poll forever (cancel the task to stop); an unexpected error is logged, never fatal."""
        while True:
            try:
                self.poll()  # a small file, read on the event loop: changes apply between requests
            except Exception:
                log.exception("cascade config watcher of %s", self.path)
            await asyncio.sleep(self.poll_s)
