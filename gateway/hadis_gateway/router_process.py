"""The prompt router in a child process at low CPU priority, so scoring never starves the event loop.

spaCy holds the GIL while it parses. In a thread of the gateway's process, every time the event
loop releases the GIL (each socket operation) it then waits for the parsing thread's switch
interval to get it back, so while cold prompts are being scored the loop crawls: ``/metrics``
took seconds to answer under the E1 load and the control loop went blind. In a child process the
two share only the CPU, and the child runs at a higher nice value: when the loop has work the
kernel gives it the CPU; the router gets what the loop leaves.

:class:`RouterProcess` is a ``concurrent.futures`` executor (one child) for
:class:`~hadis_gateway.batch_scorer.BatchScorer`; :func:`score_many` is the function it runs
there. A child that dies is replaced on the next batch (the batch it was scoring fails).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_router: Any = None  # the PromptRouter, in the child process only


def _start(model: str | None, nice: int) -> None:
    """Child initialiser: lower the priority, load the router, keep its objects out of the GC."""
    global _router
    if nice > 0:
        with contextlib.suppress(OSError):  # not permitted: run at the parent's priority
            os.nice(nice)
    from hadis_gateway.router import PromptRouter

    _router = PromptRouter(model, cache_size=0)  # the gateway keeps the scores (BatchScorer's cache)
    gc.collect()
    gc.freeze()


def score_many(prompts: Sequence[str]) -> list[float]:
    """Router scores of ``prompts`` (runs in the child)."""
    scores: list[float] = _router.score_many(list(prompts))
    return scores


def loaded_model() -> str:
    """The spaCy pipeline the child loaded (runs in the child)."""
    name: str = _router.loaded_model
    return name


class RouterProcess(Executor):
    """One child process running the router; replaced when it dies."""

    def __init__(self, model: str | None = None, *, nice: int = 10) -> None:
        self._model, self._nice = model, nice
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: forking a process that runs an event loop and threads is not safe
        return ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(self._model, self._nice),
        )

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            log.warning("the router process died; starting a new one")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
