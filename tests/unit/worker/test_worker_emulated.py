"""The emulated engine: profiled latency × time scale, a valid PNG, p_real from the profile's scores."""

from __future__ import annotations

import asyncio
import struct
import zlib

import numpy as np
import pytest
from tests.factories import variant
from tests.unit.worker.workerkit import request

from hadis.api.scores import PromptScores
from hadis.profiles import load_profile, load_prompt_scores
from hadis.sim.config import batch_latencies
from hadis_worker.config_watch import VariantRuntime
from hadis_worker.engines import build_engine
from hadis_worker.engines.emulated import EmulatedEngine, placeholder_png
from hadis_worker.settings import SettingsError, WorkerSettings


def read_png(data: bytes) -> tuple[int, int, bytes]:
    """Check signature, chunk CRCs and pixel data length; return (width, height, raw rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        chunks[tag] = body
        pos += 12 + n
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (1 + 3 * width)
    return width, height, raw


def test_placeholder_png_is_valid() -> None:
    w, h, raw = read_png(placeholder_png((10, 20, 30), size=5))
    assert (w, h) == (5, 5) and raw[1:4] == bytes([10, 20, 30])


def engine(scores: PromptScores | None = None, time_scale: float = 1.0) -> tuple[EmulatedEngine, list[float]]:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    return EmulatedEngine(
        "fast", variant("fast", 0.1, 30.0).perf[0], scores, time_scale=time_scale, sleep=sleep
    ), slept


@pytest.mark.parametrize("k", [1, 3, 4, 8, 11])
def test_sleeps_the_profiled_batch_latency_times_the_time_scale(k: int) -> None:
    eng, slept = engine(time_scale=0.5)
    asyncio.run(eng.generate([request(i) for i in range(k)]))
    expected = batch_latencies(eng.perf, k)[k] * 0.5
    assert slept == [pytest.approx(expected)] and eng.expected_latency_s(k) == pytest.approx(expected)
    eng.configure(VariantRuntime(batch_size=k, time_scale=2.0))
    assert eng.expected_latency_s(k) == pytest.approx(expected * 4)


def test_p_real_from_the_prompt_and_seed_else_from_the_distribution() -> None:
    table = np.array([[0.1, 0.2], [0.3, 0.4]])
    scores = PromptScores(router=np.zeros(2), p_real={"fast": table})
    eng, _ = engine(scores)
    assert eng.p_real(request(prompt_index=1, seed=3, discriminate=True)) == 0.4
    assert eng.p_real(request(prompt_index=3, seed=0, discriminate=True)) == 0.3  # ids wrap
    assert eng.p_real(request(prompt_index=1, seed=3)) is None  # not asked for
    draws = {eng.p_real(request(discriminate=True)) for _ in range(50)}
    assert draws <= {0.1, 0.2, 0.3, 0.4} and len(draws) > 1


def test_no_scores_for_the_variant_means_no_p_real() -> None:
    eng, _ = engine(PromptScores(router=np.zeros(1), p_real={"other": np.ones((1, 1))}))
    assert eng.p_real(request(prompt_index=0, discriminate=True)) is None


def test_from_settings_uses_the_packaged_profile_and_scores() -> None:
    eng = build_engine(WorkerSettings(variant="sdxl-lightning", time_scale=0.1))
    assert isinstance(eng, EmulatedEngine)
    perf = load_profile().variant("sdxl-lightning").perf_on("L40S")
    assert eng.expected_latency_s(4) == pytest.approx(perf.latency(4) * 0.1)
    expected = load_prompt_scores().p_real["sdxl-lightning"][7, 2]
    assert (
        eng.p_real(request(prompt_index=7, seed=6, variant="sdxl-lightning", discriminate=True)) == expected
    )


def test_unknown_variant_or_gpu_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="unknown variant"):
        build_engine(WorkerSettings(variant="nope"))
    with pytest.raises(SettingsError, match="GPU type"):
        build_engine(WorkerSettings(variant="sdxl-lightning", gpu_type="H100"))


def test_diffusers_engine_refuses_an_unreachable_hub_model(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("diffusers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SettingsError, match="HADIS_MODEL: 'ByteDance/SDXL-Lightning' is no local directory"):
        build_engine(WorkerSettings(variant="sdxl-lightning", engine="diffusers"))
