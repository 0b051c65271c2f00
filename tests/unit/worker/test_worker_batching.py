"""The batcher: batch size limits, no waiting for full batches, admission, every request answered."""

from __future__ import annotations

import asyncio
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.worker.workerkit import VARIANT, FakeEngine, request

from hadis.api.wire import GenerateResponse, WorkerError
from hadis_worker.batching import Batcher


async def _wait_for(cond: object, timeout: float = 2.0) -> None:
    end = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


def test_batches_never_exceed_the_configured_size() -> None:
    async def run() -> None:
        engine = FakeEngine(per_item_s=0.002)
        b = Batcher(engine, VARIANT, 4)
        b.start()
        out = await asyncio.gather(*(b.submit(request(i)) for i in range(30)))
        await b.stop()
        assert all(isinstance(o, GenerateResponse) for o in out)
        sizes = [len(x) for x in engine.batches]
        assert max(sizes) == 4 and sum(sizes) == 30
        assert all(o.batch_size <= 4 for o in out if isinstance(o, GenerateResponse))

    asyncio.run(run())


def test_a_batch_starts_without_waiting_for_a_full_batch() -> None:
    async def run() -> None:
        engine = FakeEngine(per_item_s=0.01)
        b = Batcher(engine, VARIANT, 8)
        b.start()
        t0 = time.perf_counter()
        out = await b.submit(request(1))
        took = time.perf_counter() - t0
        await b.stop()
        assert isinstance(out, GenerateResponse) and out.batch_size == 1
        assert took < 0.5

    asyncio.run(run())


def test_requests_arriving_together_at_an_idle_worker_form_one_batch() -> None:
    """The gateway hands an idle worker a batch at once; they arrive a few loop turns apart."""

    async def run() -> None:
        engine = FakeEngine(per_item_s=0.001)
        b = Batcher(engine, VARIANT, 4, gather_s=0.05)
        b.start()

        async def staggered(i: int) -> object:
            await asyncio.sleep(0.001 * i)  # parsing each request takes its own loop turns
            return await b.submit(request(i))

        t0 = time.perf_counter()
        await asyncio.gather(*(staggered(i) for i in range(4)))
        full = time.perf_counter() - t0
        await b.submit(request(9))  # alone: waits the gather window, no more
        await b.stop()
        assert [len(x) for x in engine.batches] == [4, 1]
        assert full < 0.05  # a full batch closes at once, not at the end of the window

    asyncio.run(run())


def test_requests_queued_behind_a_running_batch_form_the_next_batch() -> None:
    async def run() -> None:
        engine = FakeEngine(gated=True)
        engine.gate = asyncio.Event()
        b = Batcher(engine, VARIANT, 3)
        b.start()
        first = asyncio.ensure_future(b.submit(request(0)))
        await _wait_for(lambda: engine.started == 1)
        rest = [asyncio.ensure_future(b.submit(request(i))) for i in range(1, 6)]
        await _wait_for(lambda: b.queue_length == 5)
        engine.gate.set()
        out = await asyncio.gather(first, *rest)
        await b.stop()
        assert [len(x) for x in engine.batches] == [1, 3, 2]
        assert all(isinstance(o, GenerateResponse) for o in out)

    asyncio.run(run())


def test_batch_size_change_applies_to_the_next_batch() -> None:
    async def run() -> None:
        engine = FakeEngine(gated=True)
        engine.gate = asyncio.Event()
        b = Batcher(engine, VARIANT, 1)
        b.start()
        first = asyncio.ensure_future(b.submit(request(0)))
        await _wait_for(lambda: engine.started == 1)
        rest = [asyncio.ensure_future(b.submit(request(i))) for i in range(1, 5)]
        await _wait_for(lambda: b.queue_length == 4)
        b.set_batch_size(4)
        engine.gate.set()
        await asyncio.gather(first, *rest)
        await b.stop()
        assert [len(x) for x in engine.batches] == [1, 4]

    asyncio.run(run())


def test_admission_refuses_a_request_that_cannot_meet_its_deadline() -> None:
    async def run() -> None:
        engine = FakeEngine(per_batch_s=0.5, per_item_s=0.0)
        b = Batcher(engine, VARIANT, 2)
        b.start()
        out = await b.submit(request(1, slack_s=0.2))
        await b.stop()
        assert isinstance(out, WorkerError) and out.code == "deadline" and out.request_id == "r1"
        assert engine.batches == []

    asyncio.run(run())


def test_batch_admission_keeps_the_largest_set_that_finishes_in_time() -> None:
    async def run() -> None:
        # a batch of k takes 0.1·k s; behind a running batch, three requests wait: two with plenty of
        # slack and one that fits alone but not in a batch of three (its slack expires meanwhile).
        engine = FakeEngine(per_item_s=0.1, gated=True)
        engine.gate = asyncio.Event()
        b = Batcher(engine, VARIANT, 3)
        b.start()
        first = asyncio.ensure_future(b.submit(request(0)))
        await _wait_for(lambda: engine.started == 1)
        tight = asyncio.ensure_future(b.submit(request(1, slack_s=0.25)))
        loose = [asyncio.ensure_future(b.submit(request(i, slack_s=60))) for i in (2, 3)]
        await _wait_for(lambda: b.queue_length == 3)
        engine.gate.set()
        out = await asyncio.gather(first, tight, *loose)
        await b.stop()
        assert isinstance(out[1], WorkerError) and out[1].code == "deadline"
        assert engine.batches == [["r0"], ["r2", "r3"]]

    asyncio.run(run())


