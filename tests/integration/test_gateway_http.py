"""The gateway over real HTTP: uvicorn gateway + uvicorn fake workers on free 127.0.0.1 ports."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from tests.gateway_fakes import (
    CrashingWorker,
    FakeWorker,
    FixedThreshold,
    ServerThread,
    cascade_config,
    hard_word_score,
    tiny_png,
    wait_for,
    write_config,
)

from hadis_gateway.server import create_app
from hadis_gateway.settings import Settings


class Cluster:
    """A gateway and three workers (light-0, heavy-0, heavy-1), each a real uvicorn server."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.workers = {
            "l0": FakeWorker("l0", "light"),
            "h0": FakeWorker("h0", "heavy"),
            "h1": FakeWorker("h1", "heavy"),
        }
        self.servers = {n: ServerThread(w.app()).start() for n, w in self.workers.items()}
        self.path = tmp_path / "cascade.json"
        self.generation = 0
        self.configure()
        s = Settings(config_path=self.path, config_poll_s=0.05, **settings)
        app = create_app(s, score_prompt=hard_word_score, router_threshold=FixedThreshold(0.5),
                         disc_threshold=FixedThreshold(0.5))  # fmt: skip
        self.gateway = ServerThread(app).start()
        self.http = httpx.Client(base_url=self.gateway.url, timeout=30)

    def url(self, name: str) -> str:
        return self.servers[name].url

    def configure(
        self, light: tuple[str, ...] = ("l0",), heavy: tuple[str, ...] = ("h0", "h1"), **kw: Any
    ) -> int:
        self.generation += 1
        urls = [self.url(n) for n in light], [self.url(n) for n in heavy]
        write_config(self.path, cascade_config(*urls, generation=self.generation, **kw))
        return self.generation

    def wait_generation(self, generation: int) -> None:
        wait_for(lambda: self.http.get("/readyz").json().get("generation") == generation)

    def generate(self, prompt: str = "a cat", **body: Any) -> httpx.Response:
        return self.http.post("/v1/images/generations", json={"prompt": prompt, **body})

    def burst(self, k: int, prompt: str = "a cat") -> list[httpx.Response]:
        async def go() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=self.gateway.url, timeout=30) as c:
                calls = [c.post("/v1/images/generations", json={"prompt": prompt}) for _ in range(k)]
                return list(await asyncio.gather(*calls))

        return asyncio.run(go())

    def stop(self) -> None:
        self.http.close()
        self.gateway.stop()
        for s in self.servers.values():
            if s.thread.is_alive():
                s.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.wait_generation(1)
    yield c
    c.stop()


def xh(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    info: dict[str, Any] = resp.json()["data"][0]["x_hadis"]
    return info


def test_router_score_routes_hard_prompts_to_heavy(cluster: Cluster) -> None:
    easy, hard = xh(cluster.generate("a cat")), xh(cluster.generate("a hard street scene"))
    assert (easy["variant"], easy["router_hard"], easy["router_score"]) == ("light", False, 0.0)
    assert (hard["variant"], hard["router_hard"], hard["router_score"]) == ("heavy", True, 1.0)
    assert len(cluster.workers["l0"].requests) == 1
    heavy = cluster.workers["h0"].requests + cluster.workers["h1"].requests
    assert len(heavy) == 1 and not heavy[0].discriminate


def test_low_p_real_escalates_and_heavy_regenerates(cluster: Cluster) -> None:
    x = xh(cluster.generate("a blurry dog"))
    assert (x["variant"], x["escalated"], x["discriminator_score"]) == ("heavy", True, 0.05)
    (light,) = cluster.workers["l0"].requests
    assert light.discriminate
    assert len(cluster.workers["h0"].requests + cluster.workers["h1"].requests) == 1


def test_least_outstanding_balancing(cluster: Cluster) -> None:
    gen = cluster.configure(theta=1.0)
    cluster.wait_generation(gen)
    h0, h1 = cluster.workers["h0"], cluster.workers["h1"]
    h0.delay_s = h1.delay_s = 0.4
    replies = cluster.burst(6)
    assert all(r.status_code == 200 for r in replies)
    # least outstanding first (2 each: a replica holds 2 × batch size), the rest waited at the gateway
    # for whichever replica freed a slot first
    assert len(h0.requests) + len(h1.requests) == 6 and min(len(h0.requests), len(h1.requests)) >= 2
    assert max(h0.max_active, h1.max_active) <= 2
    # a replica busy with a slow request gets nothing new while the other is idle
    h0.requests.clear(), h1.requests.clear()
    h0.delay_s, h1.delay_s = 1.5, 0.0

    async def slow_then_fast() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=cluster.gateway.url, timeout=30) as c:
            slow = asyncio.create_task(c.post("/v1/images/generations", json={"prompt": "x"}))
            await asyncio.sleep(0.3)
            busy = h0 if h0.active else h1
            fast = [await c.post("/v1/images/generations", json={"prompt": "y"}) for _ in range(4)]
            assert busy.active == 1 and len(busy.requests) == 1
            return [await slow, *fast]

    assert all(r.status_code == 200 for r in asyncio.run(slow_then_fast()))


