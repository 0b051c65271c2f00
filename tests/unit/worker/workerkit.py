"""Test helpers for the worker: a controllable fake engine and request factories."""

from __future__ import annotations

import asyncio
import time

from hadis.api.wire import GenerateRequest
from hadis_worker.config_watch import VariantRuntime
from hadis_worker.engines.base import Generated
from hadis_worker.engines.emulated import placeholder_png

VARIANT = "fast"


def request(i: int = 0, *, slack_s: float = 60.0, variant: str = VARIANT, **kw: object) -> GenerateRequest:
    """A valid request whose deadline is ``slack_s`` from now."""
    return GenerateRequest(
        request_id=f"r{i}",
        prompt=f"prompt {i}",
        variant=variant,
        deadline_unix_s=time.time() + slack_s,
        **kw,  # type: ignore[arg-type]
    )


class FakeEngine:
    """Latency ``per_batch_s + per_item_s·k``; records every batch; optionally blocks until released."""

    def __init__(self, per_batch_s: float = 0.0, per_item_s: float = 0.01, *, gated: bool = False) -> None:
        self.per_batch_s = per_batch_s
        self.per_item_s = per_item_s
        self.batches: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.gated = gated
        self.fail = False
        self.started = 0

    def expected_latency_s(self, batch_size: int) -> float:
        return self.per_batch_s + self.per_item_s * batch_size

    def configure(self, runtime: VariantRuntime) -> None:
        pass

    async def warmup(self) -> None:
        pass

    async def generate(self, batch: list[GenerateRequest]) -> list[Generated]:
        self.started += 1
        self.batches.append([r.request_id for r in batch])
        if self.gated:
            if self.gate is None:
                self.gate = asyncio.Event()
            await self.gate.wait()
        else:
            await asyncio.sleep(self.expected_latency_s(len(batch)))
        if self.fail:
            raise RuntimeError("engine exploded")
        return [(placeholder_png((1, 2, 3)), 0.5 if r.discriminate else None) for r in batch]
