"""query_load against a real Prometheus scraping a real gateway and emulated workers (processes).

The gateway and two emulated workers run as ``python -m hadis_gateway`` / ``python -m hadis_worker``
(latencies × 0.001, so requests are answered at once); Prometheus scrapes them every second with
the labels Kubernetes would give them (``namespace``, ``app_kubernetes_io_instance``). A known load
goes through the gateway, pinned to each variant with ``model``, and query_load must see it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from tests.process_stack import ProcessStack, running_stack
from tests.prometheus_local import LocalPrometheus, Target

from hadis.observe.prometheus import MetricsUnavailable, instant_query, query_load

pytestmark = pytest.mark.integration

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"
NS, SVC = "imaging", "sdxl-cascade"
StartPrometheus = Callable[..., LocalPrometheus]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessStack]:
    row = {"light": LIGHT, "heavy": HEAVY, "theta": 0.3, "tau": 0.2, "p": 0.44, "fid": 25.75}
    with running_stack(tmp_path_factory.mktemp("observe"), row, slo_s=10.0, time_scale=0.001) as s:
        yield s


class Load:
    """Open-loop load in a thread: ``qps`` requests a second, every ``len(models)``-th to each model."""

    def __init__(self, url: str, qps: float, models: list[str]) -> None:
        self.url, self.qps, self.models = url, qps, models
        self.stop = threading.Event()
        self.sent = 0
        self.failed: list[str] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            tasks: set[asyncio.Task[None]] = set()
            t0 = time.monotonic()
            while not self.stop.is_set():
                model = self.models[self.sent % len(self.models)]
                task = asyncio.create_task(self._one(client, model, self.sent))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                self.sent += 1
                await asyncio.sleep(max(t0 + self.sent / self.qps - time.monotonic(), 0))
            await asyncio.gather(*tasks)

    async def _one(self, client: httpx.AsyncClient, model: str, i: int) -> None:
        body = {"prompt": f"a lighthouse at dusk {i}", "model": model, "seed": i}
        resp = await client.post("/v1/images/generations", json=body)
        if resp.status_code != 200:
            self.failed.append(resp.text[:200])

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(20)


def test_arrival_and_per_variant_rates_follow_the_sent_load(
    stack: ProcessStack, start_prometheus: StartPrometheus
) -> None:
    # the same gateway is scraped a second time as another service: its series must not be added
    decoy = Target.of(stack.gateway, namespace=NS, app_kubernetes_io_instance="other")
    prom = start_prometheus([*stack.targets(NS, SVC), decoy])
    # 20 requests/s: 3 of 5 pinned to the light variant (12/s), 2 of 5 to the heavy one (8/s)
    with Load(stack.gateway, 20.0, [LIGHT, HEAVY, LIGHT, HEAVY, LIGHT]) as load:
        time.sleep(7.5)
        obs = query_load(prom.url, namespace=NS, service=SVC, rate_window="5s", timeout_s=5)
    print(f"sent {load.sent} requests; observed {obs}")
    assert not load.failed, load.failed[:3]
    assert obs.arrival_qps == pytest.approx(20.0, rel=0.2), obs
    assert obs.variant_qps[LIGHT] == pytest.approx(12.0, rel=0.25), obs
    assert obs.variant_qps[HEAVY] == pytest.approx(8.0, rel=0.25), obs
    assert set(obs.queue_lengths) == {LIGHT, HEAVY} and all(q >= 0 for q in obs.queue_lengths.values())
    assert abs(obs.at - time.time()) < 5
    other = query_load(prom.url, namespace=NS, service="other", rate_window="5s")
    assert other.arrival_qps == pytest.approx(obs.arrival_qps, rel=0.2)  # its own series, not a sum
    assert other.variant_qps[LIGHT] == pytest.approx(obs.variant_qps[LIGHT], rel=0.25)


def test_no_samples_yet_names_the_metric(stack: ProcessStack, start_prometheus: StartPrometheus) -> None:
    prom = start_prometheus(stack.targets(NS, "someone-else"))  # returns once they are scraped
    assert prom.query('up{app_kubernetes_io_instance="someone-else"}')
    with pytest.raises(MetricsUnavailable) as e:
        query_load(prom.url, namespace=NS, service=SVC)
    sel = f'{{namespace="{NS}",app_kubernetes_io_instance="{SVC}"}}'
    assert f"no samples for hadis_gateway_arrivals_total{sel} yet" in e.value.reason
    assert "no series has these labels" in e.value.reason
    # a window shorter than the scrape interval never holds the two samples rate() needs
    with pytest.raises(MetricsUnavailable, match=r"yet \(fewer than two samples in the last 500ms\)"):
        query_load(prom.url, namespace=NS, service="someone-else", rate_window="500ms")


def test_stopped_prometheus_is_unreachable(start_prometheus: StartPrometheus) -> None:
    prom = start_prometheus()
    assert instant_query(prom.url, "vector(1)")[0].value == 1.0
    prom.stop()
    with pytest.raises(MetricsUnavailable, match=re.escape(f"prometheus unreachable at {prom.url}")):
        query_load(prom.url, namespace=NS, service=SVC, timeout_s=2)


def test_bad_promql_carries_prometheus_error(start_prometheus: StartPrometheus) -> None:
    prom = start_prometheus()
    with pytest.raises(MetricsUnavailable) as e:
        instant_query(prom.url, "sum(rate(hadis_gateway_arrivals_total[1m])")
    assert "bad_data" in e.value.reason and "parse error" in e.value.reason
    assert prom.url in e.value.reason


def test_a_url_that_is_not_prometheus(stack: ProcessStack) -> None:
    with pytest.raises(MetricsUnavailable, match=r"HTTP 40\d from .*/api/v1/query"):
        query_load(stack.gateway, namespace=NS, service=SVC)
    with pytest.raises(MetricsUnavailable, match=re.escape("invalid prometheus URL 'prometheus:9090'")):
        query_load("prometheus:9090", namespace=NS, service=SVC)
    with pytest.raises(
        MetricsUnavailable, match=re.escape("prometheus unreachable at http://no-such-host.invalid")
    ):
        query_load("http://no-such-host.invalid:9090", namespace=NS, service=SVC, timeout_s=2)


def test_a_silent_server_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.monotonic()
        silence = re.escape(f"prometheus at {url} did not answer within 0.5 s")
        with pytest.raises(MetricsUnavailable, match=silence):
            query_load(url, namespace=NS, service=SVC, timeout_s=0.5)
        assert time.monotonic() - t0 < 3