def test_killed_worker_is_retried_on_another_replica(cluster: Cluster) -> None:
    gen = cluster.configure(theta=1.0)
    cluster.wait_generation(gen)
    cluster.servers["h0"].stop(kill=True)
    replies = cluster.burst(6)
    assert [r.status_code for r in replies] == [200] * 6  # none lost
    assert len(cluster.workers["h1"].requests) == 6
    assert sum(xh(r)["retries"] for r in replies) >= 1
    assert "hadis_gateway_worker_retries_total" in cluster.http.get("/metrics").text


def test_worker_crashing_mid_request_is_retried_on_another_replica(cluster: Cluster) -> None:
    crash = CrashingWorker()
    try:
        urls = [[cluster.url("l0")], [crash.url, cluster.url("h1")]]
        gen = cluster.generation = cluster.generation + 1
        write_config(cluster.path, cascade_config(*urls, theta=1.0, generation=gen))
        cluster.wait_generation(gen)
        replies = cluster.burst(4)
        assert [r.status_code for r in replies] == [200] * 4
        assert crash.accepted >= 1 and len(cluster.workers["h1"].requests) == 4
    finally:
        crash.close()


def test_full_queue_answers_429_with_retry_after(tmp_path: Path) -> None:
    c = Cluster(tmp_path, queue_capacity=2)
    try:
        c.wait_generation(1)
        c.workers["l0"].delay_s = 1.0
        replies = c.burst(5)
        codes = sorted(r.status_code for r in replies)
        assert codes == [200, 200, 429, 429, 429]
        refused = next(r for r in replies if r.status_code == 429)
        assert refused.headers["Retry-After"] == "1" and refused.json()["error"]["code"] == "queue_full"
        c.workers["l0"].delay_s = 0.0
        assert c.generate().status_code == 200  # capacity comes back
    finally:
        c.stop()


def test_live_config_change_without_restart(cluster: Cluster) -> None:
    assert xh(cluster.generate("a cat"))["variant"] == "light"
    cluster.wait_generation(cluster.configure(theta=1.0))  # θ: everything is hard now
    assert xh(cluster.generate("a cat"))["variant"] == "heavy"
    cluster.wait_generation(cluster.configure(theta=0.0, tau=0.0))  # τ = 0: never escalate
    x = xh(cluster.generate("a blurry cat"))
    assert (x["variant"], x["escalated"]) == ("light", False)
    extra = FakeWorker("l1", "light")
    cluster.workers["l1"], cluster.servers["l1"] = extra, ServerThread(extra.app()).start()
    cluster.wait_generation(cluster.configure(light=("l1",)))  # endpoints moved
    before = len(cluster.workers["l0"].requests)
    assert xh(cluster.generate("a cat"))["variant"] == "light"
    assert len(extra.requests) == 1 and len(cluster.workers["l0"].requests) == before
    write_config(cluster.path, "{broken")  # a bad file keeps the last good config
    cluster.wait_generation(cluster.generation)
    assert xh(cluster.generate("a cat"))["variant"] == "light"


