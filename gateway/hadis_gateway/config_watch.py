"""Watch the cascade configuration file; apply a valid change without a restart, keep the last good one."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from hadis.api.base import describe_validation_error
from hadis.api.wire import CascadeConfig

log = logging.getLogger(__name__)


class ConfigWatcher:
    """Polls ``path``; every time its content changes and parses, calls ``on_change(config)``.

    A file that cannot be read, is not JSON or fails validation is logged (naming the field) and
    the last good configuration stays in force.
    """

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
        """Read the file once; ``True`` when a new configuration was applied."""
        try:
            raw = self.path.read_bytes()
        except OSError as e:
            return self._fail(f"{self.path}: cannot read cascade config: {e.strerror}", None)
        if raw == self._seen:
            return False
        try:
            config = CascadeConfig.model_validate(json.loads(raw))
        except json.JSONDecodeError as e:
            return self._fail(f"{self.path}: not valid JSON: {e}", raw)
        except ValidationError as e:
            return self._fail(describe_validation_error(e, str(self.path)), raw)
        self._seen = raw
        self.last_error = None
        self.current = config
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
        self.last_error = message
        self._seen = raw
        return False

    async def run(self) -> None:
        """Poll forever (cancel the task to stop)."""
        while True:
            try:
                self.poll()  # a small file, read on the event loop: changes apply between requests
            except Exception:  # never let the watcher die: the last good config keeps serving
                log.exception("cascade config watcher")
            await asyncio.sleep(self.poll_s)
