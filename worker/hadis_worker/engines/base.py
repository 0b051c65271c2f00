"""The engine interface: what the batcher needs from a diffusion backend."""

from __future__ import annotations

from typing import Protocol

from hadis.api.wire import GenerateRequest
from hadis_worker.config_watch import VariantRuntime

#: One generated image: PNG bytes and the discriminator's p_real (``None`` when not asked for).
Generated = tuple[bytes, float | None]


class Engine(Protocol):
    """A backend that generates one batch at a time (the batcher never runs two batches at once)."""

    async def warmup(self) -> None:
        """Load weights and run a first batch; the worker reports ready only after this returns."""

    async def generate(self, batch: list[GenerateRequest]) -> list[Generated]:
        """One result per request, in order; p_real only for requests with ``discriminate`` set."""

    def expected_latency_s(self, batch_size: int) -> float:
        """Seconds a batch of this size is expected to take (admission control uses it)."""

    def configure(self, runtime: VariantRuntime) -> None:
        """Apply a new live configuration (time scale, sampler settings) between batches."""