def test_requests_waiting_for_a_dropped_variant_move_to_the_new_configuration(cluster: Cluster) -> None:
    """A re-allocation that drops the heavy variant must not turn its queue into errors."""
    import threading

    for name in ("h0", "h1"):
        cluster.workers[name].delay_s = 1.0
    cluster.wait_generation(cluster.configure(theta=1.0))  # everything goes to heavy
    new = FakeWorker("n0", "heavier")
    cluster.workers["n0"], cluster.servers["n0"] = new, ServerThread(new.app()).start()
    out: list[list[httpx.Response]] = []
    sender = threading.Thread(target=lambda: out.append(cluster.burst(6)))
    sender.start()
    wait_for(lambda: sum(w.active for w in cluster.workers.values()) == 2)  # 2 run, 4 wait here
    cluster.generation += 1
    config = cascade_config([cluster.url("l0")], [], theta=1.0, generation=cluster.generation)
    config["row"]["heavy"] = "heavier"
    config["variants"] = {
        "light": {"batchSize": 1, "endpoints": [cluster.url("l0")]},
        "heavier": {"batchSize": 1, "endpoints": [cluster.url("n0")]},
    }
    write_config(cluster.path, config)
    sender.join(timeout=30)
    variants = sorted(xh(r)["variant"] for r in out[0])
    assert variants == ["heavier"] * 4 + ["heavy"] * 2  # the running two finish where they are
    assert "hadis_gateway_rerouted_total 4.0" in cluster.http.get("/metrics").text


def test_official_openai_client(cluster: Cluster) -> None:
    client = openai.OpenAI(base_url=f"{cluster.gateway.url}/v1", api_key="x", max_retries=0)
    result = client.images.generate(model="hadis", prompt="a hard lighthouse", response_format="b64_json")
    assert result.data is not None
    image = result.data[0]
    assert image.b64_json is not None and base64.b64decode(image.b64_json) == tiny_png()
    assert image.model_extra is not None
    x = image.model_extra["x_hadis"]
    assert (x["variant"], x["router_hard"]) == ("heavy", True)
    assert {"router_score", "discriminator_score", "escalated", "queue_ms", "generation_ms"} <= set(x)
    assert [m.id for m in client.models.list()] == ["hadis", "heavy", "light"]
    with pytest.raises(openai.BadRequestError) as e:
        client.images.generate(model="dall-e-9", prompt="a cat", response_format="b64_json")
    assert e.value.param == "model" and e.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [({"prompt": ""}, "prompt"), ({"prompt": "a", "n": 99}, "n"), ({"prompt": "a", "size": "1x1"}, "size")],
)
def test_bad_input_is_400_naming_the_field(cluster: Cluster, body: dict[str, Any], param: str) -> None:
    resp = cluster.http.post("/v1/images/generations", json=body)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == param
    resp = cluster.http.post(
        "/v1/images/generations", content=b"[", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400 and set(resp.json()["error"]) == {"message", "type", "param", "code"}


def _arrivals(cluster: Cluster) -> float:
    for line in cluster.http.get("/metrics").text.splitlines():
        if line.startswith("hadis_gateway_arrivals_total "):
            return float(line.split()[1])
    raise AssertionError("hadis_gateway_arrivals_total missing from /metrics")


def test_health_ready_and_metrics(cluster: Cluster) -> None:
    assert cluster.http.get("/healthz").json() == {"status": "ok"}
    assert cluster.http.get("/readyz").status_code == 200
    before = _arrivals(cluster)
    cluster.generate()
    assert _arrivals(cluster) == before + 1  # demand is counted on arrival (the control loop reads it)
    assert (
        'hadis_gateway_requests_total{outcome="ok",variant="light"} 1.0' in cluster.http.get("/metrics").text
    )


def test_metrics_show_the_gateway_process_and_its_tasks(cluster: Cluster) -> None:
    """Memory, fds and the loop's task count are on /metrics, so a leak is visible in a pod."""

    def sample(name: str) -> float:
        line = next(x for x in cluster.http.get("/metrics").text.splitlines() if x.startswith(name + " "))
        return float(line.split()[1])

    assert sample("process_resident_memory_bytes") > 10e6
    assert sample("process_open_fds") > 0
    idle = sample("hadis_gateway_asyncio_tasks")
    assert idle >= 1  # at least the task serving this scrape
    for _ in range(3):
        cluster.generate()
    assert sample("hadis_gateway_asyncio_tasks") <= idle + 1  # requests leave no tasks behind
