"""The emulated engine: sleeps the profiled batch latency, returns a placeholder PNG and a profiled p_real.

For capacity runs and paper reproduction without GPUs. A batch of k requests sleeps L(k) × time
scale, where L is the profile's batch latency of this variant on the emulated GPU type (linearly
interpolated between profiled sizes, as the simulator does). p_real comes from the profile's
per-prompt scores: the score of image ``seed mod images`` of prompt ``prompt_index`` when the
request names a reference prompt, else a draw from this variant's empirical p_real distribution.
No torch, no PIL: the PNG is written with zlib and struct.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable

import numpy as np
import numpy.typing as npt

from hadis.api.profile import GpuPerf
from hadis.api.scores import PromptScores
from hadis.api.wire import GenerateRequest
from hadis.errors import InputFileError
from hadis.profiles import load_profile, load_prompt_scores
from hadis.sim.config import batch_latencies
from hadis_worker.config_watch import VariantRuntime
from hadis_worker.engines.base import Generated
from hadis_worker.settings import SettingsError, WorkerSettings

log = logging.getLogger("hadis_worker.engine")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def placeholder_png(rgb: tuple[int, int, int], size: int = 8) -> bytes:
    """A valid ``size`` × ``size`` single-colour RGB PNG (8-bit, no interlace)."""
    row = b"\x00" + bytes(rgb) * size  # filter type 0 (none), then the pixels
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * size))
        + _chunk(b"IEND", b"")
    )


def _colour(variant: str, request: GenerateRequest) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{variant}\0{request.prompt}\0{request.seed}".encode()).digest()
    return digest[0], digest[1], digest[2]


class EmulatedEngine:
    """Profiled latency, placeholder images, profiled discriminator scores (see the module docstring)."""

    def __init__(
        self,
        variant: str,
        perf: GpuPerf,
        scores: PromptScores | None,
        *,
        time_scale: float = 1.0,
        seed: int = 0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.variant = variant
        self.perf = perf
        self.time_scale = time_scale
        self._sleep = sleep
        self._rng = np.random.default_rng(seed)
        self._latency: dict[int, float] = {}
        self._scores: npt.NDArray[np.float64] | None = None
        self._size = 0
        if scores is not None and variant in scores.p_real:
            self._scores = scores.p_real[variant]
            self._size = scores.size
        else:
            log.warning("no per-prompt scores for variant %r: p_real will be None", variant)

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> EmulatedEngine:
        """Load the profile (and its prompt scores, when it has them) that the settings name."""
        profile = load_profile(settings.profile)
        try:
            variant = profile.variant(settings.variant)
            perf = variant.perf_on(settings.gpu_type or profile.reference_gpu_type)
        except KeyError as e:
            raise SettingsError(f"HADIS_WORKER_VARIANT / HADIS_GPU_TYPE: {e.args[0]}") from None
        try:
            scores: PromptScores | None = load_prompt_scores(settings.profile)
        except InputFileError as e:
            log.warning("%s", e)
            scores = None
        return cls(variant.name, perf, scores, time_scale=settings.time_scale, seed=settings.seed)

    def profiled_latency_s(self, batch_size: int) -> float:
        """L(k) of the profile, unscaled."""
        if batch_size not in self._latency:
            self._latency[batch_size] = batch_latencies(self.perf, batch_size)[batch_size]
        return self._latency[batch_size]

    def expected_latency_s(self, batch_size: int) -> float:
        return self.profiled_latency_s(batch_size) * self.time_scale

    def configure(self, runtime: VariantRuntime) -> None:
        self.time_scale = runtime.time_scale

    async def warmup(self) -> None:
        self.profiled_latency_s(1)

    def p_real(self, request: GenerateRequest) -> float | None:
        """The profiled score of this prompt and seed, or a draw from the variant's distribution."""
        if not request.discriminate or self._scores is None:
            return None
        images = self._scores.shape[1]
        if request.prompt_index is not None:
            column = request.seed % images if request.seed is not None else int(self._rng.integers(images))
            value = self._scores[request.prompt_index % self._size, column]
        else:
            value = self._scores.flat[int(self._rng.integers(self._scores.size))]
        return float(min(1.0, max(0.0, value)))

    async def generate(self, batch: list[GenerateRequest]) -> list[Generated]:
        await self._sleep(self.expected_latency_s(len(batch)))
        return [(placeholder_png(_colour(self.variant, r)), self.p_real(r)) for r in batch]