def test_stop_serves_the_queue_and_refuses_new_requests() -> None:
    async def run() -> None:
        engine = FakeEngine(gated=True)
        engine.gate = asyncio.Event()
        b = Batcher(engine, VARIANT, 1)
        b.start()
        running = asyncio.ensure_future(b.submit(request(0)))
        await _wait_for(lambda: engine.started == 1)
        queued = [asyncio.ensure_future(b.submit(request(i))) for i in range(1, 4)]
        await _wait_for(lambda: b.queue_length == 3)
        stopping = asyncio.ensure_future(b.stop(drain_s=5))
        await asyncio.sleep(0.01)
        assert not any(q.done() for q in queued)  # admitted: they wait for their turn
        late = await b.submit(request(9))  # new ones are refused at once
        assert isinstance(late, WorkerError) and late.code == "shutting_down"
        engine.gate.set()
        await stopping
        assert isinstance(running.result(), GenerateResponse)
        for q in queued:
            assert isinstance(q.result(), GenerateResponse)


def test_stop_answers_what_the_drain_window_leaves_shutting_down() -> None:
    async def run() -> None:
        engine = FakeEngine(gated=True)
        engine.gate = asyncio.Event()
        b = Batcher(engine, VARIANT, 1)
        b.start()
        running = asyncio.ensure_future(b.submit(request(0)))
        await _wait_for(lambda: engine.started == 1)
        queued = [asyncio.ensure_future(b.submit(request(i))) for i in range(1, 3)]
        await _wait_for(lambda: b.queue_length == 2)
        await b.stop(drain_s=0.05)  # the running batch never finishes within the window
        for q in [running, *queued]:
            out = await q
            assert isinstance(out, WorkerError) and out.code == "shutting_down"

    asyncio.run(run())


def test_stop_after_drain_timeout_answers_the_running_batch() -> None:
    async def run() -> None:
        engine = FakeEngine(gated=True)
        b = Batcher(engine, VARIANT, 2)
        b.start()
        running = asyncio.ensure_future(b.submit(request(0)))
        await _wait_for(lambda: engine.started == 1)
        await b.stop(drain_s=0.05)
        out = await running
        assert isinstance(out, WorkerError) and out.code == "shutting_down"

    asyncio.run(run())


def test_engine_failure_is_an_internal_error_and_the_batcher_keeps_going() -> None:
    async def run() -> None:
        engine = FakeEngine()
        engine.fail = True
        b = Batcher(engine, VARIANT, 2)
        b.start()
        out = await b.submit(request(1))
        engine.fail = False
        again = await b.submit(request(2))
        await b.stop()
        assert isinstance(out, WorkerError) and out.code == "internal" and "exploded" in out.message
        assert isinstance(again, GenerateResponse)
        assert b.alive

    asyncio.run(run())


def test_a_full_queue_is_overloaded() -> None:
    async def run() -> None:
        engine = FakeEngine(gated=True)
        engine.gate = asyncio.Event()
        b = Batcher(engine, VARIANT, 1, max_queue=2)
        b.start()
        first = asyncio.ensure_future(b.submit(request(0)))
        await _wait_for(lambda: engine.started == 1)
        queued = [asyncio.ensure_future(b.submit(request(i))) for i in (1, 2)]
        await _wait_for(lambda: b.queue_length == 2)
        refused = await b.submit(request(3))
        engine.gate.set()
        await asyncio.gather(first, *queued)
        await b.stop()
        assert isinstance(refused, WorkerError) and refused.code == "overloaded"

    asyncio.run(run())


@settings(max_examples=25, deadline=None)
@given(
    batch_size=st.integers(1, 6),
    slacks=st.lists(st.sampled_from([0.001, 0.02, 0.05, 10.0]), min_size=1, max_size=25),
    stop_early=st.booleans(),
)
def test_every_request_gets_exactly_one_answer(
    batch_size: int, slacks: list[float], stop_early: bool
) -> None:
    async def run() -> None:
        engine = FakeEngine(per_item_s=0.002)
        b = Batcher(engine, VARIANT, batch_size)
        b.start()
        futs = [asyncio.ensure_future(b.submit(request(i, slack_s=s))) for i, s in enumerate(slacks)]
        if stop_early:
            await asyncio.sleep(0.005)
            await b.stop(drain_s=1)
        out = await asyncio.wait_for(asyncio.gather(*futs), timeout=5)
        await b.stop()
        assert [o.request_id for o in out] == [f"r{i}" for i in range(len(slacks))]
        ran = [rid for batch in engine.batches for rid in batch]
        assert len(ran) == len(set(ran))
        assert all(len(x) <= batch_size for x in engine.batches)
        for o in out:
            assert isinstance(o, GenerateResponse) or o.code in ("deadline", "shutting_down")

    asyncio.run(run())
