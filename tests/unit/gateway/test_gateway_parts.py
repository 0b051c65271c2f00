"""Gateway parts: balancer, thresholds, settings, config watcher."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from tests.gateway_fakes import cascade_config, write_config

from hadis.cascade_watch import CascadeConfigWatcher
from hadis_gateway.balancer import Balancer, NoReplica
from hadis_gateway.settings import Settings, SettingsError, parse_size
from hadis_gateway.thresholds import WindowQuantile, is_hard, should_escalate


def test_balancer_picks_least_outstanding_and_releases() -> None:
    async def run() -> None:
        b = Balancer()
        b.set_endpoints({"v": ["a", "b", "c"]})
        held = [await b.acquire("v", cap=4) for _ in range(3)]
        assert sorted(held) == ["a", "b", "c"]  # least outstanding first
        assert b.variant_outstanding("v") == 3
        for e in held:
            b.release(e)
        assert b.variant_outstanding("v") == 0 and b.outstanding("c") == 0

    asyncio.run(run())


def test_balancer_ties_rotate_and_exclude() -> None:
    b = Balancer()
    b.set_endpoints({"v": ["a", "b"]})
    assert {b.pick("v") for _ in range(4)} == {"a", "b"}
    assert b.pick("v", exclude=["a"]) == "b"
    assert b.pick("v", exclude=["a", "b"]) is None
    assert b.pick("unknown") is None


def test_balancer_release_survives_endpoint_change() -> None:
    async def run() -> None:
        b = Balancer()
        b.set_endpoints({"v": ["a"]})
        e = await b.acquire("v", cap=1)
        b.set_endpoints({"v": ["b"]})
        assert b.pick("v") == "b"
        b.release(e)
        assert b.outstanding("a") == 0

    asyncio.run(run())


async def settle() -> None:
    for _ in range(10):  # let woken waiters' tasks run to completion
        await asyncio.sleep(0)


def test_full_replicas_queue_requests_fifo_for_the_first_free_slot() -> None:
    async def run() -> None:
        b = Balancer()
        b.set_endpoints({"v": ["a", "b"]})
        first = [await b.acquire("v", cap=1) for _ in range(2)]  # both replicas full
        waiting = [asyncio.ensure_future(b.acquire("v", cap=1)) for _ in range(3)]
        await settle()
        assert b.waiting("v") == 3 and b.variant_outstanding("v") == 5
        b.release(first[1])  # whichever replica frees first serves the oldest waiter
        await settle()
        assert waiting[0].done() and waiting[0].result() == first[1] and not waiting[1].done()
        b.release(first[0])
        await settle()
        assert waiting[1].result() == first[0] and not waiting[2].done()
        with pytest.raises(TimeoutError):
            await b.acquire("v", cap=1, timeout_s=0.01)  # nothing frees up in time
        b.set_endpoints({"v": ["a", "b", "c"]})  # a new replica takes the next waiter at once
        await settle()
        assert waiting[2].result() == "c" and b.waiting("v") == 0

    asyncio.run(run())


def test_a_busy_replica_takes_no_second_batch_an_idle_one_takes_a_whole_batch() -> None:
    """Idle-only dispatch (the simulator's model): a request waits for the first replica to go idle
    instead of being pinned behind a running batch; an idle replica takes up to a batch at once."""

    async def run() -> None:
        b = Balancer()
        b.set_endpoints({"v": ["a", "b"]})
        burst = [await b.acquire("v", cap=3) for _ in range(4)]  # one loop turn: a, b, then fill
        assert sorted(burst) == ["a", "a", "b", "b"]
        await settle()  # the loop turned: both replicas are now running their batches
        late = asyncio.ensure_future(b.acquire("v", cap=3))
        await settle()
        assert not late.done() and b.waiting("v") == 1  # neither busy replica takes it
        b.release("a")
        await settle()
        assert not late.done()  # a still runs one request of its batch
        b.release("a")
        await settle()
        assert late.result() == "a"  # a went idle first
        queued = [asyncio.ensure_future(b.acquire("v", cap=3)) for _ in range(4)]
        await settle()
        b.release("b")
        b.release("b")  # b goes idle: it takes a whole batch (3) of the waiters, FIFO
        await settle()
        assert [q.done() for q in queued] == [True, True, True, False]
        assert {q.result() for q in queued[:3]} == {"b"}

    asyncio.run(run())


def test_no_usable_replica_is_an_error_not_a_wait() -> None:
    async def run() -> None:
        b = Balancer()
        b.set_endpoints({"v": ["a"]})
        with pytest.raises(NoReplica):
            await b.acquire("v", cap=1, exclude=["a"])
        with pytest.raises(NoReplica):
            await b.acquire("other", cap=1)
        held = await b.acquire("v", cap=1)
        waiter = asyncio.ensure_future(b.acquire("v", cap=1))
        await settle()
        b.set_endpoints({"v": []})  # the variant lost its replicas: waiters fail instead of hanging
        await settle()
        with pytest.raises(NoReplica):
            waiter.result()
        b.release(held)

    asyncio.run(run())


def test_window_quantile_and_decisions() -> None:
    q = WindowQuantile(seed=[float(i) for i in range(101)], window=101)
    assert q.quantile(0.7) == pytest.approx(70.0)
    assert is_hard(80.0, 0.3, q) and not is_hard(60.0, 0.3, q)
    assert not is_hard(1e9, 0.0, q) and is_hard(-1e9, 1.0, q)
    assert should_escalate(10.0, 0.2, q) and not should_escalate(30.0, 0.2, q)
    assert not should_escalate(-1.0, 0.0, q) and should_escalate(1e9, 1.0, q)
    for _ in range(101):
        q.observe(5.0)  # live scores push the seed out of the window
    assert q.quantile(0.5) == 5.0 and len(q) == 101
    assert not is_hard(1.0, 0.5, WindowQuantile())  # no scores yet: never hard


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {"HADIS_CONFIG_PATH": "/c.json", "HADIS_GATEWAY_PORT": "9000", "HADIS_QUEUE_CAPACITY": "3"}
    )
    assert (s.config_path, s.port, s.queue_capacity, s.spacy_model) == (
        Path("/c.json"),
        9000,
        3,
        None,
    )
    assert parse_size("512x768") == (512, 768)
    assert (s.access_log, s.worker_connections, s.score_cache) == (False, 512, 16384)
    s = Settings.from_env(
        {
            "HADIS_CONFIG_PATH": "/c.json",
            "HADIS_ACCESS_LOG": "true",
            "HADIS_WORKER_CONNECTIONS": "64",
            "HADIS_SCORE_CACHE": "0",
        }
    )
    assert (s.access_log, s.worker_connections, s.score_cache) == (True, 64, 0)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "HADIS_CONFIG_PATH"),
        ({"HADIS_CONFIG_PATH": "c", "HADIS_GATEWAY_PORT": "x"}, "HADIS_GATEWAY_PORT"),
        ({"HADIS_CONFIG_PATH": "c", "HADIS_QUEUE_CAPACITY": "0"}, "HADIS_QUEUE_CAPACITY"),
        ({"HADIS_CONFIG_PATH": "c", "HADIS_CONFIG_POLL_S": "-1"}, "HADIS_CONFIG_POLL_S"),
        ({"HADIS_CONFIG_PATH": "c", "HADIS_IMAGE_SIZES": "512"}, "HADIS_IMAGE_SIZES"),
        ({"HADIS_CONFIG_PATH": "c", "HADIS_IMAGE_SIZES": "512x512,8x8"}, "HADIS_IMAGE_SIZES"),
        ({"HADIS_CONFIG_PATH": "c", "HADIS_ACCESS_LOG": "maybe"}, "HADIS_ACCESS_LOG"),
        ({"HADIS_CONFIG_PATH": "c", "HADIS_WORKER_CONNECTIONS": "0"}, "HADIS_WORKER_CONNECTIONS"),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_config_watcher_applies_changes_and_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cascade.json"
    applied: list[int] = []
    errors: list[str] = []
    w = CascadeConfigWatcher(path, lambda c: applied.append(c.generation), on_error=errors.append)
    assert not w.poll() and w.current is None and "cannot read" in (w.last_error or "")
    write_config(path, cascade_config(["http://l"], ["http://h"], generation=1))
    assert w.poll() and applied == [1]
    assert not w.poll()  # unchanged content: nothing to apply
    bad = cascade_config(["http://l"], ["http://h"], generation=2)
    bad["row"]["theta"] = 3
    with caplog.at_level(logging.ERROR):
        write_config(path, bad)
        assert not w.poll()
    assert w.current is not None and w.current.generation == 1
    assert "row.theta" in caplog.text and "keeping the last good config (generation 1)" in caplog.text
    write_config(path, "{not json")
    assert not w.poll() and "not valid JSON" in (w.last_error or "")
    write_config(path, json.dumps(cascade_config(["http://l2"], ["http://h"], generation=3)))
    assert w.poll() and applied == [1, 3] and w.last_error is None
    assert len(errors) == 3


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"prompt_index": 7, "negative_prompt": "blurry", "num_inference_steps": 4, "guidance_scale": 0},
        {"seed": 3, "num_inference_steps": 30},
        {"guidance_scale": 7.5, "seed": 0},
    ],
)
def test_wire_request_is_the_generate_request_model(extra: dict[str, Any]) -> None:
    from hadis.api.wire import GenerateRequest
    from hadis_gateway.dispatch import Job, wire_request

    job = Job(request_id="r1", prompt="a cat", width=512, height=768, arrival_unix_s=1.0, **extra)
    body = wire_request(job, "light", 1234.5, discriminate=True, steps=job.num_inference_steps,
                        guidance_scale=job.guidance_scale)  # fmt: skip
    model = GenerateRequest(
        request_id="r1", prompt="a cat", variant="light", width=512, height=768, deadline_unix_s=1234.5,
        discriminate=True, **extra,
    )  # fmt: skip
    assert body == model.to_wire()
    assert json.dumps(body) == json.dumps(model.to_wire())  # same key order and number types
    assert GenerateRequest.model_validate(body) == model


def test_a_long_wait_queue_costs_each_release_little_and_stays_fifo() -> None:
    """Every release used to scan every waiter: with a backlog, each request cost milliseconds."""
    import time

    async def run() -> None:
        b = Balancer()
        b.set_endpoints({"light": ["a", "b"]})
        held = [await b.acquire("light", cap=2) for _ in range(4)]  # both replicas full
        waiters = [asyncio.create_task(b.acquire("light", cap=2)) for _ in range(3000)]
        await asyncio.sleep(0)
        assert b.waiting("light") == 3000
        order: list[int] = []
        for i, t in enumerate(waiters):
            t.add_done_callback(lambda _t, i=i: order.append(i))
        start = time.perf_counter()
        for endpoint in held:
            b.release(endpoint)
        for t in waiters:  # each granted request finishes and frees its slot for the next
            b.release(await t)
        assert time.perf_counter() - start < 2.0
        assert order == sorted(order) and b.waiting("light") == 0
        assert b.outstanding("a") == b.outstanding("b") == 0

    asyncio.run(run())
