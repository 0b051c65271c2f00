"""Router scoring off the event loop, batched: prompts that arrive while a batch is scored go together.

spaCy scores a batch of prompts (``nlp.pipe``) about twice as fast per prompt as one at a time, so
under load the router keeps up; when idle a prompt is scored alone, with no added wait.

With ``cache_size`` > 0 the scores of that many recent prompts are kept on the event loop's side
(LRU): a repeated prompt is answered at once, with no trip to the scoring thread (which, holding
the GIL for milliseconds at a time, would delay the answer). Only for deterministic scorers.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

ScoreMany = Callable[[Sequence[str]], Sequence[float]]


def one_by_one(score: Callable[[str], float]) -> ScoreMany:
    """A batch scorer from a single-prompt scorer."""
    return lambda prompts: [score(p) for p in prompts]


class BatchScorer:
    """``await score(prompt)``: ``score_many`` on ``executor``, up to ``max_batch`` prompts at once."""

    def __init__(
        self, score_many: ScoreMany, executor: Executor | None, max_batch: int = 32, cache_size: int = 0
    ) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self._score_many, self._executor, self.max_batch = score_many, executor, max_batch
        self._cache: OrderedDict[str, float] = OrderedDict()
        self.cache_size = cache_size
        self._pending: list[tuple[str, asyncio.Future[float]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def score(self, prompt: str) -> float:
        hit = self._cache.get(prompt)
        if hit is not None:
            self._cache.move_to_end(prompt)
            return hit
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self._pending.append((prompt, future))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                prompts = [p for p, _ in batch]
                try:
                    raw = await loop.run_in_executor(self._executor, self._score_many, prompts)
                    scores = [float(x) for x in raw]
                    if len(scores) != len(batch):
                        raise RuntimeError(f"router returned {len(scores)} scores for {len(batch)} prompts")
                except BaseException as e:  # every waiting prompt gets an answer, also on cancellation
                    for _, f in batch:
                        if not f.done():
                            f.set_exception(e if isinstance(e, Exception) else RuntimeError(repr(e)))
                    if not isinstance(e, Exception):
                        raise
                    continue
                for (prompt, f), score in zip(batch, scores, strict=True):
                    self._remember(prompt, score)
                    if not f.done():
                        f.set_result(score)
        finally:
            self._running = False

    def _remember(self, prompt: str, score: float) -> None:
        if self.cache_size:
            self._cache[prompt] = score
            self._cache.move_to_end(prompt)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
