"""Watching the cascade configuration file: the live batch size, time scale and sampler settings.

The control plane rewrites the file (a mounted ConfigMap in Kubernetes); the worker polls it and
applies a change without a restart. A file that cannot be parsed never replaces the last good
configuration: the problem is logged with the field that is wrong and kept in ``last_error``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from hadis.api.base import describe_validation_error
from hadis.api.wire import CascadeConfig
from hadis.errors import InputFileError

log = logging.getLogger("hadis_worker.config")


@dataclass(frozen=True)
class VariantRuntime:
    """What one worker takes from the cascade configuration (or its settings before one exists)."""

    batch_size: int
    time_scale: float = 1.0
    steps: int | None = None
    guidance_scale: float | None = None
    generation: int | None = None
    listed: bool = True

    @classmethod
    def from_config(cls, config: CascadeConfig, variant: str, previous: VariantRuntime) -> VariantRuntime:
        """This variant's part of ``config``; a config that does not list the variant keeps the batch size."""
        entry = config.variants.get(variant)
        if entry is None:
            return cls(
                batch_size=previous.batch_size,
                time_scale=config.time_scale,
                steps=previous.steps,
                guidance_scale=previous.guidance_scale,
                generation=config.generation,
                listed=False,
            )
        return cls(
            batch_size=entry.batch_size,
            time_scale=config.time_scale,
            steps=entry.steps,
            guidance_scale=entry.guidance_scale,
            generation=config.generation,
        )


def parse_cascade_config(text: str, source: str) -> CascadeConfig:
    """Parse a cascade configuration; every problem is an :class:`InputFileError` naming the field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(f"{source}: not valid JSON: {e}") from None
    try:
        return CascadeConfig.model_validate(data)
    except ValidationError as e:
        raise InputFileError(describe_validation_error(e, source)) from None


class ConfigWatcher:
    """Polls one file and calls ``on_change`` with every new valid configuration (in the caller's loop)."""

    def __init__(self, path: Path, on_change: Callable[[CascadeConfig], None], poll_s: float = 1.0) -> None:
        self.path = path
        self.poll_s = poll_s
        self._on_change = on_change
        self._digest: str | None = None
        self.last_good: CascadeConfig | None = None
        self.last_error: str | None = None

    def poll(self) -> bool:
        """Check the file once; True when a new configuration was applied.

        The whole (small) file is read and hashed on every poll, so a rewrite within the
        filesystem's mtime granularity is still seen.
        """
        try:
            text = self.path.read_text()
        except OSError as e:
            msg = f"{self.path}: cannot read cascade config: {e.strerror}"
            if msg != self.last_error:
                log.warning("%s; keeping %s", msg, self._kept())
                self.last_error = msg
            return False
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest == self._digest:
            return False
        self._digest = digest
        try:
            config = parse_cascade_config(text, str(self.path))
        except InputFileError as e:
            self.last_error = str(e)
            log.error("%s\nkeeping %s", e, self._kept())
            return False
        self.last_good, self.last_error = config, None
        self._on_change(config)
        log.info("applied cascade config generation %d from %s", config.generation, self.path)
        return True

    def _kept(self) -> str:
        if self.last_good is None:
            return "the settings' defaults (no valid config yet)"
        return f"config generation {self.last_good.generation}"

    async def run(self) -> None:
        """Poll forever (until cancelled); an unexpected error is logged, never fatal."""
        while True:
            try:
                self.poll()
            except Exception:
                log.exception("cascade config poll of %s failed", self.path)
            await asyncio.sleep(self.poll_s)
