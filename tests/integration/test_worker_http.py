"""The worker over real HTTP: uvicorn on a free 127.0.0.1 port, the emulated engine, httpx clients."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hadis.profiles import load_profile, load_prompt_scores
from hadis_worker.server import create_app
from hadis_worker.settings import WorkerSettings

VARIANT = "sdxl-lightning"  # L40S: L(1) = 0.5 s, L(2) = 0.9 s, L(4) = 1.8 s, L(8) = 3.6 s
SCALE = 0.1
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(batch: int, generation: int = 1) -> dict[str, Any]:
    return {
        "generation": generation,
        "policy": "infaas",
        "split": {VARIANT: 1.0},
        "variants": {VARIANT: {"batchSize": batch, "endpoints": []}},
        "sloS": 10.0,
        "timeScale": SCALE,
    }


def body(i: int, *, slack_s: float = 60.0, **kw: object) -> dict[str, object]:
    return {
        "requestId": f"r{i}",
        "prompt": "a cat",
        "variant": VARIANT,
        "deadlineUnixS": time.time() + slack_s,
        **kw,
    }


class Worker:
    """A worker app served by uvicorn in a thread."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.app = create_app(settings)
        self.url = f"http://127.0.0.1:{settings.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=settings.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Worker:
        self.thread.start()
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise RuntimeError("worker did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def post_many(self, bodies: list[dict[str, object]]) -> list[httpx.Response]:
        async def run() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=self.url, timeout=60) as c:
                return list(await asyncio.gather(*(c.post("/v1/generate", json=b) for b in bodies)))

        return asyncio.run(run())


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    path = tmp_path / "cascade.json"
    path.write_text(json.dumps(config(4)))
    return path


@pytest.fixture
def worker(cfg_path: Path) -> Iterator[Worker]:
    s = WorkerSettings(
        variant=VARIANT, config_path=cfg_path, port=free_port(), time_scale=5.0, config_poll_s=0.05
    )
    with Worker(s) as w:
        yield w


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.02)


def test_concurrent_load_is_batched_up_to_the_configured_size(worker: Worker) -> None:
    responses = worker.post_many([body(i) for i in range(24)])
    assert [r.status_code for r in responses] == [200] * 24
    sizes = [r.json()["batchSize"] for r in responses]
    assert max(sizes) == 4 and min(sizes) >= 1
    metrics = httpx.get(f"{worker.url}/metrics").text
    assert 'hadis_worker_requests_total{outcome="ok",variant="sdxl-lightning"} 24.0' in metrics
    for name in (
        "hadis_worker_queue_requests",
        "hadis_worker_batch_size_requests",
        "hadis_worker_generation_seconds",
    ):
        assert name in metrics


def test_a_lone_request_runs_at_once_with_the_profiled_latency(worker: Worker) -> None:
    t0 = time.perf_counter()
    r = httpx.post(f"{worker.url}/v1/generate", json=body(1), timeout=30)
    took = time.perf_counter() - t0
    l1 = load_profile().variant(VARIANT).perf_on("L40S").latency(1) * SCALE  # the config's time scale
    assert r.status_code == 200 and r.json()["batchSize"] == 1
    assert 0.99 * l1 <= r.json()["generationMs"] / 1000 <= l1 + 0.1
    assert took < l1 + 0.5


def test_admission_refuses_a_request_that_cannot_meet_its_deadline(worker: Worker) -> None:
    r = httpx.post(f"{worker.url}/v1/generate", json=body(1, slack_s=0.01), timeout=30)
    assert r.status_code == 504
    assert r.json()["code"] == "deadline" and r.json()["requestId"] == "r1"


def test_p_real_comes_from_the_packaged_scores(worker: Worker) -> None:
    r = httpx.post(f"{worker.url}/v1/generate", json=body(1, promptIndex=42, seed=5, discriminate=True))
    expected = load_prompt_scores().p_real[VARIANT][42, 5 % 4]
    assert r.status_code == 200 and r.json()["pReal"] == pytest.approx(expected)


def test_bad_requests_are_answered_with_the_right_status(worker: Worker) -> None:
    bad = httpx.post(f"{worker.url}/v1/generate", content=b'{"requestId": "x", "prompt": ""}')
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request" and bad.json()["requestId"] == "x"
    assert "variant" in bad.json()["message"]
    junk = httpx.post(f"{worker.url}/v1/generate", content=b"\xff not json")
    assert junk.status_code == 400 and junk.json()["code"] == "bad_request"
    other = httpx.post(f"{worker.url}/v1/generate", json=body(1) | {"variant": "sd35-large"})
    assert other.status_code == 409 and other.json()["code"] == "wrong_variant"
    assert httpx.get(f"{worker.url}/healthz").json() == {"status": "ok"}


def test_config_changes_apply_live_and_a_malformed_file_keeps_the_last_good(
    worker: Worker, cfg_path: Path
) -> None:
    def ready() -> dict[str, Any]:
        return dict(httpx.get(f"{worker.url}/readyz").json())

    assert ready()["batchSize"] == 4
    cfg_path.write_text(json.dumps(config(2, generation=2)))
    wait_for(lambda: ready()["batchSize"] == 2)
    responses = worker.post_many([body(i) for i in range(10)])
    assert max(r.json()["batchSize"] for r in responses) == 2

    cfg_path.write_text(json.dumps(config(0, generation=3)))
    wait_for(lambda: ready()["configError"] is not None)
    state = ready()
    assert state["batchSize"] == 2 and state["configGeneration"] == 2
    assert "variants.sdxl-lightning.batchSize" in state["configError"]

    cfg_path.write_text(json.dumps(config(3, generation=4)))
    wait_for(lambda: ready()["batchSize"] == 3)
    assert ready()["configError"] is None


def test_every_request_gets_an_answer_under_mixed_load(worker: Worker) -> None:
    bodies = [body(i, slack_s=(0.02 if i % 3 == 0 else 60)) for i in range(30)]
    bodies += [{"requestId": f"bad{i}", "prompt": "x"} for i in range(5)]
    responses = worker.post_many(bodies)
    assert len(responses) == 35
    by_id = {r.json()["requestId"]: r for r in responses}
    assert len(by_id) == 35
    for i in range(30):
        r = by_id[f"r{i}"]
        assert r.status_code == (504 if i % 3 == 0 else 200)


def test_sigterm_serves_the_queue_then_exits(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {
        "HADIS_WORKER_VARIANT": VARIANT,
        "HADIS_WORKER_HOST": "127.0.0.1",
        "HADIS_WORKER_PORT": str(port),
        "HADIS_TIME_SCALE": "2",  # L(1) = 1 s: time to queue the rest
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("operator", "worker")),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "hadis_worker"], env=env, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), timeout=20)

        async def load() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                tasks = [asyncio.create_task(c.post("/v1/generate", json=body(i))) for i in range(6)]
                while (await c.get("/readyz")).json()["queue"] < 5:  # one runs, five wait
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGTERM)
                return list(await asyncio.gather(*tasks))

        responses = asyncio.run(load())
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it caught
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the running request and the five queued before SIGTERM are all served, then the worker exits
    assert [r.status_code for r in responses] == [200] * 6


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
