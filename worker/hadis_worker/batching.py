"""Dynamic batching: one queue, one batcher task, batches of up to the configured size.

The batcher takes whatever is queued (up to ``batch_size``) as soon as the engine is free; it never
waits for a batch to fill. Admission happens twice: on arrival a request that could not finish even
in a batch of one is refused at once, and when a batch is formed the batcher keeps the largest set of
requests that can all finish in time (``now + L(k) ≤ deadline`` for each of the k); the others are
answered ``WorkerError(code="deadline")`` without running. Every request resolves to exactly one
:class:`GenerateResponse` or :class:`WorkerError`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from hadis.api.wire import GenerateRequest, GenerateResponse, WorkerError
from hadis_worker.engines.base import Engine
from hadis_worker.metrics import WorkerMetrics

log = logging.getLogger("hadis_worker.batching")

Outcome = GenerateResponse | WorkerError
ErrorCode = Literal["deadline", "overloaded", "bad_request", "wrong_variant", "internal", "shutting_down"]


@dataclass
class Pending:
    """A queued request and the future its HTTP handler awaits."""

    request: GenerateRequest
    future: asyncio.Future[Outcome]
    arrived: float = field(default_factory=time.perf_counter)


#: How long an idle worker waits for the rest of a batch that arrives together (see ``_gather``).
GATHER_S = 0.003


class Batcher:
    """Queue + batcher task over one engine (start with :meth:`start`, stop with :meth:`stop`)."""

    def __init__(
        self,
        engine: Engine,
        variant: str,
        batch_size: int,
        *,
        max_queue: int = 1024,
        metrics: WorkerMetrics | None = None,
        clock: Callable[[], float] = time.time,
        gather_s: float = GATHER_S,
    ) -> None:
        self.engine = engine
        self.gather_s = gather_s
        self._arrived = asyncio.Event()
        self.variant = variant
        self.max_queue = max_queue
        self.metrics = metrics or WorkerMetrics(variant)
        self._clock = clock
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._inflight: list[Pending] = []
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        self.batch_size = 1
        self.set_batch_size(batch_size)

    @property
    def queue_length(self) -> int:
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        """False once the batcher task has ended (it only ends when stopped)."""
        return self._task is None or not self._task.done()

    def set_batch_size(self, n: int) -> None:
        """Change the maximum batch size; the next batch formed uses it."""
        if n < 1:
            raise ValueError(f"batch size must be ≥ 1, got {n}")
        self.batch_size = n
        self.metrics.set_batch_limit(n)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="hadis-batcher")

    async def submit(self, request: GenerateRequest) -> Outcome:
        """Queue one request and wait for its answer (an error when refused)."""
        if self.closing:
            return _error("shutting_down", "the worker is shutting down", request)
        slack = request.deadline_unix_s - self._clock()
        alone = self.engine.expected_latency_s(1)
        if alone > slack:
            return _error(
                "deadline",
                f"cannot finish before the deadline: needs {alone:.3f}s, {slack:.3f}s left",
                request,
            )
        if self._queue.qsize() >= self.max_queue:
            return _error("overloaded", f"queue full ({self.max_queue} requests waiting)", request)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Pending(request, future))
        self._arrived.set()
        self.metrics.set_queue(self._queue.qsize())
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            self._inflight = batch  # held while the batch forms: a stop answers them too
            await self._gather(len(batch))
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self.metrics.set_queue(self._queue.qsize())
            try:
                await self._run_batch(batch)
            except Exception as e:  # never let the batcher die: answer what it held
                log.exception("batch failed")
                for p in batch:
                    _resolve(p, _error("internal", f"batch failed: {type(e).__name__}: {e}", p.request))
            finally:
                self._inflight = []

    async def _gather(self, have: int) -> None:
        """Wait up to ``gather_s`` for the rest of a batch the gateway sent together.

        The gateway hands an idle worker up to a batch of requests at once, each on its own
        connection; parsing them takes a few event-loop turns, so closing the batch on the first
        one split such bursts (1 + 3 of 4 in about a third of them, measured). The wait ends as
        soon as the batch is full.
        """
        if self.batch_size <= 1 or self.gather_s <= 0:
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + self.gather_s
        while have + self._queue.qsize() < self.batch_size:
            left = end - loop.time()
            if left <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return

    def _admit(self, live: list[Pending]) -> list[Pending]:
        """The largest set that all finish in time if run together; refuse the rest."""
        now = self._clock()
        by_slack = sorted(live, key=lambda p: p.request.deadline_unix_s, reverse=True)
        m = len(by_slack)
        while m > 0 and now + self.engine.expected_latency_s(m) > by_slack[m - 1].request.deadline_unix_s:
            m -= 1
        for p in by_slack[m:]:
            need = self.engine.expected_latency_s(max(m, 1))
            left = p.request.deadline_unix_s - now
            msg = f"cannot finish before the deadline: a batch needs {need:.3f}s, {left:.3f}s left"
            _resolve(p, _error("deadline", msg, p.request))
        admitted = set(map(id, by_slack[:m]))
        return [p for p in live if id(p) in admitted]

    async def _run_batch(self, batch: list[Pending]) -> None:
        live = [p for p in batch if not p.future.done()]  # a disconnected client cancels its future
        admitted = self._admit(live)
        if not admitted:
            return
        self._inflight = admitted
        started = time.perf_counter()
        for p in admitted:
            self.metrics.observe_wait(started - p.arrived)
        results = await self.engine.generate([p.request for p in admitted])
        seconds = time.perf_counter() - started
        if len(results) != len(admitted):
            raise RuntimeError(f"engine returned {len(results)} results for a batch of {len(admitted)}")
        self.metrics.observe_batch(len(admitted), seconds)
        for p, (png, p_real) in zip(admitted, results, strict=True):
            response = GenerateResponse(
                request_id=p.request.request_id,
                variant=self.variant,
                image_b64=base64.b64encode(png).decode("ascii"),
                p_real=p_real,
                queue_ms=max(0.0, (started - p.arrived) * 1000),
                generation_ms=seconds * 1000,
                batch_size=len(admitted),
            )
            _resolve(p, response)

    def begin_shutdown(self) -> int:
        """Refuse new requests and answer every queued one ``shutting_down``; returns how many."""
        self.closing = True
        n = 0
        while not self._queue.empty():
            p = self._queue.get_nowait()
            _resolve(p, _error("shutting_down", "the worker is shutting down", p.request))
            n += 1
        self.metrics.set_queue(0)
        return n

    def refuse_new(self) -> None:
        """Refuse new requests from now on; what is queued or running still gets served."""
        self.closing = True

    async def stop(self, drain_s: float = 30.0) -> None:
        """Drain: refuse new requests, serve the queued and running ones for up to ``drain_s``, then
        answer whatever is left ``shutting_down`` and stop the task.

        Queued requests were admitted against their deadlines, so serving them beats bouncing them
        to a replica that may not exist any more (the control plane stops a worker only after the
        gateway stopped sending to it); the queue empties within admission factor × SLO.
        """
        self.refuse_new()
        task, self._task = self._task, None
        if task is None:
            self.begin_shutdown()
            return
        deadline = time.perf_counter() + drain_s
        while (self._inflight or not self._queue.empty()) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        self.begin_shutdown()
        inflight = list(self._inflight)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for p in inflight:
            _resolve(p, _error("shutting_down", "the worker stopped before the batch finished", p.request))
        self._inflight = []


def _error(code: ErrorCode, message: str, request: GenerateRequest) -> WorkerError:
    return WorkerError(code=code, message=message, request_id=request.request_id)


def _resolve(p: Pending, outcome: Outcome) -> None:
    if not p.future.done():
        p.future.set_result(outcome)
