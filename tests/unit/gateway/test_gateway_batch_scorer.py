"""Router scoring batches prompts that wait while a batch is being scored."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from hadis_gateway.batch_scorer import BatchScorer, one_by_one


def test_prompts_arriving_during_a_batch_are_scored_together() -> None:
    batches: list[list[str]] = []
    gate = threading.Event()

    def score_many(prompts: Sequence[str]) -> list[float]:
        gate.wait(5)
        batches.append(list(prompts))
        return [float(len(p)) for p in prompts]

    async def run() -> list[float]:
        with ThreadPoolExecutor(1) as pool:
            s = BatchScorer(score_many, pool, max_batch=3)
            first = asyncio.create_task(s.score("a"))
            await asyncio.sleep(0.05)  # "a" is being scored alone; the rest queue up
            rest = [asyncio.create_task(s.score("b" * k)) for k in range(2, 7)]
            await asyncio.sleep(0.05)
            gate.set()
            return await asyncio.gather(first, *rest)

    assert asyncio.run(run()) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [len(b) for b in batches] == [1, 3, 2]


def test_errors_reach_every_waiting_prompt() -> None:
    def broken(prompts: Sequence[str]) -> list[float]:
        raise ValueError("router down")

    async def run() -> None:
        s = BatchScorer(broken, None)
        results = await asyncio.gather(s.score("a"), s.score("b"), return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        s2 = BatchScorer(lambda ps: [1.0], None)
        with pytest.raises(RuntimeError, match="1 scores for 2 prompts"):
            await asyncio.gather(s2.score("a"), s2.score("b"))
        assert await BatchScorer(one_by_one(len), None).score("abc") == 3.0  # type: ignore[arg-type]
        not_numbers = BatchScorer(lambda ps: [[1.0] for _ in ps], None)  # type: ignore[misc]
        with pytest.raises(TypeError):  # answered, not left hanging
            await asyncio.wait_for(not_numbers.score("a"), 2)

    asyncio.run(run())


def test_cache_answers_repeated_prompts_on_the_loop_and_evicts_the_oldest() -> None:
    calls: list[list[str]] = []

    def score_many(prompts: Sequence[str]) -> list[float]:
        calls.append(list(prompts))
        return [float(len(p)) for p in prompts]

    async def run() -> None:
        s = BatchScorer(score_many, None, cache_size=2)
        assert [await s.score(p) for p in ("a", "bb", "a", "bb")] == [1.0, 2.0, 1.0, 2.0]
        assert calls == [["a"], ["bb"]]
        await s.score("ccc")  # evicts "a", the least recently used
        await s.score("bb")
        await s.score("a")
        assert calls == [["a"], ["bb"], ["ccc"], ["a"]]
        uncached = BatchScorer(score_many, None)
        await uncached.score("a")
        await uncached.score("a")
        assert calls[-2:] == [["a"], ["a"]]

    asyncio.run(run())
    with pytest.raises(ValueError):
        BatchScorer(score_many, None, cache_size=-1)
